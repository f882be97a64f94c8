// A fluent builder of test packets:
//
//   Packet().eth(kClientMac, kLbMac).vlan(100).ipv4("198.18.0.1", "198.18.100.1").ttl(64)
//       .tcp(40000, 80, kTcpSyn).payload("hello").bytes()
//
// Layers are described in any order and serialised by bytes(): lengths and checksums (IPv4
// header, TCP/UDP/ICMPv6 with pseudo-header, ICMP, SCTP CRC32c) come out right unless a raw
// override says otherwise. Overrides (ihl, total_length, data_offset, ...) are applied before the
// checksums are computed, so a packet is wrong in exactly the field a test chose; truncate() and
// pad() act last, on the finished frame. Test code only: it allocates and throws on misuse.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/parse.hpp"

namespace magline::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kLbMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
inline constexpr Mac kBackendMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x03};

inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6Ah = 51;
inline constexpr uint8_t kIpv6DestOpts = 60;
inline constexpr uint8_t kIpv6NoNextHeader = 59;
inline constexpr uint8_t kProtoEsp = 50;

class Packet {
 public:
  // --- L2 ---
  Packet& eth(const Mac& src, const Mac& dst);
  // Appends a tag; the first call is the outermost tag (use kEtherTypeQinQ for an S-tag).
  Packet& vlan(uint16_t tci, uint16_t tpid = dp::kEtherTypeVlan);
  Packet& ether_type(uint16_t type);  // raw: the innermost ether type, whatever the L3

  // --- L3 ---
  Packet& ipv4(std::string_view src, std::string_view dst);
  Packet& ipv6(std::string_view src, std::string_view dst);
  Packet& ttl(uint8_t ttl);  // IPv4 TTL or IPv6 hop limit (default 64)
  Packet& ip_id(uint16_t id);
  Packet& dont_fragment();
  // IPv4: sets MF and the offset. IPv6: appends a fragment header to the extension chain.
  Packet& fragment(uint16_t offset_bytes, bool more, uint32_t id = 0x1234);
  Packet& ipv4_options(Bytes options);  // zero-padded to a multiple of 4
  // IPv6 extension headers, in call order. Lengths in bytes (multiples of 8).
  Packet& hop_by_hop(size_t len = 8);
  Packet& dest_opts(size_t len = 8);
  Packet& routing(size_t len = 8);
  Packet& ah(size_t len = 16);
  // Raw extension header: `raw` is written as given except byte 0, which is set to the next header.
  Packet& ext_header(uint8_t type, Bytes raw);
  // The IPv4 protocol / last next-header value; needed when there is no L4 builder call
  // (non-first fragments, unknown protocols), an override otherwise.
  Packet& protocol(uint8_t proto);
  Packet& arp(uint16_t op, const Mac& sender_mac, std::string_view sender_ip, const Mac& target_mac,
              std::string_view target_ip);

  // --- L4 ---
  Packet& tcp(uint16_t sport, uint16_t dport, uint8_t flags = dp::kTcpAck);
  Packet& tcp_options(Bytes options);  // zero-padded to a multiple of 4
  // TCP fields, by default 1000, 2000 with ACK else 0, and 65535.
  Packet& seq(uint32_t n);
  Packet& ack(uint32_t n);
  Packet& window(uint16_t w);
  Packet& udp(uint16_t sport, uint16_t dport);
  Packet& sctp(uint16_t sport, uint16_t dport, uint32_t vtag = 0x01020304);
  // ICMP for IPv4 packets, ICMPv6 for IPv6 ones. `rest` is the second 32-bit word.
  Packet& icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  Packet& icmp_echo(uint16_t id, uint16_t seq, bool reply = false);
  // An error quoting `inner` from its IP header on, cut to `quote_len` bytes.
  Packet& icmp_error(uint8_t type, uint8_t code, const Packet& inner, size_t quote_len = kWhole,
                     uint32_t rest = 0);
  Packet& payload(std::string_view text);
  Packet& payload(Bytes data);
  // Neighbour solicitation / advertisement (RFC 4861 4.3, 4.4) for an IPv6 packet, with the hop
  // limit 255 they need (a later ttl() overrides it) and, when given, the source (NS) or target
  // (NA) link-layer address option. The target and the option are the ICMPv6 payload.
  Packet& ndp_ns(std::string_view target, std::optional<Mac> src_ll = std::nullopt);
  Packet& ndp_na(std::string_view target, uint8_t flags, std::optional<Mac> tgt_ll = std::nullopt);

  // --- Raw overrides for malformed packets ---
  Packet& version(uint8_t v);
  Packet& ihl(uint8_t words);
  Packet& total_length(uint16_t len);
  Packet& payload_length(uint16_t len);  // IPv6
  Packet& data_offset(uint8_t words);    // TCP
  Packet& udp_length(uint16_t len);
  Packet& no_checksums();              // leave every checksum field zero
  Packet& truncate(size_t frame_len);  // cut the finished frame
  Packet& pad(size_t n);               // Ethernet padding after the IP packet

  Bytes bytes() const;
  Bytes l3_bytes() const;  // from the L3 header on: what an ICMP error quotes

  static constexpr size_t kWhole = static_cast<size_t>(-1);

 private:
  enum class L3Kind : uint8_t { none, ipv4, ipv6, arp };
  enum class L4Kind : uint8_t { none, tcp, udp, sctp, icmp, icmp_echo };
  struct Ext {
    uint8_t type;
    Bytes raw;
  };
  struct L3Layout {
    Bytes bytes;
    size_t l4_off = 0;  // offset of L4 within `bytes`
  };

  L3Layout build_l3() const;
  Bytes build_l4() const;
  uint8_t l4_proto() const;
  void fill_l4_checksum(Bytes& l3, size_t l4_off) const;

  Mac src_mac_ = kClientMac;
  Mac dst_mac_ = kLbMac;
  std::vector<std::pair<uint16_t, uint16_t>> vlans_;  // {tpid, tci}
  std::optional<uint16_t> ether_type_;

  L3Kind l3_ = L3Kind::none;
  dp::IpAddr src_ip_;
  dp::IpAddr dst_ip_;
  uint8_t ttl_ = 64;
  uint16_t ip_id_ = 0;
  bool df_ = false;
  uint16_t frag_offset_ = 0;
  bool more_fragments_ = false;
  Bytes ip_options_;
  std::vector<Ext> exts_;
  std::optional<uint8_t> proto_;
  Bytes arp_;

  L4Kind l4_ = L4Kind::none;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint8_t tcp_flags_ = 0;
  std::optional<uint32_t> seq_;
  std::optional<uint32_t> ack_;
  uint16_t window_ = 65535;
  Bytes tcp_options_;
  uint32_t sctp_vtag_ = 0;
  uint8_t icmp_type_ = 0;
  uint8_t icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  bool echo_reply_ = false;
  Bytes quote_;
  Bytes payload_;

  std::optional<uint8_t> version_;
  std::optional<uint8_t> ihl_;
  std::optional<uint16_t> total_length_;
  std::optional<uint16_t> payload_length_;
  std::optional<uint8_t> data_offset_;
  std::optional<uint16_t> udp_length_;
  bool checksums_ = true;
  std::optional<size_t> truncate_;
  size_t pad_ = 0;
};

// Recomputes every checksum of a parsed IP frame from scratch (IPv4 header; TCP, UDP, ICMP,
// ICMPv6 and SCTP unless the packet is a fragment) and returns a description of each one that
// does not match, or "" when all do. The oracle for incremental updates.
std::string checksum_errors(std::span<const uint8_t> frame);

}  // namespace magline::test
