#include "control/announcer.hpp"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "control/announce.hpp"
#include "control/log.hpp"

namespace magline::control {

namespace {

constexpr auto kBirdTimeout = std::chrono::milliseconds(2000);
constexpr auto kRetry = std::chrono::milliseconds(1000);     // a configure BIRD did not take
constexpr auto kSessionsEvery = std::chrono::milliseconds(2000);

// The whole file or nothing: written beside it, then renamed over it.
Result<void> write_atomically(const std::string& path, const std::string& text) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) return Error{"cannot write " + tmp + ": " + std::strerror(errno)};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    return Error{"cannot rename " + tmp + " to " + path + ": " + std::strerror(e)};
  }
  return {};
}

}  // namespace

Announcer::Announcer(const cfg::BgpConfig& bgp, std::ostream& log)
    : bgp_(bgp), log_(log), bird_(bgp.bird_socket, kBirdTimeout) {}

Result<std::unique_ptr<Announcer>> Announcer::start(const cfg::BgpConfig& bgp,
                                                    std::ostream& log) {
  if (auto written = write_atomically(bgp.bird_config, bird_config(bgp, {})); !written) {
    return Error{"bgp: " + written.error().message};
  }
  std::unique_ptr<Announcer> a(new Announcer(bgp, log));
  a->wanted_ = 1;  // BIRD has not read the file yet
  a->thread_ = std::thread([p = a.get()] { p->run(); });
  pthread_setname_np(a->thread_.native_handle(), "bgp");
  return a;
}

Announcer::~Announcer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Announcer::set(std::vector<dp::IpAddr> addrs, std::string withdrawn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (addrs == report_.announced && withdrawn == report_.withdrawn) return;
    report_.announced = std::move(addrs);
    report_.withdrawn = std::move(withdrawn);
    ++wanted_;
  }
  cv_.notify_all();
}

bool Announcer::in_effect() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_ == wanted_;
}

AnnouncerReport Announcer::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  AnnouncerReport r = report_;
  r.in_effect = applied_ == wanted_;
  return r;
}

void Announcer::run() {
  auto next_sessions = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const bool behind = applied_ != wanted_;
    lock.unlock();
    const bool done = !behind || sync();
    if (std::chrono::steady_clock::now() >= next_sessions) {
      poll_sessions();
      next_sessions = std::chrono::steady_clock::now() + kSessionsEvery;
    }
    lock.lock();
    const auto until = done ? next_sessions : std::chrono::steady_clock::now() + kRetry;
    cv_.wait_until(lock, until, [this, done] { return stop_ || (done && applied_ != wanted_); });
  }
}

// Writes the latest addresses and has BIRD read them. Called without the lock.
bool Announcer::sync() {
  std::vector<dp::IpAddr> addrs;
  std::string withdrawn;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    addrs = report_.announced;
    withdrawn = report_.withdrawn;
    generation = wanted_;
  }
  Result<void> result = write_atomically(bgp_.bird_config, bird_config(bgp_, addrs));
  if (result) result = bird_.configure();
  std::lock_guard<std::mutex> lock(mu_);
  report_.bird_reachable = result.ok() || result.error().message.find("cannot connect") ==
                                              std::string::npos;
  if (!result) {
    ++report_.configure_failures;
    if (report_.last_error != result.error().message || !unreachable_said_) {
      log_ << log_warning << "magline: bgp: " << result.error().message
           << " (retrying every second)" << std::endl;
      unreachable_said_ = true;
    }
    report_.last_error = result.error().message;
    return false;
  }
  ++report_.configures;
  report_.last_error.clear();
  if (unreachable_said_) log_ << "magline: bgp: BIRD reconfigured again" << std::endl;
  unreachable_said_ = false;
  applied_ = generation;
  log_ << "magline: bgp: announcing " << addrs.size() << " address(es)"
       << (withdrawn.empty() ? "" : ", everything withdrawn: " + withdrawn) << std::endl;
  return applied_ == wanted_;
}

