#!/usr/bin/python3
"""End-to-end test of Magline on real kernel traffic (see tests/e2e/README.md).

Builds a topology of network namespaces around a Linux bridge, runs `magline run` on an
af_packet port in the root namespace, and drives real TCP and UDP clients and servers through
it. Standard library only; run as root with Debian's /usr/bin/python3:

    python3 tests/e2e/e2e.py --magline build/control/magline [--junit FILE] [--keep]
                             [--capture] [--pmd af_packet|pcap] [--cleanup]

Every name it creates starts with "mle2e-"; leftovers of a crashed run are removed first.
Addresses are only from 198.18.0.0/15 and 2001:db8::/32, inside namespaces it created.

This file is the run (setup, the order of the cases, teardown, the report); the cases are in
cases_static.py (Magline's own configuration) and cases_k8s.py (Services from the fake API
server), the process wrappers and clients in harness.py, the topology in topology.py.
"""
import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

from topology import (  # names, addresses, command helpers, cleanup
    BACKENDS, BRIDGE, CLIENT, CLIENT2, DECAP, FABRIC, FAR_BACKENDS, Fail, Interrupted, LB_V4,
    LOCK_PATH, NAMESPACES,
    NODE_PORT, PREFIX, VIP_DNAT, VIP_DSR, VIP_HTTP, VIP_HTTP6, build_topology, leftovers, log,
    nsx, our_dpdk_files, remove_everything, run,
)
import k8s
from dpdk_capture import Hugepages
from harness import (  # the process wrappers, clients, /metrics
    CAPTURE_PAGES, DEVICES, Agent, Magline, SkipCase, curl, http_series, start_run_clock, tail,
)
from cases_bgp import BgpCases
from cases_k8s import K8sCases
from cases_defence import DefenceCases
from cases_nodes import NodeCases
from cases_static import StaticCases


# --- test cases ------------------------------------------------------------------------------


