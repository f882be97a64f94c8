#include "control/lease_driver.hpp"

#include <pthread.h>
#include <utility>

#include "control/k8s_client/lease_client.hpp"

namespace magline::control {

namespace {

using Clock = std::chrono::steady_clock;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

}  // namespace

struct LeaseDriver::State {
  explicit State(LeaseDriverOptions o)
      : opts(std::move(o)), election(opts.identity, opts.timing), own(opts.identity, opts.timing) {}

  // One Lease's tryAcquireOrRenew: the GET, the decision, the write. Whether it was written.
  bool try_lease(k8s::LeaseElector& e, const std::string& name, bool node_lease,
                 k8s::MonoTime tried, std::string& rv, bool& failing);
  void release(k8s::LeaseElector& e, const std::string& name, bool node_lease,
               const std::string& rv);
  void observe_nodes();
  void run();

  // A line for the log, kept until the provider's thread takes it (one writer to its stream).
  void say(std::string line) {
    std::lock_guard lock(mu);
    lines.push_back(std::move(line));
  }

  LeaseDriverOptions opts;
  std::unique_ptr<k8s::ApiClient> api;
  std::unique_ptr<k8s::LeaseClient> client;
  k8s::LeaseElector election;
  k8s::LeaseElector own;
  k8s::LivenessTracker liveness;
  std::string election_rv, own_rv;  // after our last write of each
  bool election_failing = false, own_failing = false, list_failing = false;
  std::string said_state;  // the last leadership line said

  std::atomic<int64_t> lead_until{0};  // steady-clock ns: election.leading_until()
  std::atomic<int64_t> own_until{0};   // steady-clock ns: own.leading_until()
  mutable std::mutex mu;               // guards leader_seen, live and lines
  std::string leader_seen;
  std::vector<std::string> lines;
  std::vector<std::string> live;
  bool live_known = false;

