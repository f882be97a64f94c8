#include "dataplane/dpdk/port.hpp"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace magline::dpdk {
namespace {

std::string fail(const std::string& device, const std::string& what, int rc) {
  return device + ": " + what + ": " + error_text(rc);
}

// The RSS types we ask for: every IP packet, with ports for TCP and UDP (and SCTP on request).
uint64_t wanted_rss_types(bool sctp) {
  return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | (sctp ? RTE_ETH_RSS_SCTP : 0);
}

// Devices that report no key size (net_null) use 40-byte keys; the Toeplitz over a 36-byte IPv6
// 4-tuple reads only the first 40 bytes of any key anyway.
constexpr size_t kDefaultKeyLen = 40;

}  // namespace

// --- PktPool -------------------------------------------------------------------------------

Result<PktPool> PktPool::create(const std::string& name, uint32_t mbufs, uint32_t cache,
                                uint16_t data_room) {
  rte_mempool* p = rte_pktmbuf_pool_create(name.c_str(), mbufs, cache, 0, data_room,
                                           SOCKET_ID_ANY);
  if (p == nullptr) return Error{"mbuf pool " + name + ": " + last_error()};
  return PktPool(p);
}

PktPool::~PktPool() {
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

uint32_t PktPool::available() const noexcept { return rte_mempool_avail_count(pool_); }

// --- Port ----------------------------------------------------------------------------------

Port::Port(Port&& o) noexcept
    : id_(o.id_),
      open_(std::exchange(o.open_, false)),
      started_(std::exchange(o.started_, false)),
      probed_(std::exchange(o.probed_, false)),
      config_(std::move(o.config_)),
      driver_(std::move(o.driver_)),
      rss_(std::move(o.rss_)) {}

Result<Port> Port::open(const PortConfig& cfg, rte_mempool* pool) {
  const std::string& dev = cfg.device;
  Port port;
  port.config_ = cfg;
  if (rte_eth_dev_get_port_by_name(dev.c_str(), &port.id_) != 0) {
    if (cfg.devargs.empty()) {
      return Error{dev + ": no such DPDK port (not probed by the EAL; give devargs to probe it)"};
    }
    if (int rc = rte_dev_probe(cfg.devargs.c_str()); rc < 0) {
      return Error{fail(dev, "probing '" + cfg.devargs + "' failed", rc)};
    }
    if (rte_eth_dev_get_port_by_name(dev.c_str(), &port.id_) != 0) {
      return Error{dev + ": probing '" + cfg.devargs + "' created no port of that name"};
    }
    port.probed_ = true;
  }
  // A device open() probed is closed and removed again if open() fails; one that was already
  // there is left as it is (the caller may retry with another configuration).
  port.open_ = port.probed_;

  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port.id_, &info); rc != 0) {
    return Error{fail(dev, "reading device info", rc)};
  }
  port.driver_ = info.driver_name != nullptr ? info.driver_name : "";
  if (cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues || cfg.tx_queues == 0 ||
      cfg.tx_queues > info.max_tx_queues) {
    return Error{dev + ": " + std::to_string(cfg.rx_queues) + " RX and " +
                 std::to_string(cfg.tx_queues) + " TX queues requested; the device (" +
                 port.driver_ + ") has 1 to " + std::to_string(info.max_rx_queues) +
                 " RX and 1 to " + std::to_string(info.max_tx_queues) + " TX queues"};
  }

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);
  if (cfg.mtu != 0) {
    if (cfg.mtu < info.min_mtu || cfg.mtu > info.max_mtu) {
      return Error{dev + ": MTU " + std::to_string(cfg.mtu) + " outside the device's range " +
                   std::to_string(info.min_mtu) + " to " + std::to_string(info.max_mtu)};
    }
    conf.rxmode.mtu = cfg.mtu;
  }
  port.rss_.supported_types = info.flow_type_rss_offloads;
  if (cfg.rss == RssMode::automatic) {
    const uint64_t types = wanted_rss_types(cfg.rss_sctp) & info.flow_type_rss_offloads;
    if (types == 0 && cfg.rx_queues > 1) {
      return Error{dev + ": " + std::to_string(cfg.rx_queues) + " RX queues need RSS, but the " +
                   port.driver_ + " driver supports no RSS hash types; use one RX queue (one "
                   "worker), or RSS off with rte_flow steering"};
    }
    if (types != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = types;
      if (!cfg.rss_key.empty()) {
        if (info.hash_key_size != 0 && cfg.rss_key.size() != info.hash_key_size) {
          return Error{dev + ": RSS key of " + std::to_string(cfg.rss_key.size()) +
                       " bytes; the device takes " + std::to_string(info.hash_key_size)};
        }
        conf.rx_adv_conf.rss_conf.rss_key = port.config_.rss_key.data();
        conf.rx_adv_conf.rss_conf.rss_key_len = uint8_t(cfg.rss_key.size());
      }
    }
  }
  if (int rc = rte_eth_dev_configure(port.id_, cfg.rx_queues, cfg.tx_queues, &conf); rc != 0) {
    return Error{fail(dev, "configuring", rc)};
  }
  uint16_t rxd = cfg.rx_descriptors, txd = cfg.tx_descriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port.id_, &rxd, &txd); rc != 0) {
    return Error{fail(dev, "adjusting descriptor counts", rc)};
  }
  const int socket = rte_eth_dev_socket_id(port.id_);
  for (uint16_t q = 0; q < cfg.rx_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port.id_, q, rxd, unsigned(socket), nullptr, pool);
        rc != 0) {
      return Error{fail(dev, "setting up RX queue " + std::to_string(q), rc)};
    }
  }
  for (uint16_t q = 0; q < cfg.tx_queues; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port.id_, q, txd, unsigned(socket), nullptr); rc != 0) {
      return Error{fail(dev, "setting up TX queue " + std::to_string(q), rc)};
    }
  }
  if (!cfg.rss_key.empty() && conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS) {
    // Some PMDs (net_null) ignore the key given to rte_eth_dev_configure: set it again.
    rte_eth_rss_conf rss = conf.rx_adv_conf.rss_conf;
    if (int rc = rte_eth_dev_rss_hash_update(port.id_, &rss); rc != 0) {
      return Error{fail(dev, "setting the RSS key", rc)};
    }
  }
  if (cfg.promiscuous) {
    if (int rc = rte_eth_promiscuous_enable(port.id_); rc != 0) {
      return Error{fail(dev, "enabling promiscuous mode", rc)};
    }
  }
  port.open_ = true;
  return port;
}

