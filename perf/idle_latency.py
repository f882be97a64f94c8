#!/usr/bin/python3
"""What the idle backoff (dataplane.idle_sleep_max_us) costs and saves, on the end-to-end
topology (tests/e2e: namespaces, a bridge, `magline run` on af_packet), as root:

    python3 perf/idle_latency.py --magline build-release/control/magline [--sleep-max 0,50,200]
                                 [--runs 3]

For each setting, alternating, `--runs` times: the worker's CPU use while no traffic flows
(magline's user+system time over 3 s), and the round trip of UDP datagrams through a full-NAT
VIP to a backend's echo server, sent one at a time 20 ms apart (each finds the worker idle: the
backoff's worst case) and back to back (the worker stays busy between them). Prints one table,
min/median/max over the runs. The echo server is Python: its own time is in every figure alike.
"""
import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))

import e2e  # noqa: E402
from topology import (BACKENDS, CLIENT, LOCK_PATH, PYTHON, VIP_UDP,  # noqa: E402
                      build_topology, remove_everything)

CLIENT_SCRIPT = r"""
import socket, sys, time, json
vip, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.connect((vip, 53))
rtts, lost = [], 0
for i in range(n):
    if gap:
        time.sleep(gap)
    t = time.perf_counter_ns()
    s.send(b"x" * 32)
    try:
        s.recv(2048)
        rtts.append((time.perf_counter_ns() - t) / 1000)
    except socket.timeout:
        lost += 1
print(json.dumps({"rtts": rtts, "lost": lost}))
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_rtts(n, gap):
    p = subprocess.run(["ip", "netns", "exec", CLIENT, PYTHON, "-c", CLIENT_SCRIPT, VIP_UDP,
                        str(n), str(gap)], capture_output=True, text=True, timeout=120)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    rtts = sorted(r["rtts"])
    if not rtts:
        raise SystemExit(f"no answer through {VIP_UDP}:53 ({r['lost']} lost)")
    return {"p50": rtts[len(rtts) // 2], "p99": rtts[min(len(rtts) - 1, len(rtts) * 99 // 100)],
            "lost": r["lost"]}


def one_run(binary, workdir, sleep_max):
    m = e2e.Magline(binary, workdir, "af_packet")
    conf = e2e.magline_config([b[2] for b in BACKENDS])
    conf["dataplane"]["idle_sleep_max_us"] = sleep_max
    conf["admin"]["enabled"] = False
    with open(m.config, "w") as f:
        json.dump(conf, f)
    m.start()
    try:
        end = time.monotonic() + 15
        while "magline: forwarding" not in m.stderr():
            m.check_alive()
            if time.monotonic() > end:
                raise SystemExit("magline did not start forwarding:\n" + m.stderr())
            time.sleep(0.05)
        udp_rtts(20, 0)  # neighbours resolved, flows in place
        time.sleep(1)
        c0 = cpu_seconds(m.proc.pid)
        time.sleep(3)
        idle_cpu = (cpu_seconds(m.proc.pid) - c0) / 3
        spaced = udp_rtts(200, 0.02)
        back_to_back = udp_rtts(2000, 0)
    finally:
        m.stop(timeout=5)
    return {"idle_cpu": idle_cpu, "spaced": spaced, "b2b": back_to_back}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--magline", required=True)
    ap.add_argument("--sleep-max", default="0,50,200",
                    help="idle_sleep_max_us values to compare (comma-separated)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("idle_latency.py: needs root (namespaces)")
    settings = [int(x) for x in a.sleep_max.split(",")]
    lock = open(LOCK_PATH, "w")  # the e2e suite's topology has the same names: wait for it
    fcntl.flock(lock, fcntl.LOCK_EX)
    remove_everything()
    workdir = tempfile.mkdtemp(prefix="mle2e-idle-")
    agents = []
    results = {s: [] for s in settings}
    try:
        build_topology()
        for ns, name, _, _ in BACKENDS:
            agents.append(e2e.Agent(ns, ["serve", name], workdir, f"server-{name}"))
        for agent in agents:
            if agent.readline(10) != "ready":
                raise SystemExit("a backend did not start")
        for run in range(a.runs):
            for s in settings:
                r = one_run(a.magline, workdir, s)
                results[s].append(r)
                print(f"run {run + 1} idle_sleep_max_us={s}: {json.dumps(r)}", flush=True)
    finally:
        for agent in agents:
            agent.stop()
        remove_everything()

    def mmm(values, fmt):
        v = sorted(values)
        return "/".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))

    print(f"\nmin/median/max of {a.runs} runs; round trips in microseconds (UDP 32 B, full-NAT,"
          " Python echo server)")
    print(f"{'idle_sleep_max_us':>18} {'idle CPU (cores)':>18} {'spaced p50':>18} "
          f"{'spaced p99':>18} {'b2b p50':>16} {'b2b p99':>16}")
    for s in settings:
        r = results[s]
        print(f"{s:>18} {mmm([x['idle_cpu'] for x in r], '{:.2f}'):>18} "
              f"{mmm([x['spaced']['p50'] for x in r], '{:.0f}'):>18} "
              f"{mmm([x['spaced']['p99'] for x in r], '{:.0f}'):>18} "
              f"{mmm([x['b2b']['p50'] for x in r], '{:.0f}'):>16} "
              f"{mmm([x['b2b']['p99'] for x in r], '{:.0f}'):>16}")
        lost = sum(x["spaced"]["lost"] + x["b2b"]["lost"] for x in r)
        if lost:
            print(f"{'':>18} {lost} datagrams lost")


if __name__ == "__main__":
    main()
