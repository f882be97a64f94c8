// What a health-check probe's answer means (docs/k8s.md "Health checks of node targets"): the
// status line alone decides, as kube-proxy's health server puts the verdict in the status
// (200: local ready endpoints, 503: none) and cloud load balancers read only that. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "control/k8s/health_checks.hpp"

namespace magline::k8s {

// The most a probe reads: a status line longer than this is malformed (kube-proxy's is 17 bytes).
inline constexpr size_t kProbeResponseMax = 1024;

// Judges `received`, the first bytes of the response (at most kProbeResponseMax), `closed`
// when the peer closed after them. std::nullopt: the status line is not complete yet, read on.
// Passes on "HTTP/1.x 200" only; any other well-formed status fails with its code ("503"),
// anything else with "malformed status line" or "closed before a status line".
std::optional<ProbeResult> judge_response(std::string_view received, bool closed);

}  // namespace magline::k8s
