#include "tests/support/packet_builder.hpp"

#include <algorithm>
#include <stdexcept>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"

namespace magline::test {

namespace {

constexpr uint16_t kEtherTypeLocalExperimental = 0x88b5;  // IEEE 802 local experimental
constexpr uint8_t kProtoExperimental = 253;               // RFC 3692

dp::IpAddr must_parse(std::string_view text, dp::Family family) {
  const auto a = dp::parse_ip(text);
  if (!a || a->family != family) throw std::invalid_argument("bad address: " + std::string(text));
  return *a;
}

void append16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}

void append32(Bytes& b, uint32_t v) {
  append16(b, uint16_t(v >> 16));
  append16(b, uint16_t(v));
}

void append(Bytes& b, std::span<const uint8_t> more) {
  b.insert(b.end(), more.begin(), more.end());
}

void append_addr(Bytes& b, const dp::IpAddr& a) {
  b.insert(b.end(), a.data(), a.data() + a.size());
}

Bytes padded(Bytes b, size_t multiple) {
  b.resize((b.size() + multiple - 1) / multiple * multiple, 0);
  return b;
}

// An options header (hop-by-hop, destination options) of `len` bytes holding one PadN option.
Bytes options_header(size_t len) {
  if (len < 8 || len % 8 != 0 || len > 2048) throw std::invalid_argument("options header length");
  Bytes raw(len, 0);
  raw[1] = uint8_t(len / 8 - 1);
  raw[2] = 1;  // PadN (RFC 8200 4.2)
  raw[3] = uint8_t(len - 4);
  return raw;
}

// A neighbour discovery body after the first 8 bytes: the target and, when given, one Ethernet
// link-layer address option (RFC 4861 4.6.1).
Bytes nd_body(std::string_view target, uint8_t option, const std::optional<Mac>& ll) {
  Bytes body;
  append_addr(body, must_parse(target, dp::Family::v6));
  if (ll) {
    body.push_back(option);
    body.push_back(1);  // in units of 8 bytes
    append(body, *ll);
  }
  return body;
}

}  // namespace

Packet& Packet::eth(const Mac& src, const Mac& dst) {
  src_mac_ = src;
  dst_mac_ = dst;
  return *this;
}

Packet& Packet::vlan(uint16_t tci, uint16_t tpid) {
  vlans_.emplace_back(tpid, tci);
  return *this;
}

Packet& Packet::ether_type(uint16_t type) {
  ether_type_ = type;
  return *this;
}

Packet& Packet::ipv4(std::string_view src, std::string_view dst) {
  l3_ = L3Kind::ipv4;
  src_ip_ = must_parse(src, dp::Family::v4);
  dst_ip_ = must_parse(dst, dp::Family::v4);
  return *this;
}

Packet& Packet::ipv6(std::string_view src, std::string_view dst) {
  l3_ = L3Kind::ipv6;
  src_ip_ = must_parse(src, dp::Family::v6);
  dst_ip_ = must_parse(dst, dp::Family::v6);
  return *this;
}

Packet& Packet::ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}

Packet& Packet::ip_id(uint16_t id) {
  ip_id_ = id;
  return *this;
}

Packet& Packet::dont_fragment() {
  df_ = true;
  return *this;
}

Packet& Packet::fragment(uint16_t offset_bytes, bool more, uint32_t id) {
  if (offset_bytes % 8 != 0) throw std::invalid_argument("fragment offset not a multiple of 8");
  if (l3_ == L3Kind::ipv4) {
    frag_offset_ = offset_bytes;
    more_fragments_ = more;
    ip_id_ = uint16_t(id);
  } else if (l3_ == L3Kind::ipv6) {
    Bytes raw(8, 0);
    dp::store_be16(raw.data() + 2, uint16_t(offset_bytes | (more ? 1 : 0)));
    dp::store_be32(raw.data() + 4, id);
    exts_.push_back({kIpv6Fragment, std::move(raw)});
  } else {
    throw std::logic_error("fragment() before ipv4()/ipv6()");
  }
  return *this;
}

