"""The end-to-end cases of announcement (tests/e2e/README.md, "Cases"): Magline nodes in
namespaces of their own (cases_nodes.py) drive a real BIRD each, which peers over the node's
exception path with the router's BIRD; the router installs what it learns in its kernel, several
nodes' routes to one address merged into one ECMP route. Without BGP, the L2 speaker: nodes on
one segment share an address, one answering ARP for it. A mixin of e2e.Suite."""
import json
import os
import subprocess
import time

import k8s
from topology import (
    BACKENDS, CLIENT, CLIENT2, CLIENT2_NET, CLIENT_V4, FABRIC, LB_V4, MGMT_BRIDGE, MGMT_HOST,
    NODE_AS, NODES, ROUTER, ROUTER_AS, ROUTER_V4, ROUTER_V4_C2, VIP_BGP, VIP_ECMP_DNAT,
    VIP_ECMP_DSR, VIP_L2, Fail, build_mgmt, in_ns, nsx, run,
)
from harness import ADMIN_PORT, Agent, http_series, parse_answer, read_mac, tail
from cases_nodes import node_config, node_samples, total, wait_for


DRAIN_MS = 2000  # bgp.drain_ms of the nodes
STREAMS, STREAM_S = 8, 10  # long-lived DSR connections across a node's stop
# Client ports sent through each node in turn: above Linux's ephemeral range (32768-60999), so
# that no other connection of the client's (the long streams beside them) can hold one.
PAIRED_PORTS = range(61000, 61016)
L2_LEASE_MS, L2_RETRY_MS = 3000, 500  # the L2 nodes' election timing (failover within both)
L2_STREAMS, L2_STREAM_S = 4, 12


def bgp_service(backends):
    """The full-NAT service announced over BGP, on `backends` (their IPv4 addresses)."""
    return {"name": "e2e/bgp:http", "mode": "full_nat",
            "frontends": [{"address": VIP_BGP, "port": 80}],
            "backends": [{"address": a, "port": 8080} for a in backends]}


def l2_services():
    """L2 DSR on the shared on-link address: HTTP and a line echo (the backends hold it on lo
    while the case runs)."""
    return [{"name": f"e2e/l2:{name}", "mode": "dsr_l2",
             "frontends": [{"address": VIP_L2, "port": port}],
             "backends": [{"address": b[2], "port": port} for b in BACKENDS]}
            for name, port in (("http", 80), ("stream", 9000))]


def client_neighbour(addr):
    """The client's neighbour entry for `addr`: its MAC, or None."""
    words = in_ns(CLIENT, "ip", "neigh", "show", addr, check=False).stdout.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None


def stream_results(streams, wait_s):
    """The streams' summaries (agent.py stream): how many echoed every line, and a report."""
    results = [json.loads(s.readline(wait_s) or '{"problems": ["no summary"]}') for s in streams]
    whole = sum(1 for r in results if not r["problems"] and r["echoed"] == r["sent"])
    return whole, (f"{whole}/{len(streams)} echoed every line "
                   f"({sum(r.get('echoed', 0) for r in results)} lines; longest wait for an echo "
                   f"{max(r.get('max_wait_s', 0) for r in results):.1f} s); problems: "
                   f"{[p for r in results for p in r['problems']][:3]}")


def dsr_services():
    """L2 DSR services on one announced address: HTTP and a line echo (the backends hold the
    address on lo while the case runs)."""
    return [{"name": f"e2e/ecmp:{name}", "mode": "dsr_l2",
             "frontends": [{"address": VIP_ECMP_DSR, "port": port}],
             "backends": [{"address": b[2], "port": port} for b in BACKENDS]}
            for name, port in (("http", 80), ("stream", 9000))]


def dnat_services():
    """DNAT services on one announced address, for client 2 (the backends see it, and route
    their replies to its subnet through one node): HTTP and a line echo."""
    return [{"name": f"e2e/ecmp-dnat:{name}", "mode": "dnat",
             "frontends": [{"address": VIP_ECMP_DNAT, "port": port}],
             "backends": [{"address": b[2], "port": port} for b in BACKENDS]}
            for name, port in (("http", 80), ("stream", 9000))]


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


