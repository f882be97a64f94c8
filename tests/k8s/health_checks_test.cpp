// The health-check book (control/k8s/health_checks.hpp) and the judging of a probe's answer
// (control/k8s/probe_response.hpp), on a fake clock: every damping transition, the schedule's
// jitter bounds, set_targets' diffs.
#include <gtest/gtest.h>

#include <algorithm>

#include "control/k8s/health_checks.hpp"
#include "control/k8s/probe_response.hpp"

using namespace magline;
using namespace std::chrono_literals;
using k8s::HealthBook;
using k8s::HealthTarget;
using k8s::Verdict;
using Clock = k8s::HealthClock;

namespace {

const Clock::time_point t0{};
const std::chrono::system_clock::time_point wall0{};

HealthTarget target(std::string service, std::string node, uint8_t host = 1,
                    uint16_t port = 30000) {
  return {std::move(service), std::move(node), dp::IpAddr::v4(198, 18, 0, host), port};
}

k8s::ProbeResult pass() {
  return {true, "200"};
}
k8s::ProbeResult fail() {
  return {false, "503"};
}

// Probes the one target of `book` once at `now`, with `r`; returns whether its verdict changed.
bool probe_once(HealthBook& book, Clock::time_point now, const k8s::ProbeResult& r) {
  const auto due = book.take_due(now, 1);
  EXPECT_EQ(due.size(), 1u);
  if (due.empty()) return false;
  return book.record(due[0].ticket, r, now, wall0);
}

}  // namespace

TEST(Damper, FirstResultDecidesThenThresholds) {
  k8s::Damper d;
  EXPECT_EQ(d.verdict(), Verdict::unknown);
  EXPECT_TRUE(d.record(true, 2, 3));  // unknown -> healthy at once
  EXPECT_EQ(d.verdict(), Verdict::healthy);
  EXPECT_FALSE(d.record(false, 2, 3));
  EXPECT_FALSE(d.record(false, 2, 3));
  EXPECT_EQ(d.streak(), 2u);
  EXPECT_TRUE(d.record(false, 2, 3));  // third failure in a row
  EXPECT_EQ(d.verdict(), Verdict::unhealthy);
  EXPECT_FALSE(d.record(true, 2, 3));
  EXPECT_TRUE(d.record(true, 2, 3));  // second pass in a row
  EXPECT_EQ(d.verdict(), Verdict::healthy);
}

TEST(Damper, FirstFailureDecidesUnhealthy) {
  k8s::Damper d;
  EXPECT_TRUE(d.record(false, 2, 3));
  EXPECT_EQ(d.verdict(), Verdict::unhealthy);
  EXPECT_EQ(d.streak(), 1u);
}

TEST(Damper, AlternatingResultsNeverFlip) {
  k8s::Damper d;
  d.record(true, 2, 3);
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(d.record(i % 2 == 0, 2, 3));
    EXPECT_FALSE(d.record(false, 2, 3));
    EXPECT_FALSE(d.record(true, 2, 3));
  }
  EXPECT_EQ(d.verdict(), Verdict::healthy);
}

TEST(Damper, ThresholdsOfOneFlipOnEachChange) {
  k8s::Damper d;
  d.record(true, 1, 1);
  EXPECT_TRUE(d.record(false, 1, 1));
  EXPECT_TRUE(d.record(true, 1, 1));
  EXPECT_TRUE(d.record(false, 0, 0));  // 0 is taken as 1
}

TEST(Damper, PassesWhileHealthyDoNotCountTowardsFailure) {
  k8s::Damper d;
  d.record(true, 2, 3);
  d.record(false, 2, 3);
  d.record(false, 2, 3);
  d.record(true, 2, 3);  // resets the failure streak
  EXPECT_FALSE(d.record(false, 2, 3));
  EXPECT_FALSE(d.record(false, 2, 3));
  EXPECT_TRUE(d.record(false, 2, 3));
}

