// `magline plan --output table`: the plan for people. One row per frontend, then what was
// skipped, the notes, what did not decode, and the provider's assignments and pools. Columns
// aligned with spaces, no colour, the plan's order (deterministic). plan_json stays the format
// for scripts; this one may change between versions.
//
// Pure functions of their arguments: any thread, no I/O.
#pragma once

#include <string>

#include "control/k8s/plan.hpp"

namespace magline::k8s {

std::string plan_table(const Plan& plan);

}  // namespace magline::k8s
