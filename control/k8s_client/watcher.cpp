#include "control/k8s_client/watcher.hpp"

#include <pthread.h>

#include <algorithm>
#include <random>
#include <utility>

#include "control/k8s_client/api_client.hpp"
#include "control/k8s_client/framer.hpp"

namespace magline::k8s {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string collection_path(Resource r, const std::string& ns) {
  const std::string scope = ns.empty() ? "" : "namespaces/" + url_encode(ns) + "/";
  switch (r) {
    case Resource::services:
      return "/api/v1/" + scope + "services";
    case Resource::endpoint_slices:
      return "/apis/discovery.k8s.io/v1/" + scope + "endpointslices";
    case Resource::nodes:
      return "/api/v1/nodes";  // cluster-scoped
  }
  return {};
}

// The thread's name (at most 15 characters).
const char* thread_name(Resource r) {
  switch (r) {
    case Resource::services:
      return "k8s-services";
    case Resource::endpoint_slices:
      return "k8s-slices";
    case Resource::nodes:
      return "k8s-nodes";
  }
  return "k8s-watch";
}

void bump(std::atomic<uint64_t>& c, uint64_t by = 1) {
  c.fetch_add(by, std::memory_order_relaxed);
}

// Capped exponential backoff with jitter (client-go's reflector uses 800 ms doubling to 30 s,
// jittered): each wait is the current base plus up to half of it again.
class Backoff {
 public:
  Backoff(milliseconds initial, milliseconds max, std::mt19937_64& rng)
      : initial_(std::max(initial, milliseconds(1))),
        max_(std::max(max, initial_)),
        current_(initial_),
        rng_(rng) {}

  milliseconds next() {
    const milliseconds base = current_;
    current_ = std::min(current_ * 2, max_);
    std::uniform_int_distribution<int64_t> jitter(0, base.count() / 2);
    return base + milliseconds(jitter(rng_));
  }
  void reset() { current_ = initial_; }

 private:
  milliseconds initial_, max_, current_;
  std::mt19937_64& rng_;
};

// What the state machine does next (k8s-api.md §3.4).
struct Step {
  enum class Next : uint8_t { list, watch, stop };
  enum class Wait : uint8_t { none, backoff, retry_after };
  Next next = Next::watch;
  Wait wait = Wait::none;
  milliseconds delay{0};  // for retry_after
};

// 504 with the ResourceVersionTooLarge cause (apiserver/pkg/storage/errors.go), in a Status.
bool is_too_large_rv(std::string_view status_body) {
  return status_body.find("ResourceVersionTooLarge") != std::string_view::npos ||
         status_body.find("Too large resource version") != std::string_view::npos;
}

// Retry-After, else the Status's details.retryAfterSeconds.
std::optional<seconds> retry_after(const HttpResponse& r) {
  if (r.retry_after) return r.retry_after;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("details") && j["details"].is_object()) {
    const auto& d = j["details"];
    if (d.contains("retryAfterSeconds") && d["retryAfterSeconds"].is_number_integer()) {
      return seconds(std::max<int64_t>(0, d["retryAfterSeconds"].get<int64_t>()));
    }
  }
  return std::nullopt;
}

std::string string_at(const nlohmann::json& obj, const char* a, const char* b) {
  if (!obj.is_object()) return {};
  const auto i = obj.find(a);
  if (i == obj.end() || !i->is_object()) return {};
  const auto k = i->find(b);
  return k != i->end() && k->is_string() ? k->get<std::string>() : std::string();
}

}  // namespace

std::string_view resource_name(Resource r) {
  switch (r) {
    case Resource::services:
      return "services";
    case Resource::endpoint_slices:
      return "endpointslices";
    case Resource::nodes:
      return "nodes";
  }
  return "?";
}

// --- EventQueue ---------------------------------------------------------------------------------

const std::vector<nlohmann::json>& WatchEvent::listed() const {
  static const std::vector<nlohmann::json> kNone;
  return items ? *items : kNone;
}

void EventQueue::push(WatchEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

size_t EventQueue::drain(std::vector<WatchEvent>& out) {
  std::vector<WatchEvent> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(events_);
  }
  const size_t n = taken.size();
  if (out.empty()) {
    out = std::move(taken);
  } else {
    std::move(taken.begin(), taken.end(), std::back_inserter(out));
  }
  return n;
}

