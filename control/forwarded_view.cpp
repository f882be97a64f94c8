#include "control/forwarded_view.hpp"

namespace magline::control {

namespace {

// A watched Service's translated services are named "namespace/name:port/...": the Service is
// what comes before the ':'. The configuration file's services have other names; they count
// under those, harmlessly.
std::string service_key(const std::string& name) { return name.substr(0, name.find(':')); }

int lb_frontends(const dp::ServiceState* s) {
  if (s == nullptr) return 0;
  int n = 0;
  for (const dp::Frontend& f : s->spec().frontends) n += f.kind == dp::FrontendKind::load_balancer;
  return n;
}

}  // namespace

void ForwardedView::add_deltas(const Change& change, std::map<std::string, int>& deltas) {
  for (const dp::Update& u : change.updates) {
    if (u.kind != dp::Update::Kind::service) continue;
    if (const int n = lb_frontends(u.old_state)) deltas[service_key(u.old_state->spec().name)] -= n;
    if (const int n = lb_frontends(u.new_state)) deltas[service_key(u.new_state->spec().name)] += n;
  }
}

void ForwardedView::apply(std::map<std::string, int>& deltas) {
  std::lock_guard lock(mu_);
  for (const auto& [key, d] : deltas) {
    if ((count_[key] += d) <= 0) count_.erase(key);
  }
  deltas.clear();
}

}  // namespace magline::control
