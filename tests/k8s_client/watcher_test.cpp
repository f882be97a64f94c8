// The watcher against the fake API server (fake_apiserver.py, one process per test): every
// error path of the reflector (k8s-api.md §2-5), checked through what reaches the EventQueue,
// the counters, and the server's log of the requests it saw.
#include "control/k8s_client/watcher.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "control/k8s_client/api_client.hpp"
#include "tests/k8s_client/fake_server.hpp"

extern char** environ;

namespace magline::k8s {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// --- Objects -----------------------------------------------------------------------------------

json service(const std::string& name, int i, json labels = json::object(),
             const std::string& ns = "default") {
  return {{"kind", "Service"},
          {"apiVersion", "v1"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", labels},
            // Quotes, braces and backslashes inside strings: the framer must not be fooled.
            {"annotations", {{"note", "say \"}{\" \\ " + std::to_string(i)}}}}},
          {"spec",
           {{"type", "ClusterIP"},
            {"clusterIP", "10.96.0." + std::to_string(i % 250 + 1)},
            {"ports", {{{"name", "http"}, {"port", 80 + i}, {"protocol", "TCP"}}}}}}};
}

json slice(const std::string& name, const std::string& svc, int endpoints,
           const std::string& ns = "default") {
  json eps = json::array();
  for (int e = 0; e < endpoints; ++e) {
    eps.push_back(
        {{"addresses", {"10.244.0." + std::to_string(e + 1)}}, {"conditions", {{"ready", true}}}});
  }
  return {{"kind", "EndpointSlice"},
          {"apiVersion", "discovery.k8s.io/v1"},
          {"metadata",
           {{"name", name}, {"namespace", ns}, {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"},
          {"endpoints", eps},
          {"ports", {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}}};
}

std::string key_of(const json& o) {
  return o["metadata"].value("namespace", "") + "/" + o["metadata"].value("name", "");
}

json strip_type(json o) {
  o.erase("kind");
  o.erase("apiVersion");
  return o;
}

// What a receiver holds after applying every event: the state the watcher promises.
struct Mirror {
  std::map<std::string, json> objects[kResourceCount];
  std::vector<WatchEvent> relists;
  std::vector<WatchEvent> all;

  void pump(EventQueue& q) {
    std::vector<WatchEvent> evs;
    q.drain(evs);
    for (auto& e : evs) {
      auto& m = objects[static_cast<size_t>(e.resource)];
      switch (e.type) {
        case WatchEvent::Type::relisted:
          m.clear();
          for (const auto& item : e.listed())
            m[key_of(item)] = item;
          relists.push_back(e);
          break;
        case WatchEvent::Type::added:
        case WatchEvent::Type::modified:
          m[key_of(e.object)] = strip_type(e.object);
          break;
        case WatchEvent::Type::deleted:
          m.erase(key_of(e.object));
          break;
      }
      all.push_back(std::move(e));
    }
  }
};

// --- The fixture -------------------------------------------------------------------------------

class WatcherTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (watcher_) watcher_->stop();
  }

  FakeServer& serve(const std::vector<std::string>& args = {}, const std::string& scheme = "http") {
    server_ = std::make_unique<FakeServer>(args, scheme);
    if (!server_->ok()) ADD_FAILURE() << "the fake API server did not start";
    return *server_;
  }

  static WatcherOptions fast() {
    WatcherOptions o;
    o.resources = {Resource::services};
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    o.watch_timeout_min = 30s;
    o.watch_timeout_max = 31s;
    o.connect_timeout = 2s;
    o.seed = 42;
    return o;
  }

  ApiConfig config() const {
    ApiConfig c;
    c.server = server_->url();
    return c;
  }

  Watcher& watch(WatcherOptions o, ApiConfig c) {
    watcher_ = std::make_unique<Watcher>(std::move(c), std::move(o), queue_);
    auto r = watcher_->start();
    EXPECT_TRUE(r.ok()) << r.error().message;
    return *watcher_;
  }
  Watcher& watch(WatcherOptions o) { return watch(std::move(o), config()); }

  // Polls `pred` (pumping the queue into the mirror) until it holds or `timeout` passes.
  bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      mirror_.pump(queue_);
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      queue_.wait_for(10ms);
    }
  }

  uint64_t count(Resource r, std::atomic<uint64_t> WatchCounters::*field) const {
    return (watcher_->counters(r).*field).load();
  }
  uint64_t svc(std::atomic<uint64_t> WatchCounters::*field) const {
    return count(Resource::services, field);
  }

  bool synced_and_matching(Resource r, const std::string& kind) {
    auto want = server_->objects(kind);
    return eventually([&] { return watcher_->synced() && mirror_.objects[size_t(r)] == want; });
  }

  // The server's log, filtered.
  std::vector<json> requests(bool watches) {
    std::vector<json> out;
    for (auto& r : server_->requests()) {
      if (r["watch"].get<bool>() == watches) out.push_back(r);
    }
    return out;
  }

  std::unique_ptr<FakeServer> server_;
  EventQueue queue_;
  Mirror mirror_;
  std::unique_ptr<Watcher> watcher_;
};

