"""The end-to-end cases of other Magline nodes (tests/e2e/README.md, "Cases"): a second
`magline run` in a namespace of its own, on its own port to the bridge, whose node traffic goes
through the exception path (a kernel interface). A mixin of e2e.Suite: `self` holds the run."""
import json
import time


from topology import (
    BACKENDS, CLIENT, CLIENT_V4, CLIENT_V6, FABRIC, NODES, PREFIX, VIP_NODES, Fail, attach_mgmt,
    build_node, in_ns, nsx, run,
)
from harness import (  # the process wrappers, clients, /metrics
    ADMIN_PORT, Agent, Magline, curl, http_series, parse_answer, tail,
)
from prometheus import parse_prometheus


KERNEL_IF = "k0"        # each node's kernel interface
EXCEPTION_RATE = 2000   # frames a second per worker to it (dataplane.exception_rate)
FLOOD_RATE, FLOOD_S = 20_000, 3  # the flood to the node's address: 10x what the kernel may get


def node_config(ns, v4, v6, bgp=None, services=(), sections=None, routes=()):
    """A node's configuration: its port (with the kernel interface), one full-NAT service of
    its own, and `services` (with `bgp`, the announced ones: cases_bgp.py); `sections` more
    top-level sections (kubernetes, provider); `routes` static routes (to, via) out of its
    port."""
    services = [{"name": "e2e/nodes:http", "mode": "full_nat",
                 "frontends": [{"address": VIP_NODES, "port": 80}],
                 "backends": [{"address": b[2], "port": 8080} for b in BACKENDS]},
                *services]
    return {
        "flow_table": {"capacity": 65536},
        "admin": {"address": "127.0.0.1", "port": ADMIN_PORT},  # the node's own loopback
        "dataplane": {
            "main_core": 0, "worker_cores": [1], "hugepages": False, "memory_mb": 256,
            "file_prefix": ns, "idle_sleep_max_us": 50, "exception_rate": EXCEPTION_RATE,
            "ports": [{"name": "n0", "device": "net_af_packet1,iface=eth0,qpairs=1",
                       "addresses": [f"{v4}/16", f"{v6}/64"],
                       "kernel_interface": KERNEL_IF}],
            "routes": [{"to": to, "via": via, "port": "n0"} for to, via in routes],
        },
        **({"bgp": bgp} if bgp else {}),
        **(sections or {}),
        "services": services,
    }


