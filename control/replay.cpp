#include "control/replay.hpp"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "config/config.hpp"
#include "control/publisher.hpp"
#include "control/stats.hpp"
#include "dataplane/local_ring.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/worker.hpp"

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
    return true;
  }
  void free(dp::Packet& p) override { delete[] static_cast<uint8_t*>(p.handle); }
};

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
  void operator()(pcap_dumper_t* d) const { pcap_dump_close(d); }
};

// The worker's port: the capture as the NIC, and the output capture as the wire. A turn of the
// worker at time `now` receives every frame of the capture stamped up to `now` (at most a
// burst): the frames a NIC would have queued by then. What the worker sends is written with the
// timestamp of the frame being replayed.
class PcapIo {
 public:
  PcapIo(pcap_t* in, pcap_dumper_t* out, Buffers& buffers)
      : in_(in), out_(out), buffers_(buffers) {
    advance();
  }

  // The capture's next frame's time in ms, if there is one.
  std::optional<uint64_t> next_ms() const {
    return have_next_ ? std::optional(stamp_ms(next_hdr_)) : std::nullopt;
  }
  void set_now(uint64_t now_ms) { now_ms_ = now_ms; }
  const std::string& error() const { return error_; }

  uint16_t rx(uint16_t, dp::Packet* out, uint16_t n) noexcept {
    uint16_t got = 0;
    while (got < n && have_next_ && stamp_ms(next_hdr_) <= now_ms_) {
      hdr_ = next_hdr_;
      ++frames;
      dp::Packet pkt;
      if (next_hdr_.caplen != next_hdr_.len ||
          !buffers_.alloc(pkt, uint16_t(std::min<uint32_t>(next_hdr_.caplen, 65535)))) {
        ++too_long;  // truncated by the capture, or longer than a buffer
      } else {
        std::memcpy(pkt.data, next_bytes_, pkt.len);
        out[got++] = pkt;
      }
      advance();
    }
    return got;
  }
  uint16_t tx(uint16_t, dp::Packet* pkts, uint16_t n) noexcept {
    for (uint16_t i = 0; i < n; ++i) {
      pcap_pkthdr h = hdr_;
      h.caplen = h.len = pkts[i].len;
      pcap_dump(reinterpret_cast<u_char*>(out_), &h, pkts[i].data);
      ++written;
      buffers_.free(pkts[i]);
    }
    return n;
  }
  void free(const dp::Packet* pkts, uint16_t n) noexcept {
    for (uint16_t i = 0; i < n; ++i) {
      dp::Packet p = pkts[i];
      buffers_.free(p);
    }
  }

  uint64_t frames = 0, written = 0, too_long = 0;

 private:
  static uint64_t stamp_ms(const pcap_pkthdr& h) {
    return uint64_t(h.ts.tv_sec) * 1000 + uint64_t(h.ts.tv_usec) / 1000;
  }
  void advance() {
    pcap_pkthdr* h = nullptr;
    const int rc = pcap_next_ex(in_, &h, &next_bytes_);
    have_next_ = rc == 1;
    if (have_next_) next_hdr_ = *h;
    if (rc == PCAP_ERROR) error_ = pcap_geterr(in_);
  }

  pcap_t* in_;
  pcap_dumper_t* out_;
  Buffers& buffers_;
  bool have_next_ = false;
  pcap_pkthdr next_hdr_{};
  const u_char* next_bytes_ = nullptr;
  pcap_pkthdr hdr_{};  // the frame being replayed (its timestamp goes on what is sent)
  uint64_t now_ms_ = 0;
  std::string error_;
};

