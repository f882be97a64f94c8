// Fuzz target for the packet layer: parse() on arbitrary bytes, then rewrite_tuple() and
// encapsulate() on whatever parses. Beyond "no crash, no sanitizer report" it checks the
// invariants callers rely on: offsets ordered and inside the frame; flow keys well formed; a
// rewrite that succeeds yields a packet that parses to the new tuple; no checksum that was valid
// becomes invalid; an encapsulated packet parses to its outer header, with valid checksums,
// the L2 header and the inner IP packet carried unchanged. TCP segments also go through the SYN
// proxy's translations (the layout kept, valid checksums valid) and builders (a segment that
// parses to the tuple it was built for, with valid checksums).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/encap.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/rewrite.hpp"
#include "dataplane/syn_proxy.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace magline::dp;

bool is_ip(const Parsed& p) {
  return p.l3 == L3::ipv4 || p.l3 == L3::ipv6;
}

void check_offsets(const Parsed& p, size_t size) {
  CHECK_INVARIANT(p.l3_off <= p.l4_off, "l3_off <= l4_off");
  CHECK_INVARIANT(p.l4_off <= p.l3_end, "l4_off <= l3_end");
  CHECK_INVARIANT(p.l3_end <= size, "l3_end <= frame size");
  CHECK_INVARIANT(p.vlan_count <= kMaxVlanTags, "vlan_count <= kMaxVlanTags");
  if (is_ip(p)) CHECK_INVARIANT(p.l3_off >= 14, "an IP header follows Ethernet");
  if (p.has_l4) {
    CHECK_INVARIANT(p.l4_off <= p.payload_off && p.payload_off <= p.l3_end,
                    "payload within the packet");
  }
  if (p.is_fragment && !p.first_fragment) {
    CHECK_INVARIANT(!p.has_l4 && p.key.sport == 0 && p.key.dport == 0,
                    "non-first fragment has no L4");
  }
  if (p.frag_hdr_off != 0) {
    CHECK_INVARIANT(p.frag_hdr_off >= p.l3_off + 40 && p.frag_hdr_off + 8u <= p.l4_off,
                    "frag header");
  }
  if (p.icmp_error) {
    CHECK_INVARIANT(p.has_l4, "ICMP error has an L4 header");
    CHECK_INVARIANT(p.l4_off + 8u == p.inner.l3_off, "quote follows the ICMP header");
    CHECK_INVARIANT(p.inner.l3_off <= p.inner.l4_off && p.inner.l4_off <= p.l3_end,
                    "quote offsets");
    if (p.inner.has_ports) CHECK_INVARIANT(p.inner.l4_off + 4u <= p.l3_end, "quoted ports inside");
    CHECK_INVARIANT(p.inner.key.family == p.key.family, "quote family matches");
  }
}

void check_key(const FlowKey& k) {
  CHECK_INVARIANT(k.tag == 0, "a parsed key has no tag");
  if (k.family == Family::v4) {
    for (size_t i = 4; i < 16; ++i)
      CHECK_INVARIANT(k.src[i] == 0 && k.dst[i] == 0, "v4 key tail is zero");
  }
  CHECK_INVARIANT(k.reversed().reversed() == k, "reversed twice is the key");
  CHECK_INVARIANT(hash_flow(k.reversed().reversed(), kFlowHashSeed) == hash_flow(k, kFlowHashSeed),
                  "hash of reversed twice");
}

// Whether each checksum of the packet verifies (sums to all ones, RFC 1071), in a fixed order:
// IPv4 header, L4. Fragments have no verifiable L4 checksum; a zero UDP checksum is "none".
struct Validity {
  bool ip = true;
  bool l4 = true;
};

bool sums_to_ones(uint32_t acc) {
  return csum_fold(acc) == 0;
}

Validity validity(const std::vector<uint8_t>& f, const Parsed& p) {
  Validity v;
  const uint8_t* ip = f.data() + p.l3_off;
  if (p.l3 == L3::ipv4) v.ip = sums_to_ones(csum_add(0, ip, size_t(p.l4_off - p.l3_off)));
  if (!p.has_l4 || p.is_fragment) return v;
  const uint8_t* l4 = f.data() + p.l4_off;
  const size_t n = size_t(p.l3_end - p.l4_off);
  const IpAddr src = p.key.src_addr();
  const IpAddr dst = p.key.dst_addr();
  switch (p.key.proto) {
    case kProtoTcp:
      v.l4 = sums_to_ones(csum_add(pseudo_header_sum(src, dst, kProtoTcp, uint32_t(n)), l4, n));
      break;
    case kProtoUdp: {
      if (load_be16(l4 + 6) == 0) break;
      const size_t len = load_be16(l4 + 4);
      v.l4 = sums_to_ones(csum_add(pseudo_header_sum(src, dst, kProtoUdp, uint32_t(len)), l4, len));
      break;
    }
    case kProtoIcmp:
      if (p.key.family == Family::v4) v.l4 = sums_to_ones(csum_add(0, l4, n));
      break;
    case kProtoIcmpv6:
      if (p.key.family == Family::v6) {
        v.l4 =
            sums_to_ones(csum_add(pseudo_header_sum(src, dst, kProtoIcmpv6, uint32_t(n)), l4, n));
      }
      break;
    case kProtoSctp: {
      std::vector<uint8_t> copy(l4, l4 + n);
      const uint32_t stored = load_crc32c(copy.data() + 8);
      store_crc32c(copy.data() + 8, 0);
      v.l4 = crc32c(copy.data(), n) == stored;
      break;
    }
    default:
      break;
  }
  return v;
}

