// Fuzz target for the configuration loader (config/config.hpp): arbitrary text as a
// configuration file. Beyond "no crash, no sanitizer report" (every bad input must come back
// as an error naming a field, never an exception or an abort):
//   - an error is one line that starts with the source's name;
//   - a configuration that loads is stable: loading it again gives the same services and node,
//     and a reload of it onto itself needs no restart;
//   - its services are well formed: a table size, frontends, names unique.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace magline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = cfg::parse_config(text, "fuzz.json");
  if (!config) {
    const std::string& e = config.error().message;
    CHECK_INVARIANT(e.rfind("fuzz.json", 0) == 0, "an error names the source first");
    CHECK_INVARIANT(e.find('\n') == std::string::npos, "an error is one line");
    return 0;
  }
  const std::vector<dp::Service> services = cfg::services_of(*config);
  std::set<std::string> names;
  for (const dp::Service& s : services) {
    CHECK_INVARIANT(names.insert(s.name).second, "service names unique");
    CHECK_INVARIANT(s.table_size > 0, "a table size resolved");
  }
  auto again = cfg::parse_config(text, "fuzz.json");
  CHECK_INVARIANT(again.ok(), "a configuration that loads loads again");
  CHECK_INVARIANT(cfg::services_of(*again) == services, "the same services again");
  const cfg::Reload reload = cfg::reload_of(*config, std::move(again).value());
  CHECK_INVARIANT(reload.needs_restart.empty(), "a reload onto itself needs no restart");
  (void)cfg::node_of(*config);
  return 0;
}
