// The Kubernetes feed's coalescing (control/k8s_feed.hpp), on K8sFeed::poll with a Publisher:
// the test hands it watch events as the watcher threads would (a K8sFeed cannot be handed to a
// ControlThread, whose start_kubernetes() builds its own watcher).
#include "control/k8s_feed.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/publisher.hpp"
#include "tests/unit/fake_link.hpp"
#include "tests/unit/k8s_json.hpp"

namespace magline::control {
namespace {

using test::kLbMac;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

using nlohmann::json;

using test::k8s_service;
using test::k8s_slice;


k8s::WatchEvent relisted(k8s::Resource r, std::vector<json> items) {
  k8s::WatchEvent e{r, k8s::WatchEvent::Type::relisted, {},
          std::make_shared<const std::vector<json>>(std::move(items)), "1",
                    std::chrono::steady_clock::now()};
  return e;
}
k8s::WatchEvent modified(k8s::Resource r, json object) {
  return {r, k8s::WatchEvent::Type::modified, std::move(object), nullptr, "2",
          std::chrono::steady_clock::now()};
}

class K8sFeedTest : public ::testing::Test {
 protected:
  K8sFeedTest() {
    node_.ports.push_back({0, "lan0", dp::MacAddr{kLbMac}, {{ip("198.18.0.1"), 16}}, 1500});
    cfg::Config c;
    c.node_addresses = {ip("198.18.0.1")};
    c.kubernetes.enabled = true;
    c.kubernetes.table_size = 251;
    c.kubernetes.min_table_size = 0;
    c.kubernetes.coalesce_ms = 5;
    auto q = std::make_unique<k8s::EventQueue>();
    events_ = q.get();
    feed_ = std::make_unique<K8sFeed>(c, std::move(q));
  }
  std::optional<Change> poll(uint64_t now_ms) { return feed_->poll(now_ms, pub_, {}); }

  dp::Node node_;
  Publisher pub_{node_};
  k8s::EventQueue* events_ = nullptr;
  std::unique_ptr<K8sFeed> feed_;
};

constexpr const char* kWeb = "default/web:http/tcp/v4";
constexpr const char* kDb = "default/db:http/tcp/v4";

TEST_F(K8sFeedTest, NothingIsPublishedBeforeBothFirstListsAreIn) {
  EXPECT_FALSE(poll(0));
  events_->push(relisted(k8s::Resource::services,
                         {k8s_service("web", "198.18.100.1"), k8s_service("db", "198.18.100.2")}));
  EXPECT_FALSE(poll(0));
  EXPECT_FALSE(poll(50));  // long past the window, but the slices are not listed yet
  // A slice event before the slices' list does not count as the list either.
  events_->push(modified(k8s::Resource::endpoint_slices,
                         k8s_slice("web-a", "web", {"198.18.1.10"})));
  EXPECT_FALSE(poll(60));
  EXPECT_EQ(pub_.size(), 0u);

  events_->push(relisted(k8s::Resource::endpoint_slices,
                         {k8s_slice("web-a", "web", {"198.18.1.10"}),
                          k8s_slice("db-a", "db", {"198.18.1.20"})}));
  // The burst began at 0: it is due at once.
  std::optional<Change> c = poll(70);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->built, 2u);
  EXPECT_EQ(c->updates.size(), 2u);
  EXPECT_EQ(pub_.size(), 2u);
  ASSERT_NE(pub_.find_by_name(kWeb), nullptr);
  EXPECT_EQ(pub_.find_by_name(kWeb)->spec().backends.size(), 1u);
  EXPECT_FALSE(poll(80));  // nothing new
}

// Readiness waits for the first sync: both lists in and handed over, even when they are empty.
TEST_F(K8sFeedTest, SyncedOnceBothFirstListsAreHandedOver) {
  EXPECT_FALSE(feed_->synced());
  events_->push(relisted(k8s::Resource::services, {}));
  EXPECT_FALSE(poll(0));
  EXPECT_FALSE(feed_->synced());
  events_->push(relisted(k8s::Resource::endpoint_slices, {}));
  EXPECT_FALSE(poll(1));  // within the coalescing window
  EXPECT_FALSE(feed_->synced());
  poll(10);  // nothing to publish, but the sync is done
  EXPECT_TRUE(feed_->synced());
}

TEST_F(K8sFeedTest, ABurstIsPublishedOnceCoalesceMsAfterItsFirstEvent) {
  events_->push(relisted(k8s::Resource::services,
                         {k8s_service("web", "198.18.100.1"), k8s_service("db", "198.18.100.2")}));
  events_->push(relisted(k8s::Resource::endpoint_slices,
                         {k8s_slice("web-a", "web", {"198.18.1.10"}),
                          k8s_slice("db-a", "db", {"198.18.1.20"})}));
  EXPECT_FALSE(poll(100));  // the window: 100 .. 105
  EXPECT_FALSE(poll(104));
  ASSERT_TRUE(poll(105));
  const dp::ServiceState* web = pub_.find_by_name(kWeb);
  const dp::ServiceState* db = pub_.find_by_name(kDb);

  // A burst: two slices change at 200 and 203; one change for both at 205.
  events_->push(modified(k8s::Resource::endpoint_slices,
                         k8s_slice("web-a", "web", {"198.18.1.10", "198.18.1.11"}, "2")));
  EXPECT_FALSE(poll(200));
  events_->push(modified(k8s::Resource::endpoint_slices,
                         k8s_slice("db-a", "db", {"198.18.1.20", "198.18.1.21"}, "2")));
  EXPECT_FALSE(poll(203));
  EXPECT_FALSE(poll(204));
  EXPECT_EQ(pub_.find_by_name(kWeb), web);  // nothing applied to the Publisher yet
  std::optional<Change> c = poll(205);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->built, 2u);
  EXPECT_EQ(c->retired.size(), 2u);
  EXPECT_EQ(c->updates.size(), 4u);  // two removals, two installs, in one piece
  EXPECT_NE(pub_.find_by_name(kWeb), web);
  EXPECT_NE(pub_.find_by_name(kDb), db);
  EXPECT_EQ(pub_.find_by_name(kDb)->spec().backends.size(), 2u);
  EXPECT_FALSE(poll(300));

