#include "control/k8s/probe_response.hpp"

#include <string>

namespace magline::k8s {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ], the version
// "HTTP/" DIGIT "." DIGIT. The code: 3 digits.
std::optional<ProbeResult> judge_line(std::string_view line) {
  const ProbeResult malformed{false, "malformed status line"};
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !digit(line[5]) || line[6] != '.' ||
      !digit(line[7]) || line[8] != ' ' || !digit(line[9]) || !digit(line[10]) ||
      !digit(line[11]) || (line.size() > 12 && line[12] != ' ')) {
    return malformed;
  }
  const std::string code(line.substr(9, 3));
  return ProbeResult{code == "200", code};
}

}  // namespace

std::optional<ProbeResult> judge_response(std::string_view received, bool closed) {
  const size_t end = received.find("\r\n");
  if (end != std::string_view::npos) return judge_line(received.substr(0, end));
  if (received.size() >= kProbeResponseMax) return ProbeResult{false, "malformed status line"};
  if (closed) {
    return ProbeResult{false,
                       received.empty() ? "closed before a status line" : "malformed status line"};
  }
  return std::nullopt;
}

}  // namespace magline::k8s