def wait_for(what, check, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise Fail(f"{what}: not within {seconds} s")


def node_samples(ns):
    """GET /metrics from the node's admin listener (in its namespace), parsed."""
    p = run(nsx(ns, "curl", "-sS", "--max-time", "3",
                f"http://127.0.0.1:{ADMIN_PORT}/metrics"), check=False, timeout=8)
    if p.returncode != 0:
        raise Fail(f"{ns}: GET /metrics: {p.stderr.strip()}")
    return parse_prometheus(p.stdout)


def total(samples, name, **labels):
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


class NodeCases:
    def start_node(self, ns, short, v4, v6, bgp=None, services=(), sections=None, mgmt=False,
                   routes=()):
        """Builds the node's namespace (with `mgmt`, its management interface too), starts its
        Magline and a server on its kernel's side; returns the Magline once its kernel
        interface is up."""
        build_node(ns, short)
        if mgmt:
            attach_mgmt(ns, short)
        node = Magline(self.args.magline, self.workdir, "af_packet", netns=ns, name=ns)
        node.write_json(node_config(ns, v4, v6, bgp, services, sections, routes))
        node.start()
        self.nodes.append(node)
        end = time.monotonic() + 15
        while time.monotonic() < end and "magline: forwarding" not in node.stderr():
            node.check_alive()
            time.sleep(0.05)
        if "magline: forwarding" not in node.stderr():
            raise Fail(f"{ns}: magline did not report forwarding within 15 s:\n"
                       f"{tail(node.stderr())}")
        server = Agent(ns, ["serve", short], self.workdir, f"server-{short}")
        self.agents.append(server)
        node.server = server
        if server.readline(10) != "ready":
            raise Fail(f"{ns}: the node's server did not start: {tail(server.stderr())}")
        return node

    def stop_nodes(self, out, problems):
        for node in self.nodes:
            rc, dt = node.stop(timeout=5)
            out.append(f"{node.netns}: magline exited with {rc} after {dt:.2f} s")
            if rc != 0:
                problems.append(f"{node.netns}: exit status {rc}; stderr:\n{tail(node.stderr())}")
            if run(nsx(node.netns, "ip", "link", "show", KERNEL_IF), check=False).returncode == 0:
                problems.append(f"{node.netns}: {KERNEL_IF} still there after Magline stopped")
            # The namespace goes with its node, so that the next case can build it afresh.
            if getattr(node, "server", None):
                node.server.stop()
            run(["ip", "netns", "del", node.netns], check=False)
            peer = node.netns.removeprefix(PREFIX)
            run(nsx(FABRIC, "ip", "link", "del", peer), check=False)
            wait_for(f"{peer} gone from the fabric", lambda: run(
                nsx(FABRIC, "ip", "link", "show", peer), check=False).returncode != 0, 5)
        self.nodes = []

    def exception_path(self, out):
        """A node's own traffic through its Magline port: the kernel interface holds the port's
        MAC and addresses; real TCP from a client to the node's address (both families), the
        node's kernel opening connections of its own (its neighbours resolved through Magline's
        ARP and NDP), and a flood to the node's address capped at dataplane.exception_rate
        while the node's service goes on forwarding."""
        ns, short, v4, v6 = NODES[0]
        problems = []
        try:
            self.start_node(ns, short, v4, v6)
            self.exception_checks(ns, v4, v6, out, problems)
        finally:
            self.stop_nodes(out, problems)
        if problems:
            raise Fail("\n".join(problems))

    def exception_checks(self, ns, v4, v6, out, problems):
        addrs = in_ns(ns, "ip", "-o", "addr", "show", "dev", KERNEL_IF).stdout
        link = in_ns(ns, "ip", "-o", "link", "show", KERNEL_IF).stdout
        port_mac = in_ns(ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
        out.append(f"{KERNEL_IF}: " + " ".join(
            f.split()[3] for f in addrs.splitlines() if len(f.split()) > 3))
        for a in (f"{v4}/16", f"{v6}/64"):
            if a not in addrs:
                problems.append(f"{KERNEL_IF} lacks {a}: {addrs!r}")
        if port_mac not in link or "UP" not in link:
            problems.append(f"{KERNEL_IF} is not up with the port's MAC {port_mac}: {link!r}")

        # In: a client's connections to the node's own addresses (SSH-like TCP).
        for url in (f"http://{v4}:8080/", f"http://[{v6}]:8080/"):
            answers, errors = http_series(CLIENT, url, 5)
            out.append(f"client -> {url}: {len(answers)}/5 answered by the node's kernel")
            problems += errors
            for a in answers:
                want = CLIENT_V4 if "[" not in url else CLIENT_V6
                if a.get("peer", "").rsplit(":", 1)[0].strip("[]") != want:
                    problems.append(f"{url}: the node saw peer {a.get('peer')}, not {want}")
        size = 1_000_000
        bulk = Agent(CLIENT, ["bulk", v4, "9000", str(size)], self.workdir, "node-bulk")
        self.agents.append(bulk)
        line = bulk.readline(30)
        bulk.stop()
        r = json.loads(line) if line else {"problems": [f"no answer: {tail(bulk.stderr())}"]}
        out.append(f"client -> {v4}:9000: {r.get('echoed', 0)}/{size} bytes echoed in "
                   f"{r.get('seconds')} s")
        problems += r["problems"]

        # Out: the node's kernel connects to a backend, each family.
        for b in (BACKENDS[0][2], f"[{BACKENDS[0][3]}]"):
            body, err = curl(ns, f"http://{b}:8080/")
            if body is None:
                problems.append(f"the node's kernel -> {b}:8080: {err}")
            else:
                peer = parse_answer(body).get("peer", "").rsplit(":", 1)[0].strip("[]")
                out.append(f"node kernel -> {b}:8080: answered, the backend saw {peer}")
                if peer not in (v4, v6):
                    problems.append(f"the backend saw the node as {peer}")

        # A flood to the node's address, with the node's service used beside it. The workers
        # publish their counters every few 100 ms: a second's wait on each side of it.
        time.sleep(1)
        before = node_samples(ns)
        flood = Agent(CLIENT, ["udpflood", v4, "7", str(FLOOD_RATE), str(FLOOD_S)],
                      self.workdir, "node-flood")
        self.agents.append(flood)
        if flood.readline(5) != "flooding":
            raise Fail(f"the flood did not start: {tail(flood.stderr())}")
        answers, errors = http_series(CLIENT, f"http://{VIP_NODES}/", 10)
        line = flood.readline(FLOOD_S + 10)
        flood.stop()
        time.sleep(1)
        after = node_samples(ns)
        sent = json.loads(line)["sent"] if line else 0
        seconds = json.loads(line)["seconds"] if line else FLOOD_S
        to_kernel = (total(after, "magline_to_kernel_total") -
                     total(before, "magline_to_kernel_total"))
        limited = (total(after, "magline_drops_total", reason="kernel_rate_limited") -
                   total(before, "magline_drops_total", reason="kernel_rate_limited"))
        written = (total(after, "magline_exception_frames_total", direction="to_kernel") -
                   total(before, "magline_exception_frames_total", direction="to_kernel"))
        lost = {k: total(after, n, **ls) - total(before, n, **ls) for k, n, ls in (
            ("refused", "magline_exception_dropped_total", {"reason": "kernel_refused"}),
            ("slow_ring_full", "magline_slow_ring_full_total", {}))}
        out.append(f"flood: {sent} datagrams in {seconds} s to {v4}:7; {to_kernel} to the kernel "
                   f"({to_kernel / seconds:.0f}/s, cap {EXCEPTION_RATE}/s), {written} written, "
                   f"{limited} dropped as kernel_rate_limited; lost on the way: {lost}")
        out.append(f"beside it, {VIP_NODES}:80 through the node: {len(answers)}/10 answered")
        problems += errors
        if sent < FLOOD_RATE * FLOOD_S // 2:
            problems.append(f"the flood sent only {sent} datagrams")
        # Frames reached the kernel at the cap: its rate, and a tenth of a second's burst.
        if to_kernel > EXCEPTION_RATE * (seconds + 0.5):
            problems.append(f"{to_kernel} frames to the kernel in {seconds} s: over the cap")
        if limited < sent // 2:
            problems.append(f"only {limited} of {sent} flood frames dropped at the cap")
        # Written: the workers' frames and the ARP and NDP the kernel also hears.
        if written < to_kernel or any(lost.values()):
            problems.append(f"{to_kernel} frames for the kernel, {written} written to it, "
                            f"lost: {lost}")
