// Publication (control/publication.hpp) over a FakeLink: the test plays the workers, turn by
// turn, and decides when they report quiescent states, so each step of the two-grace-period
// argument can be checked on its own. Retired states are watched through weak_ptrs: a state is
// freed exactly when the Publication lets go of it (nothing else holds it).
#include "control/publication.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/fake_link.hpp"

namespace magline::control {
namespace {

using test::FakeLink;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

dp::Service svc(const std::string& name, const char* vip, std::vector<const char*> backends) {
  dp::Service s;
  s.name = name;
  s.frontends = {{ip(vip), 80, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
  for (const char* b : backends) s.backends.push_back({ip(b), 8080, 1, {}});
  s.table_size = 251;
  return s;
}

dp::Node one_port() {
  dp::Node n;
  n.ports.push_back({0, "lan0", {}, {{ip("198.18.0.1"), 16}}, 1500});
  return n;
}

dp::Update neighbor(const char* addr) {
  dp::Update u;
  u.kind = dp::Update::Kind::neighbor;
  u.neighbor = {ip(addr), dp::MacAddr{{2, 0, 0, 0, 0, 9}}, 0, true};
  return u;
}

// An update as text, to compare sequences: "-name" removes a state, "+name" installs one.
std::string str(const dp::Update& u) {
  if (u.kind == dp::Update::Kind::neighbor) return "neighbor " + dp::to_string(u.neighbor.ip);
  std::string s;
  if (u.old_state) s += "-" + u.old_state->spec().name;
  if (u.new_state) s += (s.empty() ? "+" : " +") + u.new_state->spec().name;
  return s;
}
std::vector<std::string> strs(const std::vector<dp::Update>& ups) {
  std::vector<std::string> out;
  for (const dp::Update& u : ups) out.push_back(str(u));
  return out;
}

class PublicationTest : public ::testing::Test {
 protected:
  // A change from the Publisher; the retired states are watched through `watch`.
  Change update(std::vector<dp::Service> upserts, const std::vector<std::string>& removals = {}) {
    auto c = pub_.update(std::move(upserts), removals, 0);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return std::move(c).value();
  }
  static std::vector<std::weak_ptr<const dp::ServiceState>> watch(const Change& c) {
    return {c.retired.begin(), c.retired.end()};
  }
  static bool freed(const std::vector<std::weak_ptr<const dp::ServiceState>>& ws) {
    for (const auto& w : ws) {
      if (!w.expired()) return false;
    }
    return true;
  }

  const dp::Node node_ = one_port();
  Publisher pub_{node_};
};

TEST_F(PublicationTest, OneSendReachesEveryWorkerInOrderAndAFullRingTakesTheRestLater) {
  FakeLink link(2);
  link.set_capacity(1, 3);
  Publication p(link);
  Change c = update({svc("a", "198.18.100.1", {"198.18.1.10"}),
                     svc("b", "198.18.100.2", {"198.18.1.20"}),
                     svc("c", "198.18.100.3", {"198.18.1.30"}),
                     svc("d", "198.18.100.4", {"198.18.1.40"}),
                     svc("e", "198.18.100.5", {"198.18.1.50"})});
  const std::vector<std::string> want = strs(c.updates);
  ASSERT_EQ(want, (std::vector<std::string>{"+a", "+b", "+c", "+d", "+e"}));
  p.send(std::move(c));
  // Worker 0 took everything at once; worker 1's ring took 3, the rest wait here.
  EXPECT_EQ(link.ring(0).size(), 5u);
  EXPECT_EQ(link.ring(1).size(), 3u);
  EXPECT_EQ(p.queued(0), 0u);
  EXPECT_EQ(p.queued(1), 2u);
  // Neighbours sent meanwhile queue behind them, for every worker.
  p.send(std::vector<dp::Update>{neighbor("198.18.1.10")});
  EXPECT_EQ(link.ring(0).size(), 6u);
  EXPECT_EQ(p.queued(1), 3u);
  // No room yet: a poll changes nothing.
  p.poll();
  EXPECT_EQ(p.queued(1), 3u);
  // Worker 1 drains; the next poll fills its ring again, and the one after takes the rest.
  EXPECT_EQ(strs(link.drain(1)), (std::vector<std::string>{"+a", "+b", "+c"}));
  EXPECT_EQ(p.queued(1), 3u);  // updates move only on poll()
  p.poll();
  EXPECT_EQ(p.queued(1), 0u);
  EXPECT_EQ(link.ring(1).size(), 3u);
  link.turn_all();
  p.poll();
  std::vector<std::string> all = want;
  all.push_back("neighbor 198.18.1.10");
  EXPECT_EQ(strs(link.log(0)), all);
  EXPECT_EQ(strs(link.log(1)), all);
  EXPECT_TRUE(p.in_effect());
}

TEST_F(PublicationTest, AQueueLongerThanAChunkGoesInWhole) {
  FakeLink link(1, 10000);
  Publication p(link);
  std::vector<dp::Update> many;
  for (int i = 0; i < 9000; ++i) many.push_back(neighbor(i % 2 ? "198.18.1.1" : "198.18.1.2"));
  p.send(many);
  EXPECT_EQ(link.ring(0).size(), 9000u);
  EXPECT_EQ(p.queued(0), 0u);
}

// The proof's step 1: a worker may report T1 in the turn that drained its ring just before the
// update came, so it has not applied the update yet; the replaced state must outlive T1.
TEST_F(PublicationTest, ARetiredStateIsFreedAfterTwoGracePeriodsNotOne) {
  FakeLink link(2);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));
  link.turn_all();
  p.poll();
  EXPECT_EQ(p.retiring(), 0u);  // nothing replaced: nothing to retire

  Change c = update({svc("a", "198.18.100.1", {"198.18.1.11"})});
  const auto old = watch(c);
  ASSERT_EQ(old.size(), 1u);
  const dp::ServiceState* old_raw = old[0].lock().get();
  p.send(std::move(c));
  EXPECT_FALSE(freed(old));
  EXPECT_EQ(p.retiring(), 1u);
  EXPECT_EQ(link.tokens_taken(), 0u);  // no grace period before a poll sees the rings
  EXPECT_EQ(p.poll(), 0u);             // in every ring: T1 is taken
  EXPECT_EQ(link.tokens_taken(), 1u);

  // Both workers report T1 without having drained the update (their drain came before it).
  link.quiescent(0);
  link.quiescent(1);
  EXPECT_EQ(p.poll(), 0u);  // T1 passed: T2 taken, the state lives on
  EXPECT_EQ(link.tokens_taken(), 2u);
  EXPECT_FALSE(freed(old));
  EXPECT_EQ(p.poll(), 0u);  // nobody has reported T2
  EXPECT_FALSE(freed(old));

  // Worker 0's next turn applies the update (it reads the old state) and reports T2.
  const std::vector<dp::Update> got = link.drain(0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].old_state, old_raw);
  EXPECT_EQ(got[0].old_state->spec().name, "a");  // alive while a worker applies it
  link.quiescent(0);
  EXPECT_EQ(p.poll(), 0u);  // worker 1 still holds T2 open
  EXPECT_FALSE(freed(old));
  link.turn(1);
  EXPECT_EQ(p.poll(), 1u);
  EXPECT_TRUE(freed(old));
  EXPECT_EQ(p.retiring(), 0u);
  EXPECT_EQ(link.tokens_taken(), 2u);
}

// Reports from before a grace period started do not count for it.
TEST_F(PublicationTest, QuiescentStatesBeforeTheSecondGracePeriodDoNotCountForIt) {
  FakeLink link(1);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));
  Change c = update({}, {"a"});
  const auto old = watch(c);
  p.send(std::move(c));
  p.poll();                 // T1
  link.turn(0);             // reports T1
  link.turn(0);             // again, still T1: T2 is not taken yet
  EXPECT_EQ(p.poll(), 0u);  // T1 passed: T2
  EXPECT_EQ(p.poll(), 0u);
  EXPECT_FALSE(freed(old));
  link.turn(0);
  EXPECT_EQ(p.poll(), 1u);
  EXPECT_TRUE(freed(old));
}

