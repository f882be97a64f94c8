#!/usr/bin/env python3
"""Prints the ninja targets that the tests of the given suites need in a configured meson build
directory (meson introspect: each test's `depends`), one per line, so that tools/test.sh builds
in each configuration only what it runs there.

    tools/suite_targets.py BUILD_DIR SUITE...      e.g. build-asan unit packet integration

Exits 2 on a usage error, 1 when a suite has no test (a misspelt suite builds nothing)."""
import json
import os
import subprocess
import sys


def introspect(build, what):
    out = subprocess.run(["meson", "introspect", what, build], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    build = argv[1]
    suites = argv[2:]
    tests = introspect(build, "--tests")
    targets = {t["id"]: t for t in introspect(build, "--targets")}

    def in_suite(test, suite):
        return any(s == suite or s.split(":")[-1].split("+").count(suite) for s in test["suite"])

    wanted, missing = set(), []
    for suite in suites:
        chosen = [t for t in tests if in_suite(t, suite)]
        if not chosen:
            missing.append(suite)
        for t in chosen:
            wanted.update(t["depends"])
    if missing:
        print(f"suite_targets.py: no test in suite(s) {', '.join(missing)}", file=sys.stderr)
        return 1
    build_abs = os.path.realpath(build)
    for tid in sorted(wanted):
        target = targets.get(tid)
        if target is None:  # a custom target or a file, not built by name
            continue
        for f in target["filename"]:
            print(os.path.relpath(f, build_abs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