bool EventQueue::wait_for(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return !events_.empty(); });
}

size_t EventQueue::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

// --- Counters: watch_counters.cpp --------------------------------------------------------------

// --- The reflector ------------------------------------------------------------------------------

struct Watcher::Shared {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;

  // Waits `d` unless stop() comes first; false when stopping.
  bool sleep_for(milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, d, [this] { return stop.load(); });
  }
  bool stopping() const { return stop.load(std::memory_order_relaxed); }
};

struct Watcher::Runner {
  Runner(Resource r, const WatcherOptions& o, EventQueue& q, WatchCounters& c, Shared& s,
         std::unique_ptr<ApiClient> cl, uint64_t seed)
      : resource(r),
        options(o),
        queue(q),
        counters(c),
        shared(s),
        client(std::move(cl)),
        rng(seed),
        backoff(o.backoff_initial, o.backoff_max, rng),
        path(collection_path(r, o.ns)) {
    if (r == Resource::services && o.services_copy) copy = o.services_copy.get();
    if (!o.label_selector.empty() && r != Resource::nodes && copy == nullptr) {
      selector = "labelSelector=" + url_encode(o.label_selector);
    }
  }

  void run();
  Step list();
  Step watch();
  Step on_error_status(const HttpResponse& r, bool watching);
  bool on_event(const std::string& text, std::chrono::steady_clock::time_point now);

  void deliver(WatchEvent e) {
    if (copy != nullptr) copy->push(e);
    queue.push(std::move(e));
  }

  void set_rv(std::string rv) {
    std::lock_guard<std::mutex> lock(rv_mu);
    resource_version = std::move(rv);
  }
  std::string rv() const {
    std::lock_guard<std::mutex> lock(rv_mu);
    return resource_version;
  }

  const Resource resource;
  const WatcherOptions& options;
  EventQueue& queue;
  EventQueue* copy = nullptr;  // options.services_copy, for Services
  WatchCounters& counters;
  Shared& shared;
  std::unique_ptr<ApiClient> client;
  std::mt19937_64 rng;
  Backoff backoff;
  const std::string path;
  std::string selector;  // "labelSelector=..." or empty

  mutable std::mutex rv_mu;
  std::string resource_version;
  std::atomic<bool> synced{false};
  std::thread thread;

  // The watch in progress: why its stream was aborted.
  struct StreamState {
    bool progress = false;  // an event or bookmark arrived
    bool decode_error = false;
    bool error_event = false;
    int64_t error_code = 0;
    std::string error_text;
  } stream;
};

void Watcher::Runner::run() {
  Step::Next next = Step::Next::list;
  while (!shared.stopping()) {
    Step step;
    try {
      step = next == Step::Next::list ? list() : watch();
    } catch (const std::exception&) {
      // Nothing here is expected to throw (JSON is parsed without exceptions); if something
      // does, start over from a LIST rather than lose the thread.
      bump(counters.decode_errors);
      step = {Step::Next::list, Step::Wait::backoff};
    }
    if (step.next == Step::Next::stop) return;
    milliseconds wait{0};
    if (step.wait == Step::Wait::backoff) wait = backoff.next();
    if (step.wait == Step::Wait::retry_after) wait = step.delay;
    if (step.wait != Step::Wait::none) {
      bump(counters.backoffs);
      if (!shared.sleep_for(wait)) return;
    }
    if (step.next == Step::Next::list && next == Step::Next::watch) bump(counters.relists);
    next = step.next;
  }
}