// The grace periods count from when every update of the change is in every ring: while a ring
// is full and part of the change waits here, no grace period starts, however many turns the
// workers report.
TEST_F(PublicationTest, NoGracePeriodStartsWhileTheChangeIsNotInEveryRing) {
  FakeLink link(2);
  link.set_capacity(1, 1);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));  // fills worker 1's ring
  link.turn(0);
  Change c = update({svc("a", "198.18.100.1", {"198.18.1.11"})});
  ASSERT_EQ(c.updates.size(), 2u);  // removal, install
  const auto old = watch(c);
  p.send(std::move(c));
  EXPECT_EQ(p.queued(1), 2u);
  for (int i = 0; i < 5; ++i) {
    link.turn(0);
    link.quiescent(1);  // worker 1 turns without draining: its ring stays full
    EXPECT_EQ(p.poll(), 0u);
  }
  EXPECT_EQ(link.tokens_taken(), 0u);
  EXPECT_FALSE(freed(old));

  // Worker 1 drains; one update of the change goes in, one still waits: still no grace period.
  link.turn(1);
  p.poll();
  EXPECT_EQ(p.queued(1), 1u);
  link.turn(0);
  link.quiescent(1);
  p.poll();
  EXPECT_EQ(link.tokens_taken(), 0u);
  // The last one goes in: T1 now.
  link.turn(1);
  p.poll();
  EXPECT_EQ(p.queued(1), 0u);
  EXPECT_EQ(link.tokens_taken(), 1u);
  EXPECT_FALSE(freed(old));
  link.turn_all();
  p.poll();  // T2
  EXPECT_FALSE(freed(old));
  link.turn_all();
  EXPECT_EQ(p.poll(), 1u);
  EXPECT_TRUE(freed(old));
}

