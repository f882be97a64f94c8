// The provider's Event decisions (control/k8s/events.hpp): repeats fold into one Event's series,
// at most one write per Event per interval, a global token bucket whose drops are counted, a
// failed write given up, and the memory bounded.
#include "control/k8s/events.hpp"

#include <gtest/gtest.h>

#include <set>

namespace magline::k8s {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using Kind = EventWrite::Kind;
using Seen = EventBook::Seen;

const EventClock::time_point t0 = EventClock::time_point(seconds(1'796'000'000));

EventSpec refused(const std::string& name, const std::string& note = "pool full") {
  EventSpec e;
  e.regarding = {"shop", name, "uid-" + name, "7"};
  e.warning = true;
  e.reason = "PoolExhausted";
  e.action = "Allocate";
  e.note = note;
  return e;
}

// Answers every write as `ok`.
std::vector<EventWrite> flush(EventBook& b, EventClock::time_point now, bool ok = true) {
  std::vector<EventWrite> ws = b.due(now);
  for (const EventWrite& w : ws)
    b.written(w.spec.regarding.ns, w.name, ok);
  return ws;
}

TEST(EventBook, RepeatsGrowOneEventsSeriesAtMostOnceAnInterval) {
  EventBook b;
  EXPECT_EQ(b.observe(refused("web"), t0), Seen::fresh);
  auto ws = flush(b, t0);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].kind, Kind::create);
  EXPECT_EQ(ws[0].count, 1u);
  EXPECT_EQ(ws[0].name.rfind("web.", 0), 0u);
  const std::string name = ws[0].name;

  // Ten repeats within the interval: nothing written until it has passed, then one series
  // write with all of them.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(b.observe(refused("web"), t0 + seconds(i)), Seen::repeat);
    EXPECT_TRUE(flush(b, t0 + seconds(i)).empty());
  }
  ws = flush(b, t0 + seconds(30));
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].kind, Kind::series);
  EXPECT_EQ(ws[0].name, name);
  EXPECT_EQ(ws[0].count, 11u);
  EXPECT_EQ(ws[0].first, t0);
  EXPECT_EQ(ws[0].last, t0 + seconds(10));
  EXPECT_TRUE(flush(b, t0 + seconds(31)).empty());  // nothing new: nothing written
  EXPECT_EQ(b.observe(refused("web"), t0 + seconds(40)), Seen::repeat);
  EXPECT_TRUE(flush(b, t0 + seconds(45)).empty());  // within 30 s of the last write
  ws = flush(b, t0 + seconds(60));
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].count, 12u);
  EXPECT_EQ(b.counts().observed, 12u);
  EXPECT_EQ(b.counts().repeats, 11u);
  EXPECT_EQ(b.counts().written, 3u);
}

TEST(EventBook, ADifferentReasonNoteOrServiceIsAnotherEvent) {
  EventBook b;
  EXPECT_EQ(b.observe(refused("web"), t0), Seen::fresh);
  EXPECT_EQ(b.observe(refused("web", "another note"), t0), Seen::fresh);
  EventSpec other = refused("web");
  other.reason = "AddressTaken";
  EXPECT_EQ(b.observe(other, t0), Seen::fresh);
  EXPECT_EQ(b.observe(refused("api"), t0), Seen::fresh);
  const auto ws = flush(b, t0);
  ASSERT_EQ(ws.size(), 4u);
  std::set<std::string> names;
  for (const EventWrite& w : ws)
    names.insert(w.name);
  EXPECT_EQ(names.size(), 4u);  // unique names, even in one nanosecond
}

TEST(EventBook, AfterTheIsolationARepeatStartsANewEvent) {
  EventBook b;
  b.observe(refused("web"), t0);
  const std::string first = flush(b, t0).at(0).name;
  EXPECT_EQ(b.observe(refused("web"), t0 + minutes(6) + seconds(1)), Seen::fresh);
  const auto ws = flush(b, t0 + minutes(6) + seconds(1));
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].kind, Kind::create);
  EXPECT_NE(ws[0].name, first);
  EXPECT_EQ(b.size(), 1u);
}