TEST(HealthBook, NewTargetsAreDueAtOnceAndUnknown) {
  HealthBook book({}, 1);
  const auto [added, removed] = book.set_targets({target("a/s", "n1"), target("a/s", "n2")}, t0);
  EXPECT_EQ(added, 2u);
  EXPECT_EQ(removed, 0u);
  EXPECT_EQ(book.next_due(), t0);
  EXPECT_EQ(book.healthy("a/s", "n1"), std::nullopt);
  EXPECT_EQ(book.healthy("a/s", "nope"), std::nullopt);
  const auto due = book.take_due(t0, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(book.next_due(), std::nullopt);  // both in flight
  EXPECT_TRUE(book.take_due(t0 + 1h, 10).empty());
}

TEST(HealthBook, GenerationMovesOnlyOnFlips) {
  k8s::HealthCheckParams p;
  HealthBook book(p, 7);
  book.set_targets({target("a/s", "n1")}, t0);
  EXPECT_EQ(book.generation(), 0u);
  Clock::time_point now = t0;
  EXPECT_TRUE(probe_once(book, now, pass()));
  EXPECT_EQ(book.generation(), 1u);
  EXPECT_EQ(book.healthy("a/s", "n1"), true);
  for (int i = 0; i < 2; ++i) {
    now = *book.next_due();
    EXPECT_FALSE(probe_once(book, now, fail()));
    EXPECT_EQ(book.healthy("a/s", "n1"), true);
  }
  EXPECT_EQ(book.generation(), 1u);
  now = *book.next_due();
  EXPECT_TRUE(probe_once(book, now, fail()));
  EXPECT_EQ(book.healthy("a/s", "n1"), false);
  EXPECT_EQ(book.generation(), 2u);
  now = *book.next_due();
  EXPECT_FALSE(probe_once(book, now, pass()));
  now = *book.next_due();
  EXPECT_TRUE(probe_once(book, now, pass()));
  EXPECT_EQ(book.generation(), 3u);
  EXPECT_EQ(book.counts().passes, 3u);
  EXPECT_EQ(book.counts().failures, 3u);
  EXPECT_EQ(book.counts().verdict_changes, 3u);
  // Removing or adding targets is the caller's own doing: no flip, no new generation.
  book.set_targets({}, now);
  book.set_targets({target("a/s", "n1")}, now);
  EXPECT_EQ(book.generation(), 3u);
  EXPECT_EQ(book.healthy("a/s", "n1"), std::nullopt);
}

TEST(HealthBook, JitterBounds) {
  k8s::HealthCheckParams p;
  p.interval = 5000ms;
  HealthBook book(p, 42);
  book.set_targets({target("a/s", "n1")}, t0);
  Clock::time_point now = t0;
  ASSERT_TRUE(probe_once(book, now, pass()));
  // The first gap: [interval/2, interval].
  auto next = *book.next_due();
  EXPECT_GE(next - now, 2500ms);
  EXPECT_LE(next - now, 5000ms);
  // Later gaps: interval ± 10%, measured from the probe's start.
  std::chrono::nanoseconds lo = 1h, hi = 0ns;
  for (int i = 0; i < 2000; ++i) {
    now = next;
    const auto due = book.take_due(now, 1);
    ASSERT_EQ(due.size(), 1u);
    book.record(due[0].ticket, pass(), now + 3ms, wall0);  // answered 3 ms later
    next = *book.next_due();
    lo = std::min(lo, next - now);
    hi = std::max(hi, next - now);
  }
  EXPECT_GE(lo, 4500ms);
  EXPECT_LE(hi, 5500ms);
  EXPECT_LT(lo, 4600ms);  // and the whole range is used
  EXPECT_GT(hi, 5400ms);
}

TEST(HealthBook, ASlowAnswerIsNotScheduledInThePast) {
  k8s::HealthCheckParams p;
  p.interval = 1000ms;
  HealthBook book(p, 3);
  book.set_targets({target("a/s", "n1")}, t0);
  const auto due = book.take_due(t0, 1);
  book.record(due[0].ticket, pass(), t0 + 10s, wall0);  // queued far behind others
  EXPECT_EQ(*book.next_due(), t0 + 10s);
}

TEST(HealthBook, TargetsArrivingTogetherSpreadOut) {
  k8s::HealthCheckParams p;
  p.interval = 5000ms;
  HealthBook book(p, 99);
  std::vector<HealthTarget> targets;
  for (int i = 0; i < 1000; ++i)
    targets.push_back(target("a/s", "node-" + std::to_string(i), uint8_t(i)));
  book.set_targets(targets, t0);
  const auto first = book.take_due(t0, 5000);
  ASSERT_EQ(first.size(), 1000u);  // all new: all due at once
  for (const auto& probe : first)
    book.record(probe.ticket, pass(), t0, wall0);
  // The second round: spread over [2.5 s, 5 s]; no 250 ms slice holds more than a fair share
  // (100 of 1000) by a wide margin.
  std::vector<int> slices(20, 0);
  Clock::time_point now = t0;
  size_t taken = 0;
  while (const auto next = book.next_due()) {
    if (*next - t0 >= 5001ms) break;
    now = *next;
    for (const auto& probe : book.take_due(now, 1)) {
      slices[size_t((now - t0) / 250ms)]++;
      (void)probe;
      ++taken;
    }
  }
  EXPECT_EQ(taken, 1000u);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(slices[i], 0) << "slice " << i;
  for (size_t i = 10; i < 20; ++i)
    EXPECT_LT(slices[i], 160) << "slice " << i;
}

TEST(HealthBook, TakeDueHonoursTheLimitEarliestFirst) {
  HealthBook book({}, 5);
  book.set_targets({target("a/s", "n1"), target("a/s", "n2"), target("a/s", "n3")}, t0);
  EXPECT_EQ(book.take_due(t0, 2).size(), 2u);
  EXPECT_EQ(book.take_due(t0, 2).size(), 1u);
  EXPECT_TRUE(book.take_due(t0, 2).empty());
}

TEST(HealthBook, SetTargetsKeepsWhatStays) {
  HealthBook book({}, 11);
  book.set_targets({target("a/s", "n1"), target("a/s", "n2", 2)}, t0);
  for (const auto& probe : book.take_due(t0, 10))
    book.record(probe.ticket, pass(), t0, wall0);
  const auto due_before = book.next_due();
  // n1 stays, n2 moves to a new address, n3 arrives.
  const auto [added, removed] = book.set_targets(
      {target("a/s", "n1"), target("a/s", "n2", 20), target("a/s", "n3", 3)}, t0 + 1s);
  EXPECT_EQ(added, 2u);
  EXPECT_EQ(removed, 1u);
  EXPECT_EQ(book.healthy("a/s", "n1"), true);          // kept
  EXPECT_EQ(book.healthy("a/s", "n2"), std::nullopt);  // a new target
  EXPECT_EQ(book.healthy("a/s", "n3"), std::nullopt);
  const auto due = book.take_due(t0 + 1s, 10);  // the two new ones, at once
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].target.node, "n2");
  EXPECT_EQ(due[1].target.node, "n3");
  EXPECT_LE(*due_before, *book.next_due());  // n1 kept its place
  // The same list again changes nothing.
  const auto same = book.set_targets(
      {target("a/s", "n1"), target("a/s", "n2", 20), target("a/s", "n3", 3)}, t0 + 2s);
  EXPECT_EQ(same, std::make_pair(size_t(0), size_t(0)));
  EXPECT_EQ(book.size(), 3u);
}