// Each batch waits for its own mark: once a stuck worker has taken the updates of an earlier
// change, that change's grace periods run even though a later change's updates still wait
// behind it; the later batch starts its own only when its last update is in.
TEST_F(PublicationTest, EachBatchWaitsOnlyForTheUpdatesUpToItsOwn) {
  FakeLink link(2);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"}),
                 svc("b", "198.18.100.2", {"198.18.1.20"})}));
  link.turn_all();
  p.poll();
  link.set_capacity(1, 0);  // worker 1 is stuck: it takes nothing

  Change ca = update({svc("a", "198.18.100.1", {"198.18.1.11"})});  // 2 updates
  const auto old_a = watch(ca);
  p.send(std::move(ca));
  Change cb = update({svc("b", "198.18.100.2", {"198.18.1.21"})});  // 2 more
  const auto old_b = watch(cb);
  p.send(std::move(cb));
  EXPECT_EQ(p.queued(0), 0u);
  EXPECT_EQ(p.queued(1), 4u);
  EXPECT_EQ(p.retiring(), 2u);
  p.poll();
  EXPECT_EQ(link.tokens_taken(), 0u);  // worker 0 having them all is not enough

  // Worker 1 takes exactly a's two updates: a's batch starts, b's does not.
  link.set_capacity(1, 2);
  p.poll();
  EXPECT_EQ(p.queued(1), 2u);
  EXPECT_EQ(link.tokens_taken(), 1u);
  link.turn(0);
  link.turn(1);  // applies a's updates, makes room
  link.set_capacity(1, 0);
  p.poll();  // a: T1 passed, T2 taken; b: still not in worker 1's ring
  EXPECT_EQ(link.tokens_taken(), 2u);
  link.turn_all();
  EXPECT_EQ(p.poll(), 1u);  // a's state goes, b's stays
  EXPECT_TRUE(freed(old_a));
  EXPECT_FALSE(freed(old_b));
  EXPECT_EQ(p.retiring(), 1u);
  EXPECT_EQ(link.tokens_taken(), 2u);

  // b's updates go in: its own two grace periods, counted from then.
  link.set_capacity(1, 2);
  p.poll();
  EXPECT_EQ(link.tokens_taken(), 3u);
  link.turn_all();
  EXPECT_EQ(p.poll(), 0u);
  EXPECT_FALSE(freed(old_b));
  link.turn_all();
  EXPECT_EQ(p.poll(), 1u);
  EXPECT_TRUE(freed(old_b));
  // Both workers got the same updates in the same order (compared as pointers: the states they
  // name are freed by now).
  const auto& log0 = link.log(0);
  const auto& log1 = link.log(1);
  ASSERT_EQ(log1.size(), log0.size());
  for (size_t i = 0; i < log0.size(); ++i) {
    EXPECT_EQ(log1[i].kind, log0[i].kind);
    EXPECT_EQ(log1[i].old_state, log0[i].old_state);
    EXPECT_EQ(log1[i].new_state, log0[i].new_state);
  }
}

// Batches in flight together each keep their own tokens, and a poll frees every batch whose
// second grace period has passed.
TEST_F(PublicationTest, BatchesInFlightTogetherAreFreedTogether) {
  FakeLink link(2);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));
  std::vector<std::weak_ptr<const dp::ServiceState>> old;
  for (const char* b : {"198.18.1.11", "198.18.1.12", "198.18.1.13"}) {
    Change c = update({svc("a", "198.18.100.1", {b})});
    for (const auto& w : watch(c)) old.push_back(w);
    p.send(std::move(c));
  }
  ASSERT_EQ(old.size(), 3u);
  EXPECT_EQ(p.retiring(), 3u);
  p.poll();
  EXPECT_EQ(link.tokens_taken(), 3u);
  link.turn_all();
  EXPECT_EQ(p.poll(), 0u);
  EXPECT_EQ(link.tokens_taken(), 6u);
  link.turn_all();
  EXPECT_EQ(p.poll(), 3u);
  EXPECT_TRUE(freed(old));
}

