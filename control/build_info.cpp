#include "control/build_info.hpp"

#include "control/build_commit.h"
#include "control/build_config.h"

namespace magline::control {

BuildInfo build_info() {
  return {MAGLINE_VERSION, MAGLINE_COMMIT, MAGLINE_BUILDTYPE, MAGLINE_COMPILER, ""};
}

void build_info_metrics(Exposition& e, const BuildInfo& b) {
  e.sample("magline_build_info", MetricType::gauge,
           "1, labelled with the version, git commit, meson build type and DPDK version.",
           "version=\"" + label_escaped(b.version) + "\",commit=\"" + label_escaped(b.commit) +
               "\",buildtype=\"" + label_escaped(b.buildtype) + "\",dpdk=\"" +
               label_escaped(b.dpdk) + "\"",
           uint64_t{1});
}

}  // namespace magline::control
