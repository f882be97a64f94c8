"""The end-to-end suite's harness (tests/e2e/e2e.py): Magline's configuration and process,
the agents (servers and clients in the namespaces), packet sniffers, HTTP series, /metrics
scrapes. Standard library only."""
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import time
import urllib.request

from topology import (  # names, addresses, command helpers, cleanup
    AGENT, BACKENDS, CLIENT_V4, ENCAP_SOURCE_V4, FAR_BACKENDS, FAR_NET_V4, FAR_NET_V6, FLOOD_NET_V4,
    Fail, LB_IF, LB_V4, LB_V4_DNAT, LB_V6, LB_V6_DNAT, NODE_PORT, PREFIX, PROVIDER_POOL, PYTHON,
    ROUTER_V4, ROUTER_V6, VIP_DNAT, VIP_DNAT6, VIP_DSR, VIP_DSR6, VIP_ECHO, VIP_GUE, VIP_HTTP,
    VIP_FAR, VIP_FAR6, VIP_HTTP6, VIP_IPIP, VIP_IPIP6, VIP_LIMITED, VIP_UDP, VIP_UDP6, in_ns,
    nsx, run,
)
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


PROXIED_PORT = 81  # the SYN-proxied services' port on VIP_HTTP, VIP_HTTP6 and VIP_ECHO
LIMIT_RATE, LIMIT_BURST = 2, 5  # e2e/limited:http's new connections a second, and burst


def magline_config(echo_backends, pmd="af_packet", kubeconfig=None, web_backends=None,
                   capture=False):
    def backends(addrs, port):
        return [{"address": a, "port": port} for a in addrs]

    v4 = [b[2] for b in BACKENDS]
    v6 = [b[3] for b in BACKENDS]
    far_v4 = [b[2] for b in FAR_BACKENDS]
    far_v6 = [b[3] for b in FAR_BACKENDS]
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
                "addresses": [f"{LB_V4}/16", f"{LB_V4_DNAT}/24", f"{LB_V6}/64",
                              f"{LB_V6_DNAT}/64"],
            }],
            "routes": [{"to": FAR_NET_V4, "via": ROUTER_V4, "port": "lb0"},
                       {"to": FAR_NET_V6, "via": ROUTER_V6, "port": "lb0"},
                       # The SYN floods' made-up clients, as if behind the router: DNAT sends
                       # their SYNs on without state only where a route leads back.
                       {"to": FLOOD_NET_V4, "via": ROUTER_V4, "port": "lb0"}],
            # No `mtu`: the far link's is learned from the router's ICMP errors.
            "encapsulation": {"source_v4": ENCAP_SOURCE_V4},
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
            {"name": "e2e/dnat:echo", "mode": "dnat",  # SYN flood guard `auto` (the default)
             "frontends": [{"address": VIP_DNAT, "port": 9000}],
             "backends": backends(v4, 9000)},
            {"name": "e2e/dnat:udp", "mode": "dnat",
             "frontends": [{"address": VIP_DNAT, "port": 53, "protocol": "udp"}],
             "backends": backends(v4, 5353)},
            {"name": "e2e/dsr:udp", "mode": "dsr_l2",
             "frontends": [{"address": VIP_DSR, "port": 5353, "protocol": "udp"}],
             "backends": backends(v4, 5353)},
            {"name": "e2e/dnat6:udp", "mode": "dnat",
             "frontends": [{"address": VIP_DNAT6, "port": 53, "protocol": "udp"}],
             "backends": backends(v6, 5353)},
            {"name": "e2e/dsr6:udp", "mode": "dsr_l2",
             "frontends": [{"address": VIP_DSR6, "port": 5353, "protocol": "udp"}],
             "backends": backends(v6, 5353)},
            {"name": "e2e/dns6:udp", "mode": "full_nat",
             "frontends": [{"address": VIP_UDP6, "port": 53, "protocol": "udp"}],
             "backends": backends(v6, 5353)},
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
            # Full-NAT with the SYN proxy always on: Magline answers every handshake itself.
            {"name": "e2e/proxied:http", "mode": "full_nat", "syn_proxy": "on",
             "frontends": [{"address": VIP_HTTP, "port": PROXIED_PORT}],
             "backends": backends(v4, 8080)},
            {"name": "e2e/proxied6:http", "mode": "full_nat", "syn_proxy": "on",
             "frontends": [{"address": VIP_HTTP6, "port": PROXIED_PORT}],
             "backends": backends(v6, 8080)},
            {"name": "e2e/proxied:echo", "mode": "full_nat", "syn_proxy": "on",
             "frontends": [{"address": VIP_ECHO, "port": PROXIED_PORT}],
             "backends": backends(v4, 9000)},
            # Full-NAT to the backends behind the router, whose link is smaller (nat_path_mtu).
            {"name": "e2e/far:udp", "mode": "full_nat",
             "frontends": [{"address": VIP_FAR, "port": 5353, "protocol": "udp"}],
             "backends": backends(far_v4, 5353)},
            {"name": "e2e/far6:udp", "mode": "full_nat",
             "frontends": [{"address": VIP_FAR6, "port": 5353, "protocol": "udp"}],
             "backends": backends(far_v6, 5353)},
            # Backends behind the router: IPv4 in IPv4, IPv4 in GUE over IPv6, IPv6 in IPv6.
            {"name": "e2e/ipip:http", "mode": "ipip",
             "frontends": [{"address": VIP_IPIP, "port": 80}], "backends": backends(far_v4, 80)},
            {"name": "e2e/ipip:echo", "mode": "ipip",
             "frontends": [{"address": VIP_IPIP, "port": 9000}],
             "backends": backends(far_v4, 9000)},
            {"name": "e2e/ipip:udp", "mode": "ipip",
             "frontends": [{"address": VIP_IPIP, "port": 5353, "protocol": "udp"}],
             "backends": backends(far_v4, 5353)},
            {"name": "e2e/gue:udp", "mode": "gue",
             "frontends": [{"address": VIP_GUE, "port": 5353, "protocol": "udp"}],
             "backends": backends(far_v6, 5353)},
            {"name": "e2e/gue:http", "mode": "gue",
             "frontends": [{"address": VIP_GUE, "port": 80}], "backends": backends(far_v6, 80)},
            {"name": "e2e/ipip6:http", "mode": "ipip",
             "frontends": [{"address": VIP_IPIP6, "port": 80}], "backends": backends(far_v6, 80)},
        ],
    }