#define REQUIRE_SERVER() \
  if (!server_ || !server_->ok()) GTEST_FAIL() << "no fake API server"

// --- Cases -------------------------------------------------------------------------------------

TEST_F(WatcherTest, PaginatedListUsesTheSameParametersOnEveryPage) {
  serve();
  REQUIRE_SERVER();
  json batch = {{"items", json::array()}};
  for (int i = 0; i < 23; ++i) {
    batch["items"].push_back(service("web-" + std::to_string(100 + i), i, {{"app", "web"}}));
  }
  for (int i = 0; i < 3; ++i) {
    batch["items"].push_back(service("db-" + std::to_string(i), i, {{"app", "db"}}));
  }
  server_->put(batch);
  auto o = fast();
  o.page_limit = 5;
  o.label_selector = "app=web";
  watch(o);
  ASSERT_TRUE(eventually([&] { return !mirror_.relists.empty(); }));
  const WatchEvent& first = mirror_.relists[0];
  EXPECT_EQ(first.listed().size(), 23u);
  EXPECT_EQ(first.resource_version, server_->rv());
  for (const auto& item : first.listed()) {
    EXPECT_FALSE(item.contains("kind"));  // list items carry no kind (k8s-api.md §2)
    EXPECT_EQ(item["metadata"]["labels"]["app"], "web");
  }
  EXPECT_EQ(svc(&WatchCounters::list_pages), 5u);  // 5+5+5+5+3
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);

  const auto lists = requests(false);
  ASSERT_EQ(lists.size(), 5u);
  for (size_t i = 0; i < lists.size(); ++i) {
    const json& q = lists[i]["query"];
    EXPECT_EQ(q.value("limit", ""), "5") << i;
    EXPECT_EQ(q.value("labelSelector", ""), "app=web") << i;
    EXPECT_FALSE(q.contains("resourceVersion")) << i;  // consistent reads
    EXPECT_EQ(q.contains("continue"), i > 0) << i;
  }
  // Then the watch from the list's RV, with the same selector.
  ASSERT_TRUE(eventually([&] { return !requests(true).empty(); }));
  const json q = requests(true)[0]["query"];
  EXPECT_EQ(q["resourceVersion"], first.resource_version);
  EXPECT_EQ(q["allowWatchBookmarks"], "true");
  EXPECT_EQ(q["labelSelector"], "app=web");
  EXPECT_EQ(q["timeoutSeconds"], "30");
}

TEST_F(WatcherTest, ManyEventsSplitAcrossChunksReachTheSameStateAsTheServer) {
  serve({"--max-chunk", "7", "--seed", "3"});  // every event is cut into many small chunks
  REQUIRE_SERVER();
  auto o = fast();
  o.resources = {Resource::services, Resource::endpoint_slices};
  o.label_selector = "!service.kubernetes.io/service-proxy-name";
  watch(o);
  ASSERT_TRUE(eventually([&] { return watcher_->synced(); }));

  for (int round = 0; round < 4; ++round) {
    json batch = {{"items", json::array()}};
    for (int i = 0; i < 60; ++i) {
      const std::string n = "svc-" + std::to_string(i);
      batch["items"].push_back(service(n, i + round, {{"round", std::to_string(round)}}));
      batch["items"].push_back(slice(n + "-abc", n, 1 + (i + round) % 10));
    }
    server_->put(batch);
  }
  // Selector transitions: taking a Service away is a DELETED for us, giving it back an ADDED.
  json away = {{"items", json::array()}};
  for (int i = 0; i < 20; ++i) {
    away["items"].push_back(service("svc-" + std::to_string(i), i,
                                    {{"service.kubernetes.io/service-proxy-name", "other"}}));
  }
  server_->put(away);
  json back = {{"items", json::array()}, {"delete", json::array()}};
  for (int i = 0; i < 10; ++i)
    back["items"].push_back(service("svc-" + std::to_string(i), i));
  for (int i = 40; i < 60; ++i) {
    back["delete"].push_back(
        {{"kind", "Service"}, {"namespace", "default"}, {"name", "svc-" + std::to_string(i)}});
    back["delete"].push_back({{"kind", "EndpointSlice"},
                              {"namespace", "default"},
                              {"name", "svc-" + std::to_string(i) + "-abc"}});
  }
  server_->put(back);

  auto want = server_->objects("services");
  for (int i = 10; i < 20; ++i)
    want.erase("default/svc-" + std::to_string(i));  // filtered out
  const auto want_slices = server_->objects("endpointslices");
  ASSERT_EQ(want.size(), 30u);
  ASSERT_EQ(want_slices.size(), 40u);
  EXPECT_TRUE(eventually([&] {
    return mirror_.objects[0] == want && mirror_.objects[1] == want_slices;
  })) << "services "
      << mirror_.objects[0].size() << " slices " << mirror_.objects[1].size();
  EXPECT_EQ(svc(&WatchCounters::decode_errors), 0u);
  EXPECT_EQ(svc(&WatchCounters::relists), 0u);
  EXPECT_EQ(svc(&WatchCounters::events_deleted), 40u);  // 20 went away + 20 deleted
  EXPECT_EQ(count(Resource::endpoint_slices, &WatchCounters::events_deleted), 20u);
  EXPECT_EQ(count(Resource::endpoint_slices, &WatchCounters::decode_errors), 0u);
  // The last write deleted a slice; the one before it, a Service (the fake's RVs are integers).
  const std::string last = server_->rv();
  EXPECT_EQ(watcher_->resource_version(Resource::endpoint_slices), last);
  EXPECT_EQ(watcher_->resource_version(Resource::services), std::to_string(std::stoll(last) - 1));
  // The watch bodies arrived in many pieces: far more bytes than events.
  EXPECT_GT(svc(&WatchCounters::bytes_received), 100000u);
}

