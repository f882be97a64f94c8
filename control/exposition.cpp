#include "control/exposition.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace magline::control {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  // The first bound not below v: Prometheus buckets are `le` (less than or equal).
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  ++counts_[size_t(it - bounds_.begin())];
  ++count_;
  sum_ += v;
}

std::string label_escaped(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // %.17g round-trips; try shorter first so that 0.005 is not 0.0050000000000000001.
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void Exposition::sample(std::string_view family_name, MetricType type, std::string_view help,
                        std::string_view labels, uint64_t value) {
  Family& f = family(family_name, type, help);
  put(f, family_name, labels, std::to_string(value));
}

void Exposition::sample(std::string_view family_name, MetricType type, std::string_view help,
                        std::string_view labels, double value) {
  Family& f = family(family_name, type, help);
  put(f, family_name, labels, prometheus_number(value));
}

void Exposition::histogram(std::string_view family_name, std::string_view help,
                           std::string_view labels, const Histogram& h) {
  Family& f = family(family_name, MetricType::histogram, help);
  const std::string name(family_name);
  const std::string sep = labels.empty() ? "" : std::string(labels) + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.counts().size(); ++i) {
    cumulative += h.counts()[i];
    const double le = i < h.bounds().size() ? h.bounds()[i] : INFINITY;
    put(f, name + "_bucket", sep + "le=\"" + prometheus_number(le) + "\"",
        std::to_string(cumulative));
  }
  put(f, name + "_sum", labels, prometheus_number(h.sum()));
  put(f, name + "_count", labels, std::to_string(h.count()));
}

std::string Exposition::text() const {
  static constexpr const char* kTypes[] = {"counter", "gauge", "histogram"};
  std::ostringstream o;
  for (const Family& f : families_) {
    o << "# HELP " << f.name << ' ' << f.help << "\n# TYPE " << f.name << ' '
      << kTypes[size_t(f.type)] << '\n'
      << f.samples.str();
  }
  return o.str();
}

Exposition::Family& Exposition::family(std::string_view name, MetricType type,
                                       std::string_view help) {
  auto [it, fresh] = index_.try_emplace(std::string(name), families_.size());
  if (fresh) families_.push_back(Family{std::string(name), type, std::string(help), {}});
  Family& f = families_[it->second];
  if (f.help.empty()) f.help = help;  // tables give the help text on a family's first row only
  return f;
}

void Exposition::put(Family& f, std::string_view name, std::string_view labels,
                     const std::string& value) {
  f.samples << name;
  if (!labels.empty()) f.samples << '{' << labels << '}';
  f.samples << ' ' << value << '\n';
}

}  // namespace magline::control
