// The reflector: LIST then WATCH one collection of the Kubernetes API, for as long as it runs,
// recovering from every error the API server can return (k8s-api.md §2-4; client-go's
// tools/cache/reflector.go). One thread per resource (Services, EndpointSlices, and Nodes for
// node targets), each with its own resourceVersion. What it learns goes into an EventQueue as raw
// JSON objects; decoding them is control/k8s's job. docs/k8s-client.md has the request sequence and
// the error table.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/k8s_client/kube_config.hpp"
#include "dataplane/result.hpp"

namespace magline::k8s {

enum class Resource : uint8_t { services, endpoint_slices, nodes };
inline constexpr size_t kResourceCount = 3;

// "services", "endpointslices", "nodes": the collection's name in URLs and in metric labels.
std::string_view resource_name(Resource r);

struct WatchEvent {
  enum class Type : uint8_t { added, modified, deleted, relisted };
  Resource resource;
  Type type;
  nlohmann::json object;              // added / modified / deleted: the object, as sent
  // relisted: the complete current set; the receiver replaces what it holds (deletes what is
  // missing). Shared, immutable: a copy of the event for a second reader (services_copy) shares
  // the list instead of copying 10,000 objects.
  std::shared_ptr<const std::vector<nlohmann::json>> items;
  // The list of a relisted event (empty for the others).
  const std::vector<nlohmann::json>& listed() const;
  std::string resource_version;       // the object's (or the list's) resourceVersion
  std::chrono::steady_clock::time_point received;  // when read off the wire
};

// Multi-producer (the watcher threads), single-consumer (the control thread). Per resource,
// events come out in the order they were read.
class EventQueue {
 public:
  void push(WatchEvent event);
  // Appends everything queued to `out` and returns how many; never blocks beyond the mutex.
  size_t drain(std::vector<WatchEvent>& out);
  // Waits until something is queued or `timeout` passes; true if something is queued. For tests
  // and tools; the control thread drains on its own schedule.
  bool wait_for(std::chrono::milliseconds timeout);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
};

// One counter as the reports name it: its key in /stats, and its Prometheus family (without the
// magline_k8s_ prefix; counters end in _total) with the label telling it apart in the family
// (`code="410"`, `type="ADDED"`) or "".
struct WatchCounterRow {
  std::string_view json;
  std::string_view metric;
  std::string_view label;
  std::string_view help;  // the family's help text
  uint64_t value;
};

// The help text of the gauge `watch_synced` (Watcher::for_each_counter).
inline constexpr std::string_view kWatchSyncedHelp = "1 once the resource has been listed.";

// Per-resource counters: written by that resource's thread, read from any thread (relaxed
// atomics: each is an independent statistic, nothing is published through them).
// for_each() names them as Prometheus counters (docs/k8s-client.md explains each).
struct WatchCounters {
  std::atomic<uint64_t> lists{0};            // complete LISTs (all pages): one relisted event each
  std::atomic<uint64_t> list_pages{0};       // LIST responses with 200
  std::atomic<uint64_t> relists{0};          // returns to LIST after the first one
  std::atomic<uint64_t> watches_started{0};  // WATCH requests answered 200
  std::atomic<uint64_t> clean_ends{0};       // watches the server ended cleanly (timeoutSeconds)
  std::atomic<uint64_t> events_added{0};
  std::atomic<uint64_t> events_modified{0};
  std::atomic<uint64_t> events_deleted{0};
  std::atomic<uint64_t> bookmarks{0};
  std::atomic<uint64_t> expired_in_band{0};  // ERROR events with code 410
  std::atomic<uint64_t> errors_in_band{0};   // ERROR events with any other code
  std::atomic<uint64_t> http_410{0};         // LIST or WATCH answered 410 (incl. expired continue)
  std::atomic<uint64_t> http_429{0};
  std::atomic<uint64_t> http_5xx{0};      // 5xx other than the too-large-RV 504
  std::atomic<uint64_t> too_large_rv{0};  // 504 "Too large resource version"
  std::atomic<uint64_t> http_401{0};
  std::atomic<uint64_t> http_other{0};         // any other non-2xx status
  std::atomic<uint64_t> connection_errors{0};  // connect/TLS failures, resets, truncated bodies
  std::atomic<uint64_t> backoffs{0};           // waits before a retry (backoff or Retry-After)
  std::atomic<uint64_t> decode_errors{0};      // unframeable stream, bad JSON, unknown event type
  std::atomic<uint64_t> token_reloads{0};      // re-reads of the token file
  std::atomic<uint64_t> bytes_received{0};     // response body bytes, LIST and WATCH

