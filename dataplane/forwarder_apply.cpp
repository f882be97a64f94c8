// The control thread's updates, applied by the forwarder between bursts: services installed,
// replaced or removed (their frontends), neighbours learnt or forgotten, path MTUs learnt or
// forgotten, DNAT backends' frontends. Off the packet path.
#include "dataplane/forwarder.hpp"

namespace magline::dp {

// Every remembered answer of returns_alone() is stale now.
void Forwarder::returns_changed() noexcept {
  if (++returns_generation_ == 0) {
    return_memo_.fill(ReturnMemo{});
    returns_generation_ = 1;
  }
}

void Forwarder::apply(const Update& u) noexcept {
  ++counters_.updates_applied;
  if (u.kind == Update::Kind::neighbor) {
    const NeighborUpdate& n = u.neighbor;
    if (n.valid) {
      neighbors_.set(n.ip, Neighbor{n.mac, n.port});
    } else {
      neighbors_.erase(n.ip);
    }
    if (++neighbor_generation_ == 0) neighbor_generation_ = 1;  // every hint is stale now
    return;
  }
  if (u.kind == Update::Kind::path_mtu) {
    if (u.path_mtu.mtu != 0) {
      path_mtus_.set(u.path_mtu.backend, u.path_mtu.mtu);  // full: the node-wide MTU stands
    } else {
      path_mtus_.erase(u.path_mtu.backend);
    }
    return;
  }
  if (u.kind == Update::Kind::dnat_return) {
    const DnatReturnUpdate& r = u.dnat_return;
    if (r.valid) {
      // Full: this backend's replies without an entry are dropped as no_service.
      if (!dnat_returns_.set(r.backend, r.frontend)) ++counters_.dnat_returns_refused;
    } else {
      dnat_returns_.erase(r.backend);
    }
    returns_changed();
    return;
  }
  returns_changed();  // a backend slot may name another backend now
  if (u.old_state != nullptr) {
    // Drop the old state's frontends that still point to it (another update of the same batch
    // may already have given one to another service).
    const auto& fs = u.old_state->spec().frontends;
    for (size_t i = 0; i < fs.size(); ++i) {
      if (frontends_.find(fs[i].addr, fs[i].port, uint8_t(fs[i].proto)).service == u.old_state) {
        frontends_.erase(fs[i]);
        snat_.frontend_removed(fs[i].port);
      }
      FrontendHit& hit = by_id_[u.old_state->frontend_id(i)];
      if (hit.service == u.old_state) hit = {};
    }
  }
  if (u.new_state != nullptr) {
    const auto& fs = u.new_state->spec().frontends;
    for (size_t i = 0; i < fs.size(); ++i) {
      if (frontends_.find(fs[i].addr, fs[i].port, uint8_t(fs[i].proto)).service == nullptr) {
        snat_.frontend_added(fs[i].port);
      }
      frontends_.insert(fs[i], u.new_state, uint16_t(i));
      by_id_[u.new_state->frontend_id(i)] = {u.new_state, uint16_t(i),
                                              u.new_state->frontend_slot(i)};
    }
  }
}

}  // namespace magline::dp
