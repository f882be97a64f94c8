"""The end-to-end cases on Magline's own configuration (tests/e2e/README.md, "Cases"):
HTTP, UDP and ping through every mode and family, reloads under a long stream, counters, the
new-connection limit, capture on demand. A mixin of e2e.Suite: `self` holds the run."""
import json
import os
import signal
import subprocess
import time

from topology import (  # names, addresses, command helpers, cleanup
    AGENT, BACKENDS, CLIENT, CLIENT2, CLIENT2_V4, CLIENT_V4, CLIENT_V6, FAR_BACKENDS, FAR_MTU,
    Fail, LB_IF, LB_V4, LB_V6, NODE_PORT, PYTHON, ROUTER, VIP_DNAT, VIP_DNAT6, VIP_DSR, VIP_DSR6,
    VIP_ECHO, VIP_GUE, VIP_HTTP, VIP_HTTP6, VIP_IPIP, VIP_IPIP6, VIP_LIMITED, VIP_UDP, VIP_UDP6,
    in_ns,
)
from dpdk_capture import pcapng_frames
from harness import (  # the process wrappers, clients, /metrics
    CAPTURE_PREFIX, GIVE_UP_AFTER, LIMIT_BURST, SERIES_BUDGET_S, Agent, SkipCase, Sniffer,
    capture_kind, curl, http_series, parse_answer, read_mac, scrape_samples, scrape_traffic,
    stream_summary, tail, time_left, went_back,
)