Packet& Packet::ipv4_options(Bytes options) {
  ip_options_ = padded(std::move(options), 4);
  return *this;
}

Packet& Packet::hop_by_hop(size_t len) {
  return ext_header(kIpv6HopByHop, options_header(len));
}

Packet& Packet::dest_opts(size_t len) {
  return ext_header(kIpv6DestOpts, options_header(len));
}

Packet& Packet::routing(size_t len) {
  Bytes raw = options_header(len);
  raw[2] = 253;  // routing type for experiments (RFC 4727)
  raw[3] = 0;    // segments left: the packet is at its final destination
  return ext_header(kIpv6Routing, std::move(raw));
}

Packet& Packet::ah(size_t len) {
  if (len < 12 || len % 4 != 0 || len > 1028) throw std::invalid_argument("AH length");
  Bytes raw(len, 0);
  raw[1] = uint8_t(len / 4 - 2);          // RFC 4302 2.2
  dp::store_be32(raw.data() + 4, 0x100);  // SPI
  dp::store_be32(raw.data() + 8, 1);      // sequence number
  return ext_header(kIpv6Ah, std::move(raw));
}

Packet& Packet::ext_header(uint8_t type, Bytes raw) {
  if (raw.empty()) throw std::invalid_argument("empty extension header");
  exts_.push_back({type, std::move(raw)});
  return *this;
}

Packet& Packet::protocol(uint8_t proto) {
  proto_ = proto;
  return *this;
}

Packet& Packet::arp(uint16_t op, const Mac& sender_mac, std::string_view sender_ip,
                    const Mac& target_mac, std::string_view target_ip) {
  l3_ = L3Kind::arp;
  arp_.clear();
  append16(arp_, 1);  // Ethernet
  append16(arp_, dp::kEtherTypeIpv4);
  arp_.push_back(6);
  arp_.push_back(4);
  append16(arp_, op);
  append(arp_, sender_mac);
  append_addr(arp_, must_parse(sender_ip, dp::Family::v4));
  append(arp_, target_mac);
  append_addr(arp_, must_parse(target_ip, dp::Family::v4));
  return *this;
}

Packet& Packet::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
  l4_ = L4Kind::tcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  return *this;
}

Packet& Packet::seq(uint32_t n) {
  seq_ = n;
  return *this;
}

Packet& Packet::ack(uint32_t n) {
  ack_ = n;
  return *this;
}

Packet& Packet::window(uint16_t w) {
  window_ = w;
  return *this;
}

Packet& Packet::tcp_options(Bytes options) {
  tcp_options_ = padded(std::move(options), 4);
  return *this;
}

Packet& Packet::udp(uint16_t sport, uint16_t dport) {
  l4_ = L4Kind::udp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}

Packet& Packet::sctp(uint16_t sport, uint16_t dport, uint32_t vtag) {
  l4_ = L4Kind::sctp;
  sport_ = sport;
  dport_ = dport;
  sctp_vtag_ = vtag;
  return *this;
}

Packet& Packet::icmp(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4Kind::icmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}

Packet& Packet::icmp_echo(uint16_t id, uint16_t seq, bool reply) {
  l4_ = L4Kind::icmp_echo;
  icmp_rest_ = uint32_t(id) << 16 | seq;
  echo_reply_ = reply;
  return *this;
}

Packet& Packet::icmp_error(uint8_t type, uint8_t code, const Packet& inner, size_t quote_len,
                           uint32_t rest) {
  icmp(type, code, rest);
  quote_ = inner.l3_bytes();
  if (quote_len < quote_.size()) quote_.resize(quote_len);
  return *this;
}

Packet& Packet::payload(std::string_view text) {
  payload_.assign(text.begin(), text.end());
  return *this;
}

