#!/bin/bash
# Magline's Maglev build against Katran's, same compiler, same flags, same run (issue 19).
# Usage: perf/maglev_vs_katran.sh KATRAN_CHECKOUT [REPS] [CXXFLAGS]
#   KATRAN_CHECKOUT  a clone of github.com/facebookincubator/katran (measured at 19f08fec)
#   REPS             builds per case, alternating (default 15); the medians are compared
#   CXXFLAGS         default "-O2" (what Katran's CMake release build uses)
# Katran's lib/MaglevBase.cpp, MaglevHash.cpp and MurmurHash3.cpp are compiled in a scratch
# folder outside this repository. Exit status 1 when the goal (<= 0.5x at M = 65537 and
# 655373, N = 1000) is missed.
set -euo pipefail
usage="usage: perf/maglev_vs_katran.sh KATRAN_CHECKOUT [REPS] [CXXFLAGS]"
case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
  ""|-*) echo "$usage" >&2; exit 2 ;;
esac
katran=$1
reps=${2:-15}
flags=${3:--O2}
here=$(cd "$(dirname "$0")/.." && pwd)
for f in MaglevBase.cpp MaglevHash.cpp MurmurHash3.cpp; do
  [ -f "$katran/katran/lib/$f" ] || { echo "$katran/katran/lib/$f: not found" >&2; exit 2; }
done
scratch=$(mktemp -d /tmp/maglev-vs-katran.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
${CXX:-g++} -std=c++20 $flags -I "$here" -I "$katran" -o "$scratch/bench" \
  "$here/perf/maglev_vs_katran.cpp" "$here/dataplane/maglev.cpp" \
  "$katran/katran/lib/MaglevBase.cpp" "$katran/katran/lib/MaglevHash.cpp" \
  "$katran/katran/lib/MurmurHash3.cpp"
echo "compiler: $(${CXX:-g++} --version | head -1); flags: $flags"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); katran: $(git -C "$katran" rev-parse --short HEAD 2>/dev/null || echo '?')"
"$scratch/bench" "$reps"
