// ARP (RFC 826, RFC 5227) and IPv6 neighbour discovery (RFC 4861) messages: builders that write
// a whole frame into a caller's buffer, and a validating parser for neighbour solicitations and
// advertisements.
//
// Contract: noexcept, no allocation, safe from any thread. A builder writes only inside `buf`
// and returns the frame's length, or 0 (having written nothing) when `buf` is too small;
// kMaxArpNdFrameLen is always enough. The link-layer source address a message carries (ARP
// sender hardware address, NDP link-layer address option) is the frame's Ethernet source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/addr.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

// The Ethernet header of a frame to build, with up to two VLAN tags (outermost first) and their
// TPIDs, so that an answer leaves on exactly the VLAN its question came in on.
struct EthHeader {
  MacAddr dst;
  MacAddr src;
  uint8_t vlan_count = 0;
  uint16_t vlan_tpid[kMaxVlanTags]{};
  uint16_t vlan_tci[kMaxVlanTags]{};
};

// The header of an answer to `frame` (which parsed as `p`): its VLAN tags, `src` to `dst`.
EthHeader answer_header(std::span<const uint8_t> frame, const Parsed& p, const MacAddr& src,
                        const MacAddr& dst) noexcept;

// Ethernet, two VLAN tags, IPv6, and an NS or NA with its link-layer address option: the
// longest frame built here (an ARP frame, even padded to kMinFrameLen, is shorter).
inline constexpr size_t kMaxArpNdFrameLen =
    kEthHeaderLen + kMaxVlanTags * kVlanTagLen + kIpv6HeaderLen + kNdBodyLen + kNdLlOptionLen;
static_assert(kMaxArpNdFrameLen >= kMinFrameLen &&
              kMaxArpNdFrameLen >= kEthHeaderLen + kMaxVlanTags * kVlanTagLen + kArpEthIpv4Len);

// ---- ARP ----

struct ArpMessage {
  uint16_t op = kArpRequest;
  MacAddr sender_mac;
  IpAddr sender_ip;
  MacAddr target_mac;
  IpAddr target_ip;
};

// Any Ethernet/IPv4 ARP message (RFC 826), padded to the minimum frame length.
size_t build_arp(std::span<uint8_t> buf, const EthHeader& eth, const ArpMessage& m) noexcept;

// A request for `target` (target hardware address zero). `eth.dst` is the broadcast address to
// resolve, or the cached address for a unicast reachability probe.
size_t build_arp_request(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& sender,
                         const IpAddr& target) noexcept;

// The reply that `sender` is at `eth.src`, to the requester `target_mac`/`target_ip`.
size_t build_arp_reply(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& sender,
                       const MacAddr& target_mac, const IpAddr& target_ip) noexcept;

// An ARP announcement (RFC 5227 3): a request whose sender and target IP are both `ip`, target
// hardware address zero. `eth.dst` should be the broadcast address.
size_t build_gratuitous_arp(std::span<uint8_t> buf, const EthHeader& eth,
                            const IpAddr& ip) noexcept;

// ---- Neighbour discovery ----

// Neighbour advertisement flags, the first byte after the checksum (RFC 4861 4.4).
inline constexpr uint8_t kNaRouter = 0x80;
inline constexpr uint8_t kNaSolicited = 0x40;
inline constexpr uint8_t kNaOverride = 0x20;

// ff02::1:ffXX:XXXX, the low 24 bits of `target` (RFC 4291 2.7.1).
IpAddr solicited_node(const IpAddr& target) noexcept;
// 33:33 and the group's low 32 bits (RFC 2464 7).
MacAddr ipv6_multicast_mac(const IpAddr& group) noexcept;
bool is_ipv6_multicast(const IpAddr& a) noexcept;
IpAddr all_nodes() noexcept;  // ff02::1

// A neighbour solicitation for `target` with a source link-layer address option, hop limit 255.
// To resolve: `dst` solicited_node(target), `eth.dst` its multicast MAC (RFC 4861 7.2.2); to
// probe a cached entry: both unicast (RFC 4861 7.3.3, PROBE).
size_t build_ns(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& src, const IpAddr& dst,
                const IpAddr& target) noexcept;

// A neighbour advertisement for `target` with `flags` and a target link-layer address option.
size_t build_na(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& src, const IpAddr& dst,
                const IpAddr& target, uint8_t flags) noexcept;

// RFC 4861 7.2.6: an unsolicited advertisement of `ip` to all nodes (ff02::1, 33:33:00:00:00:01),
// Override set so that caches holding another address take ours; `eth.dst` is ignored.
size_t build_unsolicited_na(std::span<uint8_t> buf, const EthHeader& eth,
                            const IpAddr& ip) noexcept;

// A neighbour solicitation or advertisement as received.
struct NdMessage {
  uint8_t type = 0;  // kNdNeighborSolicit or kNdNeighborAdvert
  IpAddr src;        // the IPv6 header's addresses
  IpAddr dst;
  IpAddr target;
  uint8_t flags = 0;    // NA only
  bool has_ll = false;  // source (NS) or target (NA) link-layer address option present
  MacAddr ll;
};

// Why parse_nd refused a message: one value per validity check of RFC 4861 7.1.1 / 7.1.2.
enum class NdError : uint8_t {
  none,
  not_nd,      // not IPv6 ICMPv6 type 135 or 136
  fragmented,  // RFC 6980 5: neighbour discovery is never fragmented
  hop_limit,   // not 255: the message was forwarded by a router
  checksum,
  code,
  too_short,  // below the 24 bytes of the fixed part
  multicast_target,
  bad_option,              // an option of length 0 or running past the packet
  unspecified_source,      // NS from :: to other than a solicited-node group, or with an SLLAO
  solicited_to_multicast,  // NA with the Solicited flag to a multicast destination
};
std::string_view nd_error_name(NdError e) noexcept;

// Validates a frame that parse() accepted as IPv6 and, when it is a valid NS or NA, fills `out`
// (the first source / target link-layer address option wins; other options are skipped).
NdError parse_nd(std::span<const uint8_t> frame, const Parsed& p, NdMessage& out) noexcept;

}  // namespace magline::dp