TEST_F(WatcherTest, BookmarksAdvanceTheResourceVersion) {
  serve({"--bookmark-interval", "0.1"});
  REQUIRE_SERVER();
  watch(fast());
  ASSERT_TRUE(eventually([&] { return watcher_->synced(); }));
  const std::string svc_rv = server_->put(service("a", 1));
  ASSERT_TRUE(eventually([&] { return mirror_.objects[0].size() == 1; }));
  // Writes to another resource move the global RV; only bookmarks can tell the Service watch.
  std::string now;
  for (int i = 0; i < 5; ++i)
    now = server_->put(slice("s" + std::to_string(i), "a", 1));
  ASSERT_NE(now, svc_rv);
  EXPECT_TRUE(eventually([&] { return watcher_->resource_version(Resource::services) == now; }))
      << watcher_->resource_version(Resource::services) << " != " << now;
  EXPECT_GT(svc(&WatchCounters::bookmarks), 0u);
  // Bookmarks are not delivered: one relisted event and one ADDED, nothing else.
  mirror_.pump(queue_);
  EXPECT_EQ(mirror_.all.size(), 2u);
}

TEST_F(WatcherTest, CleanTimeoutEndRewatchesFromTheLastResourceVersion) {
  serve();
  REQUIRE_SERVER();
  auto o = fast();
  o.watch_timeout_min = 1s;
  o.watch_timeout_max = 2s;
  watch(o);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  const std::string rv = server_->put(service("a", 1));
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 2; }, 5s));
  EXPECT_GE(svc(&WatchCounters::clean_ends), 1u);
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);  // no relist
  EXPECT_EQ(svc(&WatchCounters::connection_errors), 0u);
  const auto watches = requests(true);
  ASSERT_GE(watches.size(), 2u);
  EXPECT_EQ(watches[0]["query"]["timeoutSeconds"], "1");
  EXPECT_EQ(watches[0]["ended"], "clean");
  EXPECT_EQ(watches[1]["query"]["resourceVersion"], rv);  // the ADDED event's RV
}

TEST_F(WatcherTest, InBandExpiredErrorRelists) {
  serve();
  REQUIRE_SERVER();
  server_->put(service("a", 1));
  watch(fast());
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  server_->inject({{"match", "watch"}, {"inband_status", 410}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return mirror_.relists.size() == 2; }));
  EXPECT_EQ(svc(&WatchCounters::expired_in_band), 1u);
  EXPECT_EQ(svc(&WatchCounters::relists), 1u);
  EXPECT_EQ(svc(&WatchCounters::lists), 2u);
  EXPECT_EQ(svc(&WatchCounters::http_410), 0u);
  EXPECT_EQ(mirror_.relists[1].listed().size(), 1u);
}

TEST_F(WatcherTest, HttpGoneRelists) {
  serve();
  REQUIRE_SERVER();
  watch(fast());
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  server_->inject({{"path", "/api/v1/services"}, {"match", "watch"}, {"status", 410}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::lists) == 2; }));
  EXPECT_EQ(svc(&WatchCounters::http_410), 1u);
  EXPECT_EQ(svc(&WatchCounters::relists), 1u);
  // One backoff: the cut watch ended at once with nothing in it ("very short watch"). None
  // after the 410: the relist follows at once.
  EXPECT_EQ(svc(&WatchCounters::backoffs), 1u);
  const auto log = server_->requests();
  ASSERT_GE(log.size(), 4u);  // list, watch (cut), watch (410), list[, the next watch]
  EXPECT_EQ(log[2]["status"], 410);
  EXPECT_FALSE(log[3]["watch"].get<bool>());
  EXPECT_LT(log[3]["t"].get<double>() - log[2]["t"].get<double>(), 0.2);
}

