// What the config loader's tests share: a file around service objects, and the loader's
// verdict on a text (config_test.cpp, config_errors_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

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

}  // namespace magline::cfg::config_cases
