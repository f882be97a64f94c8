#include "control/publisher.hpp"

#include <pthread.h>
#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

namespace magline::control {

Publisher::Publisher(const dp::Node& node, uint32_t frontend_slots, uint32_t backend_slots)
    : node_(node), frontend_slots_(frontend_slots), backend_slots_(backend_slots) {}

namespace {

std::string frontend_identity(const dp::Service& s, const dp::Frontend& f) {
  return s.name + '\n' + dp::to_string(f);
}

std::string backend_identity(const dp::Service& s, const dp::Backend& b) {
  return s.name + '\n' + dp::backend_id(b.addr, b.port);
}

}  // namespace

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
  for (size_t t = 1; t < threads; ++t) {
    pool.emplace_back(work);
    pthread_setname_np(pool.back().native_handle(), "maglev-build");
  }
  work();
  for (std::thread& t : pool) t.join();
}

std::optional<Publisher::Ids> Publisher::acquire_ids(const dp::Service& s, uint64_t now_ms) {
  Ids ids;
  bool all = true;
  for (const dp::Frontend& f : s.frontends) {
    const auto id = registry_.acquire(f, now_ms);
    const auto slot = frontend_slots_.acquire(frontend_identity(s, f));
    if (id) ids.frontend_ids.push_back(*id);
    if (slot) ids.frontend_slots.push_back(*slot);
    if (!id || !slot) {
      all = false;
      break;
    }
  }
  for (size_t i = 0; all && i < s.backends.size(); ++i) {
    const auto slot = backend_slots_.acquire(backend_identity(s, s.backends[i]));
    if (!slot) {
      all = false;
      break;
    }
    ids.backend_slots.push_back(*slot);
  }
  if (!all) {
    release_ids(ids, now_ms);
    return std::nullopt;
  }
  return ids;
}

// Gives back what acquire_ids() took for a state that was never handed to a worker: its slots
// may go back to the free list at once (nobody wrote their rows since they were reset).
void Publisher::release_ids(const Ids& ids, uint64_t now_ms) {
  for (uint16_t id : ids.frontend_ids) registry_.release(id, now_ms);
  for (uint32_t slot : ids.frontend_slots) frontend_slots_.release(slot);
  for (uint32_t slot : ids.backend_slots) backend_slots_.release(slot);
}

// The state as the Publisher hands it out: a shared_ptr whose deleter first posts the state's
// counter slots to returns_ (from whichever thread lets go last: the control thread after the
// grace periods, or the admin listener), then lets the state go.
std::shared_ptr<const dp::ServiceState> Publisher::returning(
    std::shared_ptr<const dp::ServiceState> s) {
  const dp::ServiceState* raw = s.get();
  return std::shared_ptr<const dp::ServiceState>(
      raw, [keep = std::move(s), returns = returns_](const dp::ServiceState* state) mutable {
        std::vector<uint32_t> fe, be;
        for (size_t i = 0; i < state->spec().frontends.size(); ++i) {
          fe.push_back(state->frontend_slot(i));
        }
        for (size_t i = 0; i < state->spec().backends.size(); ++i) {
          be.push_back(state->backend_slot(i));
        }
        returns->put(fe, be);
        keep.reset();
      });
}

