#include "control/publisher.hpp"

#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

namespace magline::control {

Publisher::Publisher(const dp::Node& node, size_t workers) : node_(node), workers_(workers) {}

// Runs build(0..n-1). A resync builds thousands of Maglev tables, each independent of the others
// and pure: they are spread over a few threads when there are enough to be worth starting them.
void Publisher::build_states(size_t n, const std::function<void(size_t)>& build) const {
  const size_t threads = std::min<size_t>(builder_threads_, n / kPerThread);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) build(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) build(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

std::vector<uint16_t> Publisher::acquire_ids(const dp::Service& s, uint64_t now_ms) {
  std::vector<uint16_t> ids;
  for (const dp::Frontend& f : s.frontends) {
    const auto id = registry_.acquire(f, now_ms);
    if (!id) break;
    ids.push_back(*id);
  }
  return ids;
}

void Publisher::release_ids(const dp::ServiceState& s, uint64_t now_ms) {
  for (size_t i = 0; i < s.spec().frontends.size(); ++i) registry_.release(s.frontend_id(i), now_ms);
}

void Publisher::index(const dp::ServiceState& s) {
  const auto& fs = s.spec().frontends;
  for (size_t i = 0; i < fs.size(); ++i) {
    frontends_.insert(fs[i], &s, uint16_t(i));
    ++vips_[fs[i].addr];
  }
}

void Publisher::unindex(const dp::ServiceState& s) {
  for (const dp::Frontend& f : s.spec().frontends) {
    if (frontends_.find(f.addr, f.port, uint8_t(f.proto)).service == &s) frontends_.erase(f);
    auto it = vips_.find(f.addr);
    if (it != vips_.end() && --it->second == 0) vips_.erase(it);
  }
}

const dp::ServiceState* Publisher::find_by_name(std::string_view name) const noexcept {
  auto it = services_.find(name);
  return it == services_.end() ? nullptr : it->second.get();
}

dp::ServiceList Publisher::services() const {
  dp::ServiceList out;
  out.reserve(services_.size());
  for (const auto& [name, s] : services_) out.push_back(s);
  return out;
}

Result<Change> Publisher::publish(std::vector<dp::Service> services, uint64_t now_ms) {
  std::set<std::string_view> wanted;
  for (const dp::Service& s : services) wanted.insert(s.name);
  std::vector<std::string> removals;
  for (const auto& [name, s] : services_) {
    if (!wanted.count(name)) removals.push_back(name);
  }
  return update(std::move(services), removals, now_ms);
}

Result<Change> Publisher::update(std::vector<dp::Service> upserts,
                                 const std::vector<std::string>& removals, uint64_t now_ms) {
  Change change;
  // Which names this change touches: a frontend held by one of them may be claimed anew.
  std::set<std::string_view> touched;
  for (const std::string& name : removals) {
    if (!touched.insert(name).second) return Error{"service \"" + name + "\" is removed twice"};
  }
  for (const dp::Service& s : upserts) {
    if (!touched.insert(s.name).second) {
      return Error{"two services are named \"" + s.name + "\""};
    }
  }
  std::unordered_map<std::string, const std::string*> claimed;  // frontend -> new owner's name
  for (const dp::Service& s : upserts) {
    for (const dp::Frontend& f : s.frontends) {
      const std::string key = dp::to_string(f);
      const std::string* other = nullptr;
      if (auto [it, fresh] = claimed.emplace(key, &s.name); !fresh) {
        other = it->second;
      } else if (const dp::ServiceState* held = owner(f);
                 held != nullptr && !touched.count(held->spec().name)) {
        other = &held->spec().name;
      }
      if (other != nullptr) {
        return Error{"frontend " + key + " is claimed by services \"" + *other + "\" and \"" +
                     s.name + "\""};
      }
    }
  }

  // Build what changed (ids first: the registry is not shared with the builders); give the ids
  // back if anything fails.
  struct Job {
    dp::Service spec;
    std::vector<uint16_t> ids;
    std::optional<Result<std::shared_ptr<const dp::ServiceState>>> state;
  };
  std::vector<Job> jobs;
  auto release_all = [&] {
    for (const Job& j : jobs) {
      for (uint16_t id : j.ids) registry_.release(id, now_ms);
    }
  };
  for (dp::Service& spec : upserts) {
    const dp::ServiceState* old = find_by_name(spec.name);
    if (old != nullptr && old->spec() == spec) {
      ++change.unchanged;
      continue;
    }
    std::vector<uint16_t> ids = acquire_ids(spec, now_ms);
    const bool all = ids.size() == spec.frontends.size();
    const std::string name = spec.name;
    jobs.push_back({std::move(spec), std::move(ids), std::nullopt});
    if (!all) {
      release_all();
      return Error{"service \"" + name + "\": more than " +
                   std::to_string(dp::FrontendRegistry::kCapacity) + " frontends in use"};
    }
  }
  build_states(jobs.size(), [&](size_t i) {
    Job& j = jobs[i];
    j.state = dp::ServiceState::build(std::move(j.spec), {&node_, workers_, j.ids});
  });
  std::vector<std::shared_ptr<const dp::ServiceState>> built;
  built.reserve(jobs.size());
  for (Job& j : jobs) {
    if (!*j.state) {
      Error e = j.state->error();
      release_all();
      return e;
    }
    built.push_back(std::move(*j.state).value());
  }

  // Addresses that come into use with this change, to be announced.
  std::set<dp::IpAddr> fresh;
  for (const auto& s : built) {
    for (const dp::Frontend& f : s->spec().frontends) {
      if (!is_vip(f.addr)) fresh.insert(f.addr);
    }
  }
  change.new_vips.assign(fresh.begin(), fresh.end());

  // Valid. Every worker first drops the frontends of services that change or go, then installs
  // the services that change or come; it applies a publish's updates together, between two
  // bursts, so a frontend that moves from one service to another is never without one.
  auto retire = [&](std::map<std::string, std::shared_ptr<const dp::ServiceState>,
                             std::less<>>::iterator it) {
    const dp::ServiceState& s = *it->second;
    change.updates.push_back({dp::Update::Kind::service, &s, nullptr, {}});
    unindex(s);
    release_ids(s, now_ms);
    change.retired.push_back(std::move(it->second));
    services_.erase(it);
  };
  for (const std::string& name : removals) {
    auto it = services_.find(name);
    if (it == services_.end()) continue;
    retire(it);
    ++change.removed;
  }
  for (const auto& s : built) {
    if (auto it = services_.find(s->spec().name); it != services_.end()) retire(it);
  }
  for (auto& s : built) {
    change.updates.push_back({dp::Update::Kind::service, nullptr, s.get(), {}});
    index(*s);
    services_.emplace(s->spec().name, std::move(s));
    ++change.built;
  }
  return change;
}

}  // namespace magline::control
