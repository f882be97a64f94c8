"""The end-to-end cases of other Magline nodes (tests/e2e/README.md, "Cases"): a second
`magline run` in a namespace of its own, on its own port to the bridge, whose node traffic goes
through the exception path (a kernel interface). A mixin of e2e.Suite: `self` holds the run."""
import json
import time

import os
import subprocess

from topology import (
    BACKENDS, CLIENT, CLIENT_V4, CLIENT_V6, FABRIC, NODE_AS, NODES, PREFIX, ROUTER, ROUTER_AS,
    ROUTER_V4, VIP_BGP, VIP_NODES, Fail, build_node, in_ns, nsx, run,
)
from harness import (  # the process wrappers, clients, /metrics
    ADMIN_PORT, Agent, Magline, curl, http_series, parse_answer, tail,
)
from prometheus import parse_prometheus


KERNEL_IF = "k0"        # each node's kernel interface
EXCEPTION_RATE = 2000   # frames a second per worker to it (dataplane.exception_rate)
FLOOD_RATE, FLOOD_S = 20_000, 3  # the flood to the node's address: 10x what the kernel may get


def node_config(ns, v4, v6, bgp=None, bgp_backends=None):
    services = [{"name": "e2e/nodes:http", "mode": "full_nat",
                 "frontends": [{"address": VIP_NODES, "port": 80}],
                 "backends": [{"address": b[2], "port": 8080} for b in BACKENDS]}]
    if bgp:
        services.append({"name": "e2e/bgp:http", "mode": "full_nat",
                         "frontends": [{"address": VIP_BGP, "port": 80}],
                         "backends": [{"address": a, "port": 8080} for a in bgp_backends]})
    return {
        "flow_table": {"capacity": 65536},
        "admin": {"address": "127.0.0.1", "port": ADMIN_PORT},  # the node's own loopback
        "dataplane": {
            "main_core": 0, "worker_cores": [1], "hugepages": False, "memory_mb": 256,
            "file_prefix": ns, "idle_sleep_max_us": 50, "exception_rate": EXCEPTION_RATE,
            "ports": [{"name": "n0", "device": "net_af_packet1,iface=eth0,qpairs=1",
                       "addresses": [f"{v4}/16", f"{v6}/64"],
                       "kernel_interface": KERNEL_IF}],
        },
        **({"bgp": bgp} if bgp else {}),
        "services": services,
    }


def router_bird_config(nodes):
    """The router's BIRD: a passive session with each node, every route learned into the
    router's kernel, several next hops for one address merged into one ECMP route."""
    text = [f"router id {ROUTER_V4};", "protocol device {}",
            "protocol kernel { ipv4 { import none; export all; }; merge paths on; }"]
    for ns, _, v4, _ in nodes:
        text.append(f"protocol bgp {ns.replace('-', '_')} {{ local as {ROUTER_AS}; "
                    f"neighbor {v4} as {NODE_AS}; passive; hold time 9; "
                    "ipv4 { import all; export none; }; }")
    return "\n".join(text) + "\n"


