// The baseline every dataplane benchmark here prints its figures against: dpdk-testpmd's
// macswap forwarding on net_null with copy=1 (every frame written, as a NIC's DMA does), one
// forwarding core, run as a separate process on the worker's core.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

namespace magline::bench {

// Runs `testpmd` for about `seconds` on lcores 0 and `worker_core` and returns its mean Rx-pps,
// the first (start-up) sample left out; 0 when it printed none (not installed, refused).
// `cores` 2: two forwarding lcores, one on CPU 0 (beside testpmd's main lcore, which sleeps
// between its statistics) and one on `worker_core`, each with its own queue.
inline double testpmd_macswap_pps(const std::string& testpmd, unsigned worker_core,
                                  unsigned frame_len, double seconds, unsigned cores = 1) {
  const std::string prefix = "magline-bench-testpmd-" + std::to_string(getpid());
  const std::string w = std::to_string(worker_core);
  const std::string lcores = cores == 2 ? " --lcores 0@0,1@0,2@" + w : " -l 0," + w;
  const std::string queues = cores == 2 ? " --nb-cores=2 --rxq=2 --txq=2" : " --nb-cores=1";
  const std::string cmd = "timeout -s INT " + std::to_string(int(seconds) + 2) + " " + testpmd +
                          lcores +
                          " --no-huge -m 1024 --no-shconf --no-pci --no-telemetry --file-prefix " +
                          prefix + " --vdev net_null0,copy=1,size=" + std::to_string(frame_len) +
                          " -- --forward-mode=macswap --total-num-mbufs=16384 --auto-start"
                          " --stats-period 1" + queues + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  std::vector<double> samples;
  char line[512];
  const std::regex rx(R"(Rx-pps:\s+(\d+))");
  while (std::fgets(line, sizeof line, p)) {
    std::cmatch m;
    if (std::regex_search(line, m, rx)) samples.push_back(std::stod(m[1]));
  }
  pclose(p);
  std::error_code ignored;
  std::filesystem::remove("/var/run/dpdk/" + prefix, ignored);  // empty by now
  if (samples.size() > 2) samples.erase(samples.begin());
  double sum = 0;
  for (double s : samples) sum += s;
  return samples.empty() ? 0 : sum / double(samples.size());
}

}  // namespace magline::bench