Packet& Packet::payload(Bytes data) {
  payload_ = std::move(data);
  return *this;
}

Packet& Packet::ndp_ns(std::string_view target, std::optional<Mac> src_ll) {
  icmp(135, 0, 0);
  ttl_ = 255;
  return payload(nd_body(target, 1, src_ll));
}

Packet& Packet::ndp_na(std::string_view target, uint8_t flags, std::optional<Mac> tgt_ll) {
  icmp(136, 0, uint32_t(flags) << 24);
  ttl_ = 255;
  return payload(nd_body(target, 2, tgt_ll));
}

Packet& Packet::version(uint8_t v) {
  version_ = v;
  return *this;
}

Packet& Packet::ihl(uint8_t words) {
  ihl_ = words;
  return *this;
}

Packet& Packet::total_length(uint16_t len) {
  total_length_ = len;
  return *this;
}

Packet& Packet::payload_length(uint16_t len) {
  payload_length_ = len;
  return *this;
}

Packet& Packet::data_offset(uint8_t words) {
  data_offset_ = words;
  return *this;
}

Packet& Packet::udp_length(uint16_t len) {
  udp_length_ = len;
  return *this;
}

Packet& Packet::no_checksums() {
  checksums_ = false;
  return *this;
}

Packet& Packet::truncate(size_t frame_len) {
  truncate_ = frame_len;
  return *this;
}

Packet& Packet::pad(size_t n) {
  pad_ = n;
  return *this;
}

uint8_t Packet::l4_proto() const {
  if (proto_) return *proto_;
  switch (l4_) {
    case L4Kind::tcp:
      return dp::kProtoTcp;
    case L4Kind::udp:
      return dp::kProtoUdp;
    case L4Kind::sctp:
      return dp::kProtoSctp;
    case L4Kind::icmp:
    case L4Kind::icmp_echo:
      return l3_ == L3Kind::ipv6 ? dp::kProtoIcmpv6 : dp::kProtoIcmp;
    case L4Kind::none:
      break;
  }
  return l3_ == L3Kind::ipv6 ? kIpv6NoNextHeader : kProtoExperimental;
}

Bytes Packet::build_l4() const {
  Bytes l4;
  switch (l4_) {
    case L4Kind::tcp: {
      append16(l4, sport_);
      append16(l4, dport_);
      append32(l4, seq_.value_or(1000));                                   // sequence number
      append32(l4, ack_.value_or((tcp_flags_ & dp::kTcpAck) ? 2000 : 0));  // acknowledgment
      const size_t words = (20 + tcp_options_.size()) / 4;
      l4.push_back(uint8_t(data_offset_.value_or(uint8_t(words)) << 4));
      l4.push_back(tcp_flags_);
      append16(l4, window_);
      append16(l4, 0);      // checksum
      append16(l4, 0);      // urgent pointer
      append(l4, tcp_options_);
      break;
    }
    case L4Kind::udp:
      append16(l4, sport_);
      append16(l4, dport_);
      append16(l4, udp_length_.value_or(uint16_t(8 + quote_.size() + payload_.size())));
      append16(l4, 0);
      break;
    case L4Kind::sctp:
      append16(l4, sport_);
      append16(l4, dport_);
      append32(l4, sctp_vtag_);
      append32(l4, 0);
      break;
    case L4Kind::icmp:
    case L4Kind::icmp_echo: {
      const bool v6 = l3_ == L3Kind::ipv6;
      uint8_t type = icmp_type_;
      if (l4_ == L4Kind::icmp_echo) type = v6 ? (echo_reply_ ? 129 : 128) : (echo_reply_ ? 0 : 8);
      l4.push_back(type);
      l4.push_back(l4_ == L4Kind::icmp ? icmp_code_ : 0);
      append16(l4, 0);
      append32(l4, icmp_rest_);
      append(l4, quote_);
      break;
    }
    case L4Kind::none:
      break;
  }
  append(l4, payload_);
  return l4;
}