TEST_F(WatcherTest, ObjectsDeletedWhileDisconnectedDisappearAfterTheRelist) {
  serve();
  REQUIRE_SERVER();
  json batch = {{"items", json::array()}};
  for (int i = 0; i < 10; ++i)
    batch["items"].push_back(service("s" + std::to_string(i), i));
  server_->put(batch);
  watch(fast());
  ASSERT_TRUE(synced_and_matching(Resource::services, "services"));
  // Disconnect: every watch attempt fails until the fault is cleared.
  server_->inject({{"match", "watch"}, {"status", 503}, {"count", -1}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::http_5xx) >= 1; }));
  json change = {{"items", {service("s9", 99)}}, {"delete", json::array()}};
  for (int i = 0; i < 4; ++i) {
    change["delete"].push_back(
        {{"kind", "Service"}, {"namespace", "default"}, {"name", "s" + std::to_string(i)}});
  }
  server_->put(change);
  ASSERT_EQ(server_->post("/fake/compact", json::object()).status, 200);  // the deletions are gone
  ASSERT_EQ(server_->call("DELETE", "/fake/inject").status, 200);
  // The re-watch from the old RV gets the in-band 410; only the relist can tell.
  ASSERT_TRUE(eventually([&] { return mirror_.relists.size() == 2; }));
  EXPECT_EQ(svc(&WatchCounters::expired_in_band), 1u);
  std::set<std::string> names;
  for (const auto& item : mirror_.relists[1].listed())
    names.insert(item["metadata"]["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"s4", "s5", "s6", "s7", "s8", "s9"}));
  EXPECT_TRUE(synced_and_matching(Resource::services, "services"));
  EXPECT_EQ(mirror_.objects[0]["default/s9"]["spec"]["ports"][0]["port"], 179);
}

TEST_F(WatcherTest, TooManyRequestsHonoursRetryAfter) {
  serve();
  REQUIRE_SERVER();
  watch(fast());  // backoff 10 ms: only Retry-After can explain a one-second wait
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  server_->inject({{"match", "watch"}, {"status", 429}, {"retry_after", 1}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 2; }, 5s));
  EXPECT_EQ(svc(&WatchCounters::http_429), 1u);
  EXPECT_EQ(svc(&WatchCounters::relists), 0u);
  const auto watches = requests(true);
  ASSERT_EQ(watches.size(), 3u);
  EXPECT_EQ(watches[1]["status"], 429);
  const double gap = watches[2]["t"].get<double>() - watches[1]["t"].get<double>();
  EXPECT_GE(gap, 0.95);
  EXPECT_LT(gap, 3.0);
}

TEST_F(WatcherTest, ServerErrorsBackOffThenRecoverWithoutRelisting) {
  serve();
  REQUIRE_SERVER();
  auto o = fast();
  o.backoff_initial = 40ms;
  o.backoff_max = 1000ms;
  watch(o);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  std::this_thread::sleep_for(1s);  // so that the cut below ends a watch, not a "very short" one
  server_->inject({{"match", "watch"}, {"status", 500}, {"count", 3}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 2; }));
  server_->put(service("after", 1));
  EXPECT_TRUE(eventually([&] { return mirror_.objects[0].count("default/after") == 1; }));
  EXPECT_EQ(svc(&WatchCounters::http_5xx), 3u);
  EXPECT_EQ(svc(&WatchCounters::backoffs), 3u);
  EXPECT_EQ(svc(&WatchCounters::relists), 0u);
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);
  // The waits grow: 40, 80, 160 ms (plus up to half again of jitter).
  const auto w = requests(true);
  ASSERT_EQ(w.size(), 5u);
  const double first_gap = w[2]["t"].get<double>() - w[1]["t"].get<double>();
  const double last_gap = w[4]["t"].get<double>() - w[3]["t"].get<double>();
  EXPECT_GE(first_gap, 0.035);
  EXPECT_GE(last_gap, 0.155);
  EXPECT_GT(last_gap, first_gap);
}

TEST_F(WatcherTest, WatchesThatEndAtOnceAreRetriedAfterGrowingWaits) {
  serve();
  REQUIRE_SERVER();
  auto o = fast();
  o.backoff_initial = 40ms;
  o.backoff_max = 1000ms;
  server_->inject({{"match", "watch"}, {"raw_body", ""}, {"count", 3}});  // 200, then nothing
  watch(o);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 4; }));
  EXPECT_EQ(svc(&WatchCounters::clean_ends), 3u);
  EXPECT_EQ(svc(&WatchCounters::backoffs), 3u);
  const auto w = requests(true);
  ASSERT_GE(w.size(), 4u);
  const double first_gap = w[1]["t"].get<double>() - w[0]["t"].get<double>();
  const double last_gap = w[3]["t"].get<double>() - w[2]["t"].get<double>();
  EXPECT_GE(first_gap, 0.035);
  EXPECT_GE(last_gap, 0.155);
}

