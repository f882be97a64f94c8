#include "control/publisher.hpp"

namespace magline::control {

Publisher::Publisher(const dp::Node& node, size_t workers)
    : node_(node), workers_(workers), current_(*dp::Snapshot::build({})) {}

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

Result<Change> Publisher::publish(std::vector<dp::Service> services, uint64_t now_ms) {
  Change change;
  std::vector<std::shared_ptr<const dp::ServiceState>> states;
  std::vector<std::shared_ptr<const dp::ServiceState>> built;  // new this time: undone on error
  auto undo = [&](Error e) -> Result<Change> {
    for (const auto& s : built) release_ids(*s, now_ms);
    return e;
  };
  for (dp::Service& spec : services) {
    const dp::ServiceState* old = current_->find_by_name(spec.name);
    if (old != nullptr && old->spec() == spec) {
      for (const auto& s : current_->services()) {
        if (s.get() == old) states.push_back(s);
      }
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
    built.push_back(*state);
    states.push_back(*state);
  }
  auto next = dp::Snapshot::assemble(states);
  if (!next) return undo(next.error());

  // Valid. Every worker first drops the frontends of services that change or go, then installs
  // the services that change or come; it applies a publish's updates together, between two
  // bursts, so a frontend that moves from one service to another is never without one.
  std::vector<dp::Update> installs;
  for (const auto& s : (*next)->services()) {
    const dp::ServiceState* old = current_->find_by_name(s->spec().name);
    if (old == s.get()) continue;
    installs.push_back({dp::Update::Kind::service, nullptr, s.get(), {}});
    ++change.built;
  }
  for (const auto& s : current_->services()) {
    const dp::ServiceState* now = (*next)->find_by_name(s->spec().name);
    if (now == s.get()) continue;
    if (now == nullptr) ++change.removed;
    change.updates.push_back({dp::Update::Kind::service, s.get(), nullptr, {}});
    release_ids(*s, now_ms);
    change.retired.push_back(s);
  }
  change.updates.insert(change.updates.end(), installs.begin(), installs.end());
  current_ = std::move(next).value();
  return change;
}

}  // namespace magline::control
