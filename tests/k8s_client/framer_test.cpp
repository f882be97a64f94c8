#include "control/k8s_client/framer.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

namespace magline::k8s {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kDataDir = MAGLINE_K8S_CLIENT_TESTDATA;

// The constructed watch body (ADDED, MODIFIED, BOOKMARK, DELETED, ERROR 410) and its oracle,
// the same events as a JSON array.
struct Stream {
  std::string bytes = read_file(kDataDir + "/constructed.watch-stream.services.jsonl");
  nlohmann::json expected =
      nlohmann::json::parse(read_file(kDataDir + "/constructed.watch-stream.services.array.json"));
};

const Stream& stream() {
  static const Stream s;
  return s;
}

std::vector<std::string> frame_pieces(const std::vector<std::string_view>& pieces, JsonFramer& f) {
  std::vector<std::string> out;
  for (auto p : pieces)
    EXPECT_TRUE(f.feed(p, out)) << f.error();
  return out;
}

void expect_events(const std::vector<std::string>& values) {
  const auto& want = stream().expected;
  ASSERT_EQ(values.size(), want.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(values[i]), want[i]) << "event " << i;
  }
}

TEST(Framer, TestDataIsPresent) {
  ASSERT_GT(stream().bytes.size(), 1000u);
  ASSERT_EQ(stream().expected.size(), 5u);
  EXPECT_EQ(stream().expected[4]["type"], "ERROR");
}

TEST(Framer, WholeStreamInOneFeed) {
  JsonFramer f;
  expect_events(frame_pieces({stream().bytes}, f));
  EXPECT_EQ(f.pending_bytes(), 0u);
  EXPECT_EQ(f.values(), 5u);
}

TEST(Framer, EverySplitPointOfTheRealStream) {
  const std::string& s = stream().bytes;
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    JsonFramer f;
    const std::string_view v(s);
    const auto values = frame_pieces({v.substr(0, cut), v.substr(cut)}, f);
    ASSERT_EQ(values.size(), 5u) << "cut at " << cut;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(nlohmann::json::parse(values[i]), stream().expected[i]) << "cut " << cut;
    }
  }
}

TEST(Framer, OneByteAtATime) {
  const std::string& s = stream().bytes;
  JsonFramer f;
  std::vector<std::string> out;
  for (char c : s) {
    ASSERT_TRUE(f.feed(std::string_view(&c, 1), out)) << f.error();
  }
  expect_events(out);
}

TEST(Framer, RandomSplitsIntoManyPieces) {
  const std::string& s = stream().bytes;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<std::string_view> pieces;
    size_t at = 0;
    while (at < s.size()) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 64)(rng);
      pieces.push_back(std::string_view(s).substr(at, len));
      at += len;
    }
    JsonFramer f;
    const auto values = frame_pieces(pieces, f);
    ASSERT_EQ(values.size(), 5u) << "trial " << trial;
  }
}

TEST(Framer, StringsWithBracesQuotesAndEscapes) {
  const std::string a = R"({"a":"}{][","b":"say \"}\"","c":"\\","d":"\\\"{","e":["]"]})";
  const std::string b = R"([{"x":"\u007d"},"]"])";
  const std::string all = a + " \r\n\t" + b + "\n";
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    JsonFramer f;
    const auto values =
        frame_pieces({std::string_view(all).substr(0, cut), std::string_view(all).substr(cut)}, f);
    ASSERT_EQ(values.size(), 2u) << "cut " << cut;
    EXPECT_EQ(values[0], a);
    EXPECT_EQ(values[1], b);
    EXPECT_TRUE(nlohmann::json::accept(values[0]));
    EXPECT_TRUE(nlohmann::json::accept(values[1]));
  }
}

TEST(Framer, SeveralValuesInOneFeedAndNoSeparator) {
  JsonFramer f;
  std::vector<std::string> out;
  ASSERT_TRUE(f.feed("{}{\"a\":1}[1,2]{", out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], "{}");
  EXPECT_EQ(out[1], "{\"a\":1}");
  EXPECT_EQ(out[2], "[1,2]");
  EXPECT_EQ(f.pending_bytes(), 1u);  // the last value was cut: the caller sees it
  ASSERT_TRUE(f.feed("}", out));
  EXPECT_EQ(out.size(), 4u);
  EXPECT_EQ(f.pending_bytes(), 0u);
}

TEST(Framer, GarbageBetweenValuesIsAnErrorThatSticks) {
  JsonFramer f;
  std::vector<std::string> out;
  EXPECT_FALSE(f.feed("{\"a\":1}\nnot json", out));
  ASSERT_EQ(out.size(), 1u);  // what came before the fault is kept
  EXPECT_TRUE(f.failed());
  EXPECT_NE(f.error().find("'n'"), std::string::npos) << f.error();
  EXPECT_NE(f.error().find("byte 8"), std::string::npos) << f.error();
  EXPECT_FALSE(f.feed("{}", out));
  EXPECT_EQ(out.size(), 1u);
  f.reset();
  EXPECT_TRUE(f.feed("{}", out));
  EXPECT_EQ(out.size(), 2u);
}

TEST(Framer, ScalarAtTopLevelIsAnError) {
  JsonFramer f;
  std::vector<std::string> out;
  EXPECT_FALSE(f.feed("42", out));
  EXPECT_TRUE(f.failed());
}

TEST(Framer, MismatchedBracketIsAnError) {
  JsonFramer f;
  std::vector<std::string> out;
  EXPECT_FALSE(f.feed("{\"a\":[1}", out));
  EXPECT_NE(f.error().find("closes '['"), std::string::npos) << f.error();
  EXPECT_TRUE(out.empty());
}

TEST(Framer, ValueLongerThanTheLimitIsAnError) {
  JsonFramer f(16);
  std::vector<std::string> out;
  ASSERT_TRUE(f.feed("{\"a\":\"0123456\"}", out));  // 15 bytes: fits
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(f.feed("{\"a\":\"01234", out));  // 11 bytes so far
  EXPECT_FALSE(f.feed("56789\"}", out));       // would be 18
  EXPECT_NE(f.error().find("exceeds 16 bytes"), std::string::npos) << f.error();
  EXPECT_EQ(out.size(), 1u);
}

TEST(Framer, LimitHoldsWhenAValueNeverEnds) {
  JsonFramer f(1024);
  std::vector<std::string> out;
  ASSERT_TRUE(f.feed("{\"a\":\"", out));
  bool ok = true;
  for (int i = 0; i < 100 && ok; ++i)
    ok = f.feed(std::string(100, 'x'), out);
  EXPECT_FALSE(ok);
  EXPECT_LE(f.pending_bytes(), 1024u);
}

TEST(Framer, NestingDepthIsBounded) {
  JsonFramer f;
  std::vector<std::string> out;
  EXPECT_FALSE(f.feed(std::string(JsonFramer::kMaxDepth + 1, '['), out));
  EXPECT_NE(f.error().find("nesting"), std::string::npos);
}

TEST(Framer, BackslashAtAPieceBoundaryInsideAString) {
  // The escape state must survive the boundary: "\" then "\"}" is an escaped quote.
  JsonFramer f;
  std::vector<std::string> out;
  ASSERT_TRUE(f.feed("{\"a\":\"x\\", out));
  ASSERT_TRUE(f.feed("\"}\"}", out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(out[0])["a"], "x\"}");
}

}  // namespace
}  // namespace magline::k8s
