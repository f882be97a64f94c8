#include "dataplane/syn_proxy.hpp"

#include <algorithm>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/reject.hpp"

namespace magline::dp {

namespace {

constexpr size_t kTcpWindowOff = 14;
constexpr size_t kMaxProxyOptions = 20;  // MSS 4, SACK permitted + timestamps 12, scale 4

// SYN options in Linux's order: MSS; SACK permitted and timestamps (NOPs when one is absent);
// window scale. Written as whole words (the checksum reads them back as words). Returns their
// length, a multiple of 4.
size_t write_syn_options(uint8_t* o, uint16_t mss, uint8_t wscale, bool sack, bool ts,
                         uint32_t tsval, uint32_t tsecr) noexcept {
  size_t n = 0;
  store_be32(o + n, 0x02040000u | mss);
  n += 4;
  if (ts) {
    store_be32(o + n, sack ? 0x0402080au : 0x0101080au);
    store_be32(o + n + 4, tsval);
    store_be32(o + n + 8, tsecr);
    n += 12;
  } else if (sack) {
    store_be32(o + n, 0x01010402u);
    n += 4;
  }
  if (wscale != kNoWscale) {
    store_be32(o + n, 0x01030300u | wscale);
    n += 4;
  }
  return n;
}

struct Segment {
  IpAddr src;
  IpAddr dst;
  uint16_t sport;
  uint16_t dport;
  uint32_t seq;
  uint32_t ack;
  uint8_t flags;
  uint16_t window;
  const uint8_t* options;
  size_t options_len;
};

// Writes `s` over the frame after its L2 header, growing the frame into its headroom when the
// new packet is longer (the L2 header moves to the new front).
DropReason write_segment(Packet& p, const Parsed& in, const Segment& s) noexcept {
  const size_t ip_len = s.src.family == Family::v4 ? kIpv4MinHeaderLen : kIpv6HeaderLen;
  const size_t tcp_len = kTcpMinHeaderLen + s.options_len;
  const size_t need = in.l3_off + ip_len + tcp_len;
  if (need > p.len) {
    const uint16_t grow = uint16_t(need - p.len);
    if (!prepend(p, grow)) return DropReason::no_headroom;
    std::memmove(p.data, p.data + grow, in.l3_off);
  }
  uint8_t* ip = p.data + in.l3_off;
  uint8_t* tcp = ip + write_ip_header(ip, s.src, s.dst, kProtoTcp, tcp_len);
  store_be16(tcp, s.sport);
  store_be16(tcp + 2, s.dport);
  store_be32(tcp + 4, s.seq);
  store_be32(tcp + 8, s.ack);
  tcp[12] = uint8_t((tcp_len / 4) << 4);
  tcp[13] = s.flags;
  store_be16(tcp + kTcpWindowOff, s.window);
  store_be32(tcp + kTcpCsumOff, 0);  // checksum and urgent pointer
  std::memcpy(tcp + kTcpMinHeaderLen, s.options, s.options_len);
  // The checksum from the values written (a load of bytes just stored stalls), in 32-bit
  // words: the pseudo-header's addresses, protocol and length, then the segment's.
  uint64_t acc = kProtoTcp + tcp_len;
  for (size_t i = 0; i < s.src.size(); i += 4) {
    acc += uint64_t(load_be32(s.src.data() + i)) + load_be32(s.dst.data() + i);
  }
  acc += (uint32_t(s.sport) << 16 | s.dport) + uint64_t(s.seq) + s.ack +
         (uint32_t(tcp_len / 4) << 28 | uint32_t(s.flags) << 16 | s.window);
  for (size_t i = 0; i < s.options_len; i += 4) acc += load_be32(s.options + i);
  store_be16(tcp + kTcpCsumOff, uint16_t(~detail::fold16(acc)));
  p.len = uint16_t(need);
  return DropReason::none;
}

// Replaces the 4 bytes at tcp + off with `v`, adding the change to the checksum difference
// `acc`. Options may sit at odd offsets: the difference covers the aligned 16-bit words around.
void put32(uint8_t* tcp, size_t off, uint32_t v, uint32_t& acc) noexcept {
  const size_t a = off & ~size_t(1);
  const size_t n = ((off + 5) & ~size_t(1)) - a;
  uint8_t old[6];
  std::memcpy(old, tcp + a, n);
  store_be32(tcp + off, v);
  acc = csum_diff(acc, old, tcp + a, n);
}

void put16(uint8_t* tcp, size_t off, uint16_t v, uint32_t& acc) noexcept {
  uint8_t old[2];
  std::memcpy(old, tcp + off, 2);
  store_be16(tcp + off, v);
  acc = csum_diff(acc, old, tcp + off, 2);  // the window: an even offset
}

void finish(uint8_t* tcp, uint32_t acc) noexcept {
  store_be16(tcp + kTcpCsumOff, csum_apply(load_be16(tcp + kTcpCsumOff), acc));
}

uint16_t capped(uint64_t window) noexcept { return uint16_t(std::min<uint64_t>(window, 65535)); }

// The client's window as the backend reads it: scaled by the client's shift when the backend
// does not scale (it gave no window scale, so neither side's windows are scaled for it).
uint16_t window_for_backend(uint16_t w, const ProxyFlow& f) noexcept {
  const ClientOptions c = unpack_client_options(f.client_options);
  if (c.wscale == kNoWscale || f.backend_wscale != kNoWscale) return w;
  return capped(uint64_t(w) << c.wscale);
}

}  // namespace

uint8_t pack(const ClientOptions& o) noexcept {
  const uint8_t ws = o.wscale == kNoWscale ? 0xf : std::min(o.wscale, kMaxWscale);
  return uint8_t(ws | (o.sack_permitted ? 0x10 : 0) | (o.timestamps ? 0x20 : 0) |
                 (o.mss_index & 3) << 6);
}

ClientOptions unpack_client_options(uint8_t packed) noexcept {
  ClientOptions o;
  o.wscale = (packed & 0xf) == 0xf ? kNoWscale : uint8_t(packed & 0xf);
  o.sack_permitted = packed & 0x10;
  o.timestamps = packed & 0x20;
  o.mss_index = packed >> 6;
  return o;
}

DropReason make_cookie_syn_ack(Packet& p, const Parsed& in, const TcpOptions& client,
                               uint32_t cookie, uint16_t mss, uint32_t tsval) noexcept {
  if (in.is_fragment) return DropReason::reject_about_fragment;
  if (const DropReason r = may_answer(p, in); r != DropReason::none) return r;
  const uint32_t isn = load_be32(p.data + in.l4_off + 4);
  const bool ts = client.timestamps;
  uint8_t options[kMaxProxyOptions];
  const size_t n = write_syn_options(
      options, mss, ts && client.wscale != kNoWscale ? kProxyWscale : kNoWscale,
      ts && client.sack_permitted, ts, tsval, client.tsval);
  const Segment s{in.key.dst_addr(), in.key.src_addr(), in.key.dport, in.key.sport, cookie,
                  isn + 1, uint8_t(kTcpSyn | kTcpAck), kProxySynWindow, options, n};
  if (const DropReason r = write_segment(p, in, s); r != DropReason::none) return r;
  swap_macs(p.data);
  return DropReason::none;
}

DropReason make_backend_syn(Packet& p, const Parsed& in, const FlowKey& to, const ProxyFlow& f,
                            uint32_t tsval) noexcept {
  const ClientOptions c = unpack_client_options(f.client_options);
  uint8_t options[kMaxProxyOptions];
  const size_t n = write_syn_options(options, kCookieMss[c.mss_index], c.wscale,
                                     c.sack_permitted, c.timestamps, tsval, 0);
  const uint16_t window = c.wscale == kNoWscale ? f.client_window
                                                : capped(uint64_t(f.client_window) << c.wscale);
  const Segment s{to.src_addr(), to.dst_addr(), to.sport, to.dport, f.client_isn, 0, kTcpSyn,
                  window, options, n};
  return write_segment(p, in, s);
}

DropReason make_backend_ack(Packet& p, const Parsed& in, const ProxyFlow& f,
                            uint32_t client_tsval, uint32_t backend_tsval) noexcept {
  const uint32_t backend_isn = f.seq_delta + f.cookie;
  const bool ts = unpack_client_options(f.client_options).timestamps &&
                  find_timestamps(p.data + in.l4_off, tcp_header_len(p.data + in.l4_off)).tsval;
  uint8_t options[12];
  store_be32(options, 0x0101080au);
  store_be32(options + 4, client_tsval);
  store_be32(options + 8, backend_tsval);
  const Segment s{in.key.dst_addr(), in.key.src_addr(), in.key.dport, in.key.sport,
                  f.client_isn + 1, backend_isn + 1, kTcpAck,
                  window_for_backend(f.client_window, f), options, size_t(ts ? 12 : 0)};
  if (const DropReason r = write_segment(p, in, s); r != DropReason::none) return r;
  swap_macs(p.data);
  return DropReason::none;
}

uint32_t complete_proxy_flow(ProxyFlow& f, std::span<const uint8_t> frame,
                             const Parsed& in) noexcept {
  const uint8_t* tcp = frame.data() + in.l4_off;
  const TcpOptions o = read_tcp_options(tcp, tcp_header_len(tcp));
  const uint32_t client_tsval = f.seq_delta;
  const uint32_t our_tsval = f.ts_delta;
  f.seq_delta = load_be32(tcp + 4) - f.cookie;
  f.ts_delta = o.timestamps ? o.tsval - our_tsval : 0;
  f.backend_wscale = o.wscale;
  f.established = 1;
  f.held = 0;
  return client_tsval;
}

void proxy_to_backend(std::span<uint8_t> frame, const Parsed& p, const ProxyFlow& f) noexcept {
  if (!p.has_l4) return;
  uint8_t* tcp = frame.data() + p.l4_off;
  const size_t hlen = tcp_header_len(tcp);
  uint32_t acc = 0;
  if (p.tcp_flags & kTcpAck) put32(tcp, 8, load_be32(tcp + 8) + f.seq_delta, acc);
  if (hlen > kTcpMinHeaderLen) {
    if (const SackAt s = find_sack(tcp, hlen); s.off != 0) {
      for (size_t i = 0; i < size_t(s.blocks) * 2; ++i) {
        const size_t at = s.off + i * 4;
        put32(tcp, at, load_be32(tcp + at) + f.seq_delta, acc);
      }
    }
    if (const TimestampAt t = find_timestamps(tcp, hlen); t.tsecr != 0 && f.ts_delta != 0) {
      put32(tcp, t.tsecr, load_be32(tcp + t.tsecr) + f.ts_delta, acc);
    }
  }
  const uint16_t w = load_be16(tcp + kTcpWindowOff);
  if (const uint16_t to = window_for_backend(w, f); to != w) put16(tcp, kTcpWindowOff, to, acc);
  finish(tcp, acc);
}

void proxy_to_client(std::span<uint8_t> frame, const Parsed& p, const ProxyFlow& f) noexcept {
  if (!p.has_l4) return;
  uint8_t* tcp = frame.data() + p.l4_off;
  const size_t hlen = tcp_header_len(tcp);
  uint32_t acc = 0;
  put32(tcp, 4, load_be32(tcp + 4) - f.seq_delta, acc);
  if (hlen > kTcpMinHeaderLen && f.ts_delta != 0) {
    if (const TimestampAt t = find_timestamps(tcp, hlen); t.tsval != 0) {
      put32(tcp, t.tsval, load_be32(tcp + t.tsval) - f.ts_delta, acc);
    }
  }
  // The client reads windows scaled by kProxyWscale when it was offered scaling (it offered it
  // itself and sent timestamps), else unscaled, as the backend then sends them too.
  const ClientOptions c = unpack_client_options(f.client_options);
  if (c.wscale != kNoWscale && !(p.tcp_flags & kTcpSyn)) {
    const uint8_t backend = f.backend_wscale == kNoWscale ? 0 : f.backend_wscale;
    if (backend != kProxyWscale) {
      const uint16_t w = load_be16(tcp + kTcpWindowOff);
      put16(tcp, kTcpWindowOff, capped((uint64_t(w) << backend) >> kProxyWscale), acc);
    }
  }
  finish(tcp, acc);
}

void proxy_reset_to_client(std::span<uint8_t> frame, const Parsed& p,
                           const ProxyFlow& f) noexcept {
  if (!p.has_l4) return;
  uint8_t* tcp = frame.data() + p.l4_off;
  uint32_t acc = 0;
  put32(tcp, 4, f.cookie + 1, acc);
  finish(tcp, acc);
}

}  // namespace magline::dp