// LIST, paginated (k8s-api.md §2). Always a consistent read (resourceVersion unset): a list
// from the watch cache (resourceVersion=0) may be stale, may go back in time after a failover
// to a lagging apiserver, and ignores `limit`; a quorum read is paginated and never older than
// what this watcher has already seen. docs/k8s-client.md discusses the cost.
Step Watcher::Runner::list() {
  bool whole = options.page_limit == 0;
  std::vector<nlohmann::json> items;
  std::string list_rv;
  std::string cont;
  for (;;) {
    std::string query;
    auto add = [&query](const std::string& param) { query += (query.empty() ? "?" : "&") + param; };
    if (!whole) add("limit=" + std::to_string(options.page_limit));
    if (!cont.empty()) add("continue=" + url_encode(cont));
    if (!selector.empty()) add(selector);
    const HttpResponse r = client->get(path + query);
    bump(counters.bytes_received, r.bytes);
    if (r.transfer == HttpResponse::Transfer::stopped) return {Step::Next::stop};
    if (!r.complete()) {
      bump(counters.connection_errors);
      return {Step::Next::list, Step::Wait::backoff};
    }
    if (r.status == 200) {
      auto page = nlohmann::json::parse(r.body, nullptr, false);
      if (!page.is_object() || !page.contains("items") ||
          !(page["items"].is_array() || page["items"].is_null())) {
        bump(counters.decode_errors);
        return {Step::Next::list, Step::Wait::backoff};
      }
      bump(counters.list_pages);
      // Every page carries the same RV (a consistent snapshot); the first page's is the one.
      if (list_rv.empty()) list_rv = string_at(page, "metadata", "resourceVersion");
      if (page["items"].is_array()) {
        auto& arr = page["items"].get_ref<nlohmann::json::array_t&>();
        items.reserve(items.size() + arr.size());
        std::move(arr.begin(), arr.end(), std::back_inserter(items));
      }
      // Only an empty continue ends the list: a page may be short, even empty.
      cont = string_at(page, "metadata", "continue");
      if (cont.empty()) break;
      continue;
    }
    if (r.status == 410 && !cont.empty()) {
      // The continue token expired: restart the list whole, without limit or continue, as
      // client-go's pager does with FullListIfExpired (k8s-api.md §2).
      bump(counters.http_410);
      whole = true;
      cont.clear();
      items.clear();
      list_rv.clear();
      continue;
    }
    return on_error_status(r, false);
  }
  if (list_rv.empty()) {
    // Every list carries the RV to watch from (k8s-api.md §2); without it there is no resume
    // point.
    bump(counters.decode_errors);
    return {Step::Next::list, Step::Wait::backoff};
  }
  bump(counters.lists);
  set_rv(list_rv);
  deliver(WatchEvent{.resource = resource,
                     .type = WatchEvent::Type::relisted,
                     .object = {},
                     .items = std::make_shared<const std::vector<nlohmann::json>>(std::move(items)),
                     .resource_version = list_rv,
                     .received = std::chrono::steady_clock::now()});
  // After the delivery: whoever sees synced() finds the list in the queue (a test that waited
  // for synced() and then drained the queue once could miss it).
  synced.store(true);
  backoff.reset();
  return {Step::Next::watch};
}

// A non-2xx answer to a LIST (watching = false) or a WATCH (k8s-api.md §3.3-3.4, §4).
Step Watcher::Runner::on_error_status(const HttpResponse& r, bool watching) {
  const Step::Next again = watching ? Step::Next::watch : Step::Next::list;
  const long s = r.status;
  if (s == 410) {
    bump(counters.http_410);
    return watching ? Step{Step::Next::list} : Step{Step::Next::list, Step::Wait::backoff};
  }
  if (s == 504 && is_too_large_rv(r.body)) {
    // The server has not seen our RV yet (a lagging apiserver): relist with RV unset.
    bump(counters.too_large_rv);
    return watching ? Step{Step::Next::list} : Step{Step::Next::list, Step::Wait::backoff};
  }
  if (s == 429) {
    bump(counters.http_429);
    if (auto ra = retry_after(r)) {
      const milliseconds d = std::min<milliseconds>(*ra, options.retry_after_max);
      return {again, Step::Wait::retry_after, d};
    }
    return {again, Step::Wait::backoff};
  }
  if (s == 401) {
    // Probably a rotated token: read the file again before the retry.
    bump(counters.http_401);
    client->invalidate_token();
    return {again, Step::Wait::backoff};
  }
  if (s >= 500) {
    bump(counters.http_5xx);
    return {again, Step::Wait::backoff};
  }
  bump(counters.http_other);
  return {Step::Next::list, Step::Wait::backoff};
}