TEST_F(WatcherTest, TooLargeResourceVersionRelistsWithoutResourceVersion) {
  serve();
  REQUIRE_SERVER();
  watch(fast());
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  server_->inject({{"match", "watch"}, {"status", 504}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::lists) == 2; }));
  EXPECT_EQ(svc(&WatchCounters::too_large_rv), 1u);
  EXPECT_EQ(svc(&WatchCounters::http_5xx), 0u);
  EXPECT_EQ(svc(&WatchCounters::relists), 1u);
  const auto lists = requests(false);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_FALSE(lists[1]["query"].contains("resourceVersion"));
}

TEST_F(WatcherTest, ConnectionResetsMidStreamLoseNoEvents) {
  serve({"--max-chunk", "50"});
  REQUIRE_SERVER();
  watch(fast());
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  // One watch dies in the middle of its fourth event; then writes race with resets.
  server_->inject({{"match", "watch"}, {"reset_after_events", 3}});
  server_->cut_watches("end");
  for (int round = 0; round < 6; ++round) {
    json batch = {{"items", json::array()}};
    for (int i = 0; i < 25; ++i) {
      batch["items"].push_back(service("s" + std::to_string(i), i + round * 100));
    }
    server_->put(batch);
    std::this_thread::sleep_for(20ms);
    server_->cut_watches("reset");
  }
  EXPECT_TRUE(synced_and_matching(Resource::services, "services"));
  EXPECT_GE(svc(&WatchCounters::connection_errors), 2u);
  EXPECT_EQ(svc(&WatchCounters::relists), 0u);  // recovered by re-watching, not relisting
  EXPECT_EQ(svc(&WatchCounters::decode_errors), 0u);
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);
}

TEST_F(WatcherTest, RotatedTokenIsReReadAfterUnauthorized) {
  serve({"--token", "first"});
  REQUIRE_SERVER();
  const fs::path dir = fs::temp_directory_path() / ("k8s-token-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "token").string();
  std::ofstream(file) << "first\n";
  ApiConfig c = config();
  c.token_file = file;
  watch(fast(), c);  // token period 60 s: only the 401 makes it read the file again
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  std::ofstream(file) << "second\n";
  server_->post("/fake/token", {{"token", "second"}});
  server_->cut_watches("end");
  server_->put(service("after", 1));
  EXPECT_TRUE(eventually([&] { return mirror_.objects[0].count("default/after") == 1; }));
  EXPECT_EQ(svc(&WatchCounters::http_401), 1u);
  EXPECT_EQ(svc(&WatchCounters::token_reloads), 1u);
  const auto w = requests(true);
  ASSERT_GE(w.size(), 3u);
  EXPECT_EQ(w[0]["auth"], "ok");
  EXPECT_EQ(w[1]["auth"], "bad");
  EXPECT_EQ(w[2]["auth"], "ok");
  fs::remove_all(dir);
}

TEST_F(WatcherTest, TokenFileIsReReadPeriodically) {
  serve({"--token", "first"});
  REQUIRE_SERVER();
  const fs::path dir = fs::temp_directory_path() / ("k8s-token-p-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "token").string();
  std::ofstream(file) << "first";
  ApiConfig c = config();
  c.token_file = file;
  auto o = fast();
  o.token_period = 100ms;
  watch(o, c);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  std::ofstream(file) << "second";
  server_->post("/fake/token", {{"token", "second"}});
  std::this_thread::sleep_for(150ms);
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 2; }));
  EXPECT_EQ(svc(&WatchCounters::http_401), 0u);  // the new token was read before it was needed
  EXPECT_GE(svc(&WatchCounters::token_reloads), 1u);
  fs::remove_all(dir);
}

TEST_F(WatcherTest, ExpiredContinueTokenRestartsTheListWhole) {
  serve();
  REQUIRE_SERVER();
  json batch = {{"items", json::array()}};
  for (int i = 0; i < 12; ++i)
    batch["items"].push_back(service("s" + std::to_string(i), i));
  server_->put(batch);
  server_->inject({{"match", "continue"}, {"status", 410}});
  auto o = fast();
  o.page_limit = 5;
  watch(o);
  ASSERT_TRUE(eventually([&] { return !mirror_.relists.empty(); }));
  EXPECT_EQ(mirror_.relists[0].listed().size(), 12u);
  EXPECT_EQ(svc(&WatchCounters::http_410), 1u);
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);
  EXPECT_EQ(svc(&WatchCounters::list_pages), 2u);  // the first page, then the whole list
  const auto lists = requests(false);
  ASSERT_EQ(lists.size(), 3u);
  EXPECT_EQ(lists[0]["query"].value("limit", ""), "5");
  EXPECT_EQ(lists[1]["status"], 410);
  EXPECT_TRUE(lists[1]["query"].contains("continue"));
  EXPECT_FALSE(lists[2]["query"].contains("limit"));
  EXPECT_FALSE(lists[2]["query"].contains("continue"));
}