LIBC = ctypes.CDLL(None)
PR_SET_PDEATHSIG = 1


def pdeathsig():
    """In the child, before exec: SIGTERM when the harness dies, even by SIGKILL."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Magline:
    """A `magline run`: the suite's own in the root namespace, or another node's in a namespace
    of its own (`netns`, files named after `name`; its configuration from write_json())."""
    def __init__(self, binary, workdir, pmd, embedded=False, kubeconfig=None, capture=False,
                 netns=None, name="magline"):
        self.binary = binary
        self.capture = capture
        self.kubeconfig = kubeconfig
        self.pmd = pmd
        self.netns = netns
        self.embedded = embedded  # demo: run on the configuration built into the binary
        self.config = os.path.join(workdir, f"{name}.json")
        self.stats = os.path.join(
            workdir, "stats.json" if name == "magline" else f"{name}-stats.json")
        self.out_path = os.path.join(workdir, f"{name}.stdout")
        self.err_path = os.path.join(workdir, f"{name}.stderr")
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

    def write_json(self, config):
        """Writes a whole configuration of the caller's."""
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
        os.replace(tmp, self.config)

    def start(self):
        config = [] if self.embedded else ["--config", self.config]
        cmd = [self.binary, "run"] + config + ["--stats", self.stats]
        self.proc = subprocess.Popen(
            nsx(self.netns, *cmd) if self.netns else cmd,
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
    """A long-lived agent.py process (or another script of ours) in a namespace."""

    def __init__(self, ns, args, workdir, name, script=AGENT):
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self.proc = subprocess.Popen(nsx(ns, PYTHON, script, *args), stdout=subprocess.PIPE,
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


# The whole run stays well under 3 minutes even when everything half-works: each series has
# a budget, and none starts a request after the run's deadline.
SERIES_BUDGET_S = 10.0
RUN_BUDGET_S = 150.0
RUN_DEADLINE = time.monotonic() + RUN_BUDGET_S  # reset by start_run_clock()


def start_run_clock():
    """Starts the run's time budget (the series share RUN_BUDGET_S between them)."""
    global RUN_DEADLINE
    RUN_DEADLINE = time.monotonic() + RUN_BUDGET_S


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