// A FILE of its own on standard input or output, for libpcap to close: given "-", libpcap
// would use stdin or stdout themselves and fclose() them, under the command line's feet.
// nullptr when it cannot (libpcap then reports it).
std::FILE* own_stream(int fd, const char* mode) {
  const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return nullptr;
  std::FILE* f = fdopen(copy, mode);
  if (f == nullptr) close(copy);
  return f;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

int replay(const ReplayOptions& opts, std::ostream& out_stream, std::ostream& err) {
  // "-": libpcap's standard input and output. The capture on standard output leaves the
  // counters to standard error.
  const std::string in_name = opts.in == "-" ? "<stdin>" : opts.in;
  const std::string out_name = opts.out == "-" ? "<stdout>" : opts.out;
  std::ostream& out = opts.out == "-" ? err : out_stream;
  auto loaded = cfg::load_or_default(opts.config_path);
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

  if (opts.in != "-" && opts.out != "-" && same_file(opts.in, opts.out)) {
    err << opts.out << ": is the capture being replayed (" << opts.in
        << "): writing it would destroy it\n";
    return 1;
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::FILE* in_file = opts.in == "-" ? own_stream(STDIN_FILENO, "rb") : nullptr;
  if (opts.in == "-" && in_file == nullptr) {
    err << in_name << ": cannot read: " << std::strerror(errno) << "\n";
    return 1;
  }
  std::unique_ptr<pcap_t, PcapCloser> in(in_file ? pcap_fopen_offline(in_file, errbuf)
                                                 : pcap_open_offline(opts.in.c_str(), errbuf));
  if (!in) {
    if (in_file != nullptr) std::fclose(in_file);
    err << in_name << ": cannot read: " << errbuf << "\n";
    return 1;
  }
  if (pcap_datalink(in.get()) != DLT_EN10MB) {
    err << in_name << ": not an Ethernet capture\n";
    return 1;
  }
  std::unique_ptr<pcap_t, PcapCloser> dead(pcap_open_dead(DLT_EN10MB, 65535));
  std::FILE* out_file = opts.out == "-" ? own_stream(STDOUT_FILENO, "wb") : nullptr;
  if (opts.out == "-" && out_file == nullptr) {
    err << out_name << ": cannot write: " << std::strerror(errno) << "\n";
    return 1;
  }
  std::unique_ptr<pcap_dumper_t, PcapCloser> dump(
      out_file ? pcap_dump_fopen(dead.get(), out_file)
               : pcap_dump_open(dead.get(), opts.out.c_str()));
  if (!dump) {
    if (out_file != nullptr) std::fclose(out_file);
    err << out_name << ": cannot write: " << pcap_geterr(dead.get()) << "\n";
    return 1;
  }

  // Counter rows and frontend maps sized to the configuration, not to the most a running node
  // may serve: a replay starts in milliseconds rather than faulting in 11 MiB of rows.
  const std::vector<dp::Service> services = cfg::services_of(config);
  uint32_t frontends = 1, backends = 1;
  for (const dp::Service& s : services) {
    frontends += uint32_t(s.frontends.size());
    backends += uint32_t(s.backends.size());
  }
  frontends = std::min(frontends, dp::TrafficRows::kFrontendSlots);
  backends = std::min(backends, dp::TrafficRows::kBackendSlots);
  Publisher publisher(node, frontends, backends);
  auto change = publisher.publish(services, 0);
  if (!change) {
    err << config.source << ": " << change.error().message << "\n";
    return 1;
  }
  dp::ForwarderConfig fc;
  fc.flow_capacity = std::min<uint64_t>(config.flow_capacity, 1 << 20);
  fc.timeouts = config.timeouts;
  fc.snat_port_lo = config.dataplane.snat_port_low;
  fc.snat_port_hi = config.dataplane.snat_port_high;
  fc.syn_proxy_threshold = config.dataplane.syn_proxy_threshold;
  fc.kernel_rate = config.dataplane.exception_rate;
  fc.dnat_one_entry = config.dataplane.dnat_replies == cfg::DnatReplies::routed;
  fc.max_frontends = frontends;
  dp::SingleWorker steering;
  Buffers buffers;
  PcapIo io(in.get(), dump.get(), buffers);
  dp::LocalRing<dp::Update> updates(1u << 20);
  dp::LocalRing<dp::SlowPacket> slow_ring;
  dp::LocalRing<dp::Packet> control_tx;
  dp::WorkerRings<dp::LocalRing> rings{&updates, {nullptr}, {nullptr}, &slow_ring, &control_tx};
  dp::TrafficRows traffic(frontends, backends);
  dp::WorkerShare share;
  dp::Worker<PcapIo, dp::LocalRing> worker(fc, node, publisher.registry(), steering, io, rings,
                                           traffic, share, config.dataplane.burst);
  updates.enqueue_burst(change->updates.data(), uint32_t(change->updates.size()));
  dp::SlowPath slow(node, [&](const dp::IpAddr& a) { return publisher.is_vip(a); }, buffers);

  // The worker and the control thread's slow path take turns on this one thread, the clock
  // moving from one frame's timestamp to the next.
  uint64_t now = 0;
  while (true) {
    if (const auto next = io.next_ms(); next && *next > now) now = *next;
    io.set_now(now);
    worker.poll(now);
    dp::SlowPathOutput so;
    dp::SlowPacket sp;
    while (slow_ring.dequeue(sp)) slow.handle(sp, now, so);
    slow.tick(now, so);
    for (const dp::Packet& p : so.tx) control_tx.enqueue(p);
    for (const dp::Update& u : so.worker_updates()) updates.enqueue(u);
    if (!io.next_ms() && control_tx.empty() && updates.empty() && slow_ring.empty()) break;
  }
  worker.release_held();  // segments and fragments still waiting for what never came
  if (!io.error().empty()) {
    err << in_name << ": damaged after " << io.frames << " frames: " << io.error() << "\n";
    return 1;
  }
  // pcap_dump() buffers and reports nothing: a full disk shows at the flush.
  errno = 0;
  if (pcap_dump_flush(dump.get()) != 0 || std::ferror(pcap_dump_file(dump.get()))) {
    err << out_name << ": cannot write: " << (errno ? std::strerror(errno) : "write error") << "\n";
    return 1;
  }

  nlohmann::ordered_json j;
  j["frames"] = io.frames;
  j["written"] = io.written;
  j["skipped_truncated_or_long"] = io.too_long;
  j["forwarder"] = forwarder_json(worker.forwarder().counters());
  j["slow_path"] = slow_path_json(slow.stats());
  out << j.dump(2) << "\n";
  return 0;
}

}  // namespace magline::control
