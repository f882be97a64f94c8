#include "dataplane/service.hpp"

#include <algorithm>

#include "dataplane/flow_key.hpp"

namespace magline::dp {

std::string_view to_string(Protocol p) noexcept {
  switch (p) {
    case Protocol::tcp: return "tcp";
    case Protocol::udp: return "udp";
    case Protocol::sctp: return "sctp";
  }
  return "?";
}

std::string_view to_string(FrontendKind k) noexcept {
  switch (k) {
    case FrontendKind::load_balancer: return "load_balancer";
    case FrontendKind::node_port: return "node_port";
    case FrontendKind::external_ip: return "external_ip";
  }
  return "?";
}

std::string_view to_string(ForwardMode m) noexcept {
  switch (m) {
    case ForwardMode::full_nat: return "full_nat";
    case ForwardMode::dnat: return "dnat";
    case ForwardMode::dsr_l2: return "dsr_l2";
  }
  return "?";
}

std::string_view to_string(BackendState s) noexcept {
  return s == BackendState::ready ? "ready" : "terminating";
}

std::string_view to_string(NoBackends n) noexcept {
  return n == NoBackends::reject ? "reject" : "drop";
}

std::string backend_id(const IpAddr& addr, uint16_t port) {
  const std::string a = to_string(addr);
  return (addr.family == Family::v4 ? a : "[" + a + "]") + ":" + std::to_string(port);
}

std::string to_string(const Frontend& f) {
  return backend_id(f.addr, f.port) + "/" + std::string(to_string(f.proto));
}

Result<std::shared_ptr<const ServiceState>> ServiceState::build(Service spec) {
  auto state = std::make_shared<ServiceState>();
  std::vector<std::string> ids;
  ids.reserve(spec.backends.size());
  for (const Backend& b : spec.backends) ids.push_back(backend_id(b.addr, b.port));

  auto weights_of = [&](BackendState usable) {
    std::vector<MaglevBackend> v;
    for (size_t i = 0; i < spec.backends.size(); ++i) {
      const Backend& b = spec.backends[i];
      v.push_back({ids[i], b.state == usable ? b.weight : 0});
    }
    return v;
  };
  std::vector<MaglevBackend> backends = weights_of(BackendState::ready);
  const bool any_ready = std::any_of(backends.begin(), backends.end(),
                                     [](const MaglevBackend& b) { return b.weight > 0; });
  if (!any_ready) {
    backends = weights_of(BackendState::terminating);
    state->serving_terminating_ = std::any_of(
        backends.begin(), backends.end(), [](const MaglevBackend& b) { return b.weight > 0; });
  }

  auto table = MaglevTable::build(backends, spec.table_size);
  if (!table) return Error{"service \"" + spec.name + "\": " + table.error().message};
  state->table_ = std::move(table).value();
  state->spec_ = std::move(spec);
  return std::shared_ptr<const ServiceState>(std::move(state));
}

bool ServiceState::source_allowed(const IpAddr& src) const noexcept {
  if (spec_.source_ranges.empty()) return true;
  return std::any_of(spec_.source_ranges.begin(), spec_.source_ranges.end(),
                     [&](const IpPrefix& p) { return p.contains(src); });
}

// ---- FrontendMap ----

FrontendMap::FrontendMap(size_t expected) {
  size_t cap = 16;
  while (cap < expected * 2) cap *= 2;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

FrontendMap::Key FrontendMap::key_of(const IpAddr& addr, uint16_t port, uint8_t proto) noexcept {
  return Key{addr.bytes, port, proto, addr.family};
}

size_t FrontendMap::home(const Key& k) const noexcept {
  const uint64_t tail = uint64_t(k.port) | uint64_t(k.proto) << 16 | uint64_t(k.family) << 24;
  return size_t(hash_fmix(hash_mum(load_le64(k.addr.data()) ^ kHashP0,
                                   load_le64(k.addr.data() + 8) ^ tail ^ kHashP1))) &
         mask_;
}

const ServiceState* FrontendMap::find(const IpAddr& addr, uint16_t port,
                                      uint8_t proto) const noexcept {
  const Key k = key_of(addr, port, proto);
  for (size_t i = home(k);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.value == nullptr) return nullptr;
    if (s.key == k) return s.value;
  }
}

void FrontendMap::insert(const Frontend& f, const ServiceState* s) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const Key k = key_of(f.addr, f.port, uint8_t(f.proto));
  for (size_t i = home(k);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.value == nullptr) {
      slot = Slot{k, s};
      ++size_;
      return;
    }
    if (slot.key == k) {
      slot.value = s;
      return;
    }
  }
}

// Backward-shift deletion (Knuth 6.4, algorithm R): no tombstones, so lookups stay short.
bool FrontendMap::erase(const Frontend& f) noexcept {
  const Key k = key_of(f.addr, f.port, uint8_t(f.proto));
  size_t i = home(k);
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].value == nullptr) return false;
    if (slots_[i].key == k) break;
  }
  for (size_t j = i;;) {
    j = (j + 1) & mask_;
    if (slots_[j].value == nullptr) break;
    const size_t h = home(slots_[j].key);
    // Move slot j back into the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = Slot{};
  --size_;
  return true;
}

void FrontendMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  mask_ = slots_.size() - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.value == nullptr) continue;
    for (size_t i = home(s.key);; i = (i + 1) & mask_) {
      if (slots_[i].value == nullptr) {
        slots_[i] = s;
        ++size_;
        break;
      }
    }
  }
}

// ---- Snapshot ----

Result<std::shared_ptr<const Snapshot>> Snapshot::build(std::vector<Service> services,
                                                        const Snapshot* previous) {
  std::sort(services.begin(), services.end(),
            [](const Service& a, const Service& b) { return a.name < b.name; });
  auto snap = std::make_shared<Snapshot>();
  size_t frontend_count = 0;
  for (size_t i = 0; i < services.size(); ++i) {
    if (i > 0 && services[i - 1].name == services[i].name) {
      return Error{"two services are named \"" + services[i].name + "\""};
    }
    frontend_count += services[i].frontends.size();
  }
  snap->frontends_ = FrontendMap(frontend_count);
  snap->services_.reserve(services.size());
  for (Service& spec : services) {
    const ServiceState* old = previous ? previous->find_by_name(spec.name) : nullptr;
    std::shared_ptr<const ServiceState> state;
    if (old != nullptr && old->spec() == spec) {
      state = *std::find_if(previous->services_.begin(), previous->services_.end(),
                            [&](const auto& s) { return s.get() == old; });
    } else {
      auto built = ServiceState::build(std::move(spec));
      if (!built) return built.error();
      state = std::move(built).value();
    }
    for (const Frontend& f : state->spec().frontends) {
      if (const ServiceState* other = snap->frontends_.find(f.addr, f.port, uint8_t(f.proto))) {
        return Error{"frontend " + to_string(f) + " is claimed by services \"" +
                     other->spec().name + "\" and \"" + state->spec().name + "\""};
      }
      snap->frontends_.insert(f, state.get());
    }
    snap->services_.push_back(std::move(state));
  }
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

const ServiceState* Snapshot::find_by_name(std::string_view name) const noexcept {
  auto it = std::lower_bound(services_.begin(), services_.end(), name,
                             [](const auto& s, std::string_view n) { return s->spec().name < n; });
  return it != services_.end() && (*it)->spec().name == name ? it->get() : nullptr;
}

}  // namespace magline::dp
