// Magline's configuration file: JSON, every field documented in docs/config.md.
//
// Loading is all or nothing: a Config is returned only when every field is valid, and an error
// names the file, the field's path (e.g. `services[0].backends[2].port`) and what was expected.
// Unknown and duplicate keys are errors, so a typo never passes silently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/result.hpp"
#include "dataplane/service.hpp"

namespace magline::cfg {

struct FrontendConfig {
  dp::FrontendKind kind = dp::FrontendKind::load_balancer;
  std::optional<dp::IpAddr> address;  // absent for node_port: every node address of the family
  uint16_t port = 0;
  dp::Protocol protocol = dp::Protocol::tcp;
};

struct ServiceConfig {
  std::string name;
  dp::Family family = dp::Family::v4;  // from the addresses; one family per service
  dp::ForwardMode mode = dp::ForwardMode::full_nat;
  std::vector<FrontendConfig> frontends;
  std::vector<dp::Backend> backends;
  dp::SessionAffinity affinity;
  std::vector<dp::IpPrefix> source_ranges;
  dp::NoBackends no_backends = dp::NoBackends::reject;
  std::optional<uint32_t> table_size;  // overrides maglev.table_size
};

struct Config {
  std::string source;  // the file it came from, or "<embedded default>"
  std::vector<dp::IpAddr> node_addresses;
  uint32_t table_size = dp::kDefaultMaglevSize;
  uint64_t flow_capacity = 1u << 20;  // per worker
  dp::FlowTimeouts timeouts;
  std::vector<ServiceConfig> services;
};

inline constexpr std::string_view kEmbeddedSource = "<embedded default>";

// Parses and validates `text`; `source` names it in error messages.
Result<Config> parse_config(std::string_view text, std::string_view source);

// Reads and parses a file. Errors start with the path.
Result<Config> load_config(const std::string& path);

// The configuration built into the binary (config/default.json), used when none is given.
std::string_view embedded_default_config() noexcept;

// The services to forward: node_port frontends expanded over the node addresses of the
// service's family, the table size resolved. Order as in the file.
std::vector<dp::Service> services_of(const Config& config);

}  // namespace magline::cfg