class Suite(StaticCases, DefenceCases, K8sCases, NodeCases, BgpCases):
    def __init__(self, args):
        self.args = args
        self.results = []  # (name, seconds, failure or None, skipped reason or None, output)
        self.workdir = None
        self.magline = None
        self.nodes = []  # other nodes' Maglines (cases_nodes.py)
        self.birds = []  # BIRD daemons (cases_nodes.py)
        self.agents = []
        self.tcpdump = None
        self.api = None
        self.setup_error = None
        self.hugepages = None  # reserved for capture_on_demand, given back at teardown
        self.dpdk_left = []  # hugepage and runtime files Magline left when it stopped

    def case(self, name, fn, needs_setup=True):
        t0 = time.monotonic()
        out = []
        failure = None
        if needs_setup and self.setup_error:
            failure = f"setup failed: {self.setup_error}"
        else:
            try:
                fn(out)
            except Fail as e:
                failure = str(e)
            except SkipCase as e:
                self.skip(name, str(e))
                return
            except (KeyboardInterrupt, Interrupted) as e:
                why = "Ctrl-C" if isinstance(e, KeyboardInterrupt) else str(e)
                self.results.append((name, time.monotonic() - t0, f"interrupted ({why})",
                                     None, "\n".join(out)))
                log(f"FAIL {name}: interrupted ({why})")
                raise
            except Exception:
                failure = "error in the test itself:\n" + traceback.format_exc()
        dt = time.monotonic() - t0
        self.results.append((name, dt, failure, None, "\n".join(out)))
        status = "FAIL" if failure else "ok"
        log(f"{status:4} {name} ({dt:.1f} s)")
        for line in out:
            log(f"       {line}")
        if failure and needs_setup and self.setup_error:
            log("       | setup failed (see above)")
        elif failure:
            for line in failure.splitlines():
                log(f"       | {line}")

    def skip(self, name, why):
        self.results.append((name, 0.0, None, why, ""))
        log(f"skip {name}: {why}")

    # -- setup

    def setup(self):
        self.workdir = tempfile.mkdtemp(prefix=PREFIX)
        log(f"work directory {self.workdir}")
        t0 = time.monotonic()
        build_topology()
        log(f"topology up ({time.monotonic() - t0:.1f} s)")
        for ns, name, _, _ in BACKENDS:
            stay = ["--stay"] if self.args.keep else []
            self.agents.append(Agent(ns, ["serve", name] + stay, self.workdir, f"server-{name}"))
        # The far backends: a server and a tunnel endpoint each (decap.py: no ipip or fou in
        # this kernel).
        for ns, name, _, _ in FAR_BACKENDS:
            stay = ["--stay"] if self.args.keep else []
            self.agents.append(Agent(ns, ["serve", name] + stay, self.workdir, f"server-{name}"))
            stats = os.path.join(self.workdir, f"decap-{name}.json")
            self.agents.append(Agent(ns, ["--tun", PREFIX + "tun", "--stats", stats],
                                     self.workdir, f"decap-{name}", script=DECAP))
        names = [b[1] for b in BACKENDS] + [n for b in FAR_BACKENDS for n in (b[1], "decap")]
        for a, name in zip(self.agents, names):
            if a.readline(10) != "ready":
                raise Fail(f"{name} did not start: {tail(a.stderr())}")
        if self.args.capture:
            pcap = os.path.join(self.workdir, "bridge.pcap")
            self.tcpdump = subprocess.Popen(
                nsx(FABRIC, "tcpdump", "-ni", BRIDGE, "-U", "-s", "256", "-w", pcap),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(0.5)
        if not self.args.demo:
            self.api = k8s.FakeApi(self.workdir)
            log(f"fake Kubernetes API server on 127.0.0.1:{self.api.port}")
        if not self.args.demo and shutil.which("dpdk-dumpcap"):
            self.hugepages = Hugepages(CAPTURE_PAGES)
            if not self.hugepages.ok:
                log("no hugepages: Magline runs without capture (capture_on_demand skipped)")
        self.magline = Magline(self.args.magline, self.workdir, self.args.pmd,
                               embedded=self.args.demo,
                               kubeconfig=self.api.kubeconfig if self.api else None,
                               capture=bool(self.hugepages and self.hugepages.ok))
        self.magline.write_config([b[2] for b in BACKENDS])
        self.magline.start()
        t0 = time.monotonic()
        end = t0 + 15
        while time.monotonic() < end and "magline: forwarding" not in self.magline.stderr():
            self.magline.check_alive()
            time.sleep(0.05)
        if "magline: forwarding" not in self.magline.stderr():
            raise Fail(f"magline did not report forwarding within 15 s:\n"
                       f"{tail(self.magline.stderr())}")
        # Forwarding for real: the first request through the VIP (bounded retries; the first
        # ones wait for ARP on both sides).
        last = ""
        for _ in range(15):
            self.magline.check_alive()
            body, last = curl(CLIENT, f"http://{VIP_HTTP}/", max_time=1)
            if body is not None:
                break
        else:
            raise Fail(f"no HTTP answer through {VIP_HTTP}:80 after 15 tries ({last});"
                       f" magline stderr:\n{tail(self.magline.stderr())}")
        log(f"magline forwarding ({time.monotonic() - t0:.1f} s after start)")


    def counters(self, out):
        rc, dt = self.magline.stop(timeout=5)
        stdout, stderr = self.magline.stdout(), self.magline.stderr()
        out.append(f"magline exited with {rc} after {dt:.2f} s")
        if rc is None:
            raise Fail(f"magline still running 5 s after SIGTERM (killed); stderr:\n"
                       f"{tail(stderr)}")
        problems = []
        if rc != 0:
            problems.append(f"exit status {rc}; stderr:\n{tail(stderr)}")
        try:
            final = json.loads(stdout[stdout.index("{"):])
        except ValueError as e:
            raise Fail(f"no final JSON on stdout ({e}):\n{tail(stdout)}\n" + "\n".join(problems))
        total = final.get("total", {})
        out.append("total: " + ", ".join(
            f"{k}={total.get(k)}" for k in ("rx_packets", "tx_packets", "new_connections",
                                           "replies", "to_slow_path", "rejected")))
        out.append(f"drops: {total.get('drops')}")
        out.append(f"slow_path: {final.get('slow_path')}")
        out.append(f"control: {final.get('control')}")
        other = [line for line in stderr.splitlines()
                 if not line.startswith(("magline: forwarding", "magline: reloaded"))]
        if other:
            out.append("other stderr lines: " + " | ".join(other[:10]))
        for key in ("rx_packets", "tx_packets", "new_connections", "replies"):
            if not isinstance(total.get(key), int) or total[key] <= 0:
                problems.append(f"total.{key} is {total.get(key)!r}, expected > 0")
        # The worker sleeps when idle (idle_sleep_max_us): between the cases it was.
        worker = (final.get("workers") or [{}])[0]
        out.append(f"worker 0: {worker.get('idle_sleeps')} idle sleeps, "
                   f"{worker.get('idle_slept_us', 0) / 1e6:.1f} s asleep")
        if not worker.get("idle_sleeps") or not worker.get("idle_slept_us"):
            problems.append(f"worker 0 never slept idle: idle_sleeps "
                            f"{worker.get('idle_sleeps')!r}, idle_slept_us "
                            f"{worker.get('idle_slept_us')!r}")
        control = final.get("control", {})
        if control.get("reloads") != self.magline.reloads_sent:
            problems.append(f"control.reloads is {control.get('reloads')}, but "
                            f"{self.magline.reloads_sent} SIGHUPs were sent")
        if control.get("reloads_refused"):
            problems.append(f"{control['reloads_refused']} reloads refused")
        try:
            with open(self.magline.stats) as f:
                stats = json.load(f)
            if stats != final:
                problems.append("the stats file differs from the JSON printed on stdout")
        except (OSError, ValueError) as e:
            problems.append(f"stats file {self.magline.stats}: {e}")
        if problems:
            raise Fail("\n".join(problems))

    def cleanup_case(self, out):
        self.teardown()
        problems = leftovers()
        if self.dpdk_left:
            problems.append("Magline left DPDK files: " + ", ".join(self.dpdk_left[:5]))
        if problems:
            raise Fail("left behind: " + "; ".join(problems))
        out.append("no mle2e- namespace, link or process left")

    # -- teardown

    def teardown(self):
        t0 = time.monotonic()
        if self.magline and self.magline.alive():
            rc, dt = self.magline.stop(timeout=3)
            log(f"stopped magline: exit {rc} after {dt:.1f} s")
            self.dpdk_left = our_dpdk_files()  # Magline removes its own when it stops
        self.stop_birds()
        for node in self.nodes:  # a case that failed half way
            node.stop(timeout=3)
        self.nodes = []
        for a in self.agents:
            try:
                a.stop()
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.agents = []
        if self.api:
            self.api.stop()
            self.api = None
        if self.tcpdump and self.tcpdump.poll() is None:
            self.tcpdump.terminate()
            try:
                self.tcpdump.wait(3)
            except subprocess.TimeoutExpired:
                self.tcpdump.kill()
        remove_everything()
        if self.hugepages:
            self.hugepages.give_back()
            self.hugepages = None
        if time.monotonic() - t0 > 2:
            log(f"teardown took {time.monotonic() - t0:.1f} s")

    def demo(self):
        """README's first command: real clients through Magline on its embedded default."""
        try:
            self.setup()
            log("Magline is running on its embedded default configuration (magline run).")
            tally = {}
            for label, ns, url, n in [
                ("full-NAT, IPv4 VIP", CLIENT, f"http://{VIP_HTTP}/", 60),
                ("full-NAT, IPv6 VIP", CLIENT, f"http://[{VIP_HTTP6}]/", 30),
                ("NodePort", CLIENT, f"http://{LB_V4}:{NODE_PORT}/", 15),
                ("DNAT (client address kept)", CLIENT2, f"http://{VIP_DNAT}/", 15),
                ("L2 DSR (replies bypass Magline)", CLIENT, f"http://{VIP_DSR}/", 15),
            ]:
                answers, errors = http_series(ns, url, n)
                seen = {}
                for a in answers:
                    seen[a.get("backend")] = seen.get(a.get("backend"), 0) + 1
                    tally[a.get("backend")] = tally.get(a.get("backend"), 0) + 1
                log(f"{label:34} {url:28} {len(answers):3}/{n} answered, by backend: "
                    f"{dict(sorted(seen.items()))}")
                for e in errors[:3]:
                    log(f"    {e}")
            log("Magline's own per-backend counters (admin listener, /metrics):")
            metrics = run(["curl", "-s", "--max-time", "3", "http://127.0.0.1:9100/metrics"],
                          check=False).stdout
            for line in metrics.splitlines():
                if line.startswith("magline_backend_packets_total{service=\"demo/web:http\""):
                    log("    " + line)
            for line in metrics.splitlines():
                if line.startswith(("magline_new_connections_total", "magline_replies_total",
                                    "magline_flow_table_entries")):
                    log("    " + line)
            self.magline.proc.send_signal(signal.SIGTERM)
            self.magline.proc.wait(timeout=10)
            totals = json.loads(self.magline.stdout())["total"]
            log(f"Magline stopped: {totals['rx_packets']} frames in, {totals['tx_packets']} out, "
                f"{totals['new_connections']} connections, drops {totals['drops']}")
            return 0 if tally else 1
        finally:
            self.teardown()
            log("cleaned up: " + ("nothing left" if not leftovers() else "; ".join(leftovers())))

    def run(self):
        cases = [
            ("http_v4_vip", self.http_v4_vip),
            ("http_v6_vip", self.http_v6_vip),
            ("nodeport", self.nodeport),
            ("udp_echo", self.udp_echo),
            ("udp_fragments", self.udp_fragments),
            ("ping_vip", self.ping_vip),
            ("dnat", self.dnat),
            ("dsr", self.dsr),
            ("encapsulation_ipip_gue", self.encapsulation),
            ("nat_path_mtu", self.nat_path_mtu),
            ("new_connection_limit", self.new_connection_limit),
            ("syn_proxy", self.syn_proxy),
            ("syn_flood_spares_established", self.syn_flood),
            ("dnat_syn_flood_without_state", self.dnat_syn_flood),
            ("exception_path", self.exception_path),
            ("bgp_announce", self.bgp_announce),
            ("ecmp_failover", self.ecmp_failover),
            ("l2_failover", self.l2_failover),
            ("long_stream_survives_reloads", self.long_stream),
            ("backend_counters_survive_reload", self.backend_counters_reload),
            ("k8s_service_forwards", self.k8s_service),
            ("backend_counters_survive_slice_update", self.backend_counters_slice),
            ("k8s_stream_survives_slice_changes", self.k8s_stream),
            ("provider_assigns_and_withdraws", self.provider),
            ("k8s_service_deleted", self.k8s_deleted),
            ("k8s_shipped_rbac_suffices", self.k8s_rbac),
            ("capture_on_demand", self.capture_on_demand),
            ("counters", self.counters),
        ]
        try:
            try:
                self.setup()
            except Fail as e:
                self.setup_error = str(e)
                log("setup failed: " + str(e).replace("\n", "\n    "))
            only = set(self.args.only.split(",")) if self.args.only else None
            if only is not None and (unknown := only - {name for name, _ in cases}):
                raise SystemExit(f"--only: no case {', '.join(sorted(unknown))}")
            for name, fn in cases:
                if only is not None and name not in only and name != "counters":
                    continue
                if self.magline is not None and not self.setup_error and name != "counters":
                    try:
                        self.magline.check_alive()
                    except Fail as e:
                        self.results.append((name, 0.0, str(e), None, ""))
                        log(f"FAIL {name}: {e}")
                        continue
                self.case(name, fn)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is bounded: let it finish
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if self.args.keep:
                self.skip("cleanup", "--keep")
                self.print_keep_help()
            else:
                self.case("cleanup", self.cleanup_case, needs_setup=False)


    def print_keep_help(self):
        m = self.args.magline
        cfg = os.path.join(self.workdir or "", "magline.json")
        log("--keep: the topology, the servers and the work directory stay:")
        print(f"""
  work directory:   {self.workdir}   (magline.json, magline.stderr, stats.json, ...)
  namespaces:       {', '.join(NAMESPACES)}
  magline again:    {m} run --config {cfg}
  try it:           ip netns exec {CLIENT} curl -s http://{VIP_HTTP}/
  watch the switch: ip netns exec {FABRIC} tcpdump -ni {BRIDGE} -e
  remove it all:    python3 {os.path.relpath(__file__)} --cleanup
""", flush=True)


def write_junit(path, results, total_time):
    suite = ET.Element("testsuite", name="e2e", tests=str(len(results)),
                       failures=str(sum(1 for r in results if r[2])), errors="0",
                       skipped=str(sum(1 for r in results if r[3])), time=f"{total_time:.3f}")
    for name, seconds, failure, skipped, output in results:
        case = ET.SubElement(suite, "testcase", classname="e2e", name=name,
                             time=f"{seconds:.3f}")
        if failure:
            f = ET.SubElement(case, "failure", message=failure.splitlines()[0][:200])
            f.text = failure
        if skipped:
            ET.SubElement(case, "skipped", message=skipped)
        if output:
            ET.SubElement(case, "system-out").text = output
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def preflight(args):
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (network namespaces, veths, af_packet)")
    for tool in ("ip", "ethtool", "curl", "sysctl"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (apt-get install iproute2 ethtool curl procps)")
    if args.capture and shutil.which("tcpdump") is None:
        problems.append("tcpdump not found")
    if not args.cleanup and not (os.path.isfile(args.magline) and os.access(args.magline, os.X_OK)):
        problems.append(f"{args.magline}: not an executable (build it: ninja -C build)")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--magline", default="build/control/magline", help="the magline binary")
    ap.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    ap.add_argument("--keep", action="store_true",
                    help="leave the topology, servers and work directory for debugging")
    ap.add_argument("--capture", action="store_true",
                    help="record the bridge's traffic to WORKDIR/bridge.pcap")
    ap.add_argument("--pmd", choices=sorted(DEVICES), default="af_packet",
                    help="how Magline opens its port (default af_packet; pcap is a diagnostic)")
    ap.add_argument("--cleanup", action="store_true",
                    help="only remove what a previous run left behind, then exit")
    ap.add_argument("--only", metavar="CASE[,CASE]",
                    help="run these cases alone (and counters, cleanup), e.g. udp_fragments")
    ap.add_argument("--demo", action="store_true",
                    help="the demo: Magline on its embedded default, real clients, counts shown")
    args = ap.parse_args()
    args.magline = os.path.abspath(args.magline)

    if problems := preflight(args):
        for p in problems:
            print(f"e2e: {p}", file=sys.stderr)
        return 2
    lock = open(LOCK_PATH, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"e2e: another run holds {LOCK_PATH}; its topology would be torn down under it",
              file=sys.stderr)
        return 2

    def on_signal(sig, _frame):
        raise Interrupted(signal.Signals(sig).name)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    if found := leftovers():
        log("removing leftovers of an earlier run: " + "; ".join(found))
    remove_everything()
    if args.cleanup:
        left = leftovers()
        print("clean" if not left else "still there: " + "; ".join(left))
        return 1 if left else 0

    t0 = time.monotonic()
    start_run_clock()
    suite = Suite(args)
    if args.demo:
        try:
            return suite.demo()
        except (Fail, KeyboardInterrupt, Interrupted) as e:
            log(f"demo failed: {e}")
            return 1
    interrupted = None
    try:
        suite.run()
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = "Ctrl-C" if isinstance(e, KeyboardInterrupt) else str(e)
        log(f"interrupted ({interrupted}): cleaning up")
        suite.teardown()
    total = time.monotonic() - t0
    if interrupted and not any(r[2] and r[2].startswith("interrupted") for r in suite.results):
        # Interrupted outside a case (setup, between cases): the run still did not pass.
        suite.results.append(("interrupted", 0.0, f"interrupted ({interrupted})", None, ""))
    passed = sum(1 for r in suite.results if not r[2] and not r[3])
    failed = sum(1 for r in suite.results if r[2])
    if args.junit:
        write_junit(args.junit, suite.results, total)
    if suite.workdir and os.path.isdir(suite.workdir):
        if args.keep or failed:
            log(f"logs kept in {suite.workdir}")
        else:
            shutil.rmtree(suite.workdir, ignore_errors=True)
    skipped = sum(1 for r in suite.results if r[3])
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    log(f"total {total:.1f} s")
    print(line, flush=True)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
