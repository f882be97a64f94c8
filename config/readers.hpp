// What config.cpp and config_dataplane.cpp share of the configuration's reading: the readers
// of values (addresses, prefixes, MACs, names) and the `dataplane` section's reader. Not for
// other users: the configuration's interface is config.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "config/json_reader.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/node.hpp"

namespace magline::cfg::detail {

inline constexpr uint64_t kMaxPort = 65535;

// Addresses, read from strings by the data plane's parsers; a failure is recorded on `node`.
std::optional<dp::IpAddr> read_ip(const Node& node);
std::optional<dp::IpPrefix> read_prefix(const Node& node);  // "ADDR/LEN", no bits past LEN
std::optional<dp::IfAddr> read_if_addr(const Node& node);
std::optional<dp::MacAddr> read_mac(const Node& node);
// A service's or port's name: not empty, no spaces or control characters.
void check_name(const Node& node, const std::string& name);

void read_dataplane(const Node& node, Config& config);
void read_bgp(const Node& node, Config& config);

}  // namespace magline::cfg::detail
