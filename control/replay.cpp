#include "control/replay.hpp"

#include <pcap/pcap.h>

#include <cstring>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "config/config.hpp"
#include "control/publisher.hpp"
#include "control/stats.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/slow_path.hpp"

namespace magline::control {

namespace {

constexpr uint16_t kHeadroom = 128;
constexpr uint16_t kBufSize = 2048 + kHeadroom;
constexpr dp::MacAddr kDefaultMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

// Frames live in fixed buffers, as they would in mbufs.
class Buffers final : public dp::PacketPool {
 public:
  bool alloc(dp::Packet& p, uint16_t len) override {
    if (len > kBufSize - kHeadroom) return false;
    auto* buf = new uint8_t[kBufSize];
    p = dp::Packet{buf, buf + kHeadroom, len, kHeadroom, 0, 0};
    ++live_;
    return true;
  }
  void free(dp::Packet& p) override {
    delete[] static_cast<uint8_t*>(p.handle);
    --live_;
  }
  long live() const { return live_; }

 private:
  long live_ = 0;
};

class NoPeers final : public dp::PeerLink {
  bool send(uint16_t, const dp::PeerMessage&) noexcept override { return false; }
};

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
  void operator()(pcap_dumper_t* d) const { pcap_dump_close(d); }
};

}  // namespace

int replay(const ReplayOptions& opts, std::ostream& out, std::ostream& err) {
  auto loaded = opts.config_path
                    ? cfg::load_config(*opts.config_path)
                    : cfg::parse_config(cfg::embedded_default_config(), cfg::kEmbeddedSource);
  if (!loaded) {
    err << loaded.error().message << "\n";
    return 1;
  }
  const cfg::Config& config = *loaded;
  dp::Node node = cfg::node_of(config);
  if (node.ports.empty()) {
    // Without a dataplane section, one port holding the node addresses.
    dp::NodePort p;
    p.name = "replay0";
    for (const dp::IpAddr& a : config.node_addresses) {
      p.addrs.push_back({a, uint8_t(a.family == dp::Family::v4 ? 32 : 128)});
    }
    node.ports.push_back(p);
  }
  for (dp::NodePort& p : node.ports) {
    if (p.mac.is_zero()) p.mac = kDefaultMac;
  }

  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, PcapCloser> in(pcap_open_offline(opts.in.c_str(), errbuf));
  if (!in) {
    err << opts.in << ": cannot read: " << errbuf << "\n";
    return 1;
  }
  if (pcap_datalink(in.get()) != DLT_EN10MB) {
    err << opts.in << ": not an Ethernet capture\n";
    return 1;
  }
  std::unique_ptr<pcap_t, PcapCloser> dead(pcap_open_dead(DLT_EN10MB, 65535));
  std::unique_ptr<pcap_dumper_t, PcapCloser> dump(pcap_dump_open(dead.get(), opts.out.c_str()));
  if (!dump) {
    err << opts.out << ": cannot write: " << pcap_geterr(dead.get()) << "\n";
    return 1;
  }

  Publisher publisher(node);
  auto change = publisher.publish(cfg::services_of(config), 0);
  if (!change) {
    err << config.source << ": " << change.error().message << "\n";
    return 1;
  }
  dp::ForwarderConfig fc;
  fc.flow_capacity = std::min<uint64_t>(config.flow_capacity, 1 << 20);
  fc.timeouts = config.timeouts;
  fc.snat_port_lo = config.dataplane.snat_port_low;
  fc.snat_port_hi = config.dataplane.snat_port_high;
  dp::SingleWorker steering;
  NoPeers peers;
  dp::TrafficRows traffic;
  dp::Forwarder fwd(fc, node, publisher.registry(), steering, peers, traffic);
  for (const dp::Update& u : change->updates) fwd.apply(u);
  Buffers buffers;
  dp::SlowPath slow(node, [&](const dp::IpAddr& a) { return publisher.is_vip(a); }, buffers);

  pcap_pkthdr hdr{};
  uint64_t frames = 0, written = 0, too_long = 0;
  auto write = [&](const dp::Packet& p) {
    pcap_pkthdr h = hdr;
    h.caplen = h.len = p.len;
    pcap_dump(reinterpret_cast<u_char*>(dump.get()), &h, p.data);
    ++written;
  };
  auto settle = [&](dp::SlowPathOutput& so) {
    for (dp::Packet& p : so.tx) {
      write(p);
      buffers.free(p);
    }
    for (const dp::NeighborUpdate& n : so.updates) {
      dp::Update u;
      u.kind = dp::Update::Kind::neighbor;
      u.neighbor = n;
      fwd.apply(u);
    }
    so.tx.clear();
    so.updates.clear();
  };
  const u_char* bytes = nullptr;
  struct pcap_pkthdr* h = nullptr;
  uint64_t now = 0;
  while (pcap_next_ex(in.get(), &h, &bytes) == 1) {
    hdr = *h;
    now = uint64_t(h->ts.tv_sec) * 1000 + uint64_t(h->ts.tv_usec) / 1000;
    ++frames;
    dp::Packet pkt;
    if (h->caplen != h->len || !buffers.alloc(pkt, uint16_t(std::min<uint32_t>(h->caplen, 65535)))) {
      ++too_long;  // truncated by the capture, or longer than a buffer
      continue;
    }
    std::memcpy(pkt.data, bytes, pkt.len);
    dp::BurstOut bo;
    fwd.process(&pkt, 1, now, bo);
    for (uint16_t i = 0; i < bo.n_tx; ++i) {
      write(bo.tx[i]);
      buffers.free(bo.tx[i]);
    }
    for (uint16_t i = 0; i < bo.n_drop; ++i) buffers.free(bo.drop[i]);
    for (uint16_t i = 0; i < bo.n_handoff; ++i) buffers.free(bo.handoff[i].pkt);  // one worker: none
    dp::SlowPathOutput so;
    for (uint16_t i = 0; i < bo.n_slow; ++i) slow.handle(bo.slow[i], now, so);
    slow.tick(now, so);
    settle(so);
  }

  nlohmann::ordered_json j;
  j["frames"] = frames;
  j["written"] = written;
  j["skipped_truncated_or_long"] = too_long;
  j["forwarder"] = forwarder_json(fwd.counters());
  j["slow_path"] = slow_path_json(slow.stats());
  out << j.dump(2) << "\n";
  return 0;
}

}  // namespace magline::control