def softnet_drops():
    """Frames the kernel dropped for want of room in a CPU's input backlog (every CPU)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f if line.strip())


class StaticCases:
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

    def udp_fragments(self, out):
        """4000-byte datagrams (three fragments each way at MTU 1500) through full-NAT over
        IPv6 and IPv4, DNAT, L2 DSR, IPIP and GUE (over IPv6) for IPv4: every one echoed whole,
        and Magline counted the fragments (both ways, or the client's way under DSR and the
        tunnels). Through the tunnels each 1500-byte fragment is too big once encapsulated and
        is split again by Magline, to the far link's MTU once the router has taught it (warm-up
        datagrams first). IPv4 only with `--pmd pcap`:
        DPDK's af_packet driver joins its sockets with PACKET_FANOUT_FLAG_DEFRAG (hard-coded),
        so the kernel reassembles IPv4 datagrams before Magline sees them, and one larger than
        the ring's frame (2048 bytes) arrives cut short (`ipv4_total_len_beyond_frame`). The
        packet tests take IPv4 fragments through every mode; real NICs deliver fragments as
        they come."""
        n, size = 8, 4000
        # (client namespace, VIP, port, what, fragments through Magline per datagram)
        paths = [(CLIENT, VIP_UDP6, 53, "full-NAT IPv6", 6),
                 (CLIENT2, VIP_DNAT6, 53, "DNAT IPv6", 6),
                 (CLIENT, VIP_DSR6, 5353, "L2 DSR IPv6", 3)]
        if self.args.pmd == "pcap":
            paths += [(CLIENT, VIP_UDP, 53, "full-NAT IPv4", 6),
                      (CLIENT2, VIP_DNAT, 53, "DNAT IPv4", 6),
                      (CLIENT, VIP_DSR, 5353, "L2 DSR IPv4", 3),
                      (CLIENT, VIP_IPIP, 5353, "IPIP IPv4", 3),
                      (CLIENT, VIP_GUE, 5353, "GUE IPv4 over IPv6", 3)]
        else:
            out.append("IPv4 (full-NAT, DNAT, L2 DSR, IPIP, GUE) runs with --pmd pcap: "
                       "af_packet reassembles IPv4")
        before = scrape_samples()
        problems = []
        if self.args.pmd == "pcap":
            # Until the router's "fragmentation needed" (IPIP over IPv4) or "packet too big"
            # (GUE over IPv6) about Magline's 1500-byte outer packets has taught it each far
            # backend's path MTU, tunnelled datagrams are lost there.
            learned = 0
            for _ in range(4):
                learned = sum(v for (name, _), v in scrape_samples().items()
                              if name == "magline_path_mtus_learned_total")
                if learned >= 2 * len(FAR_BACKENDS):
                    break
                for vip in (VIP_IPIP, VIP_GUE):
                    in_ns(CLIENT, PYTHON, AGENT, "udp", vip, "5353", str(n), "2", str(size),
                          timeout=15)
                time.sleep(1.2)  # the counters reach /metrics within a second
            out.append(f"tunnels' warm-up: path MTUs learned for {learned:g} far backend "
                       f"addresses (IPv4 and IPv6)")
            before = scrape_samples()
        for ns, vip, port, what, _ in paths:
            budget = time_left(SERIES_BUDGET_S)
            p = in_ns(ns, PYTHON, AGENT, "udp", vip, str(port), str(n), f"{budget:.1f}",
                      str(size), timeout=budget + 10)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            out.append(f"{what} ({vip}:{port}): {len(r['answers'])}/{n} datagrams of {size} "
                       f"bytes echoed")
            problems += [f"{what}: {x}" for x in r["problems"]]
            if len(r["answers"]) != n and not r["problems"]:
                problems.append(f"{what}: missing answers")
        want = n * sum(per for *_, per in paths)
        end = time.monotonic() + 3  # the counters reach /metrics within a second
        while True:
            after = scrape_samples()
            fragments = sum(v - before.get(k, 0) for k, v in after.items()
                            if k[0] == "magline_fragments_total")
            if fragments >= want or time.monotonic() >= end:
                break
            time.sleep(0.2)
        unmatched = sum(v - before.get(k, 0) for k, v in after.items()
                        if k[0] == "magline_drops_total" and
                        dict(k[1]).get("reason") == "fragment_unmatched")
        drops = {dict(k[1]).get("reason"): v - before.get(k, 0) for k, v in after.items()
                 if k[0] == "magline_drops_total" and v - before.get(k, 0)}
        split = sum(v - before.get(k, 0) for k, v in after.items()
                    if k[0] == "magline_split_packets_total")
        out.append(f"magline_fragments_total rose by {fragments:g}; fragment_unmatched drops "
                   f"{unmatched:g}; all drops {drops}; split by Magline for the tunnels "
                   f"{split:g}")
        if self.args.pmd == "pcap" and split < 2 * n:
            problems.append(f"expected at least {2 * n} tunnelled fragments split, got "
                            f"{split:g}")
        if fragments < want:
            problems.append(f"expected at least {want} fragments forwarded")
        if problems:
            raise Fail("\n".join(problems))

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

    def encapsulation(self, out):
        """IPIP and GUE to backends behind a router: real HTTP through each tunnel kind, answered
        by the backends straight from the VIP (the replies cross the router, not Magline), the
        client's address intact at the backend; then a 64 KB line through IPIP over the far
        link's smaller MTU, which takes Magline's ICMP "fragmentation needed" to get through."""
        problems = []
        before = scrape_samples()
        sniffer = Sniffer(CLIENT, "eth0", f"tcp and src host {VIP_IPIP} and src port 80")
        far_names = sorted(b[1] for b in FAR_BACKENDS)
        try:
            for kind, url, client in [("IPv4 in IPv4", f"http://{VIP_IPIP}/", CLIENT_V4),
                                      ("IPv4 in GUE/IPv6", f"http://{VIP_GUE}/", CLIENT_V4),
                                      ("IPv6 in IPv6", f"http://[{VIP_IPIP6}]/", CLIENT_V6)]:
                n = 8
                answers, errors = http_series(CLIENT, url, n)
                peers = sorted(set(a.get("peer", "").rsplit(":", 1)[0].strip("[]")
                                   for a in answers))
                locals_ = sorted(set(a.get("local", "").rsplit(":", 1)[0].strip("[]")
                                     for a in answers))
                names = sorted(set(a.get("backend", "") for a in answers))
                out.append(f"{kind}: {len(answers)}/{n} answered by {names}, who saw peers "
                           f"{peers} on {locals_}")
                problems += [f"{kind}: {e}" for e in errors]
                vip = url.split("//", 1)[1].strip("/[]")
                if answers and peers != [client]:
                    problems.append(f"{kind}: the backends saw {peers}, not the client {client}")
                if answers and locals_ != [vip]:
                    problems.append(f"{kind}: the backends answered on {locals_}, not {vip}")
                if answers and not set(names) <= set(far_names):
                    problems.append(f"{kind}: answered by {names}, not the far backends")
        finally:
            frames = sniffer.stop()
        if frames is not None:
            senders = {}
            lb_mac = read_mac(None, LB_IF)
            router_mac = read_mac(ROUTER, "eth0")
            for src_mac in frames:
                who = {lb_mac: "magline", router_mac: "router"}.get(src_mac, src_mac)
                senders[who] = senders.get(who, 0) + 1
            out.append(f"IPIP reply frames on the client's link by sender: {senders}")
            if set(senders) != {"router"}:
                problems.append(f"replies must come from the far backends through the router, "
                                f"got {senders}")
        def decapsulated():  # the endpoints write their counts every second
            total = {}
            for _, name, _, _ in FAR_BACKENDS:
                with open(os.path.join(self.workdir, f"decap-{name}.json")) as f:
                    for k, v in json.load(f).items():
                        total[k] = total.get(k, 0) + v
            return total

        end = time.monotonic() + 3
        tunnelled = decapsulated()
        while time.monotonic() < end and not all(tunnelled.get(k) for k in ("ipip4", "gue6",
                                                                             "ipip6")):
            time.sleep(0.2)
            tunnelled = decapsulated()
        out.append(f"decapsulated at the far backends: {tunnelled}")
        for k in ("ipip4", "gue6", "ipip6"):
            if tunnelled.get(k, 0) == 0:
                problems.append(f"no {k} packet reached the far backends' tunnel endpoints")
        if tunnelled.get("bad", 0):
            problems.append(f"{tunnelled['bad']} malformed tunnel packets")

        # The path MTU: FAR_MTU on the far link, learned by Magline from the router's ICMP
        # "fragmentation needed" about its outer packets (encapsulation.mtu is not set: the
        # port's 1500 would be taken otherwise).
        size = 65536
        agent = Agent(CLIENT, ["bulk", VIP_IPIP, "9000", str(size)], self.workdir, "bulk")
        line = agent.readline(20)
        agent.stop()
        r = json.loads(line) if line else {"problems": ["no summary"], "echoed": 0}
        out.append(f"{size} bytes through IPIP: {r['echoed']} echoed "
                   f"({r.get('greeting', '')}, {r.get('seconds', '?')} s)")
        problems += [f"bulk: {p}" for p in r["problems"]]
        route = in_ns(CLIENT, "ip", "-4", "route", "get", VIP_IPIP).stdout.split()
        mtu = route[route.index("mtu") + 1] if "mtu" in route else None
        out.append(f"the client's path MTU to {VIP_IPIP}: {mtu}")
        if mtu != str(FAR_MTU - 20):
            problems.append(f"the client learnt path MTU {mtu}, not {FAR_MTU - 20} (the far "
                            f"link's {FAR_MTU} less IPIP's 20)")
        def rose(metric):
            def total(samples):
                return sum(v for (name, _), v in samples.items() if name == metric)
            return total(scrape_samples()) - total(before)

        end = time.monotonic() + 3  # the counters reach /metrics within a second
        too_big, learned = rose("magline_too_big_total"), rose("magline_path_mtus_learned_total")
        while (too_big < 1 or learned < 1) and time.monotonic() < end:
            time.sleep(0.2)
            too_big = rose("magline_too_big_total")
            learned = rose("magline_path_mtus_learned_total")
        out.append(f"magline_too_big_total rose by {too_big:g}, "
                   f"magline_path_mtus_learned_total by {learned:g}")
        if too_big < 1:
            problems.append("Magline sent no ICMP fragmentation needed")
        if learned < 1:
            problems.append("Magline learned no path MTU from the router")
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
