// What the fuzz targets share: an invariant check that aborts (so libFuzzer keeps the input) with
// the file and line of the invariant.
#pragma once

#include <cstdio>
#include <cstdlib>

// A macro for __FILE__ and __LINE__: clang 14 has no std::source_location with libstdc++.
#define CHECK_INVARIANT(ok, what) ::magline_fuzz::check_invariant((ok), (what), __FILE__, __LINE__)

namespace magline_fuzz {

inline void check_invariant(bool ok, const char* what, const char* file, int line) {
  if (ok) return;
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
  std::abort();
}

}  // namespace magline_fuzz
