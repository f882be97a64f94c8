// Leader election and node liveness on Leases (control/k8s/lease.hpp): client-go's
// tryAcquireOrRenew as a table of cases, clock-skew irrelevance, release, and the live set.
#include "control/k8s/lease.hpp"

#include <gtest/gtest.h>

namespace magline::k8s {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = LeaseElector::Decision::Kind;

const MonoTime t0{seconds(1000)};
const WallTime wall{seconds(1796230800) +
                    std::chrono::microseconds(123456)};  // 2026-12-02T17:00:00.123456Z
constexpr LeaseTiming kTiming{milliseconds(15000), milliseconds(10000), milliseconds(2000)};

Lease lease(const std::string& holder, int32_t transitions = 3, std::string renew = "r",
            int32_t duration = 15) {
  Lease l;
  l.ns = "kube-system";
  l.name = "magline-provider";
  l.resource_version = "41";
  l.record = {holder, duration, "a", std::move(renew), transitions};
  return l;
}

TEST(Lease, NamesAreDnsSubdomains) {
  for (const char* ok : {"magline-provider", "magline-node-edge-1.example", "a", "0"}) {
    EXPECT_TRUE(lease_name_ok(ok)) << ok;
  }
  for (const char* bad : {"", "Edge", "edge_1", "-a", "a-", "a..b", "a.-b", "a-.b", ".a", "a."}) {
    EXPECT_FALSE(lease_name_ok(bad)) << bad;
  }
  EXPECT_TRUE(lease_name_ok(std::string(253, 'a')));
  EXPECT_FALSE(lease_name_ok(std::string(254, 'a')));
}

TEST(MicroTime, IsRfc3339InUtcWithMicroseconds) {
  EXPECT_EQ(micro_time(wall), "2026-12-02T17:00:00.123456Z");
  EXPECT_EQ(micro_time(WallTime{}), "1970-01-01T00:00:00.000000Z");
}

struct Case {
  const char* description;
  std::optional<Lease> current;
  double seconds_since_observed;  // the same record was seen this long ago (< 0: never seen)
  Kind kind;
  std::string holder;
  int32_t transitions;
  std::string acquire;  // "now" or the old record's "a"
};

TEST(LeaseElector, TryAcquireOrRenew) {
  const Case cases[] = {
      {"absent: created, transitions 0", std::nullopt, -1, Kind::create, "me", 0, "now"},
      {"ours: renewed, acquireTime and transitions kept", lease("me"), 1, Kind::update, "me", 3,
       "a"},
      {"ours, long unseen: still renewed", lease("me"), 100, Kind::update, "me", 3, "a"},
      {"another's, first seen now: valid for its duration from now", lease("other"), -1, Kind::wait,
       "", 0, ""},
      {"another's, seen 14 s ago: still valid", lease("other"), 14, Kind::wait, "", 0, ""},
      {"another's, unchanged for 15 s: expired, taken over", lease("other"), 15, Kind::update, "me",
       4, "now"},
      {"another's with a 5 s duration, unchanged for 6 s: taken over", lease("other", 3, "r", 5), 6,
       Kind::update, "me", 4, "now"},
      {"released (no holder): taken at once", lease(""), -1, Kind::update, "me", 4, "now"},
  };
  for (const Case& c : cases) {
    LeaseElector e("me", kTiming);
    MonoTime now = t0;
    if (c.current && c.seconds_since_observed >= 0) {
      e.decide(c.current, t0, wall);  // first seen at t0
      now = t0 + std::chrono::duration_cast<MonoTime::duration>(
                     std::chrono::duration<double>(c.seconds_since_observed));
    }
    const auto d = e.decide(c.current, now, wall + seconds(5));
    EXPECT_EQ(d.kind, c.kind) << c.description;
    if (d.kind == Kind::wait) continue;
    EXPECT_EQ(d.record.holder, c.holder) << c.description;
    EXPECT_EQ(d.record.duration_s, 15) << c.description;
    EXPECT_EQ(d.record.transitions, c.transitions) << c.description;
    EXPECT_EQ(d.record.renew_time, "2026-12-02T17:00:05.123456Z") << c.description;
    EXPECT_EQ(d.record.acquire_time, c.acquire == "now" ? "2026-12-02T17:00:05.123456Z" : c.acquire)
        << c.description;
    EXPECT_EQ(d.resource_version, c.current ? "41" : "") << c.description;
  }
}

// Another node's renewTime is never read against our clock: a record from a clock an hour
// ahead (or behind) is valid for its duration from when we saw it change, and a renewal (any
// change of the record) restarts that, whatever time it carries.
TEST(LeaseElector, ClockSkewIsIrrelevant) {
  for (const char* renew : {"2026-12-02T18:00:00.000000Z", "2026-12-02T16:00:00.000000Z"}) {
    LeaseElector e("me", kTiming);
    EXPECT_EQ(e.decide(lease("other", 0, renew), t0, wall).kind, Kind::wait) << renew;
    EXPECT_EQ(e.decide(lease("other", 0, renew), t0 + seconds(10), wall).kind, Kind::wait);
    // Renewed (the record changed) at t0 + 10 s: valid until t0 + 25 s.
    EXPECT_EQ(e.decide(lease("other", 0, "renewed"), t0 + seconds(10), wall).kind, Kind::wait);
    EXPECT_EQ(e.decide(lease("other", 0, "renewed"), t0 + seconds(24), wall).kind, Kind::wait);
    EXPECT_EQ(e.decide(lease("other", 0, "renewed"), t0 + seconds(25), wall).kind, Kind::update);
  }
}

TEST(LeaseElector, LeadsUntilTheRenewDeadlineAfterTheLastWrite) {
  LeaseElector e("me", kTiming);
  EXPECT_FALSE(e.leading(t0));
  const auto d = e.decide(std::nullopt, t0, wall);
  EXPECT_FALSE(e.leading(t0));  // decided, not written
  e.written(d.record, t0);
  EXPECT_TRUE(e.leading(t0 + seconds(9)));
  EXPECT_FALSE(e.leading(t0 + seconds(10)));  // not renewed in time: stops at the deadline
  // Renewed at t0 + 2 s: leads until t0 + 12 s.
  Lease mine = lease("me", 0, d.record.renew_time);
  mine.record = d.record;
  const auto r = e.decide(mine, t0 + seconds(2), wall);
  ASSERT_EQ(r.kind, Kind::update);
  e.written(r.record, t0 + seconds(2));
  EXPECT_TRUE(e.leading(t0 + milliseconds(11999)));
  EXPECT_FALSE(e.leading(t0 + seconds(12)));
}

TEST(LeaseElector, SeeingAnotherHolderEndsLeadershipAtOnce) {
  LeaseElector e("me", kTiming);
  e.written(e.decide(std::nullopt, t0, wall).record, t0);
  ASSERT_TRUE(e.leading(t0 + seconds(1)));
  // Someone took it (our renewals were lost, say): we stop before our deadline.
  EXPECT_EQ(e.decide(lease("other", 1), t0 + seconds(1), wall).kind, Kind::wait);
  EXPECT_FALSE(e.leading(t0 + seconds(1)));
  EXPECT_EQ(e.observed_holder(), "other");
}

TEST(LeaseElector, ReleaseHandsOverWithoutAHolder) {
  LeaseElector e("me", kTiming);
  const auto d = e.decide(lease("old", 6), t0 + seconds(20), wall);  // first seen: valid
  ASSERT_EQ(d.kind, Kind::wait);
  const auto d2 = e.decide(lease("old", 6), t0 + seconds(36), wall);
  ASSERT_EQ(d2.kind, Kind::update);
  EXPECT_EQ(d2.record.transitions, 7);
  e.written(d2.record, t0 + seconds(36));
  const LeaseRecord r = e.release(wall);
  EXPECT_EQ(r.holder, "");
  EXPECT_EQ(r.duration_s, 1);
  EXPECT_EQ(r.transitions, 7);
  EXPECT_FALSE(e.leading(t0 + seconds(36)));
  // The next candidate takes a released Lease at once, counting a transition.
  LeaseElector next("next", kTiming);
  Lease released = lease("");
  released.record = r;
  const auto n = next.decide(released, t0 + seconds(36), wall);
  EXPECT_EQ(n.kind, Kind::update);
  EXPECT_EQ(n.record.transitions, 8);
}

TEST(LeaseElector, ShortDurationsRoundUpToWholeSeconds) {
  LeaseElector e("me", {milliseconds(1000), milliseconds(700), milliseconds(200)});
  EXPECT_EQ(e.decide(std::nullopt, t0, wall).record.duration_s, 1);
  LeaseElector f("me", {milliseconds(1500), milliseconds(700), milliseconds(200)});
  EXPECT_EQ(f.decide(std::nullopt, t0, wall).record.duration_s, 2);
}

TEST(Lease, DecodesAndEncodes) {
  const auto j = nlohmann::json::parse(R"({"kind":"Lease","metadata":{"name":"l","namespace":"n",
    "resourceVersion":"7","labels":{"magline.io/node-lease":"true"}},"spec":{"holderIdentity":"a",
    "leaseDurationSeconds":15,"acquireTime":"x","renewTime":"y","leaseTransitions":2,
    "strategy":"OldestEmulationVersion"}})");
  const auto l = decode_lease(j);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->name, "l");
  EXPECT_EQ(l->resource_version, "7");
  EXPECT_EQ(l->labels.at("magline.io/node-lease"), "true");
  EXPECT_EQ(l->record, (LeaseRecord{"a", 15, "x", "y", 2}));
  const auto back = lease_body(*l);
  EXPECT_EQ(back["spec"]["holderIdentity"], "a");
  EXPECT_EQ(back["metadata"]["resourceVersion"], "7");
  EXPECT_EQ(back["apiVersion"], "coordination.k8s.io/v1");
  EXPECT_FALSE(decode_lease(nlohmann::json::parse(R"({"metadata":{}})")));
  EXPECT_FALSE(decode_lease(nlohmann::json::array()));
  // A Lease with no spec (created by someone else) reads as released.
  const auto bare = decode_lease(nlohmann::json::parse(R"({"metadata":{"name":"l"}})"));
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->record.holder, "");
}

Lease node(const std::string& holder, const std::string& renew, int32_t duration = 10) {
  Lease l = lease(holder, 0, renew, duration);
  l.name = "magline-node-" + holder;
  return l;
}

TEST(LivenessTracker, ALeaseIsLiveForItsDurationAfterItLastChanged) {
  LivenessTracker t;
  t.observe({node("b", "1"), node("a", "1"), node("", "1")}, t0);  // "" : released
  EXPECT_EQ(t.live(t0), (std::vector<std::string>{"a", "b"}));
  // a renews, b does not.
  t.observe({node("b", "1"), node("a", "2")}, t0 + seconds(6));
  EXPECT_EQ(t.live(t0 + seconds(9)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.live(t0 + seconds(10)), (std::vector<std::string>{"a"}));
  // A Lease that disappears from the list is gone at once.
  t.observe({node("b", "1")}, t0 + seconds(11));
  EXPECT_TRUE(t.live(t0 + seconds(11)).empty());
  // b comes back (a new record): live again.
  t.observe({node("b", "3")}, t0 + seconds(12));
  EXPECT_EQ(t.live(t0 + seconds(12)), (std::vector<std::string>{"b"}));
}

}  // namespace
}  // namespace magline::k8s
