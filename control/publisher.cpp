#include "control/publisher.hpp"

#include <set>
#include <unordered_map>

namespace magline::control {

Publisher::Publisher(const dp::Node& node, size_t workers) : node_(node), workers_(workers) {}

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

  // Build what changed; give ids back if anything fails.
  std::vector<std::shared_ptr<const dp::ServiceState>> built;
  auto undo = [&](Error e) -> Result<Change> {
    for (const auto& s : built) release_ids(*s, now_ms);
    return e;
  };
  for (dp::Service& spec : upserts) {
    const dp::ServiceState* old = find_by_name(spec.name);
    if (old != nullptr && old->spec() == spec) {
      ++change.unchanged;
      continue;
    }
    const std::vector<uint16_t> ids = acquire_ids(spec, now_ms);
    if (ids.size() != spec.frontends.size()) {
      for (uint16_t id : ids) registry_.release(id, now_ms);
      return undo(Error{"service \"" + spec.name + "\": more than " +
                        std::to_string(dp::FrontendRegistry::kCapacity) + " frontends in use"});
    }
    auto state = dp::ServiceState::build(std::move(spec), {&node_, workers_, ids});
    if (!state) {
      for (uint16_t id : ids) registry_.release(id, now_ms);
      return undo(state.error());
    }
    built.push_back(std::move(state).value());
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
