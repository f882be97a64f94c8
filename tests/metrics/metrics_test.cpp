// The Prometheus renderers' rules, in microseconds: one HELP and TYPE per family before its
// samples, cumulative histogram buckets ending at +Inf = _count, escaped label values, numbers
// as Prometheus writes them; /proc/self/stat read as the client libraries read it; the ports'
// counters absent, not zero, when the device could not be read.
#include <gtest/gtest.h>

#include <string>

#include "control/build_info.hpp"
#include "control/exposition.hpp"
#include "control/port_metrics.hpp"
#include "control/process_metrics.hpp"
#include "control/stats.hpp"

namespace magline::control {
namespace {

TEST(Exposition, GroupsSamplesByFamilyWithOneHelpAndType) {
  Exposition e;
  e.sample("a_total", MetricType::counter, "A.", "worker=\"0\"", uint64_t{1});
  e.sample("b", MetricType::gauge, "B.", "", 0.5);
  e.sample("a_total", MetricType::counter, "", "worker=\"1\"", uint64_t{2});
  EXPECT_EQ(e.text(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{worker=\"0\"} 1\n"
            "a_total{worker=\"1\"} 2\n# HELP b B.\n# TYPE b gauge\nb 0.5\n");
}

TEST(Exposition, HelpFromTheFirstRowThatGivesOne) {
  Exposition e;
  e.sample("x_total", MetricType::counter, "", "k=\"a\"", uint64_t{1});
  e.sample("x_total", MetricType::counter, "X.", "k=\"b\"", uint64_t{1});
  EXPECT_EQ(e.text().substr(0, 18), "# HELP x_total X.\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndAtInfEqualToCount) {
  Histogram h({0.25, 1, 4});
  for (double v : {0.125, 0.25, 0.5, 8.0, 16.0})
    h.observe(v);
  Exposition e;
  e.histogram("lat_seconds", "L.", "", h);
  EXPECT_EQ(e.text(),
            "# HELP lat_seconds L.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.25\"} 2\n"  // le: 0.25 itself is in the first bucket
            "lat_seconds_bucket{le=\"1\"} 3\n"
            "lat_seconds_bucket{le=\"4\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 5\n"
            "lat_seconds_sum 24.875\n"
            "lat_seconds_count 5\n");
}

TEST(Exposition, HistogramKeepsItsLabelsOnEverySample) {
  Histogram h({1});
  h.observe(2);
  Exposition e;
  e.histogram("h_seconds", "H.", "port=\"p\"", h);
  EXPECT_NE(e.text().find("h_seconds_bucket{port=\"p\",le=\"1\"} 0\n"), std::string::npos);
  EXPECT_NE(e.text().find("h_seconds_bucket{port=\"p\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(e.text().find("h_seconds_count{port=\"p\"} 1\n"), std::string::npos);
}

TEST(Exposition, NumbersAndLabelValues) {
  EXPECT_EQ(prometheus_number(0.005), "0.005");
  EXPECT_EQ(prometheus_number(2.5e-4), "0.00025");
  EXPECT_EQ(prometheus_number(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(prometheus_number(1e300 * 1e300), "+Inf");
  EXPECT_EQ(label_escaped("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(UpdateLatency, HistogramInSecondsAndQuantilesInMilliseconds) {
  LatencySamples l;
  l.add(2);
  l.add(30000);  // past the last bound: only +Inf
  EXPECT_EQ(l.seconds().count(), 2u);
  EXPECT_DOUBLE_EQ(l.seconds().sum(), 30.002);
  EXPECT_EQ(l.seconds().counts().back(), 1u);
  EXPECT_DOUBLE_EQ(l.quantile(0), 2);
}

// A line of proc(5)'s stat whose command name holds a space and a ')'.
constexpr const char* kStat =
    "4242 (mag line)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 3 0 12345 "
    "1073741824 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";

TEST(ProcessStats, ReadFromProcSelfStat) {
  auto p = parse_proc_stat(kStat, 1700000000, 100, 4096);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_DOUBLE_EQ(p->cpu_seconds, 4.0);  // (250 + 150) / 100
  EXPECT_EQ(p->virtual_bytes, 1073741824u);
  EXPECT_EQ(p->resident_bytes, 2048u * 4096);
  EXPECT_DOUBLE_EQ(p->start_time_seconds, 1700000000 + 123.45);
}

TEST(ProcessStats, RefusesWhatIsNotAStatLine) {
  EXPECT_FALSE(parse_proc_stat("", 0, 100, 4096).ok());
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2 3", 0, 100, 4096).ok());
}

TEST(ProcessStats, ThisProcess) {
  auto p = read_process_stats();
  ASSERT_TRUE(p.ok());
  EXPECT_GT(p->resident_bytes, 0u);
  EXPECT_GT(p->open_fds, 2u);  // standard input, output and error at least
  EXPECT_GE(p->max_fds, p->open_fds);
  EXPECT_GT(p->start_time_seconds, 1.5e9);
}

TEST(PortMetrics, CountersAbsentWhenTheDeviceWasNotRead) {
  Exposition e;
  PortCounters unread{.name = "p1"};
  PortCounters read{.name = "p0", .read = true, .rx_packets = 7, .rx_no_mbuf = 2};
  port_metrics(e, {{"p0", "single-queue", ""}}, {read, unread});
  const std::string t = e.text();
  EXPECT_NE(t.find("magline_port_steering{port=\"p0\",kind=\"single-queue\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("magline_port_rx_packets_total{port=\"p0\"} 7\n"), std::string::npos);
  EXPECT_NE(t.find("magline_port_rx_nombuf_total{port=\"p0\"} 2\n"), std::string::npos);
  EXPECT_EQ(t.find("magline_port_rx_packets_total{port=\"p1\"}"), std::string::npos);
  EXPECT_NE(t.find("magline_port_link_up{port=\"p1\"} 0\n"), std::string::npos);
}

TEST(PortMetrics, StatsJsonHasEachPortsLinkAndCountersOnlyWhenRead) {
  PortCounters unread{.name = "p1"};
  PortCounters read{.name = "p0", .read = true, .rx_packets = 7, .rx_missed = 3};
  read.link_up = true;
  read.speed_bytes_per_second = 1250000000;
  const auto j = ports_json({{"p0", "rte-flow", "2 rules"}, {"p1", "single-queue", ""}},
                            {read, unread});
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["steering_detail"], "2 rules");
  EXPECT_EQ(j[0]["link_up"], true);
  EXPECT_EQ(j[0]["link_speed_bytes_per_second"], 1250000000u);
  EXPECT_EQ(j[0]["counters"]["rx_packets"], 7u);
  EXPECT_EQ(j[0]["counters"]["rx_missed"], 3u);
  EXPECT_EQ(j[0]["counters"]["rx_nombuf"], 0u);
  EXPECT_EQ(j[1]["link_up"], false);
  EXPECT_FALSE(j[1].contains("counters"));  // absent, not zero: the device did not answer
  // Before the first reading, only the steering.
  EXPECT_EQ(ports_json({{"p0", "rte-flow", ""}}, {})[0].size(), 3u);
}

TEST(BuildInfo, OneSeriesLabelledWithWhatTheBinaryIs) {
  BuildInfo b = build_info();
  EXPECT_EQ(b.version, "0.1.0");
  EXPECT_FALSE(b.commit.empty());
  EXPECT_FALSE(b.buildtype.empty());
  b.dpdk = "DPDK 22.11.4";
  Exposition e;
  build_info_metrics(e, b);
  EXPECT_NE(e.text().find("magline_build_info{version=\"0.1.0\",commit=\"" + b.commit +
                          "\",buildtype=\"" + b.buildtype + "\",dpdk=\"DPDK 22.11.4\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace magline::control
