// Fuzz target for the kubeconfig reader (control/k8s_client/kube_config.hpp): arbitrary text as
// the kubeconfig file (YAML). Beyond "no crash, no sanitizer report" (yaml-cpp throws; every
// failure must come back as an error):
//   - an error is one line that names the file;
//   - a kubeconfig that loads has a server URL with a scheme.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "control/k8s_client/kube_config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace magline;

namespace {

// One scratch file per process, rewritten for every input.
const std::string& scratch_path() {
  static const std::string path = "/tmp/magline-kubeconfig-fuzz-" + std::to_string(getpid());
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  const bool written = std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !written) return 0;
  auto config = k8s::load_kubeconfig(path);
  std::remove(path.c_str());
  if (!config) {
    const std::string& e = config.error().message;
    CHECK_INVARIANT(e.find(path) != std::string::npos, "an error names the file");
    CHECK_INVARIANT(e.find('\n') == std::string::npos, "an error is one line");
    return 0;
  }
  CHECK_INVARIANT(config->server.rfind("https://", 0) == 0 || config->server.rfind("http://", 0) == 0,
                  "a server URL with a scheme");
  return 0;
}