// An offline worker (stopped, or asleep without traffic) holds no grace period up, as in QSBR.
TEST_F(PublicationTest, AnOfflineWorkerHoldsNoGracePeriodUp) {
  FakeLink link(2);
  Publication p(link);
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));
  Change c = update({}, {"a"});
  const auto old = watch(c);
  p.send(std::move(c));
  link.set_online(1, false);
  p.poll();
  link.turn(0);
  p.poll();
  link.turn(0);
  EXPECT_EQ(p.poll(), 1u);
  EXPECT_TRUE(freed(old));
}

TEST_F(PublicationTest, InEffectOnlyWhenEveryWorkerAppliedEverythingSent) {
  FakeLink link(2);
  link.set_capacity(1, 1);
  Publication p(link);
  EXPECT_TRUE(p.in_effect());  // nothing sent
  EXPECT_EQ(p.completed(), 0u);
  p.poll();
  EXPECT_EQ(p.completed(), 0u);  // nothing was awaited

  const auto before = std::chrono::steady_clock::now();
  p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"}),
                 svc("b", "198.18.100.2", {"198.18.1.20"})}));
  EXPECT_FALSE(p.in_effect());
  link.turn(0);
  p.poll();
  EXPECT_FALSE(p.in_effect());  // worker 1 has applied nothing
  EXPECT_EQ(p.completed(), 0u);
  link.turn(1);
  EXPECT_FALSE(p.in_effect());  // it applied all its ring held, but one update still waits here
  p.poll();
  EXPECT_EQ(p.queued(1), 0u);
  EXPECT_FALSE(p.in_effect());  // in the ring, not applied
  EXPECT_EQ(p.completed(), 0u);
  link.turn(1);
  EXPECT_TRUE(p.in_effect());
  p.poll();
  const auto after = std::chrono::steady_clock::now();
  EXPECT_EQ(p.completed(), 1u);
  EXPECT_GE(p.last_latency().count(), 0);
  EXPECT_LE(p.last_latency(), after - before);
  p.poll();
  EXPECT_EQ(p.completed(), 1u);  // once per send

  // Neighbours count too.
  link.set_capacity(1, 1024);
  p.send(std::vector<dp::Update>{neighbor("198.18.1.10")});
  EXPECT_FALSE(p.in_effect());
  p.poll();
  EXPECT_EQ(p.completed(), 1u);
  link.turn_all();
  p.poll();
  EXPECT_EQ(p.completed(), 2u);
}

TEST_F(PublicationTest, NeighbourSendsAndEmptyChangesRetireNothing) {
  FakeLink link(2);
  Publication p(link);
  p.send(std::vector<dp::Update>{neighbor("198.18.1.10"), neighbor("198.18.1.11")});
  EXPECT_EQ(p.retiring(), 0u);
  EXPECT_EQ(link.ring(0).size(), 2u);
  EXPECT_EQ(link.ring(1).size(), 2u);
  for (int i = 0; i < 3; ++i) {
    link.turn_all();
    EXPECT_EQ(p.poll(), 0u);
  }
  EXPECT_EQ(link.tokens_taken(), 0u);  // no grace period was needed
  EXPECT_EQ(p.completed(), 1u);

  // Nothing to send: nothing queued, nothing awaited.
  p.send(Change{});
  p.send(std::vector<dp::Update>{});
  EXPECT_TRUE(p.in_effect());
  p.poll();
  EXPECT_EQ(p.completed(), 1u);
  EXPECT_EQ(link.ring(0).size(), 0u);
}

// What is still retiring when the Publication goes (the workers have stopped) is freed then.
TEST_F(PublicationTest, DestructionFreesWhatIsStillRetiring) {
  FakeLink link(1);
  std::vector<std::weak_ptr<const dp::ServiceState>> old;
  {
    Publication p(link);
    p.send(update({svc("a", "198.18.100.1", {"198.18.1.10"})}));
    Change c = update({}, {"a"});
    old = watch(c);
    p.send(std::move(c));
    p.poll();
    EXPECT_FALSE(freed(old));
  }
  EXPECT_TRUE(freed(old));
}

}  // namespace
}  // namespace magline::control
