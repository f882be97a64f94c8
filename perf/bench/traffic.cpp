#include "perf/bench/traffic.hpp"

#include <algorithm>
#include <cmath>

#include "dataplane/checksum.hpp"
#include "dataplane/parse.hpp"

namespace magline::bench {

namespace {

dp::IpAddr v6_with_low(const uint8_t (&prefix)[12], uint32_t low) {
  uint8_t b[16];
  std::memcpy(b, prefix, 12);
  dp::store_be32(b + 12, low);
  return dp::IpAddr::v6(b);
}

constexpr uint8_t kDoc6[12] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0};  // 2001:db8::/64
constexpr uint8_t kVip6[12] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0,
                               0,    0,    0,    0,    0,    0};  // 2001:db8:100::
constexpr uint8_t kClient6[12] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0};

}  // namespace

dp::IpAddr lb_address(bool ipv6) {
  return ipv6 ? v6_with_low(kDoc6, 1) : dp::IpAddr::v4(198, 18, 0, 1);
}
dp::IpAddr vip_address(bool ipv6) {
  return ipv6 ? v6_with_low(kVip6, 1) : dp::IpAddr::v4(198, 51, 100, 1);
}
dp::IpAddr backend_address(bool ipv6, uint32_t i) {
  const uint32_t low = 0x100u + i;  // 198.18.1.0 + i, 2001:db8::1:0 + i
  return ipv6 ? v6_with_low(kDoc6, 0x10000u | low) : dp::IpAddr::v4(0xc6120000u | low);
}

uint32_t Layout::min_size(bool ipv6, bool udp) {
  const uint32_t headers = 14 + (ipv6 ? 40 : 20) + (udp ? 8 + 8 : 20);  // UDP: the stamp
  return std::max<uint32_t>(64, headers + 4);
}

Layout Layout::of(const TrafficSpec& t) {
  Layout l;
  l.ipv6 = t.ipv6;
  l.udp = t.udp;
  l.len = uint16_t(std::max(t.size, min_size(t.ipv6, t.udp)) - 4);
  l.l4 = t.ipv6 ? 54 : 34;
  l.src_low = t.ipv6 ? 14 + 8 + 12 : 26;
  l.dst_low = t.ipv6 ? 14 + 24 + 12 : 30;
  l.stamp = t.udp ? l.l4 + 8 : l.l4 + 4;  // TCP: sequence and acknowledgement numbers
  return l;
}

std::vector<uint8_t> build_template(const TrafficSpec& t, const Layout& l, const dp::MacAddr& lb) {
  std::vector<uint8_t> f(l.len, 0);
  lb.store(f.data());
  kClientMac.store(f.data() + 6);
  const uint8_t proto = t.udp ? dp::kProtoUdp : dp::kProtoTcp;
  const uint16_t l4_len = uint16_t(l.len - l.l4);
  uint8_t* ip = f.data() + 14;
  const dp::IpAddr vip = vip_address(t.ipv6);
  dp::IpAddr client;
  if (t.ipv6) {
    dp::store_be16(f.data() + 12, 0x86dd);
    ip[0] = 0x60;
    dp::store_be16(ip + 4, l4_len);
    ip[6] = proto;
    ip[7] = 64;
    client = v6_with_low(kClient6, client_low(0));
    std::memcpy(ip + 8, client.data(), 16);
    std::memcpy(ip + 24, vip.data(), 16);
  } else {
    dp::store_be16(f.data() + 12, 0x0800);
    ip[0] = 0x45;
    dp::store_be16(ip + 2, uint16_t(l.len - 14));
    ip[8] = 64;
    ip[9] = proto;
    client = dp::IpAddr::v4(client_low(0));
    std::memcpy(ip + 12, client.data(), 4);
    std::memcpy(ip + 16, vip.data(), 4);
    dp::store_be16(ip + 10, dp::ipv4_header_checksum(ip, 20));
  }
  uint8_t* l4 = f.data() + l.l4;
  dp::store_be16(l4, client_port(0));
  dp::store_be16(l4 + 2, kVipPort);
  if (t.udp) {
    dp::store_be16(l4 + 4, l4_len);
    dp::store_be16(l4 + 6, dp::l4_checksum(client, vip, proto, l4, l4_len, 6));
  } else {
    l4[12] = 5 << 4;
    l4[13] = dp::kTcpAck;
    dp::store_be16(l4 + 14, 65535);
    dp::store_be16(l4 + 16, dp::l4_checksum(client, vip, proto, l4, l4_len, 16));
  }
  if (f.size() < 64) f.resize(64);
  return f;
}

FlowChooser::FlowChooser(const TrafficSpec& t, uint64_t seed)
    : state_(seed), flows_(std::max<uint32_t>(1, t.flows)) {
  if (t.distribution == Distribution::uniform) {
    top_share_ = 1.0 / flows_;
    return;
  }
  // Zipf: P(rank r) ~ 1 / r^s, r = 1..flows; flow id = rank - 1. Inverse CDF by binary search.
  std::vector<double> cdf(flows_);
  double sum = 0;
  for (uint32_t r = 0; r < flows_; ++r) {
    sum += 1.0 / std::pow(double(r + 1), t.zipf_s);
    cdf[r] = sum;
  }
  for (double& c : cdf)
    c /= sum;
  top_share_ = cdf[0];
  size_t n = size_t(1) << 22;
  while (n < size_t(flows_) * 4 && n < (size_t(1) << 26))
    n <<= 1;
  sequence_.resize(n);
  mask_ = n - 1;
  for (size_t i = 0; i < n; ++i) {
    const double u = double(random() >> 11) * 0x1.0p-53;
    sequence_[i] = uint32_t(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    sequence_[i] = std::min(sequence_[i], flows_ - 1);
  }
}

void turn_around(uint8_t* d, const Layout& l, const dp::MacAddr& to, const dp::MacAddr& from,
                 uint8_t tcp_flags) noexcept {
  to.store(d);
  from.store(d + 6);
  const size_t alen = l.ipv6 ? 16 : 4;
  uint8_t* src = d + (l.ipv6 ? 22 : 26);
  uint8_t* dst = src + alen;
  uint8_t tmp[16];
  std::memcpy(tmp, src, alen);
  std::memcpy(src, dst, alen);
  std::memcpy(dst, tmp, alen);
  uint8_t* l4 = d + l.l4;
  uint8_t p[2];
  std::memcpy(p, l4, 2);
  std::memcpy(l4, l4 + 2, 2);
  std::memcpy(l4 + 2, p, 2);
  if (!l.udp) l4[13] = tcp_flags;
  if (l.ipv6) {
    d[14 + 7] = 64;
  } else {
    d[14 + 8] = 64;  // a fresh TTL, as a new sender sets it (checksums are not kept, see above)
  }
}

uint64_t parse_count(const std::string& s) {
  if (s.empty()) return 0;
  uint64_t mult = 1;
  std::string digits = s;
  const char last = s.back();
  if (last == 'k' || last == 'K') mult = 1000;
  if (last == 'm' || last == 'M') mult = 1000000;
  if (mult != 1) digits.pop_back();
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  // Binary multiples (1k = 1024, 1M = 2^20): flow counts in the docs are powers of two.
  const uint64_t v = std::stoull(digits);
  if (mult == 1000) return v * 1024;
  if (mult == 1000000) return v * 1048576;
  return v;
}

}  // namespace magline::bench
