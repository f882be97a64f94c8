#!/usr/bin/python3
"""End-to-end test of Magline on real kernel traffic (see tests/e2e/README.md).

Builds a topology of network namespaces around a Linux bridge, runs `magline run` on an
af_packet port in the root namespace, and drives real TCP and UDP clients and servers through
it. Standard library only; run as root with Debian's /usr/bin/python3:

    python3 tests/e2e/e2e.py --magline build/control/magline [--junit FILE] [--keep]
                             [--capture] [--pmd af_packet|pcap] [--cleanup]

Every name it creates starts with "mle2e-"; leftovers of a crashed run are removed first.
Addresses are only from 198.18.0.0/15 and 2001:db8::/32, inside namespaces it created.
"""
import argparse
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import xml.etree.ElementTree as ET

from topology import (  # names, addresses, command helpers, cleanup
    AGENT, BACKENDS, BRIDGE, CLIENT, CLIENT2, CLIENT2_V4, CLIENT_V4, FABRIC, Fail, Interrupted,
    LB_IF, LB_V4, LB_V4_DNAT, LB_V6, LOCK_PATH, NAMESPACES, NODE_PORT, NODE_PORT_K8S, PREFIX,
    PROVIDER_POOL, PYTHON, VIP_DNAT, VIP_DSR, VIP_ECHO, VIP_HTTP, VIP_HTTP6, VIP_K8S, VIP_K8S_ECHO,
    VIP_LIMITED, VIP_UDP,
    build_topology, in_ns, leftovers, log, nsx, our_dpdk_files, remove_everything, run,
)
import k8s
from dpdk_capture import Hugepages, pcapng_frames
from prometheus import parse_prometheus

# --- Magline ---------------------------------------------------------------------------------


# How Magline opens its port. af_packet is the one under test; pcap (libpcap on the same veth)
# is a diagnostic that sidesteps af_packet's queue layout (README: "Findings").
DEVICES = {
    # One worker: one queue pair (af_packet has as many RX as TX queues, and with more than one
    # the kernel fans flows out over sockets that must all be polled).
    "af_packet": f"net_af_packet0,iface={LB_IF},qpairs=1",
    # One RX queue (incoming frames only: not Magline's own), one TX queue.
    "pcap": f"net_pcap0,rx_iface_in={LB_IF},tx_iface={LB_IF}",
}


ADMIN_PORT = 9101  # not the default 9100: a demo may run beside a kept topology


# With hugepages to spare, the suite's Magline runs with `capture: true` under this EAL prefix,
# so that DPDK's dpdk-dumpcap can attach to it (case capture_on_demand).
CAPTURE_PREFIX = PREFIX + "magline"
CAPTURE_PAGES = 160  # memory_mb 256 in 2 MiB pages, and room


LIMIT_RATE, LIMIT_BURST = 2, 5  # e2e/limited:http's new connections a second, and burst


def magline_config(echo_backends, pmd="af_packet", kubeconfig=None, web_backends=None,
                   capture=False):
    def backends(addrs, port):
        return [{"address": a, "port": port} for a in addrs]

    v4 = [b[2] for b in BACKENDS]
    v6 = [b[3] for b in BACKENDS]
    web = v4 if web_backends is None else web_backends
    return {
        "flow_table": {"capacity": 65536},
        "admin": {"address": "127.0.0.1", "port": ADMIN_PORT},
        **({"kubernetes": {"kubeconfig": kubeconfig, "coalesce_ms": 2},
            # The provider assigns from the addresses the k8s cases use: kweb's (written with
            # its status) is taken back, kprov's is assigned.
            "provider": {"election": {"lease_namespace": "magline-system"},  # the shipped role's
                         "pools": [{"name": "e2e", "addresses": [PROVIDER_POOL]}]}}
           if kubeconfig else {}),
        "dataplane": {
            "main_core": 0,
            "worker_cores": [1],
            "hugepages": capture,
            **({"capture": True, "file_prefix": CAPTURE_PREFIX} if capture else {}),
            "memory_mb": 256,
            # Sleeps when idle: the suite's clients and servers share the machine's 2 cores.
            "idle_sleep_max_us": 50,
            "ports": [{
                "name": "lb0",
                "device": DEVICES[pmd],
                "addresses": [f"{LB_V4}/16", f"{LB_V4_DNAT}/24", f"{LB_V6}/64"],
            }],
        },
        "services": [
            {"name": "e2e/web:http", "mode": "full_nat",
             "frontends": [{"kind": "load_balancer", "address": VIP_HTTP, "port": 80},
                           {"kind": "node_port", "port": NODE_PORT}],
             "backends": backends(web, 8080)},
            {"name": "e2e/dns:udp", "mode": "full_nat",
             "frontends": [{"address": VIP_UDP, "port": 53, "protocol": "udp"}],
             "backends": backends(v4, 5353)},
            {"name": "e2e/dsr:http", "mode": "dsr_l2",
             "frontends": [{"address": VIP_DSR, "port": 80}],
             "backends": backends(v4, 80)},
            {"name": "e2e/dnat:http", "mode": "dnat",
             "frontends": [{"address": VIP_DNAT, "port": 80}],
             "backends": backends(v4, 8080)},
            {"name": "e2e/web6:http", "mode": "full_nat",
             "frontends": [{"address": VIP_HTTP6, "port": 80}],
             "backends": backends(v6, 8080)},
            {"name": "e2e/limited:http", "mode": "full_nat",
             "frontends": [{"address": VIP_LIMITED, "port": 80}],
             "backends": backends(v4, 8080),
             "new_connection_limit": {"rate": LIMIT_RATE, "burst": LIMIT_BURST}},
            {"name": "e2e/echo:stream", "mode": "full_nat",
             "frontends": [{"address": VIP_ECHO, "port": 9000}],
             "backends": backends(echo_backends, 9000)},
        ],
    }


