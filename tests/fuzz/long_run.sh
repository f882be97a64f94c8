#!/bin/bash
# The long fuzzing run of issue 17: each target from its committed corpus for 10 million
# executions or an hour, whichever comes first, under ASan and UBSan (build-fuzz is built with
# both). Not part of CI (CI fuzzes each target for seconds); the figures go to docs/testing.md.
#
#   tests/fuzz/long_run.sh [BUILD_DIR] [TARGET...]     (default: build-fuzz, every target)
#
# Prints one line per target: executions, seconds, executions per second, crashes. Exits 1 when
# any target crashed (its input is left as BUILD_DIR/long-<target>-crash-*), 2 on a usage error.
set -u
build=${1:-build-fuzz}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(parse watch config kubeconfig replay)
runs=${FUZZ_RUNS:-10000000}
seconds=${FUZZ_SECONDS:-3600}
status=0
for target in "${targets[@]}"; do
  bin="$build/tests/fuzz/${target}_fuzz"
  if [ ! -x "$bin" ]; then
    echo "long_run.sh: $bin: not built (CXX=clang++ meson setup $build -Dfuzz=true)" >&2
    exit 2
  fi
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$target/." "$work/"
  log="$build/long-$target.log"
  start=$(date +%s)
  "$bin" -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$build/long-$target-" "$work" > "$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(ls "$build/long-$target-"crash-* "$build/long-$target-"leak-* \
                "$build/long-$target-"timeout-* "$build/long-$target-"oom-* 2>/dev/null | wc -l)
  echo "$target: ${execs:-?} executions in ${took} s ($(( ${execs:-0} / (took > 0 ? took : 1) ))/s)," \
       "exit $rc, $crashes crash/leak/timeout/oom inputs"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    tail -n 30 "$log"
  fi
  rm -rf "$work"
done
exit $status
