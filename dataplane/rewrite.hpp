// In-place packet rewrites for the forwarding modes: DNAT (destination to a backend), full-NAT
// (also the source to an address and port Magline owns) and the reverse rewrite of return
// traffic, for IPv4 and IPv6. Checksums are updated incrementally (RFC 1624); SCTP's CRC32c is
// recomputed. The TTL or hop limit is decremented.
//
// Contract: per-packet path, noexcept, no allocation. `frame` is the same bytes `p` was parsed
// from. A rewrite either completes or returns a DropReason having changed nothing.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/drop_reason.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {

// The addresses and ports a rewrite gives a packet. Each address points at 16 bytes laid out as
// in FlowKey (IPv4 in the first 4), of the packet's own family: a flow entry's, a frontend's,
// the packet's key. The forwarder points at them where they are; a FlowKey assembled on the
// stack from 16-byte copies and read back 4 bytes at a time waited on store forwarding.
struct Tuple {
  const uint8_t* src;
  const uint8_t* dst;
  uint16_t sport;
  uint16_t dport;
};

// Rewrites the packet's addresses and ports to those of `to` and decrements the TTL / hop
// limit. Fields equal to the current ones cost nothing. Non-first fragments carry no L4 header:
// only their addresses change (the L4 checksum, which covers the whole datagram, is fixed up in
// the first fragment). Fails with ttl_exceeded when the TTL / hop limit is 1 or 0.
DropReason rewrite_tuple(std::span<uint8_t> frame, const Parsed& p, const Tuple& to) noexcept;

// The same to the addresses and ports of `to`, whose family and protocol must be the packet's.
inline DropReason rewrite_tuple(std::span<uint8_t> frame, const Parsed& p,
                                const FlowKey& to) noexcept {
  return rewrite_tuple(frame, p, Tuple{to.src.data(), to.dst.data(), to.sport, to.dport});
}

// Destination NAT: destination address and port become the backend's.
inline DropReason rewrite_dnat(std::span<uint8_t> frame, const Parsed& p, const IpAddr& backend,
                               uint16_t backend_port) noexcept {
  return rewrite_tuple(frame, p,
                       Tuple{p.key.src.data(), backend.bytes.data(), p.key.sport, backend_port});
}

// Full NAT: the client's address and port are replaced by a Magline-owned source as well.
inline DropReason rewrite_full_nat(std::span<uint8_t> frame, const Parsed& p,
                                   const IpAddr& snat_addr, uint16_t snat_port,
                                   const IpAddr& backend, uint16_t backend_port) noexcept {
  return rewrite_tuple(frame, p, Tuple{snat_addr.bytes.data(), backend.bytes.data(), snat_port,
                                       backend_port});
}

// Ethernet addresses, for L2 DSR and for every packet Magline transmits.
void rewrite_macs(std::span<uint8_t> frame, const uint8_t src[6], const uint8_t dst[6]) noexcept;

}  // namespace magline::dp