LIBC = ctypes.CDLL(None)
PR_SET_PDEATHSIG = 1


def pdeathsig():
    """In the child, before exec: SIGTERM when the harness dies, even by SIGKILL."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Magline:
    def __init__(self, binary, workdir, pmd, embedded=False, kubeconfig=None, capture=False):
        self.binary = binary
        self.capture = capture
        self.kubeconfig = kubeconfig
        self.pmd = pmd
        self.embedded = embedded  # demo: run on the configuration built into the binary
        self.config = os.path.join(workdir, "magline.json")
        self.stats = os.path.join(workdir, "stats.json")
        self.out_path = os.path.join(workdir, "magline.stdout")
        self.err_path = os.path.join(workdir, "magline.stderr")
        self.proc = None
        self.reloads_sent = 0
        self.echo_backends = [b[2] for b in BACKENDS]
        self.web_backends = None  # None: all of them

    def write_config(self, echo_backends=None, web_backends=None):
        """Writes the configuration with these backends for e2e/echo:stream and e2e/web:http;
        a service not named keeps what the last write gave it."""
        if echo_backends is not None:
            self.echo_backends = echo_backends
        if web_backends is not None:
            self.web_backends = web_backends
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            json.dump(magline_config(self.echo_backends, self.pmd, self.kubeconfig,
                                     self.web_backends, self.capture), f, indent=2)
        os.replace(tmp, self.config)  # a reload never sees half a file

    def start(self):
        config = [] if self.embedded else ["--config", self.config]
        self.proc = subprocess.Popen(
            [self.binary, "run"] + config + ["--stats", self.stats],
            stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"),
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=pdeathsig)

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.out_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise Fail(f"magline exited with status {self.proc.returncode}; stderr:\n"
                       f"{tail(self.stderr())}")

    def reload(self):
        self.check_alive()
        self.proc.send_signal(signal.SIGHUP)
        self.reloads_sent += 1

    def stop(self, timeout):
        """SIGTERM; returns (exit status or None if it had to be killed, seconds taken)."""
        if not self.alive():
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None, time.monotonic() - t0
        return rc, time.monotonic() - t0


class SkipCase(Exception):
    """Raised by a case that cannot run here; it counts as skipped, with the reason."""


def capture_kind(frame):
    """What a frame of capture_on_demand is, from its Ethernet, IPv4 and TCP headers."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return "other"
    ihl = (frame[14] & 0x0F) * 4
    src, dst = ".".join(map(str, frame[26:30])), ".".join(map(str, frame[30:34]))
    tcp = 14 + ihl
    sport = int.from_bytes(frame[tcp:tcp + 2], "big")
    dport = int.from_bytes(frame[tcp + 2:tcp + 4], "big")
    syn = frame[tcp + 13] & 0x12 == 0x02
    backends = {b[2] for b in BACKENDS}
    if src == CLIENT_V4 and dst == VIP_HTTP and dport == 80:
        return "client SYN to the VIP" if syn else "client to the VIP"
    if src == LB_V4 and dst in backends and dport == 8080:
        return "Magline SYN to a backend" if syn else "Magline to a backend"
    if src in backends and dst == LB_V4 and sport == 8080:
        return "backend to Magline"
    if src == VIP_HTTP and dst == CLIENT_V4 and sport == 80:
        return "VIP to the client"
    return "other"


def tail(text, lines=30):
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"