TEST_F(WatcherTest, UnknownEventTypeIsADecodeErrorAndTheStreamRestarts) {
  serve();
  REQUIRE_SERVER();
  watch(fast());
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  const std::string rv = server_->rv();
  server_->inject({{"match", "watch"},
                   {"raw_body",
                    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{"
                    "\"resourceVersion\":\"" +
                        rv +
                        "\"}}}\n"
                        "{\"type\":\"SURPRISE\",\"object\":{}}\n"}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 3; }));
  EXPECT_EQ(svc(&WatchCounters::decode_errors), 1u);
  EXPECT_EQ(svc(&WatchCounters::bookmarks), 1u);  // what came before it still counts
  EXPECT_EQ(svc(&WatchCounters::relists), 0u);
}

TEST_F(WatcherTest, NamespaceScopesBothCollections) {
  serve();
  REQUIRE_SERVER();
  server_->put(
      {{"items",
        {service("a", 1, json::object(), "team-a"), service("b", 2, json::object(), "team-b"),
         slice("a-1", "a", 2, "team-a"), slice("b-1", "b", 2, "team-b")}}});
  auto o = fast();
  o.resources = {Resource::services, Resource::endpoint_slices};
  o.ns = "team-a";
  watch(o);
  ASSERT_TRUE(eventually([&] { return mirror_.relists.size() == 2; }));
  EXPECT_EQ(mirror_.objects[0].size(), 1u);
  EXPECT_EQ(mirror_.objects[0].count("team-a/a"), 1u);
  EXPECT_EQ(mirror_.objects[1].count("team-a/a-1"), 1u);
  std::set<std::string> paths;
  for (auto& r : server_->requests())
    paths.insert(r["path"]);
  EXPECT_EQ(paths,
            (std::set<std::string>{"/api/v1/namespaces/team-a/services",
                                   "/apis/discovery.k8s.io/v1/namespaces/team-a/endpointslices"}));
}

json node(const std::string& name, const std::string& ip, const std::string& ready = "True") {
  return {{"kind", "Node"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"status",
           {{"addresses", {{{"type", "InternalIP"}, {"address", ip}}}},
            {"conditions", {{{"type", "Ready"}, {"status", ready}}}}}}};
}

// Node targets: Nodes are cluster-scoped and carry no Service labels, so neither the namespace
// nor the label selector applies to them; they are listed, watched and recovered like the rest.
TEST_F(WatcherTest, NodesAreWatchedClusterWideWithoutTheSelector) {
  serve();
  REQUIRE_SERVER();
  server_->put({{"items",
                 {service("a", 1, json::object(), "team-a"), node("w1", "192.168.1.11"),
                  node("w2", "192.168.1.12")}}});
  auto o = fast();
  o.resources = {Resource::services, Resource::nodes};
  o.ns = "team-a";
  o.label_selector = "!service.kubernetes.io/headless";
  watch(o);
  ASSERT_TRUE(eventually([&] { return mirror_.relists.size() == 2 && watcher_->synced(); }));
  EXPECT_EQ(mirror_.objects[size_t(Resource::nodes)].size(), 2u);
  EXPECT_EQ(mirror_.objects[size_t(Resource::nodes)].count("/w1"), 1u);
  EXPECT_EQ(count(Resource::nodes, &WatchCounters::lists), 1u);
  EXPECT_TRUE(watcher_->synced(Resource::nodes));
  EXPECT_FALSE(watcher_->synced(Resource::endpoint_slices));  // not watched

  // A node goes NotReady, another one joins, one leaves: three events.
  server_->put({{"items", {node("w1", "192.168.1.11", "False"), node("w3", "192.168.1.13")}},
                {"delete", {{{"kind", "Node"}, {"name", "w2"}}}}});
  ASSERT_TRUE(eventually([&] {
    const auto& nodes = mirror_.objects[size_t(Resource::nodes)];
    return nodes.size() == 2 && nodes.count("/w3") &&
           nodes.at("/w1")["status"]["conditions"][0]["status"] == "False";
  }));
  EXPECT_EQ(count(Resource::nodes, &WatchCounters::events_deleted), 1u);

  // An expired watch relists the Nodes alone.
  server_->inject({{"match", "watch"}, {"status", 410}, {"count", 1}, {"resource", "nodes"}});
  server_->cut_watches("end");
  ASSERT_TRUE(eventually([&] { return count(Resource::nodes, &WatchCounters::lists) == 2; }));
  EXPECT_EQ(mirror_.objects[size_t(Resource::nodes)].size(), 2u);

  std::set<std::string> node_queries;
  for (auto& r : server_->requests()) {
    const std::string path = r["path"];
    if (path.find("nodes") == std::string::npos) continue;
    node_queries.insert(path);
    EXPECT_EQ(r["query"].dump().find("labelSelector"), std::string::npos) << r.dump();
  }
  EXPECT_EQ(node_queries, (std::set<std::string>{"/api/v1/nodes"}));
}