// BIRD's sessions, for the report; BIRD answering after an outage (a restart) gets the latest
// configuration again: it may have been started on an older file.
void Announcer::poll_sessions() {
  auto protocols = bird_.protocols();
  std::lock_guard<std::mutex> lock(mu_);
  if (!protocols) {
    if (report_.bird_reachable) {
      log_ << log_warning << "magline: bgp: " << protocols.error().message << std::endl;
    }
    report_.bird_reachable = false;
    report_.sessions.clear();
    applied_ = 0;  // configure again once it answers
    return;
  }
  report_.bird_reachable = true;
  report_.sessions.clear();
  for (BirdProtocol& p : *protocols) {
    if (p.proto == "BGP") report_.sessions.push_back(std::move(p));
  }
}

void bgp_metrics(Exposition& e, const AnnouncerReport& r) {
  e.sample("magline_bgp_bird_up", MetricType::gauge,
           "1 while BIRD answers on its control socket (bgp.bird_socket).", "",
           uint64_t(r.bird_reachable ? 1 : 0));
  e.sample("magline_bgp_in_effect", MetricType::gauge,
           "1 when BIRD runs a configuration with what Magline last asked to announce.", "",
           uint64_t(r.in_effect ? 1 : 0));
  e.sample("magline_bgp_withdrawn", MetricType::gauge,
           "1 while every address is withdrawn (data plane unhealthy, not ready, stopping).", "",
           uint64_t(r.withdrawn.empty() ? 0 : 1));
  e.sample("magline_bgp_announced_addresses", MetricType::gauge,
           "Addresses Magline asks BIRD to announce.", "", uint64_t(r.announced.size()));
  e.sample("magline_bgp_configures_total", MetricType::counter,
           "Configurations written for BIRD, by outcome: taken, or failed (refused, or BIRD "
           "unreachable; retried every second).",
           "outcome=\"ok\"", r.configures);
  e.sample("magline_bgp_configures_total", MetricType::counter, "", "outcome=\"failed\"",
           r.configure_failures);
  for (const BirdProtocol& p : r.sessions) {
    e.sample("magline_bgp_session_up", MetricType::gauge,
             "1 while a BGP session is established, by BIRD protocol (peer_ADDRESS).",
             "peer=\"" + label_escaped(p.name) + "\"",
             uint64_t(p.info.rfind("Established", 0) == 0 ? 1 : 0));
  }
}

nlohmann::ordered_json bgp_state_json(const AnnouncerReport& r) {
  nlohmann::ordered_json j;
  j["bird_reachable"] = r.bird_reachable;
  j["in_effect"] = r.in_effect;
  j["withdrawn"] =
      r.withdrawn.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r.withdrawn);
  nlohmann::ordered_json& announced = j["announced"] = nlohmann::ordered_json::array();
  for (const dp::IpAddr& a : r.announced) announced.push_back(dp::to_string(a));
  nlohmann::ordered_json& sessions = j["sessions"] = nlohmann::ordered_json::array();
  for (const BirdProtocol& p : r.sessions) {
    sessions.push_back({{"name", p.name}, {"state", p.state}, {"since", p.since},
                        {"info", p.info}});
  }
  j["configures"] = r.configures;
  j["configure_failures"] = r.configure_failures;
  if (!r.last_error.empty()) j["last_error"] = r.last_error;
  return j;
}

void DataplaneHealth::turn(uint64_t now_ms, const std::vector<uint64_t>& progress,
                           const std::vector<bool>& failed, const std::vector<bool>& links_up,
                           const std::vector<std::string>& port_names) {
  if (last_.size() != progress.size()) {
    last_ = progress;
    moved_ms_.assign(progress.size(), now_ms);
  }
  for (size_t w = 0; w < progress.size(); ++w) {
    if (progress[w] != last_[w]) {
      last_[w] = progress[w];
      moved_ms_[w] = now_ms;
    }
  }
  why_.clear();
  for (size_t i = 0; i < links_up.size(); ++i) {
    if (!links_up[i]) {
      why_ = "port " + (i < port_names.size() ? port_names[i] : std::to_string(i)) +
             ": link down";
      return;
    }
  }
  for (size_t w = 0; w < progress.size(); ++w) {
    if (w < failed.size() && failed[w]) {
      why_ = "worker " + std::to_string(w) + " failed";
      return;
    }
    if (now_ms - moved_ms_[w] > stall_ms_) {
      why_ = "worker " + std::to_string(w) + " stalled for " +
             std::to_string(now_ms - moved_ms_[w]) + " ms";
      return;
    }
  }
}

}  // namespace magline::control
