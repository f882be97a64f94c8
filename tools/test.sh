#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds with warnings fatal,
# runs the suites of the binary as shipped (cli, deploy, bench) and the packet tables in the
# optimised build and the core's suites (unit, packet, integration on DPDK virtual devices)
# unoptimised under AddressSanitizer and UndefinedBehaviorSanitizer, runs the lock-free
# publication tests under ThreadSanitizer, fuzzes every input from outside (frames, watch
# streams, configuration and kubeconfig files, replay captures) for 60 s in all, runs the
# end-to-end tests (network namespaces, real TCP, needs root), and ends with the line
# "N passed, N failed, N skipped". Each build compiles only what its suites need
# (tools/suite_targets.py): between them every source is compiled, with warnings fatal.
#
#   tools/test.sh            everything
#   FAST=1 tools/test.sh     every suite in the normal build only (no sanitizers, no fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tools/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc)
results=()   # junit files to count
extra_pass=0
extra_fail=0

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }

setup() {  # dir, meson options...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

run_meson_tests() {  # build dir, meson test args...
  local dir=$1; shift
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "$@"
  results+=("$dir/meson-logs/testlog.junit.xml")
}

# Builds what the tests of the given suites need, then runs them: build dir, suites...
build_and_run() {
  local dir=$1; shift
  local targets suite_args=()
  for s in "$@"; do suite_args+=(--suite "$s"); done
  if targets=$(python3 tools/suite_targets.py "$dir" "$@") &&
     ninja -C "$dir" -j "$jobs" $targets; then
    run_meson_tests "$dir" --no-rebuild "${suite_args[@]}"
  else
    extra_fail=$((extra_fail + 1))
  fi
}

if [ -n "${FAST:-}" ]; then
  step "build (warnings are errors) and every suite"
  if setup build-ci -Dwerror=true -Dbuildtype=debugoptimized && ninja -C build-ci -j "$jobs"; then
    run_meson_tests build-ci
  else
    extra_fail=$((extra_fail + 1))
  fi
else
  step "the binary as shipped, optimised (warnings are errors): cli, deploy, bench, packet"
  if setup build-ci -Dwerror=true -Dbuildtype=debugoptimized; then
    build_and_run build-ci cli deploy bench packet
  else
    extra_fail=$((extra_fail + 1))
  fi

  # Unoptimised: the sanitizers find as much at -O0, and the build takes a fifth of the time
  # (packet tests' long functions of packet builders are slow to optimise under ASan).
  step "the core's suites under ASan + UBSan (-O0): unit, packet, integration"
  if setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dperf=false \
       -Dbuildtype=debug
  then
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build_and_run build-asan \
      unit packet integration
  else
    extra_fail=$((extra_fail + 1))
  fi

  step "publication (rings, QSBR) and the node prober under ThreadSanitizer"
  if setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dperf=false &&
     ninja -C build-tsan -j "$jobs" tests/integration/concurrency_test \
       tests/integration/node_prober_test; then
    run_meson_tests build-tsan --no-rebuild concurrency node_prober
  else
    extra_fail=$((extra_fail + 1))
  fi

  step "fuzzing every input from outside (libFuzzer: frames 20 s, the others 10 s each)"
  declare -A fuzz_seconds=([parse]=20 [watch]=10 [config]=10 [kubeconfig]=10 [replay]=10)
  if CXX=clang++ setup build-fuzz -Dfuzz=true -Dperf=false -Dwerror=true &&
     ninja -C build-fuzz -j "$jobs" tests/fuzz/parse_fuzz tests/fuzz/watch_fuzz \
       tests/fuzz/config_fuzz tests/fuzz/kubeconfig_fuzz tests/fuzz/replay_fuzz; then
    for target in parse watch config kubeconfig replay; do
      work=$(mktemp -d)
      cp -r "tests/fuzz/corpus/$target/." "$work/"
      log=build-fuzz/fuzz-$target.log
      if build-fuzz/tests/fuzz/${target}_fuzz -max_total_time="${fuzz_seconds[$target]}" \
           -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" "$work" > "$log" 2>&1; then
        extra_pass=$((extra_pass + 1))
        echo "$target: $(grep -E 'stat::number_of_executed_units' "$log")"
      else
        extra_fail=$((extra_fail + 1))
        echo "$target: FAILED"
        tail -n 40 "$log"
      fi
      rm -rf "$work"
    done
  else
    extra_fail=$((extra_fail + 1))
  fi

  if [ "$(id -u)" -eq 0 ] && [ -f tests/e2e/e2e.py ]; then
    step "end to end (namespaces, veths, real TCP)"
    /usr/bin/python3 tests/e2e/e2e.py --magline build-ci/control/magline --junit build-ci/e2e.xml
    results+=("build-ci/e2e.xml")
    # IPv4 fragments reach Magline as they are only through net_pcap (af_packet reassembles).
    step "end to end on net_pcap: fragments through every NAT and DSR mode, IPv4 too"
    /usr/bin/python3 tests/e2e/e2e.py --magline build-ci/control/magline --pmd pcap \
      --only udp_fragments --junit build-ci/e2e-pcap.xml
    results+=("build-ci/e2e-pcap.xml")
  fi
fi

step "summary"
python3 tools/test_summary.py --extra-pass "$extra_pass" --extra-fail "$extra_fail" "${results[@]}"
