// Announcement over BGP through BIRD (docs/announce.md), driven from a thread of its own: BIRD's
// control socket blocks, the control thread never does.
//
// The control thread says what should be announced (set(); control/announce.hpp computes it);
// the announcer writes BIRD's whole configuration when it changed (a temporary file renamed over
// `bgp.bird_config`: BIRD never reads half a file), asks BIRD to read it, and retries every
// second until BIRD has. Every 2 s it also reads BIRD's protocols, for /state and /metrics.
// BIRD restarting (crash, upgrade) reads the file it was started with, so it announces what
// Magline last wrote; the announcer configures it again when it answers after an outage.
//
// DataplaneHealth says when everything must be withdrawn: a port's link down, or a worker whose
// loop stopped turning.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "control/bird_client.hpp"
#include "control/exposition.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

struct AnnouncerReport {
  bool bird_reachable = false;  // BIRD answered the latest command
  bool in_effect = false;       // BIRD runs a configuration with the latest addresses
  std::vector<dp::IpAddr> announced;  // the latest addresses asked for
  std::string withdrawn;        // why everything is withdrawn ("" when it is not)
  std::vector<BirdProtocol> sessions;  // the BGP sessions as BIRD reported them last
  uint64_t configures = 0;          // configurations BIRD took
  uint64_t configure_failures = 0;  // refused, or BIRD unreachable
  std::string last_error;
};

// The report's /metrics families and /state section (docs/metrics.md, docs/announce.md).
void bgp_metrics(Exposition& e, const AnnouncerReport& r);
nlohmann::ordered_json bgp_state_json(const AnnouncerReport& r);

class Announcer {
 public:
  // Writes BIRD's configuration with nothing announced (so that BIRD can start on it), then
  // starts the thread. Errors: the file cannot be written.
  static Result<std::unique_ptr<Announcer>> start(const cfg::BgpConfig& bgp, std::ostream& log);
  ~Announcer();  // stops the thread; the file stays as last written

  // What to announce (empty: nothing), and why everything is withdrawn when it is (for /state
  // and the log). Returns at once; the thread catches up.
  void set(std::vector<dp::IpAddr> addrs, std::string withdrawn = "");
  // Whether BIRD runs a configuration with the latest set() (the drain waits for it).
  bool in_effect() const;
  AnnouncerReport report() const;

 private:
  Announcer(const cfg::BgpConfig& bgp, std::ostream& log);
  void run();
  bool sync();  // writes and configures when needed; whether BIRD has the latest
  void poll_sessions();

  cfg::BgpConfig bgp_;
  std::ostream& log_;
  BirdClient bird_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t wanted_ = 0;   // generation of the latest set()
  uint64_t applied_ = 0;  // generation BIRD runs
  AnnouncerReport report_;
  bool unreachable_said_ = false;
  std::thread thread_;
};

// Whether the data plane can take traffic, for BGP: every port's link up, no worker failed,
// and every worker's counters published within `stall_ms` (they are about every 100 ms while
// its loop turns). Pure; the control loop feeds it each turn.
class DataplaneHealth {
 public:
  explicit DataplaneHealth(uint64_t stall_ms = 1000) : stall_ms_(stall_ms) {}
  void turn(uint64_t now_ms, const std::vector<uint64_t>& progress,
            const std::vector<bool>& failed, const std::vector<bool>& links_up,
            const std::vector<std::string>& port_names);
  bool healthy() const noexcept { return why_.empty(); }
  // Why not (which port, which worker), or empty.
  const std::string& why() const noexcept { return why_; }

 private:
  uint64_t stall_ms_;
  std::vector<uint64_t> last_;
  std::vector<uint64_t> moved_ms_;
  std::string why_;
};

}  // namespace magline::control
