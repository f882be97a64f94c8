// magline-bench's rule for a disturbed harness (perf/bench/report.cpp): a point whose own
// baseline, the ring MAC swap, reached less than 0.8x testpmd's macswap (or than 0.8x the
// offered rate, when that is lower) prints no ratio to testpmd (issue 19).
#include "perf/bench/report.hpp"

#include <gtest/gtest.h>

namespace magline::bench {
namespace {

RunResult run_at(double pps, Forwarding how) {
  RunResult r;
  r.options.forwarding = how;
  r.window.seconds = 1;
  r.window.tx = r.window.rx = uint64_t(pps);
  return r;
}

Point point(double ring_pps, double testpmd_pps, double rate_pps = 0) {
  Point p;
  p.label = "run";
  p.magline = run_at(12e6, Forwarding::magline);
  p.magline.options.traffic.rate_pps = rate_pps;
  p.ring = run_at(ring_pps, Forwarding::ring_macswap);
  p.testpmd_pps = testpmd_pps;
  return p;
}

TEST(BenchReport, ABaselineBelow08xTestpmdIsDisturbedAndPrintsNoRatio) {
  EXPECT_FALSE(disturbed(point(25e6, 30e6)));  // 0.83x
  EXPECT_FALSE(disturbed(point(24.1e6, 30e6)));
  EXPECT_TRUE(disturbed(point(23.9e6, 30e6)));
  EXPECT_TRUE(disturbed(point(9e6, 30e6)));  // the slow state of the two cores
  EXPECT_EQ(to_json(point(25e6, 30e6))["magline"]["tx_vs_testpmd"], 0.4);
  EXPECT_TRUE(to_json(point(9e6, 30e6))["magline"]["tx_vs_testpmd"].is_null());
  EXPECT_EQ(to_json(point(9e6, 30e6))["disturbed"], true);
}

TEST(BenchReport, AtAnOfferedRateTheBaselineIsJudgedAgainstThatRate) {
  EXPECT_FALSE(disturbed(point(0.9e6, 30e6, 1e6)));  // asked for 1 Mpps, gave 0.9
  EXPECT_TRUE(disturbed(point(0.7e6, 30e6, 1e6)));
  EXPECT_TRUE(disturbed(point(20e6, 30e6, 40e6)));  // a rate above testpmd's: testpmd's
}

TEST(BenchReport, WithoutABaselineOrAcrossProcessesNothingIsDisturbed) {
  Point p = point(1e6, 30e6);
  p.ring.reset();
  EXPECT_FALSE(disturbed(p));  // no ring MAC swap measured
  p = point(1e6, 0);
  EXPECT_FALSE(disturbed(p));  // testpmd not measured
  p = point(1e6, 30e6);
  p.magline.options.forwarding = Forwarding::magline_process;
  EXPECT_FALSE(disturbed(p));  // over memif the baseline is testpmd itself
}

}  // namespace
}  // namespace magline::bench
