// `magline table`: each service's frontends, Maglev table size, backends and the slots each
// holds, as text or JSON; with `dump`, the whole slot array. Schema in docs/cli.md.
#pragma once

#include <string>

#include "dataplane/service.hpp"

namespace magline::cli {

std::string table_text(const dp::Snapshot& snapshot, bool dump);
std::string table_json(const dp::Snapshot& snapshot, bool dump);

}  // namespace magline::cli