Port::~Port() {
  if (!open_) return;
  stop();
  rte_eth_dev_info info;
  rte_device* device = rte_eth_dev_info_get(id_, &info) == 0 ? info.device : nullptr;
  rte_eth_dev_close(id_);
  if (probed_ && device != nullptr) rte_dev_remove(device);
}

Result<void> Port::start() {
  if (started_) return {};
  if (int rc = rte_eth_dev_start(id_); rc != 0) return Error{fail(name(), "starting", rc)};
  started_ = true;
  query_rss();
  return {};
}

void Port::stop() noexcept {
  if (!started_) return;
  rte_eth_dev_stop(id_);
  started_ = false;
}

void Port::query_rss() {
  rss_.key.clear();
  rss_.reta.clear();
  rss_.configured_types = 0;
  rss_.note.clear();
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(id_, &info) != 0) {
    rss_.note = "device info unavailable";
    return;
  }
  uint8_t key[256] = {};
  rte_eth_rss_conf conf;
  std::memset(&conf, 0, sizeof conf);
  conf.rss_key = key;
  conf.rss_key_len = info.hash_key_size != 0 ? info.hash_key_size : uint8_t(kDefaultKeyLen);
  if (int rc = rte_eth_dev_rss_hash_conf_get(id_, &conf); rc != 0) {
    rss_.note = "RSS hash configuration not reported: " + error_text(rc);
    return;
  }
  rss_.configured_types = conf.rss_hf;
  rss_.key.assign(key, key + (info.hash_key_size != 0 ? info.hash_key_size : kDefaultKeyLen));
  if (info.reta_size == 0) {
    rss_.note = "the device reports no redirection table";
    return;
  }
  std::vector<rte_eth_rss_reta_entry64> groups((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
  for (auto& g : groups) {
    std::memset(&g, 0, sizeof g);
    g.mask = ~uint64_t(0);
  }
  if (int rc = rte_eth_dev_rss_reta_query(id_, groups.data(), info.reta_size); rc != 0) {
    rss_.note = "redirection table not reported: " + error_text(rc);
    return;
  }
  rss_.reta.resize(info.reta_size);
  for (size_t i = 0; i < rss_.reta.size(); ++i) {
    rss_.reta[i] = groups[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  }
}

Result<dp::RssSteering> Port::steering() const {
  if (config_.rx_queues == 1) return dp::RssSteering::single_queue();
  const std::string prefix = name() + ": which RX queue receives a packet is unknown: ";
  if (!started_) return Error{prefix + "the port is not started"};
  const uint64_t t = rss_.configured_types;
  if (t == 0) {
    return Error{prefix + "RSS is off" + (rss_.note.empty() ? "" : " (" + rss_.note + ")")};
  }
  if (rss_.key.empty() || rss_.reta.empty()) return Error{prefix + rss_.note};
  const auto both = [t](uint64_t v4, uint64_t v6) -> int {
    return ((t & v4) != 0) + ((t & v6) != 0);  // 0 or 2: same for both families
  };
  const int tcp = both(RTE_ETH_RSS_NONFRAG_IPV4_TCP, RTE_ETH_RSS_NONFRAG_IPV6_TCP);
  const int udp = both(RTE_ETH_RSS_NONFRAG_IPV4_UDP, RTE_ETH_RSS_NONFRAG_IPV6_UDP);
  const int sctp = both(RTE_ETH_RSS_NONFRAG_IPV4_SCTP, RTE_ETH_RSS_NONFRAG_IPV6_SCTP);
  if (tcp == 1 || udp == 1 || sctp == 1) {
    return Error{prefix + "the RSS hash types differ between IPv4 and IPv6"};
  }
  for (uint16_t q : rss_.reta) {
    if (q >= config_.rx_queues) {
      return Error{prefix + "the redirection table names queue " + std::to_string(q)};
    }
  }
  auto s = dp::RssSteering::create(rss_.key, rss_.reta,
                                   {.tcp = tcp == 2, .udp = udp == 2, .sctp = sctp == 2});
  if (!s) return Error{prefix + s.error().message};
  return s;
}

dp::MacAddr Port::mac() const noexcept {
  rte_ether_addr a;
  if (rte_eth_macaddr_get(id_, &a) != 0) return {};
  return dp::MacAddr::from(a.addr_bytes);
}

LinkStatus Port::link() const noexcept {
  rte_eth_link l;
  std::memset(&l, 0, sizeof l);
  if (rte_eth_link_get_nowait(id_, &l) != 0) return {};
  return {l.link_status == RTE_ETH_LINK_UP, l.link_speed,
          l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX};
}

Result<PortStats> Port::stats() const {
  rte_eth_stats s;
  if (int rc = rte_eth_stats_get(id_, &s); rc != 0) return Error{fail(name(), "reading stats", rc)};
  return PortStats{s.ipackets, s.opackets, s.ibytes, s.obytes,
                   s.imissed,  s.ierrors,  s.oerrors, s.rx_nombuf};
}

Result<std::vector<XStat>> Port::xstats() const {
  const int n = rte_eth_xstats_get_names(id_, nullptr, 0);
  if (n < 0) return Error{fail(name(), "reading extended stat names", n)};
  std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
  std::vector<rte_eth_xstat> values(static_cast<size_t>(n));
  if (n > 0) {
    // The two calls can see different counts only if the device was reconfigured in between
    // (control thread only), so a mismatch is an error rather than a retry loop.
    if (rte_eth_xstats_get_names(id_, names.data(), unsigned(n)) != n ||
        rte_eth_xstats_get(id_, values.data(), unsigned(n)) != n) {
      return Error{name() + ": the extended stats changed while being read"};
    }
  }
  std::vector<XStat> out;
  out.reserve(size_t(n));
  for (const auto& v : values) {
    if (v.id < names.size()) out.push_back({names[v.id].name, v.value});
  }
  return out;
}

}  // namespace magline::dpdk