TEST(EventBook, TheBucketDropsNewEventsButSeriesWritesWaitForTokens) {
  EventOptions o;
  o.burst = 3;
  o.per_second = 0.5;
  EventBook b(o);
  for (int i = 0; i < 5; ++i) {
    const Seen s = b.observe(refused("svc" + std::to_string(i)), t0);
    EXPECT_EQ(s, i < 3 ? Seen::fresh : Seen::dropped) << i;
  }
  EXPECT_EQ(b.counts().dropped, 2u);
  EXPECT_EQ(flush(b, t0).size(), 3u);
  // Two seconds give one token back.
  EXPECT_EQ(b.observe(refused("svc3"), t0 + seconds(2)), Seen::fresh);
  EXPECT_EQ(b.observe(refused("svc4"), t0 + seconds(2)), Seen::dropped);
  EXPECT_EQ(flush(b, t0 + seconds(2)).size(), 1u);
  // Repeats of the three first ones: their series writes take tokens as they come back.
  for (int i = 0; i < 3; ++i)
    b.observe(refused("svc" + std::to_string(i)), t0 + seconds(3));
  EXPECT_EQ(flush(b, t0 + seconds(30)).size(), 3u);  // 14 tokens back, capped at 3
  for (int i = 0; i < 3; ++i)
    b.observe(refused("svc" + std::to_string(i)), t0 + seconds(31));
  EXPECT_EQ(flush(b, t0 + seconds(60)).size(), 3u);
  for (int i = 0; i < 3; ++i)
    b.observe(refused("svc" + std::to_string(i)), t0 + seconds(61));
  EXPECT_EQ(flush(b, t0 + seconds(90)).size(), 3u);
  EXPECT_EQ(b.counts().dropped, 3u);
}

TEST(EventBook, AnEmptyBucketDefersASeriesWrite) {
  EventOptions o;
  o.burst = 1;
  o.per_second = 0.01;  // one token in 100 s
  EventBook b(o);
  b.observe(refused("web"), t0);
  flush(b, t0);
  b.observe(refused("web"), t0 + seconds(1));
  EXPECT_TRUE(flush(b, t0 + seconds(40)).empty());  // its interval passed, no token
  const auto ws = flush(b, t0 + seconds(101));
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].count, 2u);
}

TEST(EventBook, AFailedWriteIsGivenUpNotRetried) {
  EventBook b;
  b.observe(refused("web"), t0);
  ASSERT_EQ(flush(b, t0, false).size(), 1u);
  EXPECT_EQ(b.counts().failed, 1u);
  EXPECT_TRUE(flush(b, t0 + seconds(1)).empty());
  EXPECT_TRUE(flush(b, t0 + minutes(1)).empty());
  EXPECT_EQ(b.size(), 0u);
  // The next occurrence is a new Event.
  EXPECT_EQ(b.observe(refused("web"), t0 + minutes(2)), Seen::fresh);
  EXPECT_EQ(flush(b, t0 + minutes(2)).at(0).kind, Kind::create);
}

TEST(EventBook, AWriteInFlightIsNotMadeTwice) {
  EventBook b;
  b.observe(refused("web"), t0);
  const auto ws = b.due(t0);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_TRUE(b.due(t0 + seconds(1)).empty());
  b.observe(refused("web"), t0 + seconds(2));
  b.written("shop", ws[0].name, true);
  EXPECT_TRUE(b.due(t0 + seconds(3)).empty());  // the interval runs from the create
  const auto next = b.due(t0 + seconds(30));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].count, 2u);
}

TEST(EventBook, SettledEventsAreForgottenAndMemoryIsBounded) {
  EventOptions o;
  o.capacity = 4;
  o.burst = 100;
  EventBook b(o);
  for (int i = 0; i < 10; ++i) {
    b.observe(refused("svc" + std::to_string(i)), t0 + seconds(i));
    flush(b, t0 + seconds(i));
  }
  EXPECT_EQ(b.size(), 4u);
  flush(b, t0 + minutes(7));
  EXPECT_EQ(b.size(), 0u);
}

TEST(EventBook, MicroTimeIsTheServersFormat) {
  EXPECT_EQ(micro_time(EventClock::time_point(std::chrono::microseconds(1'796'230'800'500'000))),
            "2026-12-02T17:00:00.500000Z");
}

}  // namespace
}  // namespace magline::k8s