TEST(HealthBook, ResultsOfRemovedTargetsAreIgnored) {
  HealthBook book({}, 13);
  book.set_targets({target("a/s", "n1")}, t0);
  const auto due = book.take_due(t0, 1);
  book.set_targets({}, t0);
  EXPECT_FALSE(book.record(due[0].ticket, pass(), t0, wall0));
  EXPECT_EQ(book.counts().passes, 0u);
  // Removed and added back while the old probe was out: the old result does not count either.
  book.set_targets({target("a/s", "n1")}, t0);
  const auto again = book.take_due(t0, 1);
  book.set_targets({}, t0);
  book.set_targets({target("a/s", "n1")}, t0);
  EXPECT_FALSE(book.record(again[0].ticket, pass(), t0, wall0));
  EXPECT_EQ(book.healthy("a/s", "n1"), std::nullopt);
  EXPECT_EQ(book.size(), 1u);
  EXPECT_EQ(book.next_due(), t0);
}

TEST(HealthBook, DuplicatesAndRemovalsInOneList) {
  HealthBook book({}, 17);
  book.set_targets({target("a/s", "n1"), target("a/s", "n2"), target("b/s", "n1")}, t0);
  // n1 twice (same target), b/s gone: the sweep must still find b/s.
  const auto [added, removed] =
      book.set_targets({target("a/s", "n1"), target("a/s", "n1"), target("a/s", "n2")}, t0);
  EXPECT_EQ(added, 0u);
  EXPECT_EQ(removed, 1u);
  EXPECT_EQ(book.size(), 2u);
  // The same pair twice with different ports: the last one counts.
  book.set_targets({target("a/s", "n1", 1, 1), target("a/s", "n1", 1, 2)}, t0);
  const auto snap = book.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].target.port, 2);
}

