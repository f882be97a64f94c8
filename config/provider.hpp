// The configuration's `provider` section (docs/config.md): the address pools Magline assigns
// LoadBalancer IPs from (control/k8s/ipam.hpp). Internal to the config layer; config.hpp holds
// the types.
#pragma once

#include "config/config.hpp"
#include "config/json_reader.hpp"

namespace magline::cfg {

// Reads and checks `provider`: every pool named once, its addresses and avoided addresses
// parsed, no address in two pools.
void read_provider(const Node& node, Config& config);

}  // namespace magline::cfg