FlowKey target_for(const Parsed& p) {
  FlowKey to = p.key;
  if (p.key.family == Family::v4) {
    to.src = IpAddr::v4(198, 18, 50, 1).bytes;
    to.dst = IpAddr::v4(198, 18, 200, 7).bytes;
  } else {
    to.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    to.dst = {0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  }
  to.sport = 61000;
  to.dport = 8080;
  return to;
}

bool has_ports(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

void check_rewrite(std::vector<uint8_t> frame, const Parsed& p) {
  const FlowKey to = target_for(p);
  const std::vector<uint8_t> original = frame;
  const Validity before = validity(frame, p);
  const DropReason r = rewrite_tuple(frame, p, to);
  if (p.ttl <= 1) {
    CHECK_INVARIANT(r == DropReason::ttl_exceeded && frame == original,
                    "TTL <= 1 refused untouched");
    return;
  }
  if (r == DropReason::sctp_fragment_rewrite) {
    CHECK_INVARIANT(p.key.proto == kProtoSctp && p.is_fragment && frame == original,
                    "SCTP fragment");
    return;
  }
  CHECK_INVARIANT(r == DropReason::none, "rewrite succeeds");

  Parsed after;
  CHECK_INVARIANT(parse(frame, after) == DropReason::none, "rewritten packet parses");
  FlowKey want = to;
  if (!p.has_l4 || !has_ports(p.key.proto)) {
    want.sport = p.key.sport;
    want.dport = p.key.dport;
  }
  CHECK_INVARIANT(after.key == want, "rewritten packet has the new tuple");
  CHECK_INVARIANT(after.ttl == p.ttl - 1, "TTL decremented");
  CHECK_INVARIANT(after.l4_off == p.l4_off && after.l3_end == p.l3_end && after.has_l4 == p.has_l4,
                  "rewrite keeps the layout");
  const Validity now = validity(frame, after);
  CHECK_INVARIANT(!before.ip || now.ip, "valid IPv4 header checksum stays valid");
  CHECK_INVARIANT(!before.l4 || now.l4, "valid L4 checksum stays valid");
}

void check_encapsulate(const uint8_t* data, const Parsed& p, ForwardMode mode, Family outer) {
  constexpr uint16_t kHeadroom = 64;
  std::vector<uint8_t> buf(kHeadroom + p.l3_end);
  std::copy(data, data + p.l3_end, buf.begin() + kHeadroom);
  Packet pkt{nullptr, buf.data() + kHeadroom, p.l3_end, kHeadroom, 0, 0};
  EncapHeader h;
  h.mode = mode;
  h.src = outer == Family::v4 ? IpAddr::v4(198, 18, 50, 1) : *parse_ip("2001:db8:50::1");
  h.dst = outer == Family::v4 ? IpAddr::v4(198, 18, 200, 7) : *parse_ip("2001:db8:200::7");
  h.entropy = uint32_t(p.l3_end) * 2654435761u;
  const uint16_t grow = encap_overhead(mode, outer);
  const size_t inner = size_t(p.l3_end - p.l3_off);
  if (encapsulate(pkt, p, h) != DropReason::none) {
    CHECK_INVARIANT(inner + grow > kMaxDatagram, "encapsulation fails only beyond 65535");
    return;
  }
  CHECK_INVARIANT(pkt.len == p.l3_end + grow && pkt.data == buf.data() + kHeadroom - grow,
                  "the outer headers in front");
  const std::vector<uint8_t> out(pkt.data, pkt.data + pkt.len);
  Parsed o;
  CHECK_INVARIANT(parse(out, o) == DropReason::none, "an encapsulated packet parses");
  CHECK_INVARIANT(o.l3_off == p.l3_off && o.key.src_addr() == h.src && o.key.dst_addr() == h.dst,
                  "the outer addresses");
  CHECK_INVARIANT(std::equal(out.begin(), out.begin() + p.l3_off - 2, data),
                  "the L2 header carried");
  CHECK_INVARIANT(std::equal(out.begin() + p.l3_off + grow, out.end(), data + p.l3_off),
                  "the inner packet carried unchanged");
  const Validity v = validity(out, o);
  CHECK_INVARIANT(v.ip && v.l4, "outer checksums valid");
  if (mode == ForwardMode::gue) {
    CHECK_INVARIANT(o.key.proto == kProtoUdp && o.key.dport == h.gue_port &&
                        o.payload_off == p.l3_off + grow,
                    "GUE's UDP header");
  } else {
    CHECK_INVARIANT(o.key.proto == (p.l3 == L3::ipv4 ? kProtoIpip : kProtoIpv6), "IPIP protocol");
  }
}

// A built segment: parses, is TCP with `flags` on the tuple `key`, checksums valid.
void check_built(const Packet& pkt, const FlowKey& key, uint8_t flags, const char* what) {
  const std::vector<uint8_t> out(pkt.data, pkt.data + pkt.len);
  Parsed o;
  CHECK_INVARIANT(parse(out, o) == DropReason::none, what);
  CHECK_INVARIANT(o.key == key && o.has_l4 && o.tcp_flags == flags, what);
  const Validity v = validity(out, o);
  CHECK_INVARIANT(v.ip && v.l4, what);
}

void check_syn_proxy(const uint8_t* data, size_t size, const Parsed& p) {
  ProxyFlow f{};
  f.flags = kFlowProxyRecord;
  f.client_options = data[size - 1];
  f.backend_wscale = data[0] % 16 == 15 ? kNoWscale : data[0] % 16;
  f.established = 1;
  f.cookie = uint32_t(size) * 2654435761u;
  f.client_isn = f.cookie ^ 0x5bd1e995u;
  f.seq_delta = f.client_isn * 40503u;
  f.ts_delta = size % 3 == 0 ? 0 : f.seq_delta ^ 0xdeadbeefu;
  f.client_window = uint16_t(f.cookie);
  for (const bool to_backend : {true, false}) {
    std::vector<uint8_t> frame(data, data + size);
    const Validity before = validity(frame, p);
    if (to_backend) {
      proxy_to_backend(frame, p, f);
    } else {
      proxy_to_client(frame, p, f);
    }
    Parsed after;
    CHECK_INVARIANT(parse(frame, after) == DropReason::none, "a translated segment parses");
    CHECK_INVARIANT(after.key == p.key && after.l3_end == p.l3_end &&
                        after.payload_off == p.payload_off,
                    "a translation keeps the tuple and the layout");
    const Validity now = validity(frame, after);
    CHECK_INVARIANT(!before.ip || now.ip, "translation: IPv4 checksum stays valid");
    CHECK_INVARIANT(!before.l4 || now.l4, "translation: TCP checksum stays valid");
  }
  constexpr uint16_t kHeadroom = 64;
  auto copy = [&](std::vector<uint8_t>& buf) {
    buf.assign(kHeadroom + size, 0);
    std::copy(data, data + size, buf.begin() + kHeadroom);
    return Packet{nullptr, buf.data() + kHeadroom, uint16_t(size), kHeadroom, 0, 0};
  };
  std::vector<uint8_t> buf;
  const TcpOptions o = read_tcp_options(data + p.l4_off, size_t(p.payload_off - p.l4_off));
  Packet pkt = copy(buf);
  if (make_cookie_syn_ack(pkt, p, o, f.cookie, 1460, 0x12345678) == DropReason::none) {
    check_built(pkt, p.key.reversed(), kTcpSyn | kTcpAck, "the cookie SYN-ACK");
  }
  pkt = copy(buf);
  const FlowKey to = target_for(p);
  CHECK_INVARIANT(make_backend_syn(pkt, p, to, f, 7) == DropReason::none, "a SYN is built");
  check_built(pkt, to, kTcpSyn, "the backend's SYN");
  pkt = copy(buf);
  CHECK_INVARIANT(make_backend_ack(pkt, p, f, 1, 2) == DropReason::none, "an ACK is built");
  check_built(pkt, p.key.reversed(), kTcpAck, "the handshake's ACK");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Parsed p;
  const DropReason r = parse({data, size}, p);
  CHECK_INVARIANT(r < DropReason::count_, "a known verdict");
  if (r != DropReason::none) return 0;
  check_offsets(p, size);
  check_key(p.key);
  if (p.icmp_error) {
    check_key(p.inner.key);
    // Every address is one of the node's outer sources: any tunnel quote is taken.
    static const Node node = [] {
      Node n;
      n.encap.source_v4 = IpPrefix{IpAddr::v4(0), 0};
      n.encap.source_v6 = IpPrefix{IpAddr{{}, Family::v6}, 0};
      return n;
    }();
    if (const std::optional<TunnelMtu> t = tunnel_path_mtu({data, size}, p, node)) {
      CHECK_INVARIANT(t->mtu >= kMinPathMtuV4, "a path MTU is at least the least");
      CHECK_INVARIANT(t->backend.family == p.key.family, "the backend is of the outer family");
    }
  }
  if (is_ip(p)) {
    check_rewrite(std::vector<uint8_t>(data, data + size), p);
    for (const ForwardMode mode : {ForwardMode::ipip, ForwardMode::gue}) {
      for (const Family outer : {Family::v4, Family::v6}) check_encapsulate(data, p, mode, outer);
    }
    if (p.key.proto == kProtoTcp && p.has_l4) check_syn_proxy(data, size, p);
  }
  return 0;
}