size_t Publisher::reclaim(const ResetSlot& reset) {
  std::vector<uint32_t> fe, be;
  returns_->take(fe, be);
  size_t freed = 0;
  for (uint32_t slot : fe) {
    if (frontend_slots_.release(slot)) {
      reset(false, slot);
      ++freed;
    }
  }
  for (uint32_t slot : be) {
    if (backend_slots_.release(slot)) {
      reset(true, slot);
      ++freed;
    }
  }
  return freed;
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

void Publisher::index_dnat(const dp::ServiceState& s, int delta,
                           std::set<dp::Endpoint>& touched) {
  if (s.spec().mode != dp::ForwardMode::dnat) return;
  const auto& fs = s.spec().frontends;
  for (size_t i = 0; i < fs.size(); ++i) {
    if (fs[i].kind == dp::FrontendKind::node_port) continue;
    for (const dp::Backend& b : s.spec().backends) {
      if (b.addr.family != fs[i].addr.family) continue;
      const dp::Endpoint key{b.addr, b.port, uint8_t(fs[i].proto)};
      touched.insert(key);
      DnatBackend& d = dnat_backends_[key];
      const uint16_t id = s.frontend_id(i);
      if (delta > 0) {
        ++d.frontends[id];
      } else if (auto it = d.frontends.find(id); it != d.frontends.end() && --it->second == 0) {
        d.frontends.erase(it);
      }
    }
  }
}

void Publisher::dnat_updates(const std::set<dp::Endpoint>& touched,
                             std::vector<dp::Update>& out) {
  for (const dp::Endpoint& key : touched) {
    auto it = dnat_backends_.find(key);
    if (it == dnat_backends_.end()) continue;
    DnatBackend& d = it->second;
    std::optional<uint16_t> answer;
    if (d.frontends.size() == 1) answer = d.frontends.begin()->first;
    if (d.frontends.size() > 1) {
      // A backend that comes to serve a second frontend stays the first one's while it serves
      // that one: the first one's connections may hold no reply entry (the workers record one
      // for every connection of a frontend the map does not name).
      const bool keeps = d.told && *d.told != dp::kAmbiguousFrontend &&
                         d.frontends.count(*d.told) != 0;
      answer = keeps ? *d.told : dp::kAmbiguousFrontend;
    }
    if (answer != d.told) {
      dp::Update u;
      u.kind = dp::Update::Kind::dnat_return;
      u.dnat_return = {key, answer.value_or(0), answer.has_value()};
      out.push_back(u);
      d.told = answer;
    }
    if (d.frontends.empty()) dnat_backends_.erase(it);
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
    Ids ids;
    std::optional<Result<std::shared_ptr<const dp::ServiceState>>> state;
  };
  std::vector<Job> jobs;
  auto release_all = [&] {
    for (const Job& j : jobs) release_ids(j.ids, now_ms);
  };
  for (dp::Service& spec : upserts) {
    const dp::ServiceState* old = find_by_name(spec.name);
    if (old != nullptr && old->spec() == spec) {
      ++change.unchanged;
      continue;
    }
    std::optional<Ids> ids = acquire_ids(spec, now_ms);
    if (!ids) {
      release_all();
      return Error{"service \"" + spec.name + "\": more than " +
                   std::to_string(dp::FrontendRegistry::kCapacity) + " frontends or " +
                   std::to_string(backend_slots_.capacity()) + " backends in use"};
    }
    jobs.push_back({std::move(spec), std::move(*ids), std::nullopt});
  }
  build_states(jobs.size(), [&](size_t i) {
    Job& j = jobs[i];
    j.state = dp::ServiceState::build(
        std::move(j.spec),
        {&node_, j.ids.frontend_ids, j.ids.frontend_slots, j.ids.backend_slots});
  });
  for (Job& j : jobs) {
    if (!*j.state) {
      Error e = j.state->error();
      release_all();
      return e;
    }
  }
  // From here on nothing fails: a state's slots come back through returns_ when it is freed.
  std::vector<std::shared_ptr<const dp::ServiceState>> built;
  built.reserve(jobs.size());
  for (Job& j : jobs) built.push_back(returning(std::move(*j.state).value()));

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
  std::set<dp::Endpoint> dnat_touched;
  auto retire = [&](std::map<std::string, std::shared_ptr<const dp::ServiceState>,
                             std::less<>>::iterator it) {
    const dp::ServiceState& s = *it->second;
    change.updates.push_back({dp::Update::Kind::service, &s, nullptr, {}, {}, {}});
    unindex(s);
    index_dnat(s, -1, dnat_touched);
    for (size_t i = 0; i < s.spec().frontends.size(); ++i) {
      registry_.release(s.frontend_id(i), now_ms);
    }
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
    change.updates.push_back({dp::Update::Kind::service, nullptr, s.get(), {}, {}, {}});
    index(*s);
    index_dnat(*s, +1, dnat_touched);
    services_.emplace(s->spec().name, std::move(s));
    ++change.built;
  }
  // After the services: a worker translates to a frontend id only once the id is registered.
  dnat_updates(dnat_touched, change.updates);
  return change;
}

}  // namespace magline::control
