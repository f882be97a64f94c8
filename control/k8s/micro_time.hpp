// MicroTime (meta/v1), the time stamp of Leases and Events: RFC 3339 in UTC with microseconds,
// as the API server writes it, "2026-12-02T17:00:00.123456Z". Pure.
#pragma once

#include <chrono>
#include <string>

namespace magline::k8s {

std::string micro_time(std::chrono::system_clock::time_point t);

}  // namespace magline::k8s
