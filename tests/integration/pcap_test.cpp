// net_pcap: frames from a capture written here (by hand, classic pcap format) come in through
// the port; what the test sends goes to another capture, read back by hand. This is the path
// `magline replay` and captures in CI take.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "dataplane/dpdk/flow_steer.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/port.hpp"
#include "tests/integration/eal_env.hpp"
#include "tests/integration/mbuf_helpers.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dpdk {
namespace {

using Frames = std::vector<std::vector<uint8_t>>;

void put32(std::ofstream& f, uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); }
void put16(std::ofstream& f, uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); }

// Classic pcap, host byte order (which is what the magic tells readers), Ethernet link type.
void write_pcap(const std::string& path, const Frames& frames) {
  std::ofstream f(path, std::ios::binary);
  put32(f, 0xa1b2c3d4);
  put16(f, 2);
  put16(f, 4);
  put32(f, 0);
  put32(f, 0);
  put32(f, 65535);
  put32(f, 1);
  uint32_t t = 1700000000;
  for (const auto& fr : frames) {
    put32(f, t++);
    put32(f, 0);
    put32(f, uint32_t(fr.size()));
    put32(f, uint32_t(fr.size()));
    f.write(reinterpret_cast<const char*>(fr.data()), std::streamsize(fr.size()));
  }
}

// Reads a capture in host byte order, microsecond (0xa1b2c3d4) or nanosecond (0xa1b23c4d)
// timestamps. Returns false on a malformed file.
bool read_pcap(const std::string& path, Frames& out) {
  std::ifstream f(path, std::ios::binary);
  uint32_t hdr[6];
  if (!f.read(reinterpret_cast<char*>(hdr), sizeof hdr)) return false;
  if (hdr[0] != 0xa1b2c3d4 && hdr[0] != 0xa1b23c4d) return false;
  uint32_t rec[4];
  while (f.read(reinterpret_cast<char*>(rec), sizeof rec)) {
    std::vector<uint8_t> fr(rec[2]);
    if (!f.read(reinterpret_cast<char*>(fr.data()), std::streamsize(fr.size()))) return false;
    out.push_back(std::move(fr));
  }
  return true;
}

TEST(PcapPort, ReplaysACaptureAndRecordsWhatIsSent) {
  const std::string in = test::temp_dir() + "/in.pcap";
  const std::string out = test::temp_dir() + "/out.pcap";
  Frames frames;
  for (uint16_t i = 0; i < 10; ++i) {
    frames.push_back(test::Packet()
                         .eth(test::kClientMac, test::kLbMac)
                         .ipv4("198.18.0.1", "198.18.100.1")
                         .tcp(uint16_t(40000 + i), 80)
                         .payload(std::string(i * 10u, 'p'))
                         .bytes());
  }
  write_pcap(in, frames);

  Frames sent;
  {
    auto port = Port::open({.device = "net_pcap0",
                            .devargs = "net_pcap0,rx_pcap=" + in + ",tx_pcap=" + out},
                           test::test_pool());
    ASSERT_TRUE(port.ok()) << port.error().message;
    ASSERT_TRUE(port->start().ok());
    EXPECT_EQ(port->driver(), "net_pcap");
    // No RSS, no RETA, no rte_flow.
    EXPECT_EQ(port->rss().supported_types, 0u);
    EXPECT_TRUE(port->rss().reta.empty());
    auto rules = FlowSteering::install(*port, {.addresses = {*dp::parse_ip("198.18.0.1")}});
    ASSERT_TRUE(rules.ok());
    EXPECT_FALSE(rules->active());
    EXPECT_EQ(steering_in_effect(*port, &*rules).kind, SteeringKind::single_queue);

    dp::Packet pkts[kMaxBurst];
    uint16_t got = 0;
    for (int tries = 0; tries < 1000 && got < frames.size(); ++tries) {
      got = uint16_t(got + rx_burst(port->id(), 0, pkts + got, uint16_t(kMaxBurst - got)));
    }
    ASSERT_EQ(got, frames.size());
    EXPECT_EQ(rx_burst(port->id(), 0, pkts + got, 1), 0);  // the capture is exhausted
    for (uint16_t i = 0; i < got; ++i) {
      EXPECT_EQ(test::bytes_of(pkts[i]), frames[i]) << i;
      // Swap the MAC addresses, as a reply would, and drop the last byte of every other one.
      uint8_t tmp[6];
      std::memcpy(tmp, pkts[i].data, 6);
      std::memcpy(pkts[i].data, pkts[i].data + 6, 6);
      std::memcpy(pkts[i].data + 6, tmp, 6);
      if (i % 2 == 1) pkts[i].len = uint16_t(pkts[i].len - 1);
      sent.push_back(test::bytes_of(pkts[i]));
    }
    ASSERT_EQ(tx_burst(port->id(), 0, pkts, got), got);
    auto stats = port->stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->rx_packets, frames.size());
    EXPECT_EQ(stats->tx_packets, frames.size());
  }  // closing the port removes the device and closes the capture

  Frames written;
  ASSERT_TRUE(read_pcap(out, written));
  EXPECT_EQ(written, sent);
}

}  // namespace
}  // namespace magline::dpdk
