// The fake API server (fake_apiserver.py) for the C++ tests: one process per FakeServer, on a
// free port, driven through its control API (/fake/...). Header-only, for the test binaries
// that need it (MAGLINE_PYTHON and MAGLINE_FAKE_APISERVER come from their meson targets).
#pragma once

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace magline::k8s {

using json = nlohmann::json;

struct Reply {
  long status = 0;
  json body;
};

inline size_t collect(char* p, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

// A plain libcurl call for the control API (TLS unverified: the control API is test plumbing).
inline Reply http(const std::string& method, const std::string& url, const std::string& body = "") {
  CURL* h = curl_easy_init();
  std::string out;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  if (!body.empty()) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  Reply r;
  if (curl_easy_perform(h) == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = json::parse(out, nullptr, false);
  }
  curl_easy_cleanup(h);
  return r;
}

class FakeServer {
 public:
  // Starts fake_apiserver.py with `args` and waits for "listening on PORT".
  explicit FakeServer(const std::vector<std::string>& args, std::string scheme = "http")
      : scheme_(std::move(scheme)) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv_s = {MAGLINE_PYTHON, MAGLINE_FAKE_APISERVER, "--port", "0"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    // A process group of its own: the teardown signals the group, so a wrapper (a pyenv shim,
    // say) cannot leave the real server behind.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    const int rc = posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
      pid_ = -1;
      close(fds[0]);
      return;
    }
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[128];
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    if (line.rfind("listening on ", 0) == 0) port_ = std::atoi(line.c_str() + 13);
  }
  ~FakeServer() {
    if (pid_ > 0) {
      kill(-pid_, SIGTERM);  // the group this server leads, and only it
      waitpid(pid_, nullptr, 0);
    }
  }

  bool ok() const { return port_ > 0; }
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  Reply call(const std::string& method, const std::string& path, const json& body = nullptr) {
    return http(method, url() + path, body.is_null() ? "" : body.dump());
  }
  Reply post(const std::string& path, const json& body) { return call("POST", path, body); }

  std::string put(const json& objects) {  // one object or {"items": [...], "delete": [...]}
    const Reply r = post("/fake/objects", objects);
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body.value("resourceVersion", "");
  }
  std::string rv() { return call("GET", "/fake/state").body.value("resourceVersion", ""); }
  void inject(json fault) { EXPECT_EQ(post("/fake/inject", fault).status, 200); }
  void cut_watches(const std::string& mode) {
    EXPECT_EQ(post("/fake/reset-watches", {{"mode", mode}}).status, 200);
  }
  std::vector<json> requests() {
    const Reply reply = call("GET", "/fake/requests");
    std::vector<json> out;
    for (const auto& r : reply.body["requests"])
      out.push_back(r);
    return out;
  }
  std::map<std::string, json> objects(const std::string& kind) {
    const Reply reply = call("GET", "/fake/objects?kind=" + kind);
    std::map<std::string, json> out;
    for (const auto& o : reply.body["items"]) {
      out[o["metadata"]["namespace"].get<std::string>() + "/" +
          o["metadata"]["name"].get<std::string>()] = o;
    }
    return out;
  }

 private:
  std::string scheme_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace magline::k8s