  // fn(row) for every counter: its /stats key ("watch_http_410_total") and its Prometheus
  // family and label ("watch_responses_total", `code="410"`).
  void for_each(const std::function<void(const WatchCounterRow&)>& fn) const;
};

struct WatcherOptions {
  std::vector<Resource> resources{Resource::services, Resource::endpoint_slices};
  // As written ("!service.kubernetes.io/headless"); encoded here. For Services and
  // EndpointSlices only: it selects by the Service's labels, which Nodes do not carry.
  std::string label_selector;
  // Every Service event is also pushed here, a copy, for a second reader of every Service (the
  // LoadBalancer provider): one LIST and one WATCH serve both. Services are then read without
  // the label selector, and the first reader filters them itself (control/k8s_source.hpp).
  std::shared_ptr<EventQueue> services_copy;
  std::string ns;              // empty: all namespaces; Nodes are cluster-scoped and ignore it
  uint32_t page_limit = 500;   // LIST page size (client-go's pager default); 0: one page
  // WATCH timeoutSeconds is drawn from [min, max) (client-go: [5 min, 10 min)).
  std::chrono::seconds watch_timeout_min{300};
  std::chrono::seconds watch_timeout_max{600};
  // Capped exponential backoff: initial, doubling to max, each wait plus up to half again of
  // jitter (client-go's reflector: 800 ms .. 30 s).
  std::chrono::milliseconds backoff_initial{800};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::seconds retry_after_max{600};  // a longer Retry-After is cut to this
  std::chrono::milliseconds token_period{60000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::seconds list_low_speed_time{30};  // a LIST page that stalls this long fails
  size_t max_event_bytes = size_t{16} << 20;     // a larger watch event is a decode error
  uint64_t seed = 0;                             // jitter and timeouts; 0: from std::random_device
};

class Watcher {
 public:
  // Nothing happens until start(). `queue` must outlive the watcher.
  Watcher(ApiConfig config, WatcherOptions options, EventQueue& queue);
  ~Watcher();  // stop()
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Starts one thread per resource in options.resources; each LISTs, delivers one `relisted`
  // event, then WATCHes. Errors: the configuration cannot make a client (no server, unreadable
  // token, CA or certificate file, no resources); then no thread is started. Call once.
  Result<void> start();

  // Stops and joins the threads: a blocked request is aborted within about a second (libcurl's
  // progress callback), a backoff wait at once. Idempotent; safe from any one thread.
  void stop();

  // Every configured resource has been listed at least once (events have been queued for it).
  bool synced() const;
  bool synced(Resource r) const;

  // Any thread. Zero for a resource that is not watched.
  const WatchCounters& counters(Resource r) const;
  std::string resource_version(Resource r) const;  // the last one seen; empty before the LIST

  // fn(resource, row) for every counter of every watched resource, plus "watch_synced" (0/1)
  // as a gauge.
  void for_each_counter(const std::function<void(Resource, const WatchCounterRow&)>& fn) const;

 private:
  struct Runner;
  struct Shared;

  ApiConfig config_;
  WatcherOptions options_;
  EventQueue& queue_;
  std::unique_ptr<Shared> shared_;
  std::array<WatchCounters, kResourceCount> counters_;
  std::vector<std::unique_ptr<Runner>> runners_;
  bool started_ = false;
};

}  // namespace magline::k8s