void Packet::fill_l4_checksum(Bytes& pkt, size_t l4_off) const {
  uint8_t* l4 = pkt.data() + l4_off;
  const size_t n = pkt.size() - l4_off;
  const uint8_t proto = l4_proto();
  switch (l4_) {
    case L4Kind::tcp:
      if (n >= 18) dp::store_be16(l4 + 16, dp::l4_checksum(src_ip_, dst_ip_, proto, l4, n, 16));
      break;
    case L4Kind::udp: {
      if (n < 8) break;
      // The checksum covers the UDP length, which a test may have made lie.
      const size_t udp_len = dp::load_be16(l4 + 4);
      const uint32_t pseudo = dp::pseudo_header_sum(src_ip_, dst_ip_, proto, uint32_t(udp_len));
      const uint16_t c = dp::csum_fold(dp::csum_add(pseudo, l4, std::min(udp_len, n)));
      dp::store_be16(l4 + 6, c == 0 ? 0xffff : c);
      break;
    }
    case L4Kind::sctp:
      if (n >= 12) dp::store_crc32c(l4 + 8, dp::crc32c(l4, n));
      break;
    case L4Kind::icmp:
    case L4Kind::icmp_echo:
      if (n < 4) break;
      if (l3_ == L3Kind::ipv6) {
        dp::store_be16(l4 + 2, dp::l4_checksum(src_ip_, dst_ip_, proto, l4, n, 2));
      } else {
        dp::store_be16(l4 + 2, dp::csum_fold(dp::csum_add(0, l4, n)));
      }
      break;
    case L4Kind::none:
      break;
  }
}

Packet::L3Layout Packet::build_l3() const {
  const Bytes l4 = build_l4();
  L3Layout out;
  Bytes& b = out.bytes;
  switch (l3_) {
    case L3Kind::ipv4: {
      const size_t hlen = 20 + ip_options_.size();
      const uint8_t ihl = ihl_.value_or(uint8_t(hlen / 4));
      b.push_back(uint8_t(version_.value_or(4) << 4 | (ihl & 0x0f)));
      b.push_back(0);
      append16(b, total_length_.value_or(uint16_t(hlen + l4.size())));
      append16(b, ip_id_);
      append16(b, uint16_t((df_ ? 0x4000 : 0) | (more_fragments_ ? 0x2000 : 0) | frag_offset_ / 8));
      b.push_back(ttl_);
      b.push_back(l4_proto());
      append16(b, 0);
      append_addr(b, src_ip_);
      append_addr(b, dst_ip_);
      append(b, ip_options_);
      out.l4_off = b.size();
      append(b, l4);
      break;
    }
    case L3Kind::ipv6: {
      size_t ext_len = 0;
      for (const Ext& e : exts_)
        ext_len += e.raw.size();
      append32(b, uint32_t(version_.value_or(6)) << 28);
      append16(b, payload_length_.value_or(uint16_t(ext_len + l4.size())));
      b.push_back(exts_.empty() ? l4_proto() : exts_.front().type);
      b.push_back(ttl_);
      append_addr(b, src_ip_);
      append_addr(b, dst_ip_);
      for (size_t i = 0; i < exts_.size(); ++i) {
        Bytes raw = exts_[i].raw;
        raw[0] = i + 1 < exts_.size() ? exts_[i + 1].type : l4_proto();
        append(b, raw);
      }
      out.l4_off = b.size();
      append(b, l4);
      break;
    }
    case L3Kind::arp:
      b = arp_;
      out.l4_off = b.size();
      break;
    case L3Kind::none:
      b = l4;
      break;
  }
  if (checksums_ && (l3_ == L3Kind::ipv4 || l3_ == L3Kind::ipv6)) {
    fill_l4_checksum(b, out.l4_off);
    if (l3_ == L3Kind::ipv4 && b.size() >= 20) {
      const size_t hlen = std::min(out.l4_off, b.size());
      dp::store_be16(b.data() + 10, dp::ipv4_header_checksum(b.data(), hlen));
    }
  }
  return out;
}

