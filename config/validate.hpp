// The checks that look at more than one field: the family rule, node_port frontends against the
// node addresses, duplicates, what dsr_l2 can forward, table sizes against backend counts.
// Internal to the config layer.
#pragma once

#include "config/config.hpp"
#include "config/json_reader.hpp"

namespace magline::cfg {

// Runs on a config whose every field has been read without error. Sets each service's family.
// Records the first problem in `errors`.
void validate(Config& config, Errors& errors);

}  // namespace magline::cfg
