// `magline replay`: the real forwarding pipeline (Forwarder and slow path, one worker) over a
// capture, offline. Every frame of IN enters on the configuration's first port; everything
// Magline would transmit (forwarded frames, ARP and NDP answers and requests, rejections) is
// written to OUT with the input frame's timestamp. The clock is the capture's: timeouts behave
// as they would have at that pace. Prints the counters as JSON.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace magline::control {

struct ReplayOptions {
  std::optional<std::string> config_path;
  std::string in;
  std::string out;
};

int replay(const ReplayOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace magline::control