TEST(HealthBook, SnapshotOrderAndFields) {
  HealthBook book({}, 19);
  book.set_targets({target("b/s", "n1"), target("a/s", "n2"), target("a/s", "n1")}, t0);
  for (const auto& probe : book.take_due(t0, 10))
    book.record(probe.ticket, probe.target.service == "b/s" ? fail() : pass(), t0, wall0 + 5s);
  const auto snap = book.snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].target.node, "n1");
  EXPECT_EQ(snap[1].target.node, "n2");
  EXPECT_EQ(snap[2].target.service, "b/s");
  EXPECT_EQ(snap[2].verdict, Verdict::unhealthy);
  ASSERT_TRUE(snap[2].last);
  EXPECT_EQ(snap[2].last->reason, "503");
  EXPECT_EQ(snap[2].streak, 1u);
  EXPECT_EQ(snap[2].last_probe, wall0 + 5s);
}

TEST(ProbeResponse, StatusLineDecides) {
  using k8s::judge_response;
  const auto ok = judge_response("HTTP/1.1 200 OK\r\n", false);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->pass);
  EXPECT_EQ(ok->reason, "200");
  const auto down = judge_response("HTTP/1.1 503 Service Unavailable\r\nContent-Type: x", false);
  ASSERT_TRUE(down);
  EXPECT_FALSE(down->pass);
  EXPECT_EQ(down->reason, "503");
  EXPECT_EQ(judge_response("HTTP/1.0 200\r\n", false)->reason, "200");  // no reason phrase
  EXPECT_FALSE(judge_response("HTTP/1.1 204 No Content\r\n", false)->pass);
  // Incomplete: read on.
  EXPECT_EQ(judge_response("", false), std::nullopt);
  EXPECT_EQ(judge_response("HTTP/1.1 20", false), std::nullopt);
  EXPECT_EQ(judge_response("HTTP/1.1 200 OK\r", false), std::nullopt);
  // Malformed or cut short.
  for (const char* bad :
       {"garbage\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 20x OK\r\n", "http/1.1 200 OK\r\n",
        "HTTP/11 200 OK\r\n", "HTTP/1.1  200 OK\r\n", "\r\n"}) {
    const auto r = judge_response(bad, false);
    ASSERT_TRUE(r) << bad;
    EXPECT_FALSE(r->pass) << bad;
    EXPECT_EQ(r->reason, "malformed status line") << bad;
  }
  EXPECT_EQ(judge_response("HTTP/1.1 200", true)->reason, "malformed status line");
  EXPECT_EQ(judge_response("", true)->reason, "closed before a status line");
  EXPECT_EQ(judge_response(std::string(k8s::kProbeResponseMax, 'x'), false)->reason,
            "malformed status line");
}
