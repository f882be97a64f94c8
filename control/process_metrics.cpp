#include "control/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace magline::control {

Result<ProcessStats> parse_proc_stat(std::string_view stat, uint64_t boot_time_s,
                                     uint64_t ticks_per_second, uint64_t page_size) {
  // The command name (field 2) is in parentheses and may hold spaces and ')': the fields
  // after it start after the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second == 0) {
    return Error{"/proc/self/stat: no command name"};
  }
  std::vector<std::string_view> fields;  // fields[0] is field 3, the state
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  auto field = [&](size_t n, uint64_t& out) {  // proc(5)'s 1-based field number
    if (n < 3 || n - 3 >= fields.size()) return false;
    const std::string_view f = fields[n - 3];
    return std::from_chars(f.data(), f.data() + f.size(), out).ec == std::errc{};
  };
  uint64_t utime, stime, starttime, vsize, rss;
  if (!field(14, utime) || !field(15, stime) || !field(22, starttime) || !field(23, vsize) ||
      !field(24, rss)) {
    return Error{"/proc/self/stat: fewer than 24 numeric fields"};
  }
  ProcessStats p;
  p.cpu_seconds = double(utime + stime) / double(ticks_per_second);
  p.virtual_bytes = vsize;
  p.resident_bytes = rss * page_size;
  p.start_time_seconds = double(boot_time_s) + double(starttime) / double(ticks_per_second);
  return p;
}

namespace {

std::string read_all(const char* path) {
  std::ifstream f(path);
  std::ostringstream o;
  o << f.rdbuf();
  return o.str();
}

uint64_t boot_time() {
  std::istringstream in(read_all("/proc/stat"));
  std::string key;
  uint64_t v = 0;
  while (in >> key) {
    if (key == "btime" && in >> v) return v;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

uint64_t open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n > 0 ? n - 1 : 0;  // less the directory's own, open while it is read
}

}  // namespace

Result<ProcessStats> read_process_stats() {
  const std::string stat = read_all("/proc/self/stat");
  auto p = parse_proc_stat(stat, boot_time(), uint64_t(::sysconf(_SC_CLK_TCK)),
                           uint64_t(::sysconf(_SC_PAGESIZE)));
  if (!p) return p;
  p->open_fds = open_fds();
  rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p->max_fds = uint64_t(lim.rlim_cur);
  return p;
}

void process_metrics(Exposition& e, const ProcessStats& p) {
  e.sample("process_cpu_seconds_total", MetricType::counter,
           "Total user and system CPU time spent in seconds.", "", p.cpu_seconds);
  e.sample("process_resident_memory_bytes", MetricType::gauge, "Resident memory size in bytes.", "",
           p.resident_bytes);
  e.sample("process_virtual_memory_bytes", MetricType::gauge, "Virtual memory size in bytes.", "",
           p.virtual_bytes);
  e.sample("process_open_fds", MetricType::gauge, "Number of open file descriptors.", "",
           p.open_fds);
  e.sample("process_max_fds", MetricType::gauge, "Maximum number of open file descriptors.", "",
           p.max_fds);
  e.sample("process_start_time_seconds", MetricType::gauge,
           "Start time of the process since unix epoch in seconds.", "", p.start_time_seconds);
}

}  // namespace magline::control
