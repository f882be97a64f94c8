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

}  // namespace magline::cfg::config_cases
