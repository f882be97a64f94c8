// Reads the `bgp` section (docs/config.md, docs/announce.md). Part of config.cpp's reading, in a
// file of its own.
#include <algorithm>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/json_reader.hpp"
#include "config/readers.hpp"

namespace magline::cfg {
namespace {

using namespace detail;

constexpr uint64_t kMaxAs = 4294967295;    // 4-octet AS numbers (RFC 6793)
constexpr uint64_t kMaxDrainMs = 600000;   // ten minutes: past systemd's stop timeouts anyway

// "AS:VALUE", both 0..65535 (RFC 1997).
std::optional<BgpCommunity> read_community(const Node& node) {
  const std::optional<std::string> text = node.string();
  if (!text) return std::nullopt;
  const size_t colon = text->find(':');
  const auto number = [](std::string_view s) -> std::optional<uint16_t> {
    if (s.empty() || s.size() > 5) return std::nullopt;
    uint32_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + uint32_t(c - '0');
    }
    return v <= 65535 ? std::optional<uint16_t>(uint16_t(v)) : std::nullopt;
  };
  if (colon != std::string::npos) {
    const auto as = number(std::string_view(*text).substr(0, colon));
    const auto value = number(std::string_view(*text).substr(colon + 1));
    if (as && value) return BgpCommunity{*as, *value};
  }
  node.fail("expected a community AS:VALUE, each 0..65535 (\"65000:100\"), got " + node.shown());
  return std::nullopt;
}

std::optional<dp::IpAddr> read_family(const Node& node, dp::Family family) {
  const auto ip = read_ip(node);
  if (ip && ip->family != family) {
    node.fail(std::string("expected an ") + (family == dp::Family::v4 ? "IPv4" : "IPv6") +
              " address, got " + node.shown());
    return std::nullopt;
  }
  return ip;
}

BgpPeerConfig read_peer(const Node& node) {
  BgpPeerConfig p;
  const Object o = node.object({"address", "as", "password", "hold_time_s", "multihop"});
  p.address = read_ip(o.at("address")).value_or(p.address);
  p.as = uint32_t(o.integer("as", 1, kMaxAs, 0));
  if (!o.find("as")) o.fail("missing key \"as\"");
  if (const auto pw = o.find("password")) {
    p.password = pw->string().value_or("");
    // It goes into BIRD's configuration between double quotes.
    const bool plain = std::all_of(p.password.begin(), p.password.end(), [](char c) {
      return uint8_t(c) >= 0x20 && uint8_t(c) < 0x7f && c != '"' && c != '\\';
    });
    if (!plain || p.password.size() > 80) {
      pw->fail("expected at most 80 printable ASCII characters without '\"' or '\\'");
    }
  }
  p.hold_time_s = uint32_t(o.integer("hold_time_s", 0, 65535, p.hold_time_s));
  if (p.hold_time_s == 1 || p.hold_time_s == 2) {
    o.fail_key("hold_time_s", "a hold time is 0 or at least 3 seconds (RFC 4271 4.2), got " +
                                  std::to_string(p.hold_time_s));
  }
  if (const auto m = o.find("multihop")) p.multihop = m->boolean().value_or(false);
  return p;
}

}  // namespace

namespace detail {

void read_bgp(const Node& node, Config& config) {
  BgpConfig& b = config.bgp;
  b.enabled = true;
  const Object o = node.object({"bird_config", "bird_socket", "local_as", "router_id", "peers",
                                "communities", "next_hop_v4", "next_hop_v6",
                                "withdraw_without_backends", "drain_ms"});
  if (const auto f = o.find("bird_config")) b.bird_config = f->string().value_or(b.bird_config);
  if (const auto s = o.find("bird_socket")) b.bird_socket = s->string().value_or(b.bird_socket);
  for (const auto& [key, path] : {std::pair{"bird_config", &b.bird_config},
                                  std::pair{"bird_socket", &b.bird_socket}}) {
    if (o.find(key) && (path->empty() || path->front() != '/')) {
      o.fail_key(key, "expected an absolute path, got " + o.find(key)->shown());
    }
  }
  b.local_as = uint32_t(o.integer("local_as", 1, kMaxAs, 0));
  if (!o.find("local_as")) o.fail("missing key \"local_as\"");
  if (const auto id = o.find("router_id")) b.router_id = read_family(*id, dp::Family::v4);
  if (const auto peers = o.find("peers")) {
    for (const Node& p : peers->array()) b.peers.push_back(read_peer(p));
  }
  if (b.peers.empty()) o.fail("expected at least one peer in \"peers\"");
  if (const auto cs = o.find("communities")) {
    for (const Node& c : cs->array()) {
      if (const auto community = read_community(c)) b.communities.push_back(*community);
    }
  }
  if (const auto n = o.find("next_hop_v4")) b.next_hop_v4 = read_family(*n, dp::Family::v4);
  if (const auto n = o.find("next_hop_v6")) b.next_hop_v6 = read_family(*n, dp::Family::v6);
  if (const auto w = o.find("withdraw_without_backends")) {
    b.withdraw_without_backends = w->boolean().value_or(true);
  }
  b.drain_ms = uint32_t(o.integer("drain_ms", 0, kMaxDrainMs, b.drain_ms));
}

}  // namespace detail
}  // namespace magline::cfg