def router_routes(prefix):
    """The router's kernel routes for `prefix`: the next hops, sorted."""
    out = in_ns(ROUTER, "ip", "-o", "route", "show", prefix, check=False).stdout
    hops = []
    for word, value in zip(out.split(), out.split()[1:]):
        if word == "via":
            hops.append(value)
    return sorted(hops)


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
    def start_node(self, ns, short, v4, v6, bgp=None, bgp_backends=None):
        """Builds the node's namespace, starts its Magline and a server on its kernel's side;
        returns the Magline once its kernel interface is up."""
        build_node(ns, short)
        node = Magline(self.args.magline, self.workdir, "af_packet", netns=ns, name=ns)
        node.write_json(node_config(ns, v4, v6, bgp, bgp_backends))
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

    def start_bird(self, ns, name, config_path):
        """BIRD in the foreground in `ns` (killed at the case's end), on `config_path`, with its
        control socket beside it; returns the socket's path once BIRD answers there."""
        sock = os.path.join(self.workdir, f"{name}.ctl")
        log_path = os.path.join(self.workdir, f"{name}.log")
        proc = subprocess.Popen(
            nsx(ns, "bird", "-f", "-c", config_path, "-s", sock,
                "-P", os.path.join(self.workdir, f"{name}.pid")),
            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.birds.append(proc)
        wait_for(f"BIRD {name} answering on {sock}",
                 lambda: run(["birdc", "-s", sock, "show", "status"], check=False).returncode == 0
                 or proc.poll() is not None, 10)
        if proc.poll() is not None:
            with open(log_path) as f:
                raise Fail(f"BIRD {name} exited with {proc.returncode}: {f.read()[-2000:]}")
        return sock

    def stop_birds(self):
        for proc in self.birds:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.birds = []

    def bgp_announce(self, out):
        """A node announces its service's address over BGP through a real BIRD, which peers
        with the router's BIRD over the node's exception path; the router installs the route
        in its kernel and a client reaches the service through it. The address is withdrawn when
        the service loses its last backend (reload) and announced again when one returns; on
        SIGTERM the node withdraws it, keeps forwarding for its drain time, then stops."""
        ns, short, v4, v6 = NODES[0]
        problems = []
        router_conf = os.path.join(self.workdir, "router-bird.conf")
        with open(router_conf, "w") as f:
            f.write(router_bird_config(NODES[:1]))
        bird_conf = os.path.join(self.workdir, f"{ns}-bird.conf")
        bgp = {"bird_config": bird_conf,
               "bird_socket": os.path.join(self.workdir, f"{ns}-bird.ctl"),
               "local_as": NODE_AS, "peers": [{"address": ROUTER_V4, "as": ROUTER_AS,
                                                "hold_time_s": 9}],
               "communities": ["65001:100"], "drain_ms": 2000}
        backends = [b[2] for b in BACKENDS]
        in_ns(CLIENT, "ip", "route", "add", f"{VIP_BGP}/32", "via", ROUTER_V4)
        try:
            self.start_bird(ROUTER, "router-bird", router_conf)
            t0 = time.monotonic()
            node = self.start_node(ns, short, v4, v6, bgp, backends)
            self.start_bird(ns, f"{ns}-bird", bird_conf)  # on the file Magline wrote
            t = wait_for(f"the router's route to {VIP_BGP} via {v4}",
                         lambda: router_routes(VIP_BGP) == [v4], 30)
            out.append(f"{VIP_BGP} announced: the router routes it via {router_routes(VIP_BGP)} "
                       f"{t - t0:.1f} s after the node started")
            answers, errors = http_series(CLIENT, f"http://{VIP_BGP}/", 5)
            problems += errors
            peers = sorted({a.get("peer", "").rsplit(":", 1)[0] for a in answers})
            out.append(f"client -> {VIP_BGP}:80 through the router: {len(answers)}/5 answered, "
                       f"the backends saw {peers}")
            if answers and peers != [v4]:
                problems.append(f"the backends saw {peers}, not the node's {v4}")

            # The service loses its last backend: withdrawn; one returns: announced again.
            node.write_json(node_config(ns, v4, v6, bgp, []))
            node.reload()
            t1 = time.monotonic()
            t = wait_for(f"{VIP_BGP} withdrawn", lambda: router_routes(VIP_BGP) == [], 15)
            out.append(f"no backend left: withdrawn from the router in {(t - t1) * 1000:.0f} ms")
            node.write_json(node_config(ns, v4, v6, bgp, backends[:1]))
            node.reload()
            t1 = time.monotonic()
            t = wait_for(f"{VIP_BGP} announced again", lambda: router_routes(VIP_BGP) == [v4], 15)
            out.append(f"a backend back: announced again in {(t - t1) * 1000:.0f} ms")
            samples = node_samples(ns)
            out.append("node: magline_bgp_session_up " + str(
                {dict(ls).get("peer"): v for (n, ls), v in samples.items()
                 if n == "magline_bgp_session_up"}) + ", announced addresses "
                + str(total(samples, "magline_bgp_announced_addresses")))
            if total(samples, "magline_bgp_session_up") != 1:
                problems.append("magline_bgp_session_up is not 1 for the router's session")

            # SIGTERM: withdrawn first, forwarding for the drain, then the exit.
            t1 = time.monotonic()
            node.proc.send_signal(15)
            t = wait_for(f"{VIP_BGP} withdrawn on SIGTERM", lambda: router_routes(VIP_BGP) == [],
                         10)
            alive = node.alive()
            out.append(f"SIGTERM: withdrawn from the router in {(t - t1) * 1000:.0f} ms, "
                       f"the node still {'forwarding' if alive else 'gone'} then")
            if not alive:
                problems.append("the node stopped before the router had withdrawn the route")
            rc = node.proc.wait(10)
            out.append(f"the node exited with {rc} {time.monotonic() - t1:.1f} s after SIGTERM "
                       f"(drain_ms 2000)")
            if rc != 0:
                problems.append(f"exit status {rc}: {tail(node.stderr())}")
            with open(bird_conf) as f:
                if "route " in f.read():
                    problems.append(f"{bird_conf} still has routes after the stop")
        finally:
            self.stop_birds()
            self.stop_nodes(out, problems)
            in_ns(CLIENT, "ip", "route", "del", f"{VIP_BGP}/32", check=False)
        if problems:
            raise Fail("\n".join(problems))
