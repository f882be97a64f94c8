#include "control/k8s_source.hpp"

#include <algorithm>

namespace magline::control {

namespace {

// namespace/name of a raw object, or empty.
std::string key_of(const nlohmann::json& object) {
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  const auto ns = meta->find("namespace");
  const auto name = meta->find("name");
  if (ns == meta->end() || name == meta->end() || !ns->is_string() || !name->is_string()) {
    return {};
  }
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

void K8sSource::decode_failed(const nlohmann::json& object, const std::string& why) {
  ++stats_.decode_errors;
  const std::string key = key_of(object);
  read_errors_[key.empty() ? "(unnamed)" : key] = "cannot read the object: " + why;
}

void K8sSource::put_service(k8s::K8sService svc) {
  std::string key = svc.meta.key();
  dirty_.insert(key);
  services_.insert_or_assign(std::move(key), std::move(svc));
}

void K8sSource::drop_service(const std::string& key) {
  if (services_.erase(key) > 0) dirty_.insert(key);
}

void K8sSource::put_slice(k8s::K8sEndpointSlice slice) {
  const std::string key = slice.meta.key();
  const std::string owner = slice.service_key();
  if (auto it = slices_.find(key); it != slices_.end()) {
    const std::string before = it->second.service_key();
    if (before != owner && !before.empty()) {
      slices_of_[before].erase(key);
      if (slices_of_[before].empty()) slices_of_.erase(before);
      dirty_.insert(before);
    }
  }
  if (!owner.empty()) {
    slices_of_[owner].insert(key);
    dirty_.insert(owner);
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
    dirty_.insert(owner);
  }
  slices_.erase(it);
}

void K8sSource::upsert(K8sKind kind, const nlohmann::json& object) {
  ++stats_.events;
  if (kind == K8sKind::service) {
    auto svc = k8s::decode_service(object);
    if (!svc) {
      // What cannot be read is not forwarded: the previous version goes too.
      decode_failed(object, svc.error().message);
      if (const std::string key = key_of(object); !key.empty()) drop_service(key);
      return;
    }
    read_errors_.erase(svc->meta.key());
    put_service(std::move(svc).value());
  } else {
    auto slice = k8s::decode_endpoint_slice(object);
    if (!slice) {
      decode_failed(object, slice.error().message);
      if (const std::string key = key_of(object); !key.empty()) drop_slice(key);
      return;
    }
    read_errors_.erase(slice->meta.key());
    put_slice(std::move(slice).value());
  }
}

void K8sSource::erase(K8sKind kind, const nlohmann::json& object) {
  ++stats_.events;
  const std::string key = key_of(object);
  if (key.empty()) {
    ++stats_.decode_errors;
    return;
  }
  read_errors_.erase(key);
  if (kind == K8sKind::service) {
    drop_service(key);
  } else {
    drop_slice(key);
  }
}

void K8sSource::replace(K8sKind kind, const std::vector<nlohmann::json>& items) {
  ++stats_.relists;
  std::set<std::string> listed;
  for (const nlohmann::json& item : items) {
    const std::string key = key_of(item);
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
    } else {
      auto it = slices_.find(key);
      if (it != slices_.end() && !version.empty() && it->second.meta.resource_version == version) {
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
  } else {
    for (const auto& [key, slice] : slices_) {
      if (!listed.count(key)) gone.push_back(key);
    }
    for (const std::string& key : gone) drop_slice(key);
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

Change K8sSource::sync(Publisher& publisher, const std::set<std::string>& reserved,
                       uint64_t now_ms) {
  Change total;
  if (dirty_.empty()) return total;
  dirty_.merge(failed_);
  failed_.clear();

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
      k8s::Translation tr = k8s::translate(svc->second, slices, opts_);
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
  }
  return o;
}

}  // namespace magline::control