  // The latency runs from the oldest event of a publish to its being in effect.
  EXPECT_EQ(feed_->latency().count(), 0u);
  feed_->in_effect(std::chrono::steady_clock::now());
  EXPECT_EQ(feed_->latency().count(), 1u);
  feed_->in_effect(std::chrono::steady_clock::now());
  EXPECT_EQ(feed_->latency().count(), 1u);  // nothing else in flight
}

// Node targets: the feed waits for the Nodes' list (not the slices'), re-translates the probed
// Services when told the verdicts changed (from any thread), and hands the prober its targets.
TEST(K8sFeedNodes, WaitsForNodesAndFollowsVerdicts) {
  dp::Node node;
  node.ports.push_back({0, "lan0", dp::MacAddr{kLbMac}, {{ip("198.18.0.1"), 16}}, 1500});
  Publisher pub(node);
  cfg::Config c;
  c.kubernetes.enabled = true;
  c.kubernetes.table_size = 251;
  c.kubernetes.min_table_size = 0;
  c.kubernetes.coalesce_ms = 5;
  c.kubernetes.targets = cfg::K8sTargets::nodes;
  auto q = std::make_unique<k8s::EventQueue>();
  k8s::EventQueue* events = q.get();
  K8sFeed feed(c, std::move(q));
  std::atomic<bool> w1_healthy{false};
  feed.set_node_verdict([&](std::string_view, std::string_view n) -> std::optional<bool> {
    if (n == "w1") return w1_healthy.load();
    return std::nullopt;
  });

  json web = k8s_service("web", "198.18.100.1");
  web["spec"]["ports"][0]["nodePort"] = 30080;
  web["spec"]["externalTrafficPolicy"] = "Local";
  web["spec"]["healthCheckNodePort"] = 32000;
  auto node_json = [](const std::string& name, const std::string& addr) {
    return json{{"metadata", {{"name", name}, {"resourceVersion", "1"}}},
                {"status",
                 {{"addresses", {{{"type", "InternalIP"}, {"address", addr}}}},
                  {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  };
  events->push(relisted(k8s::Resource::services, {web}));
  EXPECT_FALSE(feed.poll(0, pub, {}));
  EXPECT_FALSE(feed.poll(50, pub, {}));  // the Nodes are not listed yet
  events->push(relisted(k8s::Resource::nodes,
                        {node_json("w1", "198.18.1.11"), node_json("w2", "198.18.1.12")}));
  ASSERT_TRUE(feed.poll(60, pub, {}));
  EXPECT_TRUE(feed.synced());
  auto backends = [&] {
    std::vector<std::string> out;
    for (const dp::Backend& b : pub.find_by_name(kWeb)->spec().backends) {
      out.push_back(dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)));
    }
    return out;
  };
  EXPECT_EQ(backends(), (std::vector<std::string>{"198.18.1.11:30080 terminating",
                                                  "198.18.1.12:30080 terminating"}));
  const auto targets = feed.probe_targets();
  ASSERT_EQ(targets->size(), 2u);
  EXPECT_EQ((*targets)[0].node, "w1");
  EXPECT_EQ(dp::backend_id((*targets)[0].addr, (*targets)[0].port), "198.18.1.11:32000");
  const uint64_t version = feed.probe_targets_version();

  w1_healthy = true;
  std::thread prober([&] { feed.verdicts_changed(); });
  prober.join();
  EXPECT_FALSE(feed.poll(70, pub, {}));  // coalesced like any change: due at 75
  ASSERT_TRUE(feed.poll(75, pub, {}));
  EXPECT_EQ(backends(),
            (std::vector<std::string>{"198.18.1.11:30080 ready", "198.18.1.12:30080 terminating"}));
  EXPECT_EQ(feed.probe_targets_version(), version);  // same targets
}

}  // namespace
}  // namespace magline::control
