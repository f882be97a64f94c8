// The configuration's files: load_config(), the embedded default, the example in the docs and
// the shipped examples (the loader's fields are config_test.cpp's, its errors
// config_errors_test.cpp's).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

// ---------------------------------------------------------------------------------------------
// Files: load_config(), the embedded default and the shipped examples.

const std::filesystem::path kSourceDir = MAGLINE_SOURCE_DIR;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(LoadConfig, MissingFileOrDirectory) {
  auto missing = load_config("/nonexistent/magline.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "/nonexistent/magline.json: cannot read: No such file or directory");
  auto dir = load_config(kSourceDir / "config");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message,
            (kSourceDir / "config").string() + ": cannot read: Is a directory");
}

TEST(LoadConfig, ErrorsStartWithThePath) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("magline_config_test_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << "{\"maglev\": {\"table_size\": 4}}";
  auto r = load_config(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            path.string() + ": maglev.table_size: expected a prime, got 4 (the next prime is 5)");
}

// A relative kubeconfig is the configuration file's neighbour, not the working directory's.
TEST(LoadConfig, RelativeKubeconfigIsTheFilesNeighbour) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("magline_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  auto load = [&](const std::string& kubeconfig) {
    std::ofstream(dir / "etc" / "magline.json")
        << R"({"kubernetes": {"kubeconfig": ")" << kubeconfig << R"("}})";
    auto r = load_config(dir / "etc" / "magline.json");
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->kubernetes.kubeconfig : "";
  };
  EXPECT_EQ(load("kubeconfig"), (dir / "etc" / "kubeconfig").string());
  EXPECT_EQ(load("../kube/config"), (dir / "kube" / "config").string());
  EXPECT_EQ(load("/etc/kubernetes/admin.conf"), "/etc/kubernetes/admin.conf");
  // The file named relative to the working directory: its directory made absolute.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  auto relative = load_config("etc/magline.json");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(relative) << relative.error().message;
  EXPECT_EQ(relative->kubernetes.kubeconfig, "/etc/kubernetes/admin.conf");
  std::ofstream(dir / "etc" / "magline.json") << R"({"kubernetes": {"kubeconfig": "k"}})";
  std::filesystem::current_path(dir);
  relative = load_config("etc/magline.json");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(relative) << relative.error().message;
  EXPECT_EQ(relative->kubernetes.kubeconfig, (dir / "etc" / "k").string());
  // parse_config() has no file: the path stays as written.
  EXPECT_EQ(parse_ok(R"({"kubernetes": {"kubeconfig": "k"}})").kubernetes.kubeconfig, "k");
  std::filesystem::remove_all(dir);
}

TEST(EmbeddedDefault, IsDefaultJsonAndLoads) {
  EXPECT_EQ(embedded_default_config(), slurp(kSourceDir / "config" / "default.json"));
  auto r = parse_config(embedded_default_config(), kEmbeddedSource);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->source, "<embedded default>");
  std::vector<std::string> names;
  for (const ServiceConfig& s : r->services)
    names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"demo/web:http", "demo/dns:udp", "demo/static:http",
                                             "demo/api:http", "demo/web6:http",
                                             "demo/echo:stream"}));
  auto snapshot = dp::Snapshot::build(services_of(*r));
  EXPECT_TRUE(snapshot) << snapshot.error().message;
}

// The example in the documentation is a valid file.
TEST(Docs, TheCompleteExampleLoads) {
  const std::string doc = slurp(kSourceDir / "docs" / "config.md");
  const size_t section = doc.find("## A complete example");
  ASSERT_NE(section, std::string::npos);
  const size_t open = doc.find("```json\n", section);
  ASSERT_NE(open, std::string::npos);
  const size_t begin = open + 8;
  const size_t end = doc.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  auto r = parse_config(std::string_view(doc).substr(begin, end - begin), "docs/config.md");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(dump_dp_services(services_of(*r)),
            "service demo/web:http table=65537\n"
            "  198.18.100.1:80/tcp load_balancer\n"
            "  198.18.0.1:30080/tcp node_port\n"
            "service demo/web6:http table=65537\n"
            "  [2001:db8:100::1]:80/tcp load_balancer\n"
            "  [2001:db8::1]:30080/tcp node_port\n");
}

// Every shipped example passes validation and builds a snapshot, as `magline check` would.
TEST(Examples, EveryExampleLoadsAndBuilds) {
  std::vector<std::string> seen;
  for (const auto& entry :
       std::filesystem::directory_iterator(kSourceDir / "config" / "examples")) {
    if (entry.path().extension() != ".json") continue;
    seen.push_back(entry.path().filename().string());
    SCOPED_TRACE(entry.path().string());
    auto r = load_config(entry.path());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->services.empty());
    auto snapshot = dp::Snapshot::build(services_of(*r));
    EXPECT_TRUE(snapshot) << snapshot.error().message;
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen,
            (std::vector<std::string>{"dnat.json", "dsr-l2.json", "dual-stack.json",
                                      "edge-full-nat.json", "encapsulation.json", "nodeport.json",
                                      "weighted.json"}));
}

}  // namespace
}  // namespace magline::cfg
