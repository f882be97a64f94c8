#!/usr/bin/env python3
"""Instructions per frame of magline-dpbench's worker, counted by valgrind's callgrind.

Cycles per frame move with the machine (another CPU, another host placement, another minute);
instructions do not: the same binary and path give the same count to a tenth of an instruction,
so a change that removes work shows at once, however noisy the machine. The count is not the
cost (a cache miss or a misprediction is one instruction), so a change is still judged by cycles,
alternating with the build before (docs/performance.md); this tells what the cycles buy.

    perf/instructions.py build-prof/perf/magline-dpbench --only hit-1k [--mode dnat ...]

Prints, per frame of the path asked for: the forwarder (Forwarder::run, inclusive), the
burst's hand-over to the device (Worker::finish_burst: to_mbuf, the TX burst, net_null's frees),
and the whole worker (also the RX burst and the template's copy). Only the path's own measured
job is counted: callgrind collects inside magline-dpbench's measured() alone (not the warm-ups
that open hit-1M's million connections) and cuts its profile after each measured job, so that a
path measured after another (reply-1M and flood-1M after hit-1M) is read from its own part.
Frames are dpbench's own count of that job. Needs valgrind; the binary is best built with
-Ddebug=true (symbols) and the release options, as in docs/performance.md.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def parse_callgrind(path):
    """Returns (total, {callee name: inclusive cost}) of a callgrind output file."""
    names = {}
    total = 0
    costs = {}
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
        if line.startswith("totals:"):
            total = int(line.split()[1])
        if line.startswith("cfn=") and i + 2 < len(lines) and lines[i + 1].startswith("calls="):
            name = names.get(m.group(1), "")
            costs[name] = costs.get(name, 0) + int(lines[i + 2].split()[1])
    return total, costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("dpbench", help="a magline-dpbench binary")
    ap.add_argument("--only", default="hit-1k", help="the dpbench path (default hit-1k)")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="dpbench's measured time under valgrind (default 1)")
    args, extra = ap.parse_known_args()
    if args.only == "hit-1k-2w":
        sys.exit("instructions: hit-1k-2w runs on two cores; ask for hit-1k")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--toggle-collect=magline::bench::measured*",
               "--dump-after=magline::bench::measured(void*)", args.dpbench,
               "--seconds", str(args.seconds), "--testpmd", "none", "--only", args.only] + extra
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        # One part per measured job, numbered in order: the path asked for is measured last
        # (those before it, as hit-1M before reply-1M, are in earlier parts).
        parts = sorted((f for f in os.listdir(tmp) if re.fullmatch(r"callgrind\.out\.\d+", f)),
                       key=lambda f: int(f.rsplit(".", 1)[1]))
        if run.returncode != 0 or not parts:
            sys.stderr.write(run.stdout + run.stderr)
            sys.exit(f"instructions: {' '.join(cmd)} failed")
        total, costs = parse_callgrind(os.path.join(tmp, parts[-1]))
    report = json.loads(next(l for l in run.stdout.splitlines() if l.startswith("{")))
    frames = report["paths"][args.only]["received"]
    fwd = sum(v for k, v in costs.items() if k.startswith("magline::dp::Forwarder::run("))
    finish = sum(v for k, v in costs.items() if "::finish_burst()" in k)
    if frames == 0 or total == 0:
        sys.exit(f"instructions: nothing counted for {args.only} (a build without symbols?)")
    print(f"{args.only} {' '.join(extra)}".strip())
    print(f"  frames                  {frames}")
    print(f"  Forwarder::run          {fwd / frames:8.1f} instructions per frame")
    print(f"  Worker::finish_burst    {finish / frames:8.1f}")
    print(f"  worker, all of it       {total / frames:8.1f}")


if __name__ == "__main__":
    main()