// The provider reads every Service from the forwarding side's watch: Services are listed and
// watched once, without the selector (slices keep it), and both queues see every Service event
// in the same order; slice events go to the feed's queue only.
TEST_F(WatcherTest, ServicesCopiedToASecondQueueAreReadOnceWithoutTheSelector) {
  serve();
  REQUIRE_SERVER();
  const json proxied = {{"service.kubernetes.io/service-proxy-name", "other"}};
  server_->put({{"items", {service("a", 1), service("b", 2, proxied), slice("a-x", "a", 2)}}});
  auto o = fast();
  o.resources = {Resource::services, Resource::endpoint_slices};
  o.label_selector = "!service.kubernetes.io/service-proxy-name";
  auto copy = std::make_shared<EventQueue>();
  o.services_copy = copy;
  watch(o);
  Mirror second;
  auto both = [&](size_t services) {
    if (!watcher_->synced()) return false;
    mirror_.pump(queue_);  // once synced, every resource's list is in the queue
    second.pump(*copy);
    return mirror_.objects[size_t(Resource::services)].size() == services &&
           second.objects[size_t(Resource::services)].size() == services;
  };
  ASSERT_TRUE(eventually([&] { return both(2); }));
  EXPECT_EQ(mirror_.objects[size_t(Resource::endpoint_slices)].size(), 1u);
  server_->put({{"items", {service("c", 3, proxied), slice("c-x", "c", 1)}},
                {"delete", {{{"kind", "Service"}, {"namespace", "default"}, {"name", "a"}}}}});
  ASSERT_TRUE(eventually(
      [&] { return both(2) && mirror_.objects[size_t(Resource::services)].count("default/c"); }));
  EXPECT_EQ(second.objects[size_t(Resource::services)],
            mirror_.objects[size_t(Resource::services)]);
  for (const WatchEvent& e : second.all) EXPECT_EQ(e.resource, Resource::services);
  auto name = [](const WatchEvent& e) {
    return e.resource_version + (e.type == WatchEvent::Type::relisted ? "" : key_of(e.object));
  };
  std::vector<std::string> feed_order, copy_order;
  for (const WatchEvent& e : mirror_.all) {
    if (e.resource == Resource::services) feed_order.push_back(name(e));
  }
  for (const WatchEvent& e : second.all) copy_order.push_back(name(e));
  EXPECT_EQ(feed_order, copy_order);

  size_t service_lists = 0;
  for (auto& r : server_->requests()) {
    const std::string path = r["path"];
    const bool has_selector = r["query"].dump().find("labelSelector") != std::string::npos;
    if (path.find("services") != std::string::npos) {
      EXPECT_FALSE(has_selector) << r.dump();
      service_lists += !r["watch"].get<bool>();
    } else {
      EXPECT_TRUE(has_selector) << r.dump();
    }
  }
  EXPECT_EQ(service_lists, 1u);
  EXPECT_EQ(svc(&WatchCounters::lists), 1u);
}

TEST_F(WatcherTest, StopReturnsPromptlyDuringASilentWatch) {
  serve();
  REQUIRE_SERVER();
  auto o = fast();
  o.watch_timeout_min = 300s;
  o.watch_timeout_max = 301s;
  watch(o);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::watches_started) >= 1; }));
  std::this_thread::sleep_for(300ms);  // blocked in the silent stream
  const auto t0 = std::chrono::steady_clock::now();
  watcher_->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1500ms);
}

