// What this binary is: `magline version` and magline_build_info. The version, build type and
// compiler are fixed when meson configures; the commit when it builds (vcs_tag: "unknown"
// outside a git checkout). The DPDK version comes from the DPDK adapter (dpdk::version()): this
// layer names no DPDK header.
#pragma once

#include <string>

#include "control/exposition.hpp"

namespace magline::control {

struct BuildInfo {
  std::string version;    // meson's project version: "0.1.0"
  std::string commit;     // `git describe --always --dirty` of the tree built, or "unknown"
  std::string buildtype;  // meson's: debug, debugoptimized, release, ...
  std::string compiler;   // "gcc 12.2.0"
  std::string dpdk;       // "DPDK 22.11.4"; empty until the caller fills it
};

// This binary's, with `dpdk` empty.
BuildInfo build_info();

// magline_build_info{version,commit,buildtype,dpdk} 1.
void build_info_metrics(Exposition& e, const BuildInfo& b);

}  // namespace magline::control