class Agent:
    """A long-lived agent.py process in a namespace."""

    def __init__(self, ns, args, workdir, name):
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self.proc = subprocess.Popen(nsx(ns, PYTHON, AGENT, *args), stdout=subprocess.PIPE,
                                     stderr=open(self.err_path, "w"), stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def readline(self, timeout):
        end = time.monotonic() + timeout
        line = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            ch = os.read(fd, 1)
            if not ch:
                break
            if ch == b"\n":
                return line.decode(errors="replace")
            line += ch
        return None

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()


def read_mac(ns, ifname):
    path = f"/sys/class/net/{ifname}/address"
    if ns is None:
        with open(path) as f:
            return f.read().strip()
    return in_ns(ns, "cat", path).stdout.strip()


class Sniffer:
    """tcpdump -e in a namespace; stop() returns the source MACs of the frames it saw, or None
    when tcpdump is not installed."""

    def __init__(self, ns, ifname, bpf):
        self.proc = None
        if shutil.which("tcpdump") is None:
            return
        self.proc = subprocess.Popen(nsx(ns, "tcpdump", "-nlei", ifname, "-c", "1000", bpf),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        # It drops nothing it saw once it says "listening on"; wait for that (bounded).
        seen = b""
        end = time.monotonic() + 5
        fd = self.proc.stderr.fileno()
        while b"listening on" not in seen and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk

    def stop(self):
        if self.proc is None:
            return None
        time.sleep(0.2)  # the last frames reach the socket
        self.proc.terminate()
        try:
            stdout, _ = self.proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, _ = self.proc.communicate(timeout=3)
        # "12:00:00.000000 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 ..."
        return [line.split()[1] for line in stdout.decode(errors="replace").splitlines()
                if len(line.split()) > 3 and line.split()[2] == ">"]


# --- clients ---------------------------------------------------------------------------------


def curl(ns, url, max_time=3):
    """One HTTP GET on a new connection: (body or None, error text)."""
    p = run(nsx(ns, "curl", "-sS", "-g", "--max-time", str(max_time), url), check=False,
            timeout=max_time + 5)
    if p.returncode != 0:
        return None, f"curl exit {p.returncode}: {p.stderr.strip()}"
    return p.stdout.strip(), ""


def parse_answer(body):
    """'backend=b0 peer=198.18.0.1:4242 local=198.18.1.10:8080' -> dict."""
    return dict(part.split("=", 1) for part in body.split() if "=" in part)


GIVE_UP_AFTER = 3  # consecutive failures: the rest would fail too, and time is bounded


# The whole run stays well under 2 minutes even when everything half-works: each series has
# a budget, and none starts a request after the run's deadline.
SERIES_BUDGET_S = 10.0
RUN_BUDGET_S = 95.0
RUN_DEADLINE = time.monotonic() + RUN_BUDGET_S  # reset when the run starts


def time_left(budget):
    return max(0.0, min(budget, RUN_DEADLINE - time.monotonic()))


def http_series(ns, url, n, budget=SERIES_BUDGET_S):
    """n requests, each on a new connection; stops early after GIVE_UP_AFTER failures in a row
    or when its budget (or the run's) is spent."""
    answers, errors = [], []
    in_a_row = 0
    end = time.monotonic() + time_left(budget)
    for i in range(n):
        if time.monotonic() >= end:
            errors.append(f"out of time after {i} of {n} requests")
            break
        body, err = curl(ns, url)
        if body is None:
            errors.append(f"request {i}: {err}")
            in_a_row += 1
            if in_a_row == GIVE_UP_AFTER and i + 1 < n:
                errors.append(f"gave up after {GIVE_UP_AFTER} failures in a row "
                              f"({n - i - 1} requests not sent)")
                break
        else:
            in_a_row = 0
            answers.append(parse_answer(body))
    return answers, errors


def stream_summary(agent, seconds, over, out, problems):
    """Reads an `agent.py stream` client's summary: every line sent (at least 5 a second) must
    have come back. Fails with `problems` and whatever the summary adds."""
    final = agent.readline(seconds + 10)
    agent.stop()
    if final is None:
        raise Fail("\n".join(["the stream client gave no summary"] + problems))
    r = json.loads(final)
    out.append(f"{r['echoed']}/{r['sent']} lines echoed over {over}")
    problems = problems + r["problems"]
    if r["sent"] < seconds * 5:
        problems.append(f"only {r['sent']} lines sent in {seconds} s")
    if r["echoed"] != r["sent"]:
        problems.append(f"{r['sent'] - r['echoed']} lines not echoed")
    if problems:
        raise Fail("\n".join(problems))


# --- /metrics --------------------------------------------------------------------------------


def scrape_samples():
    """GET /metrics from the admin listener, parsed: {(name, labels): value}."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=3) as r:
            return parse_prometheus(r.read().decode())
    except OSError as e:
        raise Fail(f"GET /metrics: {e}")
    except ValueError as e:
        raise Fail(f"/metrics: {e}")


def scrape_traffic(service):
    """GET /metrics from the admin listener: `service`'s {"frontend": {id: {"packets": P,
    "bytes": B}}, "backend": {...}} from magline_{frontend,backend}_{packets,bytes}_total."""
    samples = scrape_samples()
    traffic = {"frontend": {}, "backend": {}}
    for (name, labels), value in samples.items():
        kind, _, unit = name.removeprefix("magline_").removesuffix("_total").partition("_")
        labels = dict(labels)
        if (kind in traffic and unit in ("packets", "bytes")
                and set(labels) == {"service", kind} and labels["service"] == service):
            traffic[kind].setdefault(labels[kind], {})[unit] = value
    return traffic


def went_back(before, after, when):
    """A counter series in both scrapes that is lower in the later one (a Prometheus counter
    never goes backwards while its frontend or backend exists)."""
    problems = []
    for kind in ("frontend", "backend"):
        for key, old in before[kind].items():
            for unit, value in old.items():
                new = after[kind].get(key, {}).get(unit)
                if new is not None and new < value:
                    problems.append(f"{when}: {kind} {key} {unit} went back from {value:.0f} "
                                    f"to {new:.0f}")
    return problems


# --- test cases ------------------------------------------------------------------------------


class Suite:
    def __init__(self, args):
        self.args = args
        self.results = []  # (name, seconds, failure or None, skipped reason or None, output)
        self.workdir = None
        self.magline = None
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
        for a, (_, name, _, _) in zip(self.agents, BACKENDS):
            if a.readline(10) != "ready":
                raise Fail(f"server {name} did not start: {tail(a.stderr())}")
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

    # -- cases

    def http_v4_vip(self, out):
        self.http_vip(out, f"http://{VIP_HTTP}/", LB_V4)

    def http_v6_vip(self, out):
        self.http_vip(out, f"http://[{VIP_HTTP6}]/", LB_V6)

    def http_vip(self, out, url, snat):
        n = 30
        answers, errors = http_series(CLIENT, url, n)
        seen = {}
        for a in answers:
            seen[a.get("backend")] = seen.get(a.get("backend"), 0) + 1
        out.append(f"{len(answers)}/{n} answered; backends {dict(sorted(seen.items()))}")
        problems = list(errors)
        wrong_peer = [a for a in answers if a.get("peer", "").rsplit(":", 1)[0] != snat]
        if wrong_peer:
            problems.append(f"{len(wrong_peer)} answers where the backend saw a peer other "
                            f"than Magline's {snat} (full-NAT), e.g. {wrong_peer[0]}")
        if len(seen) != len(BACKENDS) and len(answers) == n:
            problems.append(f"answers came from {sorted(seen)} only, not all "
                            f"{len(BACKENDS)} backends")
        if problems:
            raise Fail("\n".join(problems))

    def nodeport(self, out):
        n = 5
        answers, errors = http_series(CLIENT, f"http://{LB_V4}:{NODE_PORT}/", n)
        out.append(f"{len(answers)}/{n} answered by "
                   f"{sorted(set(a.get('backend') for a in answers))}")
        if errors:
            raise Fail("\n".join(errors))

    def udp_echo(self, out):
        n = 20
        budget = time_left(SERIES_BUDGET_S)
        p = in_ns(CLIENT, PYTHON, AGENT, "udp", VIP_UDP, "53", str(n), f"{budget:.1f}",
                  timeout=budget + 10)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        backends = {}
        for a in r["answers"]:
            backends[a["backend"]] = backends.get(a["backend"], 0) + 1
        out.append(f"{len(r['answers'])}/{n} echoed; backends {dict(sorted(backends.items()))}")
        if r["problems"] or len(r["answers"]) != n:
            raise Fail("\n".join(r["problems"]) or "missing answers")

    def ping_vip(self, out):
        """Pings to a VIP and to Magline's own address, IPv4 and IPv6, are answered by Magline."""
        problems = []
        for addr in (VIP_HTTP, VIP_HTTP6, LB_V4, LB_V6):
            p = in_ns(CLIENT, PYTHON, AGENT, "ping", addr, "3", timeout=15)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            out.append(f"{addr}: {r['answered']}/{r['sent']} answered")
            if r["answered"] != r["sent"]:
                problems.append(f"{addr}: " + "; ".join(r["problems"] or ["missing answers"]))
        if problems:
            raise Fail("\n".join(problems))

    def dnat(self, out):
        n = 5
        answers, errors = http_series(CLIENT2, f"http://{VIP_DNAT}/", n)
        peers = sorted(set(a.get("peer", "").rsplit(":", 1)[0] for a in answers))
        out.append(f"{len(answers)}/{n} answered; backends saw peers {peers}")
        problems = list(errors)
        if answers and peers != [CLIENT2_V4]:
            problems.append(f"the backends saw {peers}, not the client's own {CLIENT2_V4}")
        if problems:
            raise Fail("\n".join(problems))

    def new_connection_limit(self, out):
        """A frontend limited to 2 new connections a second in bursts of 5: of 20 connections
        opened at once, the burst's 5 (and at most one more, refilled) are established within
        0.5 s; the others' SYNs are dropped and counted, and wait for their retransmission.
        Another frontend is not limited meanwhile."""
        def refused():
            samples = scrape_samples()
            return sum(v for (name, labels), v in samples.items()
                       if name == "magline_frontend_connections_limited_total"
                       and dict(labels).get("service") == "e2e/limited:http")
        before = refused()
        p = in_ns(CLIENT, PYTHON, AGENT, "burst", VIP_LIMITED, "80", "20", "0.5", timeout=15)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        other, errors = http_series(CLIENT, f"http://{VIP_HTTP}/", 10)
        counted = refused() - before
        out.append(f"limited frontend: {r['established']} of 20 established in 0.5 s, "
                   f"{r['waiting']} waiting; {counted:g} SYNs refused; unlimited frontend: "
                   f"{len(other)}/10 answered")
        problems = list(r["problems"]) + errors
        if not LIMIT_BURST <= r["established"] <= LIMIT_BURST + 1:
            problems.append(f"{r['established']} connections established, expected the burst "
                            f"({LIMIT_BURST}) or one more")
        if counted < 20 - r["established"]:
            problems.append(f"magline_frontend_connections_limited_total rose by {counted:g}, "
                            f"fewer than the {20 - r['established']} connections left waiting")
        if problems:
            raise Fail("\n".join(problems))

    def dsr(self, out):
        n = 5
        # Watch the client's link: DSR replies must come from a backend's MAC, not Magline's.
        sniffer = Sniffer(CLIENT, "eth0", f"tcp and src host {VIP_DSR} and src port 80")
        try:
            answers, errors = http_series(CLIENT, f"http://{VIP_DSR}/", n)
        finally:
            frames = sniffer.stop()
        peers = sorted(set(a.get("peer", "").rsplit(":", 1)[0] for a in answers))
        locals_ = sorted(set(a.get("local", "") for a in answers))
        out.append(f"{len(answers)}/{n} answered; backends saw peers {peers}, "
                   f"local {locals_}")
        problems = list(errors)
        if answers and peers != [CLIENT_V4]:
            problems.append(f"the backends saw {peers}, not the client's own {CLIENT_V4}")
        if answers and locals_ != [f"{VIP_DSR}:80"]:
            problems.append(f"the backends answered on {locals_}, not the VIP {VIP_DSR}:80")
        if frames is None:
            out.append("(tcpdump not available: the reply path was not checked)")
        else:
            lb_mac = read_mac(None, LB_IF)
            backend_macs = {read_mac(ns, "eth0"): name for ns, name, _, _ in BACKENDS}
            senders = {}
            for src_mac in frames:
                who = "magline" if src_mac == lb_mac else backend_macs.get(src_mac, src_mac)
                senders[who] = senders.get(who, 0) + 1
            out.append(f"reply frames on the client's link by sender: {senders}")
            if answers and not frames:
                problems.append("tcpdump on the client saw no reply frames")
            if "magline" in senders:
                problems.append(f"{senders['magline']} reply frames came from Magline's MAC "
                                f"{lb_mac}: DSR replies must bypass it")
        if problems:
            raise Fail("\n".join(problems))

    def long_stream(self, out):
        seconds = 8.0
        if time_left(seconds + 5) < seconds + 5:
            raise Fail("out of time for the run: not started")
        agent = Agent(CLIENT, ["stream", VIP_ECHO, "9000", str(seconds)], self.workdir,
                      "stream-client")
        self.agents.append(agent)
        first = agent.readline(5)
        if first is None:
            raise Fail(f"no greeting from {VIP_ECHO}:9000: {tail(agent.stderr())}")
        hello = json.loads(first)
        if not hello.get("greeting"):
            raise Fail(f"stream did not start: {hello}")
        used = hello["greeting"].rsplit(" ", 1)[-1]
        by_name = {b[1]: b[2] for b in BACKENDS}
        if used not in by_name:
            raise Fail(f"unexpected greeting {hello['greeting']!r}")
        others = [b[2] for b in BACKENDS if b[1] != used]
        out.append(f"stream from port {hello['local_port']} is on {used}; reloading with the "
                   f"other backends changing")
        # Remove the others one by one, then add them back: 4 reloads, ~1.5 s apart.
        steps = [[by_name[used], others[1]], [by_name[used]], [by_name[used], others[0]],
                 [by_name[used]] + others]
        before = self.magline.stderr().count("magline: reloaded")
        problems = []
        for i, backends in enumerate(steps):
            time.sleep(1.2)
            self.magline.write_config(backends)
            self.magline.reload()
            want = before + i + 1
            end = time.monotonic() + 3
            while time.monotonic() < end and self.magline.stderr().count(
                    "magline: reloaded") < want:
                time.sleep(0.05)
            got = self.magline.stderr().count("magline: reloaded")
            if got < want:
                problems.append(f"reload {i + 1} (echo backends {backends}) not reported "
                                f"within 3 s; stderr:\n{tail(self.magline.stderr(), 5)}")
        stream_summary(agent, seconds, f"{self.magline.reloads_sent} reloads", out, problems)

    def backend_counters_reload(self, out):
        """b0's counters keep counting up across reloads that remove b2 from e2e/web:http and
        add it back (the configuration is the original again afterwards)."""
        by_name = {b[1]: b[2] for b in BACKENDS}

        def reload(names):
            before = self.magline.stderr().count("magline: reloaded")
            self.magline.write_config(web_backends=[by_name[n] for n in names])
            self.magline.reload()
            return lambda: self.magline.stderr().count("magline: reloaded") > before

        self.counters_follow(out, "e2e/web:http", VIP_HTTP, "b0",
                             [["b0", "b1"], ["b0", "b1", "b2"]], reload, "reload")

    def counters_follow(self, out, service, vip, watched, steps, change, what):
        """`change(names)` sets `service`'s backends (port 8080) to `names` and returns a
        function that says whether it was applied; `steps` are applied in turn, each keeps
        `watched`, and the last must be the service's backends as the suite set them (it is
        applied even when the case fails half-way). Before the first change and after each, new
        connections to vip:80 until `watched` answers one. Every scrape of /metrics must show
        each frontend and backend series no lower than the scrape before while it exists; after
        each change the series are exactly the step's backends (a removed backend's series is
        gone), and after the traffic `watched`'s packets and the frontend's have grown."""
        by_name = {b[1]: b[2] for b in BACKENDS}
        ident = {n: f"{by_name[n]}:8080" for n in by_name}
        frontend = f"{vip}:80/tcp"
        problems = []

        def counted(traffic, when):
            for kind, key in (("backend", ident[watched]), ("frontend", frontend)):
                if "packets" not in traffic[kind].get(key, {}):
                    raise Fail(f"{when}: no magline_{kind}_packets_total series of {service} "
                               f"{kind} {key}; its {kind}s: {sorted(traffic[kind])}")
            return (traffic["backend"][ident[watched]]["packets"],
                    traffic["frontend"][frontend]["packets"])

        def traffic_to_watched(last, names, when):
            """Connections until `watched` answers one; the scrape after them."""
            tally, errors = {}, []
            for i in range(30):  # a backend of 3 gets none of 30 once in 190,000 runs
                body, err = curl(CLIENT, f"http://{vip}/", max_time=2)
                if body is None:
                    errors.append(f"request {i}: {err}")
                    if len(errors) == GIVE_UP_AFTER:
                        break
                    continue
                got = parse_answer(body).get("backend")
                tally[got] = tally.get(got, 0) + 1
                if got == watched:
                    break
            if not tally.get(watched):
                raise Fail(f"{when}: no connection to {vip}:80 reached {watched} "
                           f"(answers {tally}); " + "; ".join(errors[:3]))
            if set(tally) - set(names):
                strays = sorted(set(tally) - set(names))
                problems.append(f"{when}: new connections reached {strays}, not in {names}")
            now = scrape_traffic(service)
            problems.extend(went_back(last, now, when))
            return tally, now

        # A service just written may take a second to reach the admin listener's list.
        end = time.monotonic() + 3
        last = scrape_traffic(service)
        while ident[watched] not in last["backend"] and time.monotonic() < end:
            time.sleep(0.05)
            last = scrape_traffic(service)
        before = counted(last, "before")
        tally, last = traffic_to_watched(last, steps[-1], "before the changes")
        counts = counted(last, "before the changes")
        out.append(f"{service}: {watched} {before[0]:.0f} -> {counts[0]:.0f} packets, frontend "
                   f"{frontend} {before[1]:.0f} -> {counts[1]:.0f} (connections {tally})")
        if counts[0] <= before[0] or counts[1] <= before[1]:
            problems.append(f"before the changes: {watched} or {frontend} did not count "
                            f"{sum(tally.values())} connections: packets {before} -> {counts}")
        applied = None
        try:
            names_before = steps[-1]
            for step, names in enumerate(steps, 1):
                gone = [n for n in names_before if n not in names]
                added = [n for n in names if n not in names_before]
                when = f"{what} {step} (" + ", ".join(
                    [f"-{n}" for n in gone] + [f"+{n}" for n in added]) + ")"
                names_before = names
                t0 = time.monotonic()
                done = change(names)
                applied = names
                want = sorted(ident[n] for n in names)
                # The admin listener's list of services follows an update within a second.
                while True:
                    now = scrape_traffic(service)
                    problems.extend(went_back(last, now, when))
                    last = now
                    if done() and sorted(now["backend"]) == want:
                        break
                    if time.monotonic() > t0 + 3:
                        raise Fail("\n".join(problems + [
                            f"{when}: /metrics lists {service}'s backends "
                            f"{sorted(now['backend'])}, not {want}, 3 s later; magline "
                            f"stderr:\n{tail(self.magline.stderr(), 5)}"]))
                    time.sleep(0.05)
                dt = time.monotonic() - t0
                after, after_change = counted(last, when), last
                tally, last = traffic_to_watched(last, names, when)
                grown = counted(last, when)
                fresh = "".join(f"; {n} (back) starts at "
                                f"{after_change['backend'][ident[n]].get('packets', 0):.0f}"
                                for n in added)
                out.append(f"{when}: series follow after {dt:.2f} s; {watched} {counts[0]:.0f} "
                           f"-> {after[0]:.0f} -> {grown[0]:.0f} packets, frontend "
                           f"{counts[1]:.0f} -> {after[1]:.0f} -> {grown[1]:.0f} "
                           f"(connections {tally}){fresh}")
                if grown[0] <= after[0] or grown[1] <= after[1]:
                    problems.append(f"{when}: {watched} or {frontend} did not count "
                                    f"{sum(tally.values())} connections: packets {after} -> "
                                    f"{grown}")
                if sorted(last["backend"]) != want:
                    problems.append(f"{when}: after traffic /metrics lists backends "
                                    f"{sorted(last['backend'])}, not {want}")
                counts = grown
        finally:
            if applied is not None and applied != steps[-1]:
                change(steps[-1])  # the suite's own backends for the cases after this one
        if problems:
            raise Fail("\n".join(problems))

    # -- Services from the (fake) Kubernetes API server

    def wait_for_answer(self, url, seconds):
        """Seconds until the first HTTP answer through `url`, or a Fail."""
        t0 = time.monotonic()
        last = ""
        while time.monotonic() < t0 + seconds:
            self.magline.check_alive()
            body, last = curl(CLIENT, url, max_time=1)
            if body is not None:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise Fail(f"no answer through {url} within {seconds} s ({last}); magline stderr:\n"
                   f"{tail(self.magline.stderr())}")

    def k8s_service(self, out):
        by_name = {b[1]: b[2] for b in BACKENDS}
        self.api.write(k8s.service("kweb", VIP_K8S, 80, node_port=NODE_PORT_K8S),
                       k8s.slice_("kweb", "a", 8080, ready=[by_name["b0"], by_name["b1"]]))
        took = self.wait_for_answer(f"http://{VIP_K8S}/", 5)
        out.append(f"Service written: first answer through {VIP_K8S}:80 after {took:.2f} s")
        n = 20
        answers, errors = http_series(CLIENT, f"http://{VIP_K8S}/", n)
        seen = sorted(set(a.get("backend") for a in answers))
        out.append(f"{len(answers)}/{n} answered by {seen}")
        problems = list(errors)
        if len(answers) == n and seen != ["b0", "b1"]:
            problems.append(f"answers from {seen}, not the slice's b0 and b1")
        np_answers, np_errors = http_series(CLIENT, f"http://{LB_V4}:{NODE_PORT_K8S}/", 5)
        out.append(f"NodePort {LB_V4}:{NODE_PORT_K8S}: {len(np_answers)}/5 answered")
        problems += np_errors
        state = run(["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{ADMIN_PORT}/state"],
                    check=False).stdout
        try:
            names = [s["name"] for s in json.loads(state)["services"]]
        except (ValueError, KeyError, TypeError):
            names = None
        out.append(f"/state lists {names}")
        if not names or "e2e/kweb:main/tcp/v4" not in names:
            problems.append(f"/state does not list e2e/kweb:main/tcp/v4: {state[:300]!r}")
        if problems:
            raise Fail("\n".join(problems))

    def backend_counters_slice(self, out):
        """b0's counters keep counting up across EndpointSlice updates of e2e/kweb that remove
        b1 and add it back."""
        by_name = {b[1]: b[2] for b in BACKENDS}
        service = "e2e/kweb:main/tcp/v4"

        def update(names):
            self.api.write(k8s.slice_("kweb", "a", 8080, ready=[by_name[n] for n in names]))
            return lambda: True  # applied when /metrics lists the slice's backends

        self.counters_follow(out, service, VIP_K8S, "b0", [["b0"], ["b0", "b1"]], update,
                             "slice update")

    def k8s_stream(self, out):
        """A long-lived connection survives EndpointSlice changes that remove and add the other
        endpoints and mark its own terminating; new connections follow the slices."""
        seconds = 8.0
        if time_left(seconds + 8) < seconds + 8:
            raise Fail("out of time for the run: not started")
        by_name = {b[1]: b[2] for b in BACKENDS}
        everyone = [b[2] for b in BACKENDS]
        self.api.write(k8s.service("kecho", VIP_K8S_ECHO, 9000),
                       k8s.slice_("kecho", "a", 9000, ready=everyone))
        self.wait_for_echo(VIP_K8S_ECHO, 5)
        agent = Agent(CLIENT, ["stream", VIP_K8S_ECHO, "9000", str(seconds)], self.workdir,
                      "k8s-stream-client")
        self.agents.append(agent)
        first = agent.readline(5)
        hello = json.loads(first) if first else {}
        used = (hello.get("greeting") or "").rsplit(" ", 1)[-1]
        if used not in by_name:
            raise Fail(f"stream did not start: {first!r}: {tail(agent.stderr())}")
        others = [by_name[n] for n in by_name if n != used]
        out.append(f"stream on {used}; changing the slices under it")
        steps = [
            dict(ready=[by_name[used], others[0]]),
            dict(ready=[others[0]], terminating=[by_name[used]]),  # its pod is going away
            dict(ready=[others[1]], terminating=[by_name[used]]),
            dict(ready=everyone),
        ]
        for i, step in enumerate(steps):
            time.sleep(1.2)
            self.api.write(k8s.slice_("kecho", "a", 9000, **step))
            if i == 2:
                # New connections go only where the slice says: the ready endpoint.
                got = self.echo_backends(VIP_K8S_ECHO, 4)
                out.append(f"while {used} terminates, new connections reach {sorted(set(got))}")
                want = [n for n in by_name if by_name[n] == others[1]]
                if sorted(set(got)) != want:
                    raise Fail(f"new connections reached {got}, not only {want}")
        stream_summary(agent, seconds, f"{len(steps)} slice changes", out, [])

    def echo_backends(self, vip, n):
        """The backends n new connections to vip:9000 greet from."""
        names = []
        for _ in range(n):
            p = in_ns(CLIENT, PYTHON, AGENT, "stream", vip, "9000", "0.2", timeout=10,
                      check=False)
            lines = p.stdout.strip().splitlines()
            hello = json.loads(lines[0]) if lines else {}
            names.append((hello.get("greeting") or "none").rsplit(" ", 1)[-1])
        return names

    def wait_for_echo(self, vip, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.echo_backends(vip, 1)[0] != "none":
                return
            time.sleep(0.1)
        raise Fail(f"no greeting from {vip}:9000 within {seconds} s")

    def provider(self, out):
        """A Service written without a status gets an address from the pool and Magline's
        finalizer; real TCP to that address reaches its endpoints. Deleted through the API, its
        address stops answering before the finalizer goes, and then the Service is gone."""
        by_name = {b[1]: b[2] for b in BACKENDS}
        self.api.write(k8s.service("kprov", None, 80),
                       k8s.slice_("kprov", "a", 8080, ready=[by_name["b2"]]))
        ip, t0 = None, time.monotonic()
        while time.monotonic() < t0 + 5 and ip is None:
            svc = self.api.service_object("kprov") or {}
            ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress", [])
            if ingress:
                ip = ingress[0].get("ip")
            else:
                time.sleep(0.05)
        if ip is None:
            raise Fail(f"no address written into kprov's status within 5 s; magline stderr:\n"
                       f"{tail(self.magline.stderr())}")
        svc = self.api.service_object("kprov")
        out.append(f"kprov got {ip} ({ingress[0].get('ipMode')}) after "
                   f"{time.monotonic() - t0:.2f} s, finalizers {svc['metadata'].get('finalizers')}")
        problems = []
        if "magline.io/load-balancer" not in svc["metadata"].get("finalizers", []):
            problems.append("no magline.io/load-balancer finalizer")
        took = self.wait_for_answer(f"http://{ip}/", 5)
        answers, errors = http_series(CLIENT, f"http://{ip}/", 5)
        out.append(f"first answer through {ip}:80 after {took:.2f} s; "
                   f"{len(answers)}/5 answered by {sorted(set(a.get('backend') for a in answers))}")
        problems += errors
        if answers and {a.get("backend") for a in answers} != {"b2"}:
            problems.append("answers from other backends than the slice's b2")
        # The assignment told on the Service as an Event, and shown in /state's allocation table.
        events, t1 = [], time.monotonic()
        while time.monotonic() < t1 + 3 and not events:
            _, listed = self.api.api("GET", f"/apis/events.k8s.io/v1/namespaces/{k8s.NS}/events")
            events = [e for e in listed.get("items", [])
                      if e.get("regarding", {}).get("name") == "kprov"
                      and e.get("reason") == "IPAllocated"]
            if not events:
                time.sleep(0.1)
        out.append(f"Events on kprov: {[(e.get('type'), e.get('note')) for e in events]}")
        if len(events) != 1 or ip not in events[0].get("note", ""):
            problems.append(f"not one IPAllocated Event naming {ip} on kprov: {events}")
        state = run(["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{ADMIN_PORT}/state"],
                    check=False).stdout
        try:
            allocations = json.loads(state)["provider"]["allocations"]
        except (ValueError, KeyError, TypeError):
            allocations = None
        mine = [a for a in allocations or [] if a.get("service") == f"{k8s.NS}/kprov"]
        out.append(f"/state allocation of kprov: {mine}")
        if len(mine) != 1 or mine[0].get("addresses") != [ip]:
            problems.append(f"/state's provider allocations do not hold kprov -> {ip}: "
                            f"{state[:300]!r}")
        # Deleted through the API: the finalizer holds it while the address is withdrawn.
        code, _ = self.api.api("DELETE", f"/api/v1/namespaces/{k8s.NS}/services/kprov")
        if code != 200:
            problems.append(f"DELETE answered {code}")
        answered_after_gone = False
        t0 = time.monotonic()
        silent_at = gone_at = None
        while time.monotonic() < t0 + 5 and gone_at is None:
            if silent_at is None:
                body, _ = curl(CLIENT, f"http://{ip}/", max_time=0.5)
                if body is None:
                    silent_at = time.monotonic() - t0
            if self.api.service_object("kprov") is None:
                gone_at = time.monotonic() - t0
                body, _ = curl(CLIENT, f"http://{ip}/", max_time=0.5)
                answered_after_gone = body is not None
            time.sleep(0.05)
        out.append(f"deleted: silent after {silent_at} s, gone (finalizer removed) after "
                   f"{gone_at} s")
        if gone_at is None:
            problems.append("kprov still there 5 s after its deletion (the finalizer stayed)")
        if silent_at is None or (gone_at is not None and silent_at > gone_at):
            problems.append("the address still answered when the finalizer went")
        if answered_after_gone:
            problems.append(f"{ip} answers after the Service is gone")
        if problems:
            raise Fail("\n".join(problems))

    def k8s_rbac(self, out):
        """Everything Magline asked of the API server in the cases above, as the shipped
        DaemonSet's service account under the shipped role: nothing forbidden, every rule used
        (but the one below, which a run without a lost race does not need)."""
        allow = {("", "services", "get"): "the provider reads a Service again only after a "
                 "write that lost a race (409); tests/deploy/run_test.py rbac injects one",
                 ("events.k8s.io", "events", "patch"): "an Event's series is patched only when "
                 "it repeats 30 s or more after its last write (tests/k8s_client/"
                 "event_writer_test.cpp writes one)",
                 ("", "nodes", "list"): "node targets only (kubernetes.targets nodes); "
                 "tests/deploy/run_test.py rbac runs them",
                 ("", "nodes", "watch"): "node targets only, as above"}
        forbidden, unused = self.api.rbac_findings(allow)
        out.append(f"{len(forbidden)} forbidden, unused grants: {unused or 'none'}")
        problems = [f"forbidden: {r}" for r in forbidden[:10]]
        problems += [f"granted, never used: {u}" for u in unused]
        if problems:
            raise Fail("\n".join(problems))

    def k8s_deleted(self, out):
        self.api.call("DELETE", f"/fake/objects/services/{k8s.NS}/kweb")
        t0 = time.monotonic()
        while time.monotonic() < t0 + 5:
            sent = time.monotonic()
            body, _ = curl(CLIENT, f"http://{VIP_K8S}/", max_time=1)
            if body is None:
                out.append(f"Service deleted: a request sent {sent - t0:.2f} s later got no "
                           f"answer")
                return
            time.sleep(0.1)
        raise Fail(f"{VIP_K8S}:80 still answers 5 s after its Service was deleted")

    def capture_on_demand(self, out):
        """DPDK's own dpdk-dumpcap attaches to the running Magline (`capture: true`) with a
        filter for one frontend and records its port while real HTTP crosses a full-NAT VIP:
        the client's connections as received, the same connections as sent to the backends
        after the rewrite, and their answers both ways; nothing else; no request fails."""
        if not self.magline.capture:
            raise SkipCase("Magline runs without capture (no hugepages or no dpdk-dumpcap)")
        pcap = os.path.join(self.workdir, "vip.pcapng")
        bpf = f"host {VIP_HTTP} or (host {LB_V4} and tcp port 8080)"
        dumpcap = subprocess.Popen(
            ["dpdk-dumpcap", f"--file-prefix={CAPTURE_PREFIX}", "-i", "net_af_packet0",
             "-f", bpf, "-w", pcap, "-a", "duration:30"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            end = time.monotonic() + 10  # the file is opened once dumpcap is attached
            while time.monotonic() < end and not os.path.exists(pcap):
                if dumpcap.poll() is not None:
                    raise Fail(f"dpdk-dumpcap exited with {dumpcap.returncode}: "
                               f"{tail(dumpcap.stdout.read())}")
                time.sleep(0.05)
            time.sleep(0.5)
            n = 10
            answers, errors = http_series(CLIENT, f"http://{VIP_HTTP}/", n)
            # Besides the frontend: traffic the filter must leave out.
            http_series(CLIENT2, f"http://{VIP_DNAT}/", 2)
            time.sleep(0.5)
        finally:
            dumpcap.send_signal(signal.SIGINT)
            try:
                said, _ = dumpcap.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                dumpcap.kill()
                said, _ = dumpcap.communicate()
        if dumpcap.returncode != 0:
            raise Fail(f"dpdk-dumpcap exited with {dumpcap.returncode}: {tail(said)}")
        kinds = {}
        for _, frame in pcapng_frames(pcap):
            kinds[capture_kind(frame)] = kinds.get(capture_kind(frame), 0) + 1
        out.append(f"{len(answers)}/{n} answered while captured; frames {kinds}")
        problems = list(errors)
        for kind in ("client SYN to the VIP", "Magline SYN to a backend", "backend to Magline",
                     "VIP to the client"):
            if kind not in kinds:
                problems.append(f"no frame seen: {kind}")
        for kind in ("client SYN to the VIP", "Magline SYN to a backend"):
            if kinds.get(kind, 0) < len(answers):
                problems.append(f"{kinds.get(kind, 0)} frames '{kind}' for {len(answers)} "
                                "connections")
        if "other" in kinds:
            problems.append(f"{kinds['other']} frames the filter should have left out")
        if problems:
            raise Fail("\n".join(problems))

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
            ("ping_vip", self.ping_vip),
            ("dnat", self.dnat),
            ("dsr", self.dsr),
            ("new_connection_limit", self.new_connection_limit),
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
            for name, fn in cases:
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

    global RUN_DEADLINE
    t0 = time.monotonic()
    RUN_DEADLINE = t0 + RUN_BUDGET_S
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
