#include "config/provider.hpp"

#include <set>

namespace magline::cfg {

namespace {

// A pool name: what a Service names in its annotation (lowercase DNS label characters).
bool good_name(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return n.front() != '-' && n.back() != '-';
}

std::vector<dp::AddressRange> read_ranges(const Node& list) {
  std::vector<dp::AddressRange> out;
  const std::vector<Node> items = list.array();
  for (const Node& n : items) {
    const auto text = n.string();
    if (!text) continue;
    auto r = dp::parse_range(*text);
    if (!r) {
      n.fail(r.error().message);
      continue;
    }
    out.push_back(*r);
  }
  return out;
}

// A DNS-1123 subdomain (what names a Lease): lowercase letters, digits, '-' and '.', each
// dot-separated label starting and ending with a letter or digit.
bool good_subdomain(const std::string& n, size_t max) {
  if (n.empty() || n.size() > max) return false;
  char prev = '.';
  for (char c : n) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.') return false;
    if (c == '.' && (prev == '.' || prev == '-')) return false;
    if (c == '-' && prev == '.') return false;
    prev = c;
  }
  return prev != '.' && prev != '-';
}

// client-go's NewLeaderElector checks: duration > renew deadline > 1.2 x retry period (its
// jitter), so a leader gives up before the others may take over, and tries more than once.
void read_election(const Node& node, ElectionConfig& e) {
  const Object o = node.object({"lease_name", "lease_namespace", "identity", "lease_duration_ms",
                                "renew_deadline_ms", "retry_period_ms"});
  auto name = [&](const char* key, std::string& out, size_t max, const char* what) {
    const auto n = o.find(key);
    if (!n) return;
    const auto s = n->string();
    if (!s) return;
    if (!good_subdomain(*s, max)) {
      n->fail(std::string("expected ") + what + ", got " + n->shown());
      return;
    }
    out = *s;
  };
  name("lease_name", e.lease_name, 253,
       "a Lease name (lowercase letters, digits, '-' and '.'; at most 253)");
  name("lease_namespace", e.lease_namespace, 63,
       "a namespace (lowercase letters, digits and '-'; at most 63)");
  if (e.lease_namespace.find('.') != std::string::npos) {
    o.fail_key("lease_namespace",
               "expected a namespace (lowercase letters, digits and '-'; at "
               "most 63), got \"" +
                   e.lease_namespace + "\"");
  }
  // The node's Lease is magline-node-IDENTITY: a name too.
  name("identity", e.identity, 253 - 13,
       "an identity that makes a Lease name magline-node-IDENTITY (lowercase letters, digits, "
       "'-' and '.'; at most 240)");
  e.lease_duration_ms =
      uint32_t(o.integer("lease_duration_ms", 1000, 3600000, e.lease_duration_ms));
  e.renew_deadline_ms = uint32_t(o.integer("renew_deadline_ms", 1, 3600000, e.renew_deadline_ms));
  e.retry_period_ms = uint32_t(o.integer("retry_period_ms", 1, 3600000, e.retry_period_ms));
  if (e.lease_duration_ms % 1000 != 0) {
    o.fail_key("lease_duration_ms", "expected whole seconds (a Lease holds seconds), got " +
                                        std::to_string(e.lease_duration_ms));
  } else if (e.renew_deadline_ms >= e.lease_duration_ms) {
    o.fail_key("renew_deadline_ms", "renew_deadline_ms " + std::to_string(e.renew_deadline_ms) +
                                        " must be below lease_duration_ms " +
                                        std::to_string(e.lease_duration_ms));
  } else if (uint64_t(e.retry_period_ms) * 12 >= uint64_t(e.renew_deadline_ms) * 10) {
    o.fail_key("retry_period_ms", "retry_period_ms " + std::to_string(e.retry_period_ms) +
                                      " must be below renew_deadline_ms / 1.2 (" +
                                      std::to_string(e.renew_deadline_ms) + " / 1.2)");
  }
}

}  // namespace

void read_provider(const Node& node, Config& config) {
  ProviderConfig& p = config.provider;
  const Object o = node.object({"pools", "election", "l2_speaker"});
  if (const auto election = o.find("election")) read_election(*election, p.election);
  if (const auto l2 = o.find("l2_speaker")) p.l2_speaker = l2->boolean().value_or(false);
  const auto pools = o.find("pools");
  if (!pools) return;
  // Where each range came from, for a message naming both sides of an overlap.
  struct Origin {
    dp::AddressRange range;
    std::string pool;
    std::string path;
  };
  std::vector<Origin> seen;
  std::set<std::string> names;
  const std::vector<Node> items = pools->array();
  for (const Node& item : items) {
    const Object po = item.object(
        {"name", "addresses", "avoid", "auto_assign", "namespaces", "service_labels"});
    dp::AddressPool pool;
    const Node name = po.at("name");
    pool.name = name.string().value_or("");
    if (name.json().is_string() && !good_name(pool.name)) {
      name.fail("expected a name of lowercase letters, digits and '-' (at most 63), got " +
                name.shown());
    } else if (!pool.name.empty() && !names.insert(pool.name).second) {
      name.fail("a pool named \"" + pool.name + "\" is already defined");
    }
    const Node addresses = po.at("addresses");
    pool.ranges = read_ranges(addresses);
    if (addresses.json().is_array() && addresses.json().empty()) {
      addresses.fail("expected at least one address, network or range");
    }
    if (const auto avoid = po.find("avoid")) pool.avoid = read_ranges(*avoid);
    if (const auto a = po.find("auto_assign")) pool.auto_assign = a->boolean().value_or(true);
    if (const auto ns = po.find("namespaces")) {
      for (const Node& n : ns->array()) {
        if (const auto text = n.string()) pool.namespaces.push_back(*text);
      }
    }
    if (const auto labels = po.find("service_labels")) {
      if (!labels->json().is_object()) {
        labels->fail("expected an object of label names and values, got " + labels->shown());
      } else {
        for (const auto& [k, v] : labels->json().items()) {
          const Node value(v, child_path(labels->path(), k), labels->errors());
          if (const auto text = value.string()) pool.service_labels.emplace(k, *text);
        }
      }
    }
    // No address in two pools: a Service's address then has one pool.
    for (size_t i = 0; i < pool.ranges.size(); ++i) {
      const std::string path = index_path(child_path(addresses.path(), ""), i);
      for (const Origin& other : seen) {
        if (dp::overlap(other.range, pool.ranges[i])) {
          addresses.fail(dp::to_string(pool.ranges[i]) + " overlaps pool \"" + other.pool +
                         "\" (" + other.path + ": " + dp::to_string(other.range) + ")");
        }
      }
    }
    for (size_t i = 0; i < pool.ranges.size(); ++i) {
      seen.push_back({pool.ranges[i], pool.name, index_path(addresses.path(), i)});
    }
    p.pools.push_back(std::move(pool));
  }
}

}  // namespace magline::cfg
