// ICMP errors about connections Magline translates (RFC 792 destination unreachable, time
// exceeded, parameter problem; RFC 4443 1-4, packet too big): path MTU discovery needs them to
// reach the host whose packet they quote, with the quoted packet as that host sent it
// (../shared/reference/reliability.md, bug class 3: an error whose outer header is translated but
// whose quote keeps the other side's tuple is discarded by the receiving kernel).
//
// Contract: per-packet path (errors are rare, but a flood of them must not stall a worker):
// noexcept, no allocation. `frame` is the bytes `p` was parsed from, p.icmp_error set.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/addr.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {

// Rewrites an ICMP error in place: the outer source and destination become `outer_src` and
// `outer_dst` and the outer TTL / hop limit drops by one; the quoted packet's addresses and
// ports become those of `quote` (family and protocol unchanged). Checksums: the outer IPv4
// header and the quoted IPv4 header are recomputed, the quoted TCP/UDP checksum is updated
// when the quote holds it (a UDP 0 stays 0), and the ICMP checksum is recomputed over the
// whole message (with ICMPv6's pseudo-header). The quoted TTL is left alone.
// Fails with ttl_exceeded when the outer TTL is 1 or 0 (nothing changed then).
DropReason rewrite_icmp_error(std::span<uint8_t> frame, const Parsed& p, const IpAddr& outer_src,
                              const IpAddr& outer_dst, const FlowKey& quote) noexcept;

}  // namespace magline::dp
