#!/usr/bin/env python3
"""config/deploy/systemd/: `systemd-analyze verify` on magline.service with its hugepages drop-in (the
ExecStart binary made the build's, as systemd checks that it exists), with no warning at all;
the tool catches a broken copy (so a pass means something); and the unit's lines this project
relies on: Type=notify with a watchdog, restarts on failure, unlimited locked memory, and
ExecStartPre checking the file ExecStart runs, with arguments `magline` takes.

Usage: systemd_test.py MAGLINE. Exit 0 pass, 1 fail, 77 skipped (no systemd-analyze: Debian's
package `systemd`)."""
import configparser
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SYSTEMD = os.path.join(ROOT, "config", "deploy", "systemd")
INSTALLED = "/usr/local/bin/magline"


def verify(unit_dir):
    """systemd-analyze verify's exit status and the lines it wrote about this unit."""
    env = dict(os.environ, SYSTEMD_UNIT_PATH=unit_dir + ":", SYSTEMD_LOG_LEVEL="notice")
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", "magline.service"],
                       capture_output=True, text=True, timeout=60, cwd=unit_dir, env=env)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines()
             if unit_dir in ln or "magline" in ln]
    return p.returncode, lines


def install(unit_dir, magline, extra=""):
    with open(os.path.join(SYSTEMD, "magline.service")) as f:
        text = f.read()
    assert INSTALLED in text, f"the unit no longer names {INSTALLED}"
    with open(os.path.join(unit_dir, "magline.service"), "w") as f:
        f.write(text.replace(INSTALLED, magline) + extra)
    os.makedirs(os.path.join(unit_dir, "magline.service.d"), exist_ok=True)
    shutil.copy(os.path.join(SYSTEMD, "hugepages.conf"),
                os.path.join(unit_dir, "magline.service.d", "hugepages.conf"))


def main():
    magline = os.path.abspath(sys.argv[1])
    if shutil.which("systemd-analyze") is None:
        print("skipped: no systemd-analyze (Debian package systemd)", file=sys.stderr)
        return SKIP
    problems = []
    with tempfile.TemporaryDirectory(prefix="magline-unit-") as d:
        install(d, magline)
        rc, lines = verify(d)
        if rc != 0 or lines:
            problems.append(f"verify: exit {rc}: " + "\n  ".join(lines))
    with tempfile.TemporaryDirectory(prefix="magline-unit-") as d:
        install(d, magline, "\n[Service]\nWatchdogSecs=5\n")
        rc, lines = verify(d)
        if not any("WatchdogSecs" in ln for ln in lines):
            problems.append(f"verify did not catch a misspelt key (exit {rc}): {lines}")

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(os.path.join(SYSTEMD, "magline.service"))
    s = unit["Service"]
    want = {"Type": "notify", "NotifyAccess": "main", "Restart": "on-failure",
            "LimitMEMLOCK": "infinity"}
    for k, v in want.items():
        if s.get(k) != v:
            problems.append(f"[Service] {k}={s.get(k)}, expected {v}")
    if not s.get("WatchdogSec"):
        problems.append("[Service] has no WatchdogSec (Magline pings while its workers run)")
    start = shlex.split(s["ExecStart"])
    pre = shlex.split(s["ExecStartPre"])
    if start[:2] != [INSTALLED, "run"] or pre[:2] != [INSTALLED, "check"]:
        problems.append(f"ExecStart {start[:2]}, ExecStartPre {pre[:2]}")
    elif start[2:] != pre[2:]:
        problems.append(f"ExecStartPre checks {pre[2:]}, ExecStart runs {start[2:]}")
    p = subprocess.run([magline, *start[1:], "--help"], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        problems.append(f"magline does not take ExecStart's arguments: {p.stderr.strip()}")
    for disabled in ("PrivateDevices", "ProtectClock", "DevicePolicy", "DeviceAllow",
                     "MemoryDenyWriteExecute", "DynamicUser"):
        if s.get(disabled, "no") not in ("no", "false"):
            problems.append(f"{disabled}= is on: left off on purpose (docs/runbook.md, Hardening)")
    if problems:
        print("FAIL:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