TEST_F(WatcherTest, StopReturnsPromptlyDuringABackoff) {
  serve();
  REQUIRE_SERVER();
  auto o = fast();
  o.backoff_initial = 60s;
  o.backoff_max = 60s;
  server_->inject({{"match", "list"}, {"status", 500}});
  watch(o);
  ASSERT_TRUE(eventually([&] { return svc(&WatchCounters::backoffs) >= 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  watcher_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_FALSE(watcher_->synced());
}

// --- TLS ---------------------------------------------------------------------------------------

class TlsTest : public WatcherTest {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("k8s-tls-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=fake-apiserver -addext subjectAltName=DNS:fake-apiserver,DNS:localhost "
        "-keyout " +
        (dir_ / "key.pem").string() + " -out " + (dir_ / "cert.pem").string() + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl could not make a certificate";
    serve({"--tls-cert", cert(), "--tls-key", (dir_ / "key.pem").string()}, "https");
  }
  void TearDown() override {
    WatcherTest::TearDown();
    fs::remove_all(dir_);
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }

  fs::path dir_;
};

TEST_F(TlsTest, VerifiesTheServerWithTheCaFile) {
  REQUIRE_SERVER();
  server_->put(service("a", 1));
  ApiConfig c;
  c.server = "https://localhost:" + std::to_string(server_->port());
  c.ca_file = cert();
  watch(fast(), c);
  EXPECT_TRUE(eventually([&] { return watcher_->synced(); }));
  EXPECT_EQ(mirror_.objects[0].size(), 1u);
}

TEST_F(TlsTest, TlsServerNameAndInlineCa) {
  REQUIRE_SERVER();
  std::ifstream in(cert());
  ApiConfig c;
  c.server = server_->url();  // https://127.0.0.1:port: the certificate does not name the IP
  c.ca_pem.assign(std::istreambuf_iterator<char>(in), {});
  c.tls_server_name = "fake-apiserver";
  watch(fast(), c);
  EXPECT_TRUE(eventually([&] { return watcher_->synced(); }));
}

TEST_F(TlsTest, RefusesACertificateThatDoesNotNameTheServer) {
  REQUIRE_SERVER();
  ApiConfig c;
  c.server = server_->url();
  c.ca_file = cert();
  watch(fast(), c);
  EXPECT_TRUE(eventually([&] { return svc(&WatchCounters::connection_errors) >= 2; }));
  EXPECT_FALSE(watcher_->synced());
  EXPECT_TRUE(requests(false).empty());  // no request got through
}

TEST_F(TlsTest, RefusesAnUntrustedCertificate) {
  REQUIRE_SERVER();
  ApiConfig c;
  c.server = "https://localhost:" + std::to_string(server_->port());  // system trust store only
  watch(fast(), c);
  EXPECT_TRUE(eventually([&] { return svc(&WatchCounters::connection_errors) >= 2; }));
  EXPECT_FALSE(watcher_->synced());
}

// --- Configuration errors ----------------------------------------------------------------------

TEST(WatcherConfig, StartRefusesWhatCannotMakeAClient) {
  EventQueue q;
  {
    Watcher w(ApiConfig{}, WatcherOptions{}, q);
    auto r = w.start();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("no server"), std::string::npos) << r.error().message;
  }
  {
    ApiConfig c;
    c.server = "https://127.0.0.1:1";
    c.token_file = "/nonexistent/token";
    Watcher w(c, WatcherOptions{}, q);
    auto r = w.start();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("/nonexistent/token"), std::string::npos);
  }
  {
    ApiConfig c;
    c.server = "https://127.0.0.1:1";
    c.ca_file = "/nonexistent/ca.crt";
    Watcher w(c, WatcherOptions{}, q);
    EXPECT_FALSE(w.start().ok());
  }
  {
    ApiConfig c;
    c.server = "ftp://127.0.0.1:1";
    Watcher w(c, WatcherOptions{}, q);
    EXPECT_FALSE(w.start().ok());
  }
}

TEST(WatcherConfig, CountersAreNamedForPrometheus) {
  EventQueue q;
  ApiConfig c;
  c.server = "http://127.0.0.1:1";
  WatcherOptions o;
  o.resources = {Resource::endpoint_slices};
  o.backoff_initial = 10ms;
  Watcher w(c, o, q);
  ASSERT_TRUE(w.start().ok());
  std::this_thread::sleep_for(100ms);  // nothing listens on port 1: connection errors
  w.stop();
  std::map<std::string, uint64_t> seen;
  std::set<std::pair<std::string, std::string>> series;
  w.for_each_counter([&](Resource r, const WatchCounterRow& row) {
    EXPECT_EQ(r, Resource::endpoint_slices);
    seen[std::string(row.json)] = row.value;
    // One series per row; characteristics are labels, not parts of the family's name.
    EXPECT_TRUE(series.emplace(row.metric, row.label).second) << row.metric << row.label;
    EXPECT_EQ(row.metric.rfind("watch_", 0), 0u) << row.metric;
    EXPECT_EQ(row.metric.find("http"), std::string_view::npos) << row.metric;
    EXPECT_FALSE(row.help.empty()) << row.metric;
    EXPECT_EQ(row.metric.ends_with("_total"), row.json != "watch_synced") << row.metric;
  });
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_GE(seen["watch_connection_errors_total"], 1u);
  EXPECT_EQ(seen["watch_synced"], 0u);
  EXPECT_EQ(series.count({"watch_responses_total", "code=\"410\""}), 1u);
  EXPECT_EQ(series.count({"watch_events_total", "type=\"ADDED\""}), 1u);
  for (const auto& [name, v] : seen) {
    EXPECT_EQ(name.rfind("watch_", 0), 0u) << name;
  }
}

TEST(UrlEncode, LabelSelectors) {
  EXPECT_EQ(url_encode("!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"),
            "%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless");
  EXPECT_EQ(url_encode("app in (a, b)"), "app%20in%20%28a%2C%20b%29");
  EXPECT_EQ(url_encode("a-b_c.d~e"), "a-b_c.d~e");
}

}  // namespace
}  // namespace magline::k8s