// One framed watch event. false: abort the stream (an ERROR event or a decode error).
bool Watcher::Runner::on_event(const std::string& text, std::chrono::steady_clock::time_point now) {
  auto ev = nlohmann::json::parse(text, nullptr, false);
  const auto type_it = ev.is_object() ? ev.find("type") : ev.end();
  const auto obj_it = ev.is_object() ? ev.find("object") : ev.end();
  if (!ev.is_object() || type_it == ev.end() || !type_it->is_string() || obj_it == ev.end() ||
      !obj_it->is_object()) {
    bump(counters.decode_errors);
    stream.decode_error = true;
    return false;
  }
  const std::string& type = type_it->get_ref<const std::string&>();
  std::string rv = string_at(*obj_it, "metadata", "resourceVersion");
  WatchEvent::Type t;
  if (type == "ADDED") {
    t = WatchEvent::Type::added;
    bump(counters.events_added);
  } else if (type == "MODIFIED") {
    t = WatchEvent::Type::modified;
    bump(counters.events_modified);
  } else if (type == "DELETED") {
    t = WatchEvent::Type::deleted;
    bump(counters.events_deleted);
  } else if (type == "BOOKMARK") {
    bump(counters.bookmarks);
    stream.progress = true;
    if (!rv.empty()) set_rv(std::move(rv));
    return true;
  } else if (type == "ERROR") {
    stream.error_event = true;
    const auto code = obj_it->find("code");
    stream.error_code =
        code != obj_it->end() && code->is_number_integer() ? code->get<int64_t>() : 0;
    stream.error_text = obj_it->dump();
    return false;
  } else {
    // client-go: "got invalid watch event type" is a decode error; the stream is restarted.
    bump(counters.decode_errors);
    stream.decode_error = true;
    return false;
  }
  stream.progress = true;
  if (!rv.empty()) set_rv(rv);
  deliver(WatchEvent{.resource = resource,
                     .type = t,
                     .object = std::move(*obj_it),
                     .items = nullptr,
                     .resource_version = std::move(rv),
                     .received = now});
  return true;
}

// One WATCH from the last RV (k8s-api.md §3).
Step Watcher::Runner::watch() {
  const int64_t lo = options.watch_timeout_min.count();
  const int64_t hi = std::max(options.watch_timeout_max.count(), lo + 1);
  const int64_t timeout = std::uniform_int_distribution<int64_t>(lo, hi - 1)(rng);
  std::string query = "?watch=1&resourceVersion=" + url_encode(rv()) +
                      "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout);
  if (!selector.empty()) query += "&" + selector;

  stream = StreamState{};
  const auto started = std::chrono::steady_clock::now();
  JsonFramer framer(options.max_event_bytes);
  std::vector<std::string> values;
  const auto on_status = [this](long status) {
    if (status >= 200 && status < 300) bump(counters.watches_started);
  };
  const auto on_data = [&](std::string_view bytes) {
    bump(counters.bytes_received, bytes.size());
    values.clear();
    const bool framed = framer.feed(bytes, values);
    const auto now = std::chrono::steady_clock::now();
    for (const std::string& v : values) {
      if (!on_event(v, now)) return false;
    }
    if (!framed) {
      bump(counters.decode_errors);
      stream.decode_error = true;
      return false;
    }
    return true;
  };
  // The server ends the watch after timeoutSeconds; the backstop is a minute later.
  const HttpResponse r =
      client->stream(path + query, on_status, on_data, seconds(timeout) + seconds(60));
  if (stream.progress) backoff.reset();

  switch (r.transfer) {
    case HttpResponse::Transfer::stopped:
      return {Step::Next::stop};
    case HttpResponse::Transfer::receiver_aborted:
      if (stream.error_event) {
        if (stream.error_code == 410) {
          // "too old resource version": the history we need is gone. Relist.
          bump(counters.expired_in_band);
          return {Step::Next::list};
        }
        if (stream.error_code == 504 && is_too_large_rv(stream.error_text)) {
          bump(counters.too_large_rv);
          return {Step::Next::list};
        }
        bump(counters.errors_in_band);
        return {Step::Next::list, Step::Wait::backoff};
      }
      return {Step::Next::watch, Step::Wait::backoff};  // decode error: restart the stream
    case HttpResponse::Transfer::failed:
      // Reset, truncated chunked body, timeout, refused: re-watch from the last RV; if that
      // RV has expired meanwhile, the re-watch says so (410) and we relist.
      bump(counters.connection_errors);
      return {Step::Next::watch, Step::Wait::backoff};
    case HttpResponse::Transfer::complete:
      break;
  }
  if (r.status < 200 || r.status >= 300) return on_error_status(r, true);
  if (framer.pending_bytes() > 0) {
    // The body ended inside an event.
    bump(counters.decode_errors);
    return {Step::Next::watch, Step::Wait::backoff};
  }
  bump(counters.clean_ends);
  if (!stream.progress && std::chrono::steady_clock::now() - started < seconds(1)) {
    // A watch that ends at once with nothing in it is a server in trouble, not a timeout:
    // client-go's "very short watch" error. Back off instead of spinning.
    return {Step::Next::watch, Step::Wait::backoff};
  }
  backoff.reset();
  return {Step::Next::watch};
}

