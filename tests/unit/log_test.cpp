// `magline run`'s log (control/log.hpp): a record per line in three formats, levels and their
// filter, and lines from several threads that never mix.
#include "control/log.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace magline::control {
namespace {

constexpr uint64_t kAt = 1796288400123;  // 2026-12-03T09:00:00.123Z

TEST(Log, TextIsTheLineAsWritten) {
  EXPECT_EQ(format_record(LogFormat::text, LogLevel::warning, "magline: reload refused", kAt),
            "magline: reload refused");
}

TEST(Log, JsonAndLogfmtCarryTimeLevelAndMessage) {
  EXPECT_EQ(format_record(LogFormat::json, LogLevel::info, "magline: admin listener on :9100", kAt),
            R"({"time":"2026-12-03T09:00:00.123Z","level":"info","msg":"admin listener on :9100"})");
  EXPECT_EQ(format_record(LogFormat::logfmt, LogLevel::error, "f.json: bad \"x\"", kAt),
            R"(time=2026-12-03T09:00:00.123Z level=error msg="f.json: bad \"x\"")");
  // Whatever a line holds, the JSON record parses back to it.
  const std::string odd = "tab\there, back\\slash, \x01 control, UTF-8 \xc3\xa9t\xc3\xa9";
  const auto j = nlohmann::json::parse(format_record(LogFormat::json, LogLevel::debug, odd, kAt));
  EXPECT_EQ(j["msg"], odd);
  EXPECT_EQ(j["level"], "debug");
}

TEST(Log, ParsesNamesBothWays) {
  for (const LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error})
    EXPECT_EQ(parse_log_level(to_string(l)), l);
  for (const LogFormat f : {LogFormat::text, LogFormat::logfmt, LogFormat::json})
    EXPECT_EQ(parse_log_format(to_string(f)), f);
  EXPECT_FALSE(parse_log_level("warn"));
  EXPECT_FALSE(parse_log_format("JSON"));
}

TEST(Log, EachLineIsARecordWithItsLevelAndLowerOnesAreDropped) {
  std::ostringstream out;
  LogSink sink(out, LogFormat::logfmt, LogLevel::warning);
  {
    LogStream log(sink);
    log << "magline: one " << 1 << std::endl;  // info: dropped
    log << log_warning << "magline: two\n" << log_error << "three";  // the level is per line
    log << std::flush;  // a flush does not end a line
    log << ", still three" << std::endl;
    log << log_error << "unfinished";  // written when the stream goes
  }
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string l; std::getline(in, l);) lines.push_back(l.substr(l.find(" level=")));
  EXPECT_EQ(lines, (std::vector<std::string>{R"( level=warning msg="two")",
                                             R"( level=error msg="three, still three")",
                                             R"( level=error msg="unfinished")"}));
}

TEST(Log, TheManipulatorsDoNothingOnOtherStreams) {
  std::ostringstream out;
  out << log_error << "plain" << log_warning << std::endl;
  EXPECT_EQ(out.str(), "plain\n");
}

TEST(Log, LinesFromSeveralThreadsNeverMix) {
  std::ostringstream out;
  LogSink sink(out, LogFormat::text);
  auto writer = [&](char c) {
    LogStream log(sink);
    for (int i = 0; i < 500; ++i) log << std::string(10, c) << '-' << std::string(10, c) << '\n';
  };
  std::thread a(writer, 'a'), b(writer, 'b');
  a.join();
  b.join();
  std::istringstream in(out.str());
  size_t n = 0;
  for (std::string l; std::getline(in, l); ++n) {
    ASSERT_TRUE(l == std::string(10, 'a') + '-' + std::string(10, 'a') ||
                l == std::string(10, 'b') + '-' + std::string(10, 'b'))
        << l;
  }
  EXPECT_EQ(n, 1000u);
}

}  // namespace
}  // namespace magline::control
