#include "dataplane/service.hpp"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "dataplane/flow_key.hpp"
#include "dataplane/linear_probe.hpp"

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
    case ForwardMode::ipip: return "ipip";
    case ForwardMode::gue: return "gue";
  }
  return "?";
}

std::string_view to_string(BackendState s) noexcept {
  return s == BackendState::ready ? "ready" : "terminating";
}

std::string_view to_string(NoBackends n) noexcept {
  return n == NoBackends::reject ? "reject" : "drop";
}

std::string_view to_string(SynProxy p) noexcept {
  switch (p) {
    case SynProxy::automatic: return "auto";
    case SynProxy::on: return "on";
    case SynProxy::off: return "off";
  }
  return "?";
}

std::string backend_id(const IpAddr& addr, uint16_t port) {
  const std::string a = to_string(addr);
  return (addr.family == Family::v4 ? a : "[" + a + "]") + ":" + std::to_string(port);
}

std::string to_string(const Frontend& f) {
  return backend_id(f.addr, f.port) + "/" + std::string(to_string(f.proto));
}

Result<std::shared_ptr<const ServiceState>> ServiceState::build(Service spec,
                                                               const ServiceBuild& opts) {
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

  state->id_ = uint32_t(hash_bytes(reinterpret_cast<const uint8_t*>(spec.name.data()),
                                   spec.name.size(), kFlowHashSeed));
  for (const Backend& b : spec.backends) {
    state->per_backend_.push_back(
        {b.addr.bytes, b.port, opts.node ? opts.node->resolve(b.addr) : std::nullopt, 0});
  }
  state->n_backends_ = state->per_backend_.size();
  state->by_identity_.resize(spec.backends.size());
  std::iota(state->by_identity_.begin(), state->by_identity_.end(), uint16_t{0});
  std::sort(state->by_identity_.begin(), state->by_identity_.end(), [&](uint16_t a, uint16_t b) {
    return std::tie(spec.backends[a].addr.bytes, spec.backends[a].port) <
           std::tie(spec.backends[b].addr.bytes, spec.backends[b].port);
  });
  if (opts.frontend_ids.size() == spec.frontends.size()) {
    state->frontend_ids_ = opts.frontend_ids;
  } else {
    state->frontend_ids_.resize(spec.frontends.size());
    std::iota(state->frontend_ids_.begin(), state->frontend_ids_.end(), uint16_t{0});
  }

  auto slots = [](const std::vector<uint32_t>& given, size_t n) {
    if (given.size() == n) return given;
    std::vector<uint32_t> v(n);
    std::iota(v.begin(), v.end(), 0u);
    return v;
  };
  state->frontend_slots_ = slots(opts.frontend_slots, spec.frontends.size());
  const std::vector<uint32_t> backend_slots = slots(opts.backend_slots, spec.backends.size());
  for (size_t i = 0; i < backend_slots.size(); ++i) state->per_backend_[i].slot = backend_slots[i];
  state->spec_ = std::move(spec);
  return std::shared_ptr<const ServiceState>(std::move(state));
}

int ServiceState::find_backend(const std::array<uint8_t, 16>& addr,
                               uint16_t port) const noexcept {
  auto it = std::lower_bound(by_identity_.begin(), by_identity_.end(), std::tie(addr, port),
                             [&](uint16_t i, const auto& key) {
                               return std::tie(spec_.backends[i].addr.bytes,
                                               spec_.backends[i].port) < key;
                             });
  if (it == by_identity_.end()) return -1;
  const Backend& b = spec_.backends[*it];
  return b.addr.bytes == addr && b.port == port ? int(*it) : -1;
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

// One 128-bit multiply, folded, mixes enough: the keys come from the configuration or the API
// server, not from packets, so no one can aim them at one slot (packets only look up).
size_t FrontendMap::home(uint64_t lo, uint64_t hi, uint16_t port, uint8_t proto,
                         Family family) const noexcept {
  const uint64_t tail = uint64_t(port) | uint64_t(proto) << 16 | uint64_t(family) << 24;
  return size_t(hash_mum(lo ^ kHashP0, hi ^ tail ^ kHashP1)) & mask_;
}

size_t FrontendMap::home(const Key& k) const noexcept {
  return home(load_le64(k.addr.data()), load_le64(k.addr.data() + 8), k.port, k.proto, k.family);
}

size_t FrontendMap::addr_bucket(uint64_t lo, uint64_t hi, Family family) noexcept {
  return size_t(hash_mum(lo ^ kHashP0, hi ^ uint64_t(family) ^ kHashP1)) & (kAddrBuckets - 1);
}

size_t FrontendMap::addr_bucket(const IpAddr& addr) noexcept {
  return addr_bucket(load_le64(addr.data()), load_le64(addr.data() + 8), addr.family);
}

FrontendHit FrontendMap::find(const std::array<uint8_t, 16>& addr, Family family, uint16_t port,
                              uint8_t proto) const noexcept {
  const uint64_t lo = load_le64(addr.data()), hi = load_le64(addr.data() + 8);
  if (addr_count_[addr_bucket(lo, hi, family)] == 0) return {};
  for (size_t i = home(lo, hi, port, proto, family);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.value == nullptr) return {};
    if (s.key.matches(lo, hi, port, proto, family)) return {s.value, s.index, s.counter_slot};
  }
}

