#include "control/k8s_source.hpp"

#include <algorithm>

namespace magline::control {

namespace {

// namespace/name of a raw object (a Node's name: Nodes have no namespace), or empty.
std::string key_of(K8sKind kind, const nlohmann::json& object) {
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  const auto ns = meta->find("namespace");
  const auto name = meta->find("name");
  if (name == meta->end() || !name->is_string()) return {};
  if (kind == K8sKind::node) return name->get<std::string>();
  if (ns == meta->end() || !ns->is_string()) return {};
  return ns->get<std::string>() + "/" + name->get<std::string>();
}

void append(Change& into, Change&& from) {
  into.updates.insert(into.updates.end(), from.updates.begin(), from.updates.end());
  for (auto& s : from.retired) into.retired.push_back(std::move(s));
  into.built += from.built;
  into.unchanged += from.unchanged;
  into.removed += from.removed;
}

}  // namespace

void K8sSource::decode_failed(K8sKind kind, const nlohmann::json& object, const std::string& why) {
  ++stats_.decode_errors;
  const std::string key = key_of(kind, object);
  read_errors_[key.empty() ? "(unnamed)" : key] = "cannot read the object: " + why;
}

void K8sSource::put_service(k8s::K8sService svc) {
  std::string key = svc.meta.key();
  dirty_.insert(key);
  if (k8s::probed(svc, opts_)) {
    probed_.insert(key);
    probes_stale_ = true;
  } else if (probed_.erase(key) > 0) {
    probes_stale_ = true;
  }
  services_.insert_or_assign(std::move(key), std::move(svc));
}

void K8sSource::drop_service(const std::string& key) {
  if (services_.erase(key) > 0) dirty_.insert(key);
  if (probed_.erase(key) > 0) probes_stale_ = true;
}

void K8sSource::node_view_changed() {
  probes_stale_ = true;
  if (node_targets()) all_dirty_ = true;
}

void K8sSource::put_node(k8s::K8sNode node) {
  const auto it = nodes_.find(node.name());
  if (it == nodes_.end() || !(k8s::target_view(it->second) == k8s::target_view(node))) {
    node_view_changed();
  }
  std::string name = node.name();
  nodes_.insert_or_assign(std::move(name), std::move(node));
}

void K8sSource::drop_node(const std::string& name) {
  const auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  // A node that was no target for any family takes nothing away.
  if (!(k8s::target_view(it->second) == k8s::NodeTargetView{})) node_view_changed();
  nodes_.erase(it);
}

size_t K8sSource::pending() const {
  if (!all_dirty_) return dirty_.size();
  size_t gone = 0;  // touched Services no longer held (deleted): translated too
  for (const std::string& key : dirty_)
    gone += services_.count(key) == 0;
  return services_.size() + gone;
}

void K8sSource::verdicts_changed() {
  if (!node_targets()) return;
  dirty_.insert(probed_.begin(), probed_.end());
}

void K8sSource::set_node_verdict(k8s::NodeVerdict verdict) {
  opts_.node_verdict = std::move(verdict);
  verdicts_changed();
}

void K8sSource::put_slice(k8s::K8sEndpointSlice slice) {
  const std::string key = slice.meta.key();
  const std::string owner = slice.service_key();
  if (auto it = slices_.find(key); it != slices_.end()) {
    const std::string before = it->second.service_key();
    if (before != owner && !before.empty()) {
      slices_of_[before].erase(key);
      if (slices_of_[before].empty()) slices_of_.erase(before);
      if (!node_targets()) dirty_.insert(before);
    }
  }
  if (!owner.empty()) {
    slices_of_[owner].insert(key);
    if (!node_targets()) dirty_.insert(owner);
  }
  slices_.insert_or_assign(key, std::move(slice));
}

void K8sSource::drop_slice(const std::string& key) {
  auto it = slices_.find(key);
  if (it == slices_.end()) return;
  const std::string owner = it->second.service_key();
  if (!owner.empty()) {
    auto s = slices_of_.find(owner);
    if (s != slices_of_.end()) {
      s->second.erase(key);
      if (s->second.empty()) slices_of_.erase(s);
    }
    if (!node_targets()) dirty_.insert(owner);
  }
  slices_.erase(it);
}

void K8sSource::upsert(K8sKind kind, const nlohmann::json& object) {
  ++stats_.events;
  if (kind == K8sKind::service) {
    auto svc = k8s::decode_service(object);
    if (!svc) {
      // What cannot be read is not forwarded: the previous version goes too.
      decode_failed(kind, object, svc.error().message);
      if (const std::string key = key_of(kind, object); !key.empty()) drop_service(key);
      return;
    }
    read_errors_.erase(svc->meta.key());
    // kube-proxy's label selector, applied here too: a watch shared with the provider reads
    // every Service, and a Service that leaves the selection goes as if deleted.
    if (!k8s::watched(svc->meta.labels, opts_)) {
      drop_service(svc->meta.key());
      return;
    }
    put_service(std::move(svc).value());
  } else if (kind == K8sKind::endpoint_slice) {
    auto slice = k8s::decode_endpoint_slice(object);
    if (!slice) {
      decode_failed(kind, object, slice.error().message);
      if (const std::string key = key_of(kind, object); !key.empty()) drop_slice(key);
      return;
    }
    read_errors_.erase(slice->meta.key());
    put_slice(std::move(slice).value());
  } else {
    auto node = k8s::decode_node(object);
    if (!node) {
      decode_failed(kind, object, node.error().message);
      if (const std::string key = key_of(kind, object); !key.empty()) drop_node(key);
      return;
    }
    read_errors_.erase(node->name());
    put_node(std::move(node).value());
  }
}

void K8sSource::erase(K8sKind kind, const nlohmann::json& object) {
  ++stats_.events;
  const std::string key = key_of(kind, object);
  if (key.empty()) {
    ++stats_.decode_errors;
    return;
  }
  read_errors_.erase(key);
  if (kind == K8sKind::service) {
    drop_service(key);
  } else if (kind == K8sKind::endpoint_slice) {
    drop_slice(key);
  } else {
    drop_node(key);
  }
}

void K8sSource::replace(K8sKind kind, const std::vector<nlohmann::json>& items) {
  ++stats_.relists;
  std::set<std::string> listed;
  for (const nlohmann::json& item : items) {
    const std::string key = key_of(kind, item);
    if (key.empty()) {
      ++stats_.decode_errors;
      continue;
    }
    listed.insert(key);
    // Unchanged objects (same resourceVersion) are left alone: a relist of 10,000 Services
    // that missed one change translates one Service.
    const auto meta = item.find("metadata");
    const auto rv = meta->find("resourceVersion");
    const std::string version = rv != meta->end() && rv->is_string() ? rv->get<std::string>() : "";
    if (kind == K8sKind::service) {
      auto it = services_.find(key);
      if (it != services_.end() && !version.empty() && it->second.meta.resource_version == version) {
        continue;
      }
    } else if (kind == K8sKind::endpoint_slice) {
      auto it = slices_.find(key);
      if (it != slices_.end() && !version.empty() && it->second.meta.resource_version == version) {
        continue;
      }
    } else {
      auto it = nodes_.find(key);
      if (it != nodes_.end() && !version.empty() && it->second.meta.resource_version == version) {
        continue;
      }
    }
    upsert(kind, item);
    --stats_.events;  // counted as part of the relist
  }
  std::vector<std::string> gone;
  if (kind == K8sKind::service) {
    for (const auto& [key, svc] : services_) {
      if (!listed.count(key)) gone.push_back(key);
    }
    for (const std::string& key : gone) drop_service(key);
  } else if (kind == K8sKind::endpoint_slice) {
    for (const auto& [key, slice] : slices_) {
      if (!listed.count(key)) gone.push_back(key);
    }
    for (const std::string& key : gone) drop_slice(key);
  } else {
    for (const auto& [name, node] : nodes_) {
      if (!listed.count(name)) gone.push_back(name);
    }
    for (const std::string& name : gone)
      drop_node(name);
  }
}

std::map<std::string, std::string> K8sSource::errors() const {
  std::map<std::string, std::string> all = sync_errors_;
  for (const auto& [key, why] : read_errors_) all[key] = why;
  return all;
}

namespace {

// The objects of a map keyed by namespace/name, in key order.
template <typename T>
std::vector<T> by_key(const std::unordered_map<std::string, T>& objects) {
  std::vector<const std::pair<const std::string, T>*> order;
  order.reserve(objects.size());
  for (const auto& kv : objects) order.push_back(&kv);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<T> out;
  out.reserve(order.size());
  for (auto* kv : order) out.push_back(kv->second);
  return out;
}

}  // namespace

std::vector<k8s::K8sService> K8sSource::service_objects() const { return by_key(services_); }

std::vector<k8s::K8sEndpointSlice> K8sSource::slice_objects() const { return by_key(slices_); }

std::vector<k8s::K8sNode> K8sSource::node_objects() const {
  return by_key(nodes_);
}

const std::vector<k8s::ProbeTarget>& K8sSource::probe_targets() {
  if (!probes_stale_) return probes_;
  probes_stale_ = false;
  std::vector<const k8s::K8sService*> services;
  services.reserve(probed_.size());
  for (const std::string& key : probed_)
    services.push_back(&services_.at(key));
  std::vector<const k8s::K8sNode*> nodes;
  nodes.reserve(nodes_.size());
  for (const auto& [name, node] : nodes_)
    nodes.push_back(&node);
  std::vector<k8s::ProbeTarget> now = k8s::probe_targets(services, nodes, opts_);
  if (now != probes_) {
    probes_ = std::move(now);
    ++probe_version_;
  }
  return probes_;
}

uint64_t K8sSource::probe_version() {
  probe_targets();
  return probe_version_;
}

Change K8sSource::sync(Publisher& publisher, const std::set<std::string>& reserved,
                       uint64_t now_ms) {
  Change total;
  if (all_dirty_) {
    for (const auto& [key, svc] : services_)
      dirty_.insert(key);
    all_dirty_ = false;
  }
  if (dirty_.empty()) return total;
  dirty_.merge(failed_);
  failed_.clear();
  // With node targets every Service's backends are the same Nodes: gathered once.
  std::vector<const k8s::K8sNode*> nodes;
  if (node_targets()) {
    nodes.reserve(nodes_.size());
    for (const auto& [name, node] : nodes_)
      nodes.push_back(&node);
  }

  struct Item {
    std::string key;
    std::vector<dp::Service> upserts;
    std::vector<std::string> removals;
    std::vector<std::string> names;
  };
  std::vector<Item> items;
  items.reserve(dirty_.size());
  for (const std::string& key : dirty_) {
    Item item{key, {}, {}, {}};
    sync_errors_.erase(key);
    if (auto svc = services_.find(key); svc != services_.end()) {
      std::vector<const k8s::K8sEndpointSlice*> slices;
      if (auto s = slices_of_.find(key); s != slices_of_.end()) {
        for (const std::string& slice_key : s->second) slices.push_back(&slices_.at(slice_key));
      }
      k8s::Translation tr = k8s::translate(svc->second, slices, nodes, opts_);
      ++stats_.translations;
      for (dp::Service& s : tr.services) {
        if (reserved.count(s.name)) {
          ++stats_.name_conflicts;
          sync_errors_[key] = "service \"" + s.name + "\" is defined by the configuration file";
          continue;
        }
        item.names.push_back(s.name);
        item.upserts.push_back(std::move(s));
      }
    }
    if (auto was = published_.find(key); was != published_.end()) {
      for (const std::string& name : was->second) {
        if (std::find(item.names.begin(), item.names.end(), name) == item.names.end()) {
          item.removals.push_back(name);
        }
      }
    }
    items.push_back(std::move(item));
  }
  dirty_.clear();

  auto commit = [&](Item& item) {
    if (item.names.empty()) {
      published_.erase(item.key);
    } else {
      published_[item.key] = std::move(item.names);
    }
  };
  // Everything in one publish when it is valid: the common case.
  {
    std::vector<dp::Service> upserts;
    std::vector<std::string> removals;
    for (const Item& item : items) {
      upserts.insert(upserts.end(), item.upserts.begin(), item.upserts.end());
      removals.insert(removals.end(), item.removals.begin(), item.removals.end());
    }
    if (auto change = publisher.update(std::move(upserts), removals, now_ms)) {
      for (Item& item : items) commit(item);
      return std::move(change).value();
    }
  }
  // Otherwise Service by Service, twice, so that a frontend moving between two of them finds
  // its old holder gone on the second pass.
  std::vector<Item*> left;
  for (Item& item : items) left.push_back(&item);
  for (int pass = 0; pass < 2 && !left.empty(); ++pass) {
    std::vector<Item*> again;
    for (Item* item : left) {
      auto change = publisher.update(item->upserts, item->removals, now_ms);
      if (change) {
        commit(*item);
        append(total, std::move(change).value());
      } else {
        if (pass == 1) {
          ++stats_.publish_failures;
          sync_errors_[item->key] = change.error().message;
          failed_.insert(item->key);
        }
        again.push_back(item);
      }
    }
    left = std::move(again);
  }
  return total;
}

k8s::TranslateOptions translate_options(const cfg::Config& config) {
  k8s::TranslateOptions o;
  o.node_addresses = config.node_addresses;
  o.table_size = config.table_size;
  o.pools = config.provider.pools;
  if (config.kubernetes.enabled) {
    const cfg::KubernetesConfig& k = config.kubernetes;
    o.proxy_name = k.proxy_name;
    o.load_balancer_class = k.load_balancer_class;
    o.default_load_balancer_class = k.default_load_balancer_class;
    o.node_name = k.node_name;
    o.zone = k.zone;
    o.table_size = k.table_size;
    o.min_table_size = k.min_table_size;
    o.targets = k.targets == cfg::K8sTargets::nodes ? k8s::Targets::nodes : k8s::Targets::pods;
  }
  return o;
}

}  // namespace magline::control
