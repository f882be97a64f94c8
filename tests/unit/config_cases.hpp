// What the config loader's tests share: a file around service objects, and the loader's
// verdict on a text (config_test.cpp, config_errors_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace magline::cfg::config_cases {

inline constexpr std::string_view kSource = "t.json";

// Wraps service objects in a file with node addresses of both families.
inline std::string services(std::string_view objects) {
  return R"({"node": {"addresses": ["198.18.0.1", "2001:db8::1"]}, "services": [)" +
         std::string(objects) + "]}";
}

inline std::string error_of(std::string_view text) {
  auto r = parse_config(text, kSource);
  return r ? "(no error)" : r.error().message;
}

inline Config parse_ok(std::string_view text) {
  auto r = parse_config(text, kSource);
  EXPECT_TRUE(r) << r.error().message << "\nin: " << text;
  return r ? std::move(r).value() : Config{};
}

// A file the loader must refuse, and its message.
struct BadCase {
  std::string text;
  std::string error;
};

inline void expect_errors(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    EXPECT_EQ(error_of(c.text), c.error) << "in: " << c.text;
  }
}

// The services a configuration builds, one line per service and frontend.
inline std::string dump_dp_services(const std::vector<dp::Service>& services) {
  std::ostringstream out;
  for (const dp::Service& s : services) {
    out << "service " << s.name << " table=" << s.table_size << "\n";
    for (const dp::Frontend& f : s.frontends) {
      out << "  " << dp::to_string(f) << " " << dp::to_string(f.kind) << "\n";
    }
  }
  return out.str();
}

// A canonical text form of what the loader produced, so that expectations read like the file.
inline std::string dump_services(const Config& c) {
  std::ostringstream out;
  for (const ServiceConfig& s : c.services) {
    out << "service " << s.name << " " << (s.family == dp::Family::v4 ? "v4" : "v6") << " "
        << dp::to_string(s.mode) << " affinity="
        << (s.affinity.client_ip ? "client_ip/" + std::to_string(s.affinity.timeout_s) : "none")
        << " no_backends=" << dp::to_string(s.no_backends)
        << " table=" << (s.table_size ? std::to_string(*s.table_size) : "default");
    if (s.new_connections.limited()) {
      out << " limit=" << s.new_connections.rate << "/s burst="
          << (s.new_connections.burst ? std::to_string(s.new_connections.burst) : "default");
    }
    out << "\n";
    for (const FrontendConfig& f : s.frontends) {
      out << "  frontend " << dp::to_string(f.kind) << " "
          << (f.address ? dp::to_string(*f.address) : "*") << " " << f.port << " "
          << dp::to_string(f.protocol) << "\n";
    }
    for (const dp::Backend& b : s.backends) {
      out << "  backend " << dp::backend_id(b.addr, b.port) << " weight=" << b.weight << " "
          << dp::to_string(b.state) << "\n";
    }
    for (const dp::IpPrefix& p : s.source_ranges)
      out << "  source " << dp::to_string(p) << "\n";
  }
  return out.str();
}

inline std::string dump_globals(const Config& c) {
  std::ostringstream out;
  out << "node";
  for (const dp::IpAddr& a : c.node_addresses)
    out << " " << dp::to_string(a);
  const dp::FlowTimeouts& t = c.timeouts;
  out << "\nmaglev " << c.table_size << "\nflow_table " << c.flow_capacity
      << " syn=" << t.tcp_syn_ms << " established=" << t.tcp_established_ms
      << " closing=" << t.tcp_closing_ms << " udp=" << t.udp_ms << " other=" << t.other_ms << "\n";
  return out.str();
}

}  // namespace magline::cfg::config_cases