void FrontendMap::insert(const Frontend& f, const ServiceState* s, uint16_t index) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const Key k = key_of(f.addr, f.port, uint8_t(f.proto));
  for (size_t i = home(k);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.value == nullptr) {
      slot = Slot{k, s, index, s->frontend_slot(index)};
      ++size_;
      ++addr_count_[addr_bucket(f.addr)];
      return;
    }
    if (slot.key == k) {
      slot.value = s;
      slot.index = index;
      slot.counter_slot = s->frontend_slot(index);
      return;
    }
  }
}

bool FrontendMap::erase(const Frontend& f) noexcept {
  const Key k = key_of(f.addr, f.port, uint8_t(f.proto));
  size_t i = home(k);
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].value == nullptr) return false;
    if (slots_[i].key == k) break;
  }
  backward_shift_erase(slots_, mask_, i, [](const Slot& s) { return s.value != nullptr; },
                       [this](const Slot& s) { return home(s.key); });
  --size_;
  --addr_count_[addr_bucket(f.addr)];
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
                                                        const Snapshot* previous,
                                                        const ServiceBuild& opts) {
  std::vector<std::shared_ptr<const ServiceState>> states;
  states.reserve(services.size());
  for (Service& spec : services) {
    const ServiceState* old = previous ? previous->find_by_name(spec.name) : nullptr;
    if (old != nullptr && old->spec() == spec) {
      states.push_back(*std::find_if(previous->services_.begin(), previous->services_.end(),
                                     [&](const auto& s) { return s.get() == old; }));
      continue;
    }
    auto built = ServiceState::build(std::move(spec), opts);
    if (!built) return built.error();
    states.push_back(std::move(built).value());
  }
  return assemble(std::move(states));
}

Result<std::shared_ptr<const Snapshot>> Snapshot::assemble(
    std::vector<std::shared_ptr<const ServiceState>> states) {
  std::sort(states.begin(), states.end(),
            [](const auto& a, const auto& b) { return a->spec().name < b->spec().name; });
  auto snap = std::make_shared<Snapshot>();
  size_t frontend_count = 0;
  for (size_t i = 0; i < states.size(); ++i) {
    if (i > 0 && states[i - 1]->spec().name == states[i]->spec().name) {
      return Error{"two services are named \"" + states[i]->spec().name + "\""};
    }
    frontend_count += states[i]->spec().frontends.size();
  }
  snap->frontends_ = FrontendMap(frontend_count);
  for (const auto& state : states) {
    const auto& frontends = state->spec().frontends;
    for (size_t i = 0; i < frontends.size(); ++i) {
      const Frontend& f = frontends[i];
      if (const ServiceState* other =
              snap->frontends_.find(f.addr, f.port, uint8_t(f.proto)).service) {
        return Error{"frontend " + to_string(f) + " is claimed by services \"" +
                     other->spec().name + "\" and \"" + state->spec().name + "\""};
      }
      snap->frontends_.insert(f, state.get(), uint16_t(i));
    }
  }
  snap->services_ = std::move(states);
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

const ServiceState* Snapshot::find_by_name(std::string_view name) const noexcept {
  auto it = std::lower_bound(services_.begin(), services_.end(), name,
                             [](const auto& s, std::string_view n) { return s->spec().name < n; });
  return it != services_.end() && (*it)->spec().name == name ? it->get() : nullptr;
}

}  // namespace magline::dp
