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

With --by-line N it also prints the N source lines that cost the forwarder most per frame,
each with the calls it was inlined through (--depth of them, innermost first; a negative depth
names the outermost instead, the burst's stages): callgrind's cost per instruction
(--dump-instr=yes) laid over objdump's inlining chains (--inlines) of Forwarder::run_frames and
Forwarder::open, the two functions the whole packet path is inlined into.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def parse_callgrind(path):
    """Returns (total, {callee name: inclusive cost}, {(function, address): self cost}) of a
    callgrind output file; addresses only when it was written with --dump-instr=yes."""
    names = {}
    total = 0
    costs = {}
    by_addr = {}
    npos = 1  # "positions: line", or "instr line" with --dump-instr=yes
    fn = ""
    last = [0, 0]
    skip_next = False
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("positions:"):
            npos = len(line.split()) - 1
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
        if m and line.startswith("fn="):
            fn = names.get(m.group(1), "")
        if line.startswith("totals:"):
            total = int(line.split()[1])
        if line.startswith("cfn=") and i + 2 < len(lines) and lines[i + 1].startswith("calls="):
            name = names.get(m.group(1), "")
            costs[name] = costs.get(name, 0) + int(lines[i + 2].split()[npos])
        if line.startswith("calls="):
            skip_next = True  # the call's inclusive cost: not the caller's own
            continue
        if npos == 2 and line and line[0] in "0123456789+-*":
            fields = line.split()
            for k in range(2):  # positions are absolute, relative (+n, -n) or the same (*)
                f = fields[k]
                last[k] = last[k] if f == "*" else last[k] + int(f, 0) if f[0] in "+-" \
                    else int(f, 0)
            if skip_next:
                skip_next = False
            elif len(fields) > 2:
                by_addr[(fn, last[0])] = by_addr.get((fn, last[0]), 0) + int(fields[2])
    return total, costs, by_addr


def inlining_chains(binary, function):
    """{address: (innermost file:line, the lines it was inlined through, ...)} of one function,
    from objdump --inlines."""
    out = subprocess.run(["objdump", "-d", "-l", "--inlines", "--no-show-raw-insn", "-C",
                          f"--disassemble={function}", binary],
                         capture_output=True, text=True, check=False).stdout
    chains = {}
    inner, outer, after_insn = "?", [], True
    for line in out.split("\n"):
        m = re.match(r"^\s+([0-9a-f]+):\s", line)
        if m:
            chains[int(m.group(1), 16)] = tuple([inner] + outer)
            after_insn = True
            continue
        text = re.sub(r"^\S*?/\.\./", "", line.strip())
        if line.startswith("/"):
            inner, outer, after_insn = text.split(" ")[0], [], False
        elif text.startswith("inlined by"):
            if after_insn:
                outer = []  # a new chain; the innermost line is the previous one's
            outer.append(re.sub(r"^\S*?/\.\./", "", text.split(" ")[2]))
            after_insn = False
    return chains


def print_by_line(binary, by_addr, frames, top, depth):
    per_chain = {}
    for function in {f for f, _ in by_addr if "Forwarder::run_frames(" in f
                     or "Forwarder::open(" in f}:
        chains = inlining_chains(binary, function)
        for (f, addr), cost in by_addr.items():
            if f != function:
                continue
            chain = chains.get(addr, ("?",))
            key = " <- ".join(chain[:depth] if depth > 0 else chain[depth:])
            per_chain[key] = per_chain.get(key, 0) + cost
    print(f"  by source line (instructions per frame, {'innermost' if depth > 0 else 'outermost'}"
          f" {abs(depth)} of each inlining chain):")
    for key, cost in sorted(per_chain.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {cost / frames:8.1f}  {key}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("dpbench", help="a magline-dpbench binary")
    ap.add_argument("--only", default="hit-1k", help="the dpbench path (default hit-1k)")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="dpbench's measured time under valgrind (default 1)")
    ap.add_argument("--by-line", type=int, default=0, metavar="N",
                    help="also the N costliest source lines of the forwarder (default: none)")
    ap.add_argument("--depth", type=int, default=2,
                    help="--by-line: inlining levels shown, innermost first; negative: "
                         "outermost (default 2)")
    args, extra = ap.parse_known_args()
    if args.only == "hit-1k-2w":
        sys.exit("instructions: hit-1k-2w runs on two cores; ask for hit-1k")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--toggle-collect=magline::bench::measured*",
               "--dump-after=magline::bench::measured(void*)"] + \
              (["--dump-instr=yes"] if args.by_line > 0 else []) + [args.dpbench,
               "--seconds", str(args.seconds), "--testpmd", "none", "--only", args.only] + extra
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        # One part per measured job, numbered in order: the path asked for is measured last
        # (those before it, as hit-1M before reply-1M, are in earlier parts).
        parts = sorted((f for f in os.listdir(tmp) if re.fullmatch(r"callgrind\.out\.\d+", f)),
                       key=lambda f: int(f.rsplit(".", 1)[1]))
        if run.returncode != 0 or not parts:
            sys.stderr.write(run.stdout + run.stderr)
            sys.exit(f"instructions: {' '.join(cmd)} failed")
        total, costs, by_addr = parse_callgrind(os.path.join(tmp, parts[-1]))
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
    if args.by_line > 0:
        print_by_line(args.dpbench, by_addr, frames, args.by_line, args.depth)


if __name__ == "__main__":
    main()
