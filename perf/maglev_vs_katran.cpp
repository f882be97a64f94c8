// Magline's Maglev build against Katran's (katran/lib/MaglevHash.cpp), both compiled here at the
// same optimisation level and timed in the same run, alternately: the issue-19 goal is Magline
// at most 0.5x Katran's time at M = 65537 and M = 655373 with N = 1000 backends. Built and run
// by perf/maglev_vs_katran.sh, which compiles Katran's sources from a checkout outside this
// repository (they are never copied into it).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "dataplane/maglev.hpp"
#include "katran/lib/MaglevHash.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 15;
  std::printf("%-8s %-6s %12s %12s %8s\n", "M", "N", "magline ms", "katran ms", "ratio");
  bool met = true;
  for (const uint32_t m : {16381u, 65537u, 655373u}) {
    for (const size_t n : {size_t{10}, size_t{100}, size_t{1000}}) {
      std::vector<std::string> ids;
      for (size_t i = 0; i < n; ++i) {
        ids.push_back("198.18." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
                      ":8080");
      }
      std::vector<magline::dp::MaglevBackend> ours;
      std::vector<katran::Endpoint> theirs;
      for (size_t i = 0; i < n; ++i) {
        ours.push_back({ids[i], 1});
        const auto* p = reinterpret_cast<const uint8_t*>(ids[i].data());
        theirs.push_back({uint32_t(i), 1, magline::dp::hash_bytes(p, ids[i].size(), 0)});
      }
      katran::MaglevHash katran;
      std::vector<double> a, b;
      uint64_t sink = 0;
      for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        auto table = magline::dp::MaglevTable::build(ours, m);
        auto t1 = Clock::now();
        auto ring = katran.generateHashRing(theirs, m);
        auto t2 = Clock::now();
        sink += table->slots()[m / 2] + uint64_t(ring[m / 2]);
        a.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        b.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      }
      const double ratio = median(a) / median(b);
      const bool goal = n == 1000 && (m == 65537 || m == 655373);
      if (goal) met = met && ratio <= 0.5;
      std::printf("%-8u %-6zu %12.3f %12.3f %7.2fx%s\n", m, n, median(a), median(b), ratio,
                  goal ? (ratio <= 0.5 ? "  goal <= 0.5x: met" : "  goal <= 0.5x: MISSED") : "");
      if (sink == 42) std::puts("");
    }
  }
  std::printf("medians of %d alternating builds each\n", reps);
  return met ? 0 : 1;
}
