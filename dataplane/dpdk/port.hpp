// Ethernet ports (rte_ethdev) and the packet-buffer pool they receive into.
//
// Threads: everything here runs on the control thread, never per packet, and may block (device
// probe, configure, start). The data path uses only the port id and queue numbers, through
// mbuf_io.hpp: worker i owns RX queue i and TX queue i. stats()/xstats()/link() may be called
// while workers run (DPDK PMDs read their counters without stopping the queues).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/result.hpp"
#include "dataplane/rss.hpp"

struct rte_mempool;

namespace magline::dpdk {

// A pool of mbufs (rte_pktmbuf_pool_create) in EAL memory. Every mbuf must be back in the pool,
// and every port that receives into it closed, before the pool is destroyed.
class PktPool {
 public:
  // `mbufs` buffers of `data_room` bytes (RTE_PKTMBUF_HEADROOM of it headroom, 128 by default:
  // room for encapsulation headers), `cache` buffers cached per lcore. The name must be unique
  // in the process. Errors: the EAL cannot allocate the memory, or the name is taken.
  static Result<PktPool> create(const std::string& name, uint32_t mbufs, uint32_t cache = 256,
                                uint16_t data_room = 2048 + 128);

  PktPool(PktPool&& o) noexcept : pool_(o.pool_) { o.pool_ = nullptr; }
  PktPool& operator=(PktPool&&) = delete;
  ~PktPool();

  rte_mempool* get() const noexcept { return pool_; }
  // Buffers currently in the pool (not handed out). For tests and the admin page.
  uint32_t available() const noexcept;

 private:
  explicit PktPool(rte_mempool* p) : pool_(p) {}
  rte_mempool* pool_;
};

enum class RssMode {
  automatic,  // RSS over IP/TCP/UDP(/SCTP) as the device supports; more than one RX queue on a
              // device without RSS is an error
  off,        // no RSS: the caller steers (rte_flow), or the sender picks the queue (net_ring)
};

struct PortConfig {
  std::string device{};   // ethdev name: "net_ring0", "net_null0", "0000:03:00.0"
  std::string devargs{};  // if the device does not exist yet: rte_dev_probe(devargs), e.g.
                        // "net_null0,size=64" or a PCI address; removed again on close
  uint16_t rx_queues = 1;
  uint16_t tx_queues = 1;
  uint16_t rx_descriptors = 1024;  // adjusted to the device's limits
  uint16_t tx_descriptors = 1024;
  uint16_t mtu = 1500;  // 0 keeps the device's default
  bool promiscuous = false;
  RssMode rss = RssMode::automatic;
  bool rss_sctp = false;             // include SCTP ports in the hash when supported
  std::vector<uint8_t> rss_key{};    // empty: the device's default key; unused without RSS
};

// What the port reports about its RSS after start(). Empty key/RETA: the device did not say.
struct RssInfo {
  uint64_t supported_types = 0;   // dev_info.flow_type_rss_offloads (RTE_ETH_RSS_*)
  uint64_t configured_types = 0;  // rss_hf in effect; 0 when RSS is off
  std::vector<uint8_t> key;
  std::vector<uint16_t> reta;
  std::string note;               // why key or RETA are unknown, if they are
};

struct LinkStatus {
  bool up = false;
  uint32_t speed_mbps = 0;
  bool full_duplex = false;
};

struct PortStats {
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t rx_missed = 0;  // dropped by the NIC: RX queue full
  uint64_t rx_errors = 0, tx_errors = 0;
  uint64_t rx_no_mbuf = 0;  // RX buffer allocation failures
};

struct XStat {
  std::string name;
  uint64_t value = 0;
};

class Port {
 public:
  // Finds (or probes, with devargs) the device and configures it: queues, descriptors, MTU,
  // RSS, promiscuous mode. The port is not started. `pool` must outlive the port. The Port owns
  // the device from then on: closing it releases the ethdev, which cannot be opened again in
  // this process unless probed anew.
  // Errors name the device and what failed: unknown device, too many queues, an MTU outside the
  // device's range, more than one RX queue without RSS (RssMode::automatic), a DPDK call. After
  // an error a device open() probed is removed again; one that existed is left unconfigured.
  static Result<Port> open(const PortConfig& config, rte_mempool* pool);

  Port(Port&& o) noexcept;
  Port& operator=(Port&&) = delete;
  // Stops and closes the device (rte_eth_dev_close releases the port); removes it from its bus
  // if open() probed it.
  ~Port();

  uint16_t id() const noexcept { return id_; }
  const std::string& name() const noexcept { return config_.device; }
  const PortConfig& config() const noexcept { return config_; }
  uint16_t rx_queues() const noexcept { return config_.rx_queues; }
  uint16_t tx_queues() const noexcept { return config_.tx_queues; }
  const std::string& driver() const noexcept { return driver_; }

  // Starts the device, then reads back its RSS key and RETA (rss()).
  Result<void> start();
  void stop() noexcept;
  bool started() const noexcept { return started_; }

  dp::MacAddr mac() const noexcept;
  LinkStatus link() const noexcept;
  Result<PortStats> stats() const;
  Result<std::vector<XStat>> xstats() const;

  const RssInfo& rss() const noexcept { return rss_; }
  // How the NIC spreads packets over the RX queues, for software steering: single_queue() with
  // one RX queue; the port's Toeplitz key, RETA and hash types with RSS. An error explains why
  // it is unknown (RSS off, no key or RETA reported, not started): the caller must then use one
  // worker or rte_flow steering (flow_steer.hpp).
  Result<dp::RssSteering> steering() const;

 private:
  Port() = default;
  void query_rss();

  uint16_t id_ = 0;
  bool open_ = false;
  bool started_ = false;
  bool probed_ = false;  // open() probed the device: remove it on close
  PortConfig config_;
  std::string driver_;
  RssInfo rss_;
};

}  // namespace magline::dpdk