Bytes Packet::l3_bytes() const {
  return build_l3().bytes;
}

Bytes Packet::bytes() const {
  Bytes f;
  append(f, dst_mac_);
  append(f, src_mac_);
  for (const auto& [tpid, tci] : vlans_) {
    append16(f, tpid);
    append16(f, tci);
  }
  uint16_t type = kEtherTypeLocalExperimental;
  if (l3_ == L3Kind::ipv4) type = dp::kEtherTypeIpv4;
  if (l3_ == L3Kind::ipv6) type = dp::kEtherTypeIpv6;
  if (l3_ == L3Kind::arp) type = dp::kEtherTypeArp;
  append16(f, ether_type_.value_or(type));
  append(f, build_l3().bytes);
  f.resize(f.size() + pad_, 0);
  if (truncate_ && *truncate_ < f.size()) f.resize(*truncate_);
  return f;
}

std::string checksum_errors(std::span<const uint8_t> frame) {
  dp::Parsed p;
  if (const dp::DropReason r = dp::parse(frame, p); r != dp::DropReason::none) {
    return "does not parse: " + std::string(dp::drop_reason_name(r));
  }
  if (p.l3 != dp::L3::ipv4 && p.l3 != dp::L3::ipv6) return "";
  std::string errors;
  auto check = [&errors](const char* what, uint32_t stored, uint32_t expected) {
    if (stored != expected) {
      errors += std::string(what) + " checksum " + std::to_string(stored) + ", expected " +
                std::to_string(expected) + "; ";
    }
  };
  const uint8_t* ip = frame.data() + p.l3_off;
  if (p.l3 == dp::L3::ipv4) {
    check("ipv4 header", dp::load_be16(ip + 10),
          dp::ipv4_header_checksum(ip, size_t(p.l4_off - p.l3_off)));
  }
  // A fragment's L4 checksum covers the whole datagram, which this packet does not hold.
  if (!p.has_l4 || p.is_fragment) return errors;
  const dp::IpAddr src = p.key.src_addr();
  const dp::IpAddr dst = p.key.dst_addr();
  const uint8_t* l4 = frame.data() + p.l4_off;
  const size_t n = size_t(p.l3_end - p.l4_off);
  switch (p.key.proto) {
    case dp::kProtoTcp:
      check("tcp", dp::load_be16(l4 + 16), dp::l4_checksum(src, dst, dp::kProtoTcp, l4, n, 16));
      break;
    case dp::kProtoUdp: {
      const uint16_t stored = dp::load_be16(l4 + 6);
      if (stored == 0) break;  // no checksum
      const uint16_t c = dp::l4_checksum(src, dst, dp::kProtoUdp, l4, dp::load_be16(l4 + 4), 6);
      check("udp", stored, c == 0 ? 0xffff : c);
      break;
    }
    case dp::kProtoIcmp:
      check("icmp", dp::load_be16(l4 + 2),
            dp::csum_fold(dp::csum_add(dp::csum_add(0, l4, 2), l4 + 4, n - 4)));
      break;
    case dp::kProtoIcmpv6:
      check("icmpv6", dp::load_be16(l4 + 2), dp::l4_checksum(src, dst, dp::kProtoIcmpv6, l4, n, 2));
      break;
    case dp::kProtoSctp: {
      Bytes copy(l4, l4 + n);
      std::fill_n(copy.begin() + 8, 4, uint8_t(0));
      check("sctp", dp::load_crc32c(l4 + 8), dp::crc32c(copy.data(), n));
      break;
    }
    default:
      break;
  }
  return errors;
}

}  // namespace magline::test