class BgpCases:
    def node_bgp(self, ns):
        """A node's bgp section: one session with the router, its BIRD's files in the work
        directory."""
        return {"bird_config": os.path.join(self.workdir, f"{ns}-bird.conf"),
                "bird_socket": os.path.join(self.workdir, f"{ns}-bird.ctl"),
                "local_as": NODE_AS, "peers": [{"address": ROUTER_V4, "as": ROUTER_AS,
                                                 "hold_time_s": 9}],
                "communities": ["65001:100"], "drain_ms": DRAIN_MS}

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
        bgp = self.node_bgp(ns)
        bird_conf = bgp["bird_config"]
        backends = [b[2] for b in BACKENDS]
        in_ns(CLIENT, "ip", "route", "add", f"{VIP_BGP}/32", "via", ROUTER_V4)
        try:
            self.start_bird(ROUTER, "router-bird", router_conf)
            t0 = time.monotonic()
            node = self.start_node(ns, short, v4, v6, bgp, [bgp_service(backends)])
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
            node.write_json(node_config(ns, v4, v6, bgp, [bgp_service([])]))
            node.reload()
            t1 = time.monotonic()
            t = wait_for(f"{VIP_BGP} withdrawn", lambda: router_routes(VIP_BGP) == [], 15)
            out.append(f"no backend left: withdrawn from the router in {(t - t1) * 1000:.0f} ms")
            node.write_json(node_config(ns, v4, v6, bgp, [bgp_service(backends[:1])]))
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

    def ecmp_failover(self, out):
        """Two nodes announce the same addresses over BGP; the router merges their routes into
        one ECMP route (fib_multipath_hash_policy 1: the ports in the hash) and spreads the
        client's connections over both. The same client tuples sent through each node in turn
        reach the same backend (identical Maglev tables, no shared state). The backends route
        their replies to client 2 through the second node, which translates those of the first
        node's DNAT connections without an entry. The first node stops (SIGTERM): the router
        withdraws its path first, and long-lived L2 DSR and DNAT connections that crossed it go
        on through the other node with every line echoed and no reset."""
        nodes = NODES[:2]
        hops = sorted(n[2] for n in nodes)
        gateway = nodes[1][2]  # the backends' route back to client 2
        problems = []
        backends = [b[2] for b in BACKENDS]
        services = [bgp_service(backends), *dsr_services(), *dnat_services()]
        router_conf = os.path.join(self.workdir, "router-bird.conf")
        with open(router_conf, "w") as f:
            f.write(router_bird_config(nodes))
        client_vips = (VIP_BGP, VIP_ECMP_DSR)
        vips = (*client_vips, VIP_ECMP_DNAT)
        for ns, *_ in BACKENDS:
            in_ns(ns, "ip", "addr", "add", f"{VIP_ECMP_DSR}/32", "dev", "lo")
            in_ns(ns, "ip", "route", "replace", CLIENT2_NET, "via", gateway)
        for vip in client_vips:
            in_ns(CLIENT, "ip", "route", "add", f"{vip}/32", "via", ROUTER_V4)
        in_ns(CLIENT2, "ip", "route", "add", f"{VIP_ECMP_DNAT}/32", "via", ROUTER_V4_C2)
        streams = {}
        try:
            self.start_bird(ROUTER, "router-bird", router_conf)
            t0 = time.monotonic()
            running = {}
            for ns, short, v4, v6 in nodes:
                bgp = self.node_bgp(ns)
                running[ns] = self.start_node(ns, short, v4, v6, bgp, services,
                                              routes=[(CLIENT2_NET, ROUTER_V4)])
                self.start_bird(ns, f"{ns}-bird", bgp["bird_config"])
            for vip in vips:
                wait_for(f"the router's ECMP route to {vip} via {hops}",
                         lambda: router_routes(vip) == hops, 30)
            out.append(f"{', '.join(vips)}: the router routes each via {hops} "
                       f"{time.monotonic() - t0:.1f} s after the first node started")

            # Spread: a full-NAT backend sees the node it came through.
            answers, errors = http_series(CLIENT, f"http://{VIP_BGP}/", 24)
            problems += errors
            by_node = {}
            for a in answers:
                node = a.get("peer", "").rsplit(":", 1)[0]
                by_node[node] = by_node.get(node, 0) + 1
            out.append(f"{len(answers)} connections to {VIP_BGP}:80 through the router, "
                       f"by node: {by_node}")
            if sorted(by_node) != hops:
                problems.append(f"the router's flows crossed {sorted(by_node)}, not {hops}")

            # The same tuples through each node in turn: the same backend.
            self.paired_tuples(nodes, client_vips, out, problems)

            # Long-lived DSR and DNAT connections across the stop of the first node.
            for vip in client_vips:
                in_ns(CLIENT, "ip", "route", "replace", f"{vip}/32", "via", ROUTER_V4)
            for client, vip in ((CLIENT, VIP_ECMP_DSR), (CLIENT2, VIP_ECMP_DNAT)):
                streams[vip] = [Agent(client, ["stream", vip, "9000", str(STREAM_S)],
                                      self.workdir, f"ecmp-stream-{vip}-{i}")
                                for i in range(STREAMS)]
                self.agents += streams[vip]
            first, second = nodes[0][0], nodes[1][0]
            for vip, ss in streams.items():
                greetings = [json.loads(s.readline(5) or "{}") for s in ss]
                if not all(g.get("greeting") for g in greetings):
                    raise Fail(f"streams to {vip} not greeted: {greetings}")
                carried = self.carried(running, f"{vip}:9000/tcp")
                out.append(f"{STREAMS} streams to {vip}:9000 (backends "
                           f"{sorted(g['greeting'].split()[-1] for g in greetings)}); packets "
                           f"each node carried in 1 s: {carried}")
                if not carried[first]:
                    problems.append(f"no stream to {vip} crossed {first}: nothing to fail over")
            translated = total(node_samples(second), "magline_stateless_replies_total")
            out.append(f"{second}, the backends' gateway to client 2, translated {translated:.0f} "
                       f"DNAT replies of {first}'s connections without an entry")
            if not translated:
                problems.append(f"{second} translated no DNAT reply without an entry")
            # Client 2 is routed through a known neighbour, the router: each node opens its
            # DNAT connections with one entry (architecture.md, "One entry per DNAT
            # connection").
            one_entry = {n: total(node_samples(n), "magline_one_entry_connections_total")
                         for n in (first, second)}
            out.append(f"DNAT connections opened with one entry: {one_entry}")
            if not one_entry[first]:
                problems.append(f"{first} opened no DNAT connection of one entry")

            stopped = running[first]
            t1 = time.monotonic()
            stopped.proc.send_signal(15)
            for vip in vips:
                wait_for(f"{first}'s path to {vip} withdrawn on SIGTERM",
                         lambda: router_routes(vip) == [nodes[1][2]], 10)
            alive = stopped.alive()
            out.append(f"SIGTERM to {first}: its paths withdrawn from the router in "
                       f"{(time.monotonic() - t1) * 1000:.0f} ms, the node still "
                       f"{'forwarding' if alive else 'gone'} then")
            if not alive:
                problems.append(f"{first} stopped before the router had withdrawn its paths")
            rc = stopped.proc.wait(DRAIN_MS / 1000 + 8)
            out.append(f"{first} exited with {rc} {time.monotonic() - t1:.1f} s after SIGTERM")
            for vip, ss in streams.items():
                whole, report = stream_results(ss, STREAM_S + 10)
                out.append(f"the streams to {vip} after the stop: {report}")
                if whole != STREAMS:
                    problems.append(f"{STREAMS - whole} streams to {vip} broke across the stop "
                                    f"of {first}")
            for client, vip in ((CLIENT, VIP_ECMP_DSR), (CLIENT2, VIP_ECMP_DNAT)):
                answers, errors = http_series(client, f"http://{vip}/", 5)
                out.append(f"new connections to {vip} after the stop: {len(answers)}/5 answered")
                problems += errors
        finally:
            for s in (s for ss in streams.values() for s in ss):
                s.stop()
            self.stop_birds()
            self.stop_nodes(out, problems)
            for vip in client_vips:
                in_ns(CLIENT, "ip", "route", "del", f"{vip}/32", check=False)
            in_ns(CLIENT2, "ip", "route", "del", f"{VIP_ECMP_DNAT}/32", check=False)
            for ns, *_ in BACKENDS:
                in_ns(ns, "ip", "addr", "del", f"{VIP_ECMP_DSR}/32", "dev", "lo", check=False)
                in_ns(ns, "ip", "route", "replace", CLIENT2_NET, "via", LB_V4, check=False)
        if problems:
            raise Fail("\n".join(problems))

    @staticmethod
    def carried(running, frontend):
        """The packets each running node counted for `frontend` in one second (the workers
        publish their counters every few 100 ms)."""
        time.sleep(1.0)
        before = {ns: total(node_samples(ns), "magline_frontend_packets_total",
                            frontend=frontend) for ns in running}
        time.sleep(1.0)
        return {ns: total(node_samples(ns), "magline_frontend_packets_total",
                          frontend=frontend) - before[ns] for ns in running}

    def paired_tuples(self, nodes, vips, out, problems):
        """The client sends the same tuples (its address, PAIRED_PORTS, each address's port 80)
        straight to each node in turn, by route; each tuple must reach the same backend."""
        chosen = {}  # (vip, client port) -> {node: backend}
        for _, _, v4, _ in nodes:
            for vip in vips:
                in_ns(CLIENT, "ip", "route", "replace", f"{vip}/32", "via", v4)
            for vip in vips:
                agent = Agent(CLIENT, ["tuples", vip, "80", str(PAIRED_PORTS[0]),
                                       str(len(PAIRED_PORTS))], self.workdir, "tuples")
                line = agent.readline(len(PAIRED_PORTS) * 4)
                agent.stop()
                if not line:
                    raise Fail(f"tuples to {vip} via {v4}: no answer: {tail(agent.stderr())}")
                for r in json.loads(line):
                    if "error" in r:
                        problems.append(f"{vip} from port {r['port']} via {v4}: {r['error']}")
                        continue
                    a = parse_answer(r["answer"])
                    if "backend" not in a:
                        problems.append(f"{vip} from port {r['port']} via {v4}: {r['answer']!r}")
                        continue
                    chosen.setdefault((vip, r["port"]), {})[v4] = a.get("backend")
                    # Full-NAT: the backend sees the node; DSR: the client's own port.
                    want = v4 if vip == VIP_BGP else f"{CLIENT_V4}:{r['port']}"
                    if not a.get("peer", "").startswith(want):
                        problems.append(f"{vip} via {v4}: the backend saw {a.get('peer')}")
        same = [k for k, v in chosen.items() if len(v) == len(nodes) and len(set(v.values())) == 1]
        used = sorted({str(b) for v in chosen.values() for b in v.values()})
        out.append(f"{len(chosen)} client tuples sent through each node in turn: {len(same)} "
                   f"reached the same backend through both (backends used: {used})")
        if len(same) != len(chosen) or len(chosen) != len(vips) * len(PAIRED_PORTS):
            differ = {f"{k[0]}:{k[1]}": v for k, v in chosen.items() if k not in same}
            problems.append(f"tuples with different or missing backends: {differ}")

    def l2_failover(self, out):
        """Two nodes share an on-link address with the L2 speaker (provider.l2_speaker), their
        Leases on a fake API server they reach over a management network: exactly one answers
        ARP for it. L2 DSR streams run through the owner; it is killed (SIGKILL: no hand-over),
        the other sees its Lease run out, takes the address over and announces it (gratuitous
        ARP: the client's neighbour entry moves) within the lease duration and a retry period,
        and every stream goes on through it."""
        nodes = NODES[:2]
        problems = []
        build_mgmt()
        for ns, *_ in BACKENDS:
            in_ns(ns, "ip", "addr", "add", f"{VIP_L2}/32", "dev", "lo")
        api, streams = None, []
        try:
            api = k8s.FakeApi(self.workdir, host=MGMT_HOST, name="l2-apiserver")
            running, macs = {}, {}
            for ns, short, v4, v6 in nodes:
                sections = {
                    "kubernetes": {"kubeconfig": api.kubeconfig, "coalesce_ms": 2},
                    "provider": {"l2_speaker": True,
                                 "election": {"lease_namespace": "magline-system",
                                              "identity": short,
                                              "lease_duration_ms": L2_LEASE_MS,
                                              "renew_deadline_ms": 2000,
                                              "retry_period_ms": L2_RETRY_MS},
                                 "pools": [{"name": "l2", "addresses": ["198.19.251.0/30"]}]}}
                running[ns] = self.start_node(ns, short, v4, v6, services=l2_services(),
                                              sections=sections, mgmt=True)
                macs[read_mac(ns, "eth0")] = ns

            # Both live, each address of the two (the nodes' own service's and VIP_L2) owned
            # once; the client's ARP for VIP_L2 answered by its owner alone.
            def shared():
                samples = {ns: node_samples(ns) for ns in running}
                return (all(total(m, "magline_l2_live_nodes") == 2 for m in samples.values())
                        and sum(total(m, "magline_l2_owned_addresses")
                                for m in samples.values()) == 2)
            t0 = time.monotonic()
            wait_for("both nodes live, two addresses owned once", shared, 20)
            answers, errors = http_series(CLIENT, f"http://{VIP_L2}/", 5)
            problems += errors
            owner = macs.get(client_neighbour(VIP_L2))
            out.append(f"both nodes live {time.monotonic() - t0:.1f} s after the second started; "
                       f"{len(answers)}/5 answered through {VIP_L2}, whose ARP {owner} answered "
                       f"(client's entry {client_neighbour(VIP_L2)})")
            if owner is None:
                raise Fail(f"the client's entry for {VIP_L2} is no node's MAC: "
                           f"{client_neighbour(VIP_L2)} (nodes {macs})")

            for i in range(L2_STREAMS):
                streams.append(Agent(CLIENT, ["stream", VIP_L2, "9000", str(L2_STREAM_S), "15"],
                                     self.workdir, f"l2-stream{i}"))
                self.agents.append(streams[-1])
            greetings = [json.loads(s.readline(5) or "{}") for s in streams]
            if not all(g.get("greeting") for g in greetings):
                raise Fail(f"streams not greeted: {greetings}")
            time.sleep(2)

            # The owner dies without a word.
            dead = running.pop(owner)
            survivor = next(iter(running))
            t1 = time.monotonic()
            dead.proc.kill()
            dead.proc.wait(5)
            self.nodes.remove(dead)
            t = wait_for(f"{survivor} answering for {VIP_L2} (the client's entry moved)",
                         lambda: macs.get(client_neighbour(VIP_L2)) == survivor,
                         (L2_LEASE_MS + 4 * L2_RETRY_MS) / 1000 + 5)
            samples = node_samples(survivor)
            out.append(f"{owner} killed; {survivor} took {VIP_L2} over after {t - t1:.1f} s "
                       f"(lease {L2_LEASE_MS / 1000:.0f} s, retry {L2_RETRY_MS / 1000} s): "
                       f"owns {total(samples, 'magline_l2_owned_addresses'):.0f}, takeovers "
                       f"{total(samples, 'magline_l2_takeovers_total'):.0f}")
            state = json.loads(in_ns(survivor, "curl", "-sS", "--max-time", "3",
                                     f"http://127.0.0.1:{ADMIN_PORT}/state").stdout)
            l2 = state.get("l2_speaker", {})
            mine = [a for a in l2.get("addresses", []) if a["address"] == VIP_L2]
            out.append(f"{survivor} /state l2_speaker: live {l2.get('live_nodes')}, {VIP_L2}: "
                       f"{mine}")
            if not mine or mine[0]["owner"] != l2.get("identity") or not mine[0]["answered_here"]:
                problems.append(f"/state does not show {survivor} as {VIP_L2}'s owner: {l2}")
            if t - t1 > (L2_LEASE_MS + 2 * L2_RETRY_MS) / 1000 + 1:
                problems.append(f"the takeover took {t - t1:.1f} s, beyond the lease and a "
                                "retry period")
            whole, report = stream_results(streams, L2_STREAM_S + 20)
            out.append(f"DSR streams across the kill: {report}")
            if whole != L2_STREAMS:
                problems.append(f"{L2_STREAMS - whole} streams broke across the takeover")
            answers, errors = http_series(CLIENT, f"http://{VIP_L2}/", 5)
            out.append(f"new connections after the takeover: {len(answers)}/5 answered")
            problems += errors
            # What the kill left: the namespace and the DPDK runtime directory.
            dead.server.stop()
            run(["ip", "netns", "del", owner], check=False)
            run(nsx(FABRIC, "ip", "link", "del", owner.removeprefix("mle2e-")), check=False)
            run(["rm", "-rf", f"/var/run/dpdk/{owner}"], check=False)
        finally:
            for s in streams:
                s.stop()
            self.stop_nodes(out, problems)
            if api is not None:
                api.stop()
            run(["ip", "link", "del", MGMT_BRIDGE], check=False)
            for ns, *_ in BACKENDS:
                in_ns(ns, "ip", "addr", "del", f"{VIP_L2}/32", "dev", "lo", check=False)
        if problems:
            raise Fail("\n".join(problems))
