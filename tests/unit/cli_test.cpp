#include "control/cli.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace magline::cli {
namespace {

struct Outcome {
  int rc;
  std::string out;
  std::string err;
};

Outcome magline(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = run(args, out, err);
  return {rc, out.str(), err.str()};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "magline-cli-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

const char* kSmall = R"({
  "services": [{
    "name": "t/web:http",
    "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}],
    "backends": [{"address": "198.18.1.10", "port": 8080},
                 {"address": "198.18.1.11", "port": 8080, "weight": 3}],
    "table_size": 13
  }]
})";

TEST(Cli, UsageAndUnknownCommands) {
  Outcome none = magline({});
  EXPECT_EQ(none.rc, kUsage);
  EXPECT_NE(none.err.find("Usage: magline COMMAND"), std::string::npos);

  Outcome help = magline({"--help"});
  EXPECT_EQ(help.rc, kOk);
  EXPECT_NE(help.out.find("table"), std::string::npos);

  Outcome bogus = magline({"frobnicate"});
  EXPECT_EQ(bogus.rc, kUsage);
  EXPECT_NE(bogus.err.find("unknown command 'frobnicate'"), std::string::npos);

  Outcome bad_flag = magline({"check", "--bogus"});
  EXPECT_EQ(bad_flag.rc, kUsage);
  EXPECT_NE(bad_flag.err.find("magline check: unrecognised option '--bogus'"), std::string::npos)
      << bad_flag.err;

  Outcome extra = magline({"table", "stray"});
  EXPECT_EQ(extra.rc, kUsage);

  Outcome table_help = magline({"table", "--help"});
  EXPECT_EQ(table_help.rc, kOk);
  EXPECT_NE(table_help.out.find("--dump"), std::string::npos);

  EXPECT_EQ(magline({"version"}).out, "magline 0.1.0\n");
}

TEST(Cli, CheckAcceptsTheEmbeddedDefault) {
  Outcome o = magline({"check"});
  EXPECT_EQ(o.rc, kOk) << o.err;
  EXPECT_EQ(o.out.rfind("<embedded default>: OK: ", 0), 0u) << o.out;
}

TEST(Cli, CheckRefusesBadFilesWithTheirName) {
  TempDir dir;
  Outcome missing = magline({"check", "--config", "/nonexistent/magline.json"});
  EXPECT_EQ(missing.rc, kInvalid);
  EXPECT_EQ(missing.err.rfind("/nonexistent/magline.json: ", 0), 0u) << missing.err;

  const std::string typo = dir.write("typo.json", R"({"servics": []})");
  Outcome t = magline({"check", "-c", typo});
  EXPECT_EQ(t.rc, kInvalid);
  EXPECT_EQ(t.err.rfind(typo + ": ", 0), 0u) << t.err;
  EXPECT_NE(t.err.find("servics"), std::string::npos) << t.err;
  EXPECT_TRUE(t.out.empty());

  // Caught when the services are built, after the file itself validated.
  const std::string clash = dir.write("clash.json", R"({"services": [
    {"name": "a", "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}]},
    {"name": "b", "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}]}
  ]})");
  Outcome c = magline({"check", "--config", clash});
  EXPECT_EQ(c.rc, kInvalid);
  EXPECT_EQ(c.err, clash + ": frontend 198.18.100.1:80/tcp is claimed by services \"a\" and \"b\"\n");
}

TEST(Cli, TableTextShowsSlotsPerBackend) {
  TempDir dir;
  Outcome o = magline({"table", "--config", dir.write("small.json", kSmall)});
  ASSERT_EQ(o.rc, kOk) << o.err;
  EXPECT_NE(o.out.find("service t/web:http  mode full_nat  M 13\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("frontend 198.18.100.1:80/tcp (load_balancer)"), std::string::npos);
  // Weights 1 and 3 over 13 slots: 3.25 and 9.75, largest remainder gives 3 and 10.
  EXPECT_NE(o.out.find("198.18.1.10:8080"), std::string::npos);
  EXPECT_NE(o.out.find("slots 3 "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("slots 10 "), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("slot 0 "), std::string::npos);  // no dump without --dump
}

TEST(Cli, TableJsonWithDump) {
  TempDir dir;
  Outcome o = magline({"table", "--json", "--dump", "--config", dir.write("small.json", kSmall)});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  const auto& svc = j.at("services").at(0);
  EXPECT_EQ(svc.at("name"), "t/web:http");
  EXPECT_EQ(svc.at("table_size"), 13);
  EXPECT_EQ(svc.at("backends").at(0).at("slots"), 3);
  EXPECT_EQ(svc.at("backends").at(1).at("slots"), 10);
  ASSERT_EQ(svc.at("slots").size(), 13u);
  int ones = 0;
  for (int s : svc.at("slots")) ones += s == 1;
  EXPECT_EQ(ones, 10);
}

TEST(Cli, TableRunsOnTheEmbeddedDefault) {
  Outcome o = magline({"table"});
  EXPECT_EQ(o.rc, kOk) << o.err;
  EXPECT_NE(o.out.find("service "), std::string::npos);
}

}  // namespace
}  // namespace magline::cli