// --- Watcher ------------------------------------------------------------------------------------

Watcher::Watcher(ApiConfig config, WatcherOptions options, EventQueue& queue)
    : config_(std::move(config)),
      options_(std::move(options)),
      queue_(queue),
      shared_(std::make_unique<Shared>()) {}

Watcher::~Watcher() {
  stop();
}

Result<void> Watcher::start() {
  if (started_) return Error{"watcher: already started"};
  if (options_.resources.empty()) return Error{"watcher: no resources to watch"};
  const uint64_t seed = options_.seed != 0 ? options_.seed : std::random_device{}();
  std::vector<std::unique_ptr<Runner>> runners;
  for (const Resource r : options_.resources) {
    const auto idx = static_cast<size_t>(r);
    bool dup = false;
    for (const auto& existing : runners)
      dup = dup || existing->resource == r;
    if (dup) continue;
    ApiClientOptions co;
    co.connect_timeout = options_.connect_timeout;
    co.token_period = options_.token_period;
    co.low_speed_time = options_.list_low_speed_time;
    co.token_reloads = &counters_[idx].token_reloads;
    auto client = ApiClient::create(config_, co, &shared_->stop);
    if (!client)
      return Error{"watcher (" + std::string(resource_name(r)) + "): " + client.error().message};
    runners.push_back(std::make_unique<Runner>(r, options_, queue_, counters_[idx], *shared_,
                                               std::move(*client),
                                               seed + idx * 0x9e3779b97f4a7c15ULL));
  }
  started_ = true;
  runners_ = std::move(runners);
  for (auto& runner : runners_) {
    Runner* p = runner.get();
    p->thread = std::thread([p] { p->run(); });
    pthread_setname_np(p->thread.native_handle(), thread_name(p->resource));
  }
  return {};
}

void Watcher::stop() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop.store(true);
  }
  shared_->cv.notify_all();
  for (auto& runner : runners_) {
    if (runner->thread.joinable()) runner->thread.join();
  }
}

bool Watcher::synced(Resource r) const {
  for (const auto& runner : runners_) {
    if (runner->resource == r) return runner->synced.load();
  }
  return false;
}

bool Watcher::synced() const {
  if (runners_.empty()) return false;
  for (const auto& runner : runners_) {
    if (!runner->synced.load()) return false;
  }
  return true;
}

const WatchCounters& Watcher::counters(Resource r) const {
  return counters_[static_cast<size_t>(r)];
}

std::string Watcher::resource_version(Resource r) const {
  for (const auto& runner : runners_) {
    if (runner->resource == r) return runner->rv();
  }
  return {};
}

void Watcher::for_each_counter(
    const std::function<void(Resource, const WatchCounterRow&)>& fn) const {
  for (const auto& runner : runners_) {
    const Resource r = runner->resource;
    counters_[static_cast<size_t>(r)].for_each(
        [&fn, r](const WatchCounterRow& row) { fn(r, row); });
    fn(r, WatchCounterRow{"watch_synced", "watch_synced", "", kWatchSyncedHelp,
                          runner->synced.load() ? 1u : 0u});
  }
}

}  // namespace magline::k8s
