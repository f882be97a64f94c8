// Prometheus text exposition format 0.0.4, written by one Exposition per scrape: samples are
// grouped by family (one HELP and one TYPE each, before its samples), families in the order they
// first appear, whatever order the callers add them in. Histograms are written whole: cumulative
// `_bucket{le=...}` samples ending at +Inf, then `_sum` and `_count`.
//
// Pure: no DPDK, no I/O. Any thread (an Exposition is used by one thread at a time).
#pragma once

#include <cstdint>
#include <deque>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace magline::control {

enum class MetricType : uint8_t { counter, gauge, histogram };

// A histogram of observations (seconds, say) over fixed upper bounds, counted per bucket (not
// cumulatively: that is the exposition's work). Not thread-safe: one writer, copied to readers.
class Histogram {
 public:
  // `bounds`: finite upper bounds, ascending; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Per bucket, bounds().size() + 1 of them (the last is +Inf); not cumulative.
  const std::vector<uint64_t>& counts() const noexcept { return counts_; }
  uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// `v` as a label value: backslash, double quote and newline escaped.
std::string label_escaped(std::string_view v);

class Exposition {
 public:
  // `labels`: `a="x",b="y"` (values escaped: label_escaped()), or "". Every sample of a family
  // must be given the same type; the first call's help text is the family's.
  void sample(std::string_view family, MetricType type, std::string_view help,
              std::string_view labels, uint64_t value);
  void sample(std::string_view family, MetricType type, std::string_view help,
              std::string_view labels, double value);
  void histogram(std::string_view family, std::string_view help, std::string_view labels,
                 const Histogram& h);
  std::string text() const;

 private:
  struct Family {
    std::string name;
    MetricType type;
    std::string help;
    std::ostringstream samples;
  };
  Family& family(std::string_view name, MetricType type, std::string_view help);
  void put(Family& f, std::string_view name, std::string_view labels, const std::string& value);
  std::deque<Family> families_;
  std::unordered_map<std::string, size_t> index_;
};

// A double as Prometheus writes it: "+Inf", "-Inf", "NaN", else the shortest exact text.
std::string prometheus_number(double v);

}  // namespace magline::control
