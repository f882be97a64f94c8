// Fuzz target for `magline replay`'s input (control/replay.hpp): arbitrary bytes as the capture
// file, read by libpcap and sent through the real pipeline (the worker, the Forwarder, the slow
// path) with a configuration of every mode. Beyond "no crash, no sanitizer report":
//   - a capture that replays prints JSON whose `frames` is what was read, and never writes more
//     frames than the pipeline could send (each frame gives at most two: an answer and a
//     neighbour request);
//   - a refusal (not a capture, not Ethernet, damaged) is one line that names the file, exit 1,
//     with nothing on standard output.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "control/replay.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace magline;

namespace {

// The modes and families of tests/replay/config.json, with a small flow table and small Maglev
// tables (the defaults would allocate a million entries and build four tables of 65537 slots
// for every input: 12 executions a second).
constexpr const char* kConfig = R"({
  "flow_table": {"capacity": 1024},
  "maglev": {"table_size": 251},
  "dataplane": {
    "ports": [{"name": "lan0", "device": "net_null0", "mac": "02:00:00:00:00:01",
               "addresses": ["198.18.0.1/16", "2001:db8::1/64"]}]
  },
  "services": [
    {"name": "web", "mode": "full_nat",
     "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}],
     "backends": [{"address": "198.18.1.10", "port": 8080}]},
    {"name": "dns", "mode": "dnat",
     "frontends": [{"kind": "load_balancer", "address": "198.18.100.2", "port": 53,
                    "protocol": "udp"}],
     "backends": [{"address": "198.18.1.10", "port": 5353}]},
    {"name": "static", "mode": "dsr_l2",
     "frontends": [{"kind": "load_balancer", "address": "198.18.100.3", "port": 80}],
     "backends": [{"address": "198.18.1.10", "port": 80}]},
    {"name": "web6", "mode": "full_nat",
     "frontends": [{"kind": "load_balancer", "address": "2001:db8:100::1", "port": 80}],
     "backends": [{"address": "2001:db8::10", "port": 8080}]}
  ]
})";

struct Scratch {
  std::string dir = "/tmp/magline-replay-fuzz-" + std::to_string(getpid());
  std::string config = dir + "/config.json";
  std::string in = dir + "/in.pcap";
  std::string out = dir + "/out.pcap";
  Scratch() {
    mkdir(dir.c_str(), 0700);
    std::FILE* f = std::fopen(config.c_str(), "w");
    if (f != nullptr) {
      std::fputs(kConfig, f);
      std::fclose(f);
    }
  }
};

const Scratch& scratch() {
  static const Scratch s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Scratch& s = scratch();
  std::FILE* f = std::fopen(s.in.c_str(), "wb");
  if (f == nullptr) return 0;
  const bool written = std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !written) return 0;
  std::ostringstream out, err;
  const int rc = control::replay({s.config, s.in, s.out}, out, err);
  const std::string e = err.str();
  if (rc != 0) {
    CHECK_INVARIANT(rc == 1, "a refusal exits 1");
    CHECK_INVARIANT(out.str().empty(), "a refusal prints nothing on standard output");
    CHECK_INVARIANT(e.find(s.in) != std::string::npos, "a refusal names the capture");
    CHECK_INVARIANT(!e.empty() && e.find('\n') == e.size() - 1, "a refusal is one line");
    return 0;
  }
  CHECK_INVARIANT(e.empty(), "a replay says nothing on standard error");
  const auto j = nlohmann::json::parse(out.str(), nullptr, false);
  CHECK_INVARIANT(j.is_object() && j["frames"].is_number_unsigned() &&
                      j["written"].is_number_unsigned(),
                  "a replay prints its counters as JSON");
  const uint64_t frames = j["frames"].get<uint64_t>();
  CHECK_INVARIANT(j["written"].get<uint64_t>() <= 2 * frames + 2,
                  "a replay writes at most an answer and a request per frame");
  return 0;
}