  std::mutex wake_mu;
  std::condition_variable wake;
  bool stopping = false;
  bool release_on_stop = true;
  // The ApiClient's stop flag: raised by stop() to end a try in flight at once, lowered again
  // for the release (which is bounded by the renew deadline, as every request).
  std::atomic<bool> abort{false};
};

bool LeaseDriver::State::try_lease(k8s::LeaseElector& e, const std::string& name, bool node_lease,
                                   k8s::MonoTime tried, std::string& rv, bool& failing) {
  const k8s::LeaseOutcome got = client->get(opts.ns, name);
  std::optional<k8s::Lease> current;
  if (got.kind == k8s::LeaseOutcome::Kind::done) {
    current = got.lease;
  } else if (abort.load()) {
    return false;  // stopping: not a failure to report
  } else if (got.kind != k8s::LeaseOutcome::Kind::absent) {
    if (!failing) {
      say("magline: provider: reading Lease " + opts.ns + "/" + name + " failed (" + got.error +
          "); trying again");
    }
    failing = true;
    return false;
  }
  // Observed when the GET's answer is in (client-go too); our own renewals count from `tried`.
  const auto d = e.decide(current, Clock::now(), std::chrono::system_clock::now());
  if (d.kind == k8s::LeaseElector::Decision::Kind::wait) {
    failing = false;
    return false;
  }
  k8s::Lease lease{opts.ns, name, d.resource_version, {}, d.record};
  if (node_lease) lease.labels[kNodeLeaseLabel] = "true";
  const k8s::LeaseOutcome w = d.kind == k8s::LeaseElector::Decision::Kind::create
                                  ? client->create(lease)
                                  : client->update(lease);
  if (w.kind == k8s::LeaseOutcome::Kind::done) {
    e.written(w.lease->record, tried);
    rv = w.lease->resource_version;
    failing = false;
    return true;
  }
  // 409: another candidate wrote first; it is seen at the next try.
  if (w.kind != k8s::LeaseOutcome::Kind::conflict && !failing && !abort.load()) {
    say("magline: provider: writing Lease " + opts.ns + "/" + name + " failed (" + w.error +
        "); trying again");
    failing = true;
  }
  return false;
}

void LeaseDriver::State::release(k8s::LeaseElector& e, const std::string& name, bool node_lease,
                                 const std::string& rv) {
  k8s::Lease lease{opts.ns, name, rv, {}, e.release(std::chrono::system_clock::now())};
  if (node_lease) lease.labels[kNodeLeaseLabel] = "true";
  // A 409 means someone else wrote since: then it is not ours to release.
  const k8s::LeaseOutcome w = client->update(lease);
  if (w.kind != k8s::LeaseOutcome::Kind::done && w.kind != k8s::LeaseOutcome::Kind::conflict) {
    say("magline: provider: releasing Lease " + opts.ns + "/" + name + " failed (" + w.error + ")");
  }
}

void LeaseDriver::State::observe_nodes() {
  std::string error;
  const auto leases = client->list(opts.ns, std::string(kNodeLeaseLabel) + "=true", error);
  if (!leases) {
    if (abort.load()) return;
    if (!list_failing)
      say("magline: provider: listing node Leases failed (" + error + "); trying again");
    list_failing = true;
    return;
  }
  list_failing = false;
  liveness.observe(*leases, Clock::now());
  std::vector<std::string> now_live = liveness.live(Clock::now());
  {
    std::lock_guard lock(mu);
    if (live_known && now_live == live) return;
    live_known = true;
    live = now_live;
  }
  say("magline: provider: live nodes: " + joined(now_live));
}

void LeaseDriver::State::run() {
  const std::string own_name = kNodeLeasePrefix + opts.identity;
  std::unique_lock lock(wake_mu);
  while (!stopping) {
    lock.unlock();
    const k8s::MonoTime tried = Clock::now();
    try_lease(election, opts.lease_name, false, tried, election_rv, election_failing);
    lead_until.store(election.leading_until().time_since_epoch().count(),
                     std::memory_order_release);
    const bool leads = election.leading(Clock::now());
    {
      std::lock_guard g(mu);
      leader_seen = election.observed_holder();
    }
    // Said at the first try and whenever we start or stop leading, or another node does.
    const std::string& holder = election.observed_holder();
    std::string state = std::string(leads ? "leading" : "not leading") + " (Lease " + opts.ns +
                        "/" + opts.lease_name + ", identity " + opts.identity +
                        (leads ? "" : ", leader " + (holder.empty() ? "(none)" : holder)) + ")";
    if (state != said_state) {
      say("magline: provider: " + state);
      said_state = std::move(state);
    }
    try_lease(own, own_name, true, tried, own_rv, own_failing);
    own_until.store(own.leading_until().time_since_epoch().count(), std::memory_order_release);
    observe_nodes();
    lock.lock();
    wake.wait_until(lock, tried + opts.timing.retry_period, [&] { return stopping; });
  }
  lock.unlock();
  abort.store(false);
  if (!release_on_stop) return;
  // The provider has stopped writing before this. The election Lease is released when the
  // last record seen is ours (client-go's IsLeader), even past our renew deadline: the update is
  // conditional on the version we wrote, so one that another node changed since gets 409.
  const bool ours = election.observed_holder() == opts.identity && !election_rv.empty();
  lead_until.store(0, std::memory_order_release);
  own_until.store(0, std::memory_order_release);
  if (ours) release(election, opts.lease_name, false, election_rv);
  if (!own_rv.empty()) release(own, own_name, true, own_rv);
}

Result<std::unique_ptr<LeaseDriver>> LeaseDriver::start(const k8s::ApiConfig& api,
                                                        LeaseDriverOptions options) {
  // The host name is the default identity, and not every host name makes a Lease name.
  if (!k8s::lease_name_ok(kNodeLeasePrefix + options.identity)) {
    return Error{"provider: \"" + options.identity + "\" cannot identify this node (" +
                 kNodeLeasePrefix + "IDENTITY must be a DNS subdomain): set "
                 "provider.election.identity"};
  }
  auto state = std::make_unique<State>(std::move(options));
  // A request that outlasts the renew deadline is of no use to the leader (client-go bounds
  // each try by it too); whole seconds, as libcurl's options here take.
  k8s::ApiClientOptions o;
  const auto deadline = std::chrono::ceil<std::chrono::seconds>(state->opts.timing.renew_deadline);
  o.total_timeout = deadline;
  o.connect_timeout = std::min<std::chrono::milliseconds>(o.connect_timeout, deadline);
  auto client = k8s::ApiClient::create(api, o, &state->abort);
  if (!client) return Error{"provider: " + client.error().message};
  state->api = std::move(client).value();
  state->client = std::make_unique<k8s::LeaseClient>(*state->api);
  std::unique_ptr<LeaseDriver> d(new LeaseDriver(std::move(state)));
  d->thread_ = std::thread([s = d->state_.get()] { s->run(); });
  pthread_setname_np(d->thread_.native_handle(), "leases");
  return d;
}

LeaseDriver::LeaseDriver(std::unique_ptr<State> state) : state_(std::move(state)) {}

LeaseDriver::~LeaseDriver() {
  stop();
}

void LeaseDriver::stop(bool release) {
  if (!thread_.joinable()) return;
  state_->abort.store(true);  // before `stopping`: the thread lowers it once it sees that
  {
    std::lock_guard lock(state_->wake_mu);
    state_->stopping = true;
    state_->release_on_stop = release;
  }
  state_->wake.notify_all();
  thread_.join();
  state_->lead_until.store(0, std::memory_order_release);
  state_->own_until.store(0, std::memory_order_release);
}

bool LeaseDriver::holds_own_lease() const noexcept {
  const int64_t until = state_->own_until.load(std::memory_order_acquire);
  return Clock::now().time_since_epoch().count() < until;
}

bool LeaseDriver::leading() const noexcept {
  const int64_t until = state_->lead_until.load(std::memory_order_acquire);
  return Clock::now().time_since_epoch().count() < until;
}

std::string LeaseDriver::leader() const {
  std::lock_guard lock(state_->mu);
  return state_->leader_seen;
}

std::vector<std::string> LeaseDriver::take_log() {
  std::lock_guard lock(state_->mu);
  return std::exchange(state_->lines, {});
}

std::vector<std::string> LeaseDriver::live_nodes() const {
  std::lock_guard lock(state_->mu);
  return state_->live;
}

}  // namespace magline::control
