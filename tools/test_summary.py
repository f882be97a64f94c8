#!/usr/bin/env python3
"""Counts test cases in meson's JUnit logs (one case per GoogleTest test, one per plain test)
and prints the final line of tools/test.sh: "N passed, N failed, N skipped". Exit status 1 when
anything failed."""
import argparse
import sys
import xml.etree.ElementTree as ET


def count(path):
    passed = failed = skipped = 0
    failures = []
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failures.append(f"{case.get('classname')}.{case.get('name')}")
        else:
            passed += 1
    return passed, failed, skipped, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra-pass", type=int, default=0)
    ap.add_argument("--extra-fail", type=int, default=0)
    ap.add_argument("logs", nargs="*")
    args = ap.parse_args()
    passed, failed, skipped = args.extra_pass, args.extra_fail, 0
    for log in args.logs:
        try:
            p, f, s, failures = count(log)
        except (OSError, ET.ParseError) as e:
            print(f"cannot read {log}: {e}")
            failed += 1
            continue
        passed, failed, skipped = passed + p, failed + f, skipped + s
        for name in failures:
            print(f"FAILED: {name} ({log})")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
