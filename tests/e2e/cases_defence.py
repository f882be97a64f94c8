"""The end-to-end cases of defence at the edges (tests/e2e/README.md, "Cases"): full-NAT's SYN
proxy with real TCP, SYN floods beside a long-lived connection (full-NAT, DNAT), path MTU
discovery through full-NAT. A mixin of e2e.Suite: `self` holds the run."""
import json
import time

from topology import (
    CLIENT, CLIENT2, FAR_MTU, VIP_DNAT, VIP_ECHO, VIP_FAR, VIP_FAR6, VIP_HTTP, VIP_HTTP6, LB_V4,
    LB_V6, PYTHON, Fail, in_ns,
)
from harness import (  # the process wrappers, clients, /metrics
    PROXIED_PORT, Agent, http_series, scrape_samples, stream_summary, tail, time_left,
)
from cases_static import softnet_drops


STEADY_RATE = 80  # the steady legitimate client's new connections a second

# A client's datagram as large as its link allows, DF set, to a full-NAT VIP whose backends are
# behind a smaller link; then the path MTU its kernel learnt from the ICMP error Magline passed
# back (0: none). Prints the MTU.
PMTU_PROBE = """
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET:
    s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER: IP_PMTUDISC_DO
    size, opt = 1500 - 28, (socket.IPPROTO_IP, 14)  # IP_MTU
else:
    s.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER: IPV6_PMTUDISC_DO
    size, opt = 1500 - 48, (socket.IPPROTO_IPV6, 24)  # IPV6_MTU
s.connect((sys.argv[1], 5353))
mtu = 0
for _ in range(20):
    try:
        s.send(b"x" * size)
    except OSError:
        pass  # EMSGSIZE: the path MTU is known now
    time.sleep(0.1)
    mtu = s.getsockopt(*opt)
    if mtu < 1500:
        break
print(mtu)
"""


def rise_between(before, after):
    """rise(name, **labels): how much the samples of a metric grew between two scrapes."""
    def rise(name, **labels):
        def total(samples):
            return sum(v for (n, ls), v in samples.items()
                       if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))
        return total(after) - total(before)
    return rise


class DefenceCases:
    def syn_proxy(self, out):
        """Real kernel TCP through full-NAT services whose SYN proxy is always on: Magline
        answers each handshake with a cookie, opens the backend's handshake when the cookie
        comes back, holds the client's first data, and translates sequence numbers,
        timestamps, SACK blocks and windows for the connection's life. HTTP over IPv4 and IPv6
        (the client speaks first) and a 200 KB echo line (the server speaks first)."""
        before = scrape_samples()
        problems = []
        n = 10
        for url, snat in ((f"http://{VIP_HTTP}:{PROXIED_PORT}/", LB_V4),
                          (f"http://[{VIP_HTTP6}]:{PROXIED_PORT}/", LB_V6)):
            answers, errors = http_series(CLIENT, url, n)
            problems += errors
            wrong = [a for a in answers if a.get("peer", "").rsplit(":", 1)[0] != snat]
            out.append(f"{url}: {len(answers)}/{n} answered by "
                       f"{sorted(set(a.get('backend') for a in answers))}")
            if wrong:
                problems.append(f"{len(wrong)} answers where the backend saw a peer other than "
                                f"{snat}, e.g. {wrong[0]}")
        size = 200_000
        bulk = Agent(CLIENT, ["bulk", VIP_ECHO, str(PROXIED_PORT), str(size)], self.workdir,
                     "proxied-bulk")
        self.agents.append(bulk)
        line = bulk.readline(20)
        bulk.stop()
        r = json.loads(line) if line else {"problems": [f"no answer: {tail(bulk.stderr())}"]}
        out.append(f"echo through the proxy: greeting {r.get('greeting')!r}, "
                   f"{r.get('echoed', 0)}/{size} bytes back in {r.get('seconds')} s")
        problems += r["problems"]
        if r.get("echoed") != size:
            problems.append(f"{r.get('echoed')} of {size} bytes echoed")
        connections = 2 * n + 1
        deadline = time.monotonic() + 3  # the workers publish their counters every few 100 ms
        while True:
            rise = rise_between(before, scrape_samples())
            completed = rise("magline_syn_proxy_completed_total")
            if completed >= connections or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        valid = rise("magline_syn_cookies_valid_total")
        held = rise("magline_syn_proxy_held_total")
        out.append(f"cookies sent {rise('magline_syn_cookies_sent_total'):g}, returned "
                   f"{valid:g}, handshakes completed by backends {completed:g}, first data "
                   f"segments held {held:g}")
        if completed < connections:
            problems.append(f"{completed:g} proxied handshakes completed for {connections} "
                            f"connections")
        for reason in ("syn_cookie_invalid", "syn_proxy_pending", "syn_proxy_hold_lost",
                       "syn_proxy_unexpected", "syn_proxy_record_lost"):
            if d := rise("magline_drops_total", reason=reason):
                problems.append(f"{d:g} frames dropped as {reason}")
        if problems:
            raise Fail("\n".join(problems))

    def nat_path_mtu(self, out):
        """Path MTU discovery through full-NAT, IPv4 and IPv6, with real sockets: a client's
        full-size datagram with DF set reaches the router in front of the far backends, whose
        link is smaller; the router's "fragmentation needed" / "packet too big" goes to
        Magline's address (the packet's source), and Magline passes it to the client, quoting
        the datagram as the client sent it: the client's kernel learns the far link's MTU."""
        before = scrape_samples()
        problems = []
        for vip in (VIP_FAR, VIP_FAR6):
            mtu = in_ns(CLIENT, PYTHON, "-c", PMTU_PROBE, vip, timeout=10).stdout.strip()
            out.append(f"the client's path MTU to {vip} after a 1500-byte datagram with DF: "
                       f"{mtu}")
            if mtu != str(FAR_MTU):
                problems.append(f"the client learnt path MTU {mtu} to {vip}, not the far "
                                f"link's {FAR_MTU}")
        end = time.monotonic() + 3  # the counters reach /metrics within a second
        while True:
            passed = rise_between(before, scrape_samples())("magline_icmp_errors_total")
            if passed >= 2 or time.monotonic() > end:
                break
            time.sleep(0.2)
        out.append(f"magline_icmp_errors_total rose by {passed:g}")
        if passed < 2:
            problems.append("Magline passed fewer than 2 ICMP errors to the client")
        if problems:
            raise Fail("\n".join(problems))

    def syn_flood(self, out):
        """A SYN flood from made-up sources to the full-NAT VIP:port a long-lived connection
        uses: the SYN proxy engages (`syn_proxy: auto`) and answers the flood with cookies,
        keeping nothing; the long-lived connection loses nothing, real clients still connect
        to the flooded VIP (through the proxy) and to another one."""
        self.flood(out, CLIENT, VIP_ECHO, f"http://{VIP_HTTP}/", dnat=False)

    def dnat_syn_flood(self, out):
        """The same flood against a DNAT VIP:port, from client 2 (off the backends' link): the
        guard engages (`syn_proxy: auto`) and the flood's SYNs go to their backends without
        state; the backends' SYN-ACKs to client 2 are translated without an entry, its ACKs
        open the connections. The long-lived connection loses nothing, real clients still
        connect."""
        self.flood(out, CLIENT2, VIP_DNAT, f"http://{VIP_DNAT}/", dnat=True)

    def flood(self, out, client, vip, other_url, dnat):
        # 65536 made-up flows at 40,000 SYNs a second (a pace this machine's two cores keep up
        # with beside Magline, the clients and the servers): the guard engages from the second
        # after the first one that ends with 1000 unfinished handshakes; until then the flood's
        # entries fill the table (half-open ones are evicted first).
        seconds, flood_s, flows, rate = 8.0, 4.0, 65536, 40000
        if time_left(seconds + 10) < seconds + 10:
            raise Fail("out of time for the run: not started")
        before = scrape_samples()
        kernel_before = softnet_drops()
        stream = Agent(client, ["stream", vip, "9000", str(seconds)], self.workdir,
                       "flood-stream")
        self.agents.append(stream)
        first = stream.readline(5)
        if first is None or not json.loads(first).get("greeting"):
            raise Fail(f"the stream did not start: {first} {tail(stream.stderr())}")
        flood = Agent(client, ["synflood", vip, "9000", str(flows), str(flood_s), str(rate)],
                      self.workdir, "synflood")
        self.agents.append(flood)
        if flood.readline(10) != "flooding":
            raise Fail(f"the flood did not start: {tail(flood.stderr())}")
        problems = []
        time.sleep(1.0)  # the table is full
        # A steady legitimate client of the flooded VIP:port beside the flood, to the end.
        steady = Agent(client, ["steady", vip, "9000", str(STEADY_RATE),
                                str(flood_s - 1.5)], self.workdir, "steady")
        self.agents.append(steady)
        answers, errors = http_series(client, other_url, 5, budget=flood_s)
        problems += errors
        echoed = 0
        for i in range(3):
            bulk = Agent(client, ["bulk", vip, "9000", "1000"], self.workdir, f"bulk-{i}")
            line = bulk.readline(5)
            bulk.stop()
            r = json.loads(line) if line else {"problems": ["no answer"], "echoed": 0}
            echoed += r["echoed"] == 1000
            problems += [f"new connection {i} to {vip}:9000 during the flood: {p}"
                         for p in r["problems"]]
        line = steady.readline(flood_s + 5)
        steady.stop()
        legit = json.loads(line) if line else {"tried": 0, "greeted": 0, "first_syn": 0,
                                               "problems": ["no summary"]}
        line = flood.readline(flood_s + 10)
        flood.stop()
        sent = json.loads(line) if line else {}
        after = scrape_samples()

        rise = rise_between(before, after)
        missed = rise("magline_port_rx_missed_total")
        drops = {dict(ls).get("reason"): v - before.get((n, ls), 0)
                 for (n, ls), v in after.items() if n == "magline_drops_total"}
        out.append(f"Magline's port missed {missed:g} frames; drops: "
                   f"{ {k: v for k, v in drops.items() if v} }; kernel backlog drops: "
                   f"{softnet_drops() - kernel_before}")
        opened = rise("magline_new_connections_total")
        evicted = rise("magline_flow_table_evictions_total", state="half_open")
        cookies = rise("magline_syn_cookies_sent_total")
        proxied = rise("magline_syn_proxy_completed_total")
        stateless = rise("magline_syns_without_state_total")
        translated = rise("magline_stateless_replies_total")
        out.append(f"flood: {sent.get('sent', '?')} SYNs from {flows} made-up flows in "
                   f"{sent.get('seconds', '?')} s; Magline answered {cookies:g} with cookies, "
                   f"sent {stateless:g} on without state, opened {opened:g} connections "
                   f"({proxied:g} through the SYN proxy) and evicted {evicted:g} half-open "
                   f"entries; {translated:g} replies translated without an entry")
        out.append(f"during the flood: {len(answers)}/5 requests to {other_url} answered, "
                   f"{echoed}/3 new connections to {vip}:9000 echoed")
        out.append(f"steady client beside the flood: {legit['greeted']}/{legit['tried']} "
                   f"connections greeted by a backend, {legit['first_syn']} established at "
                   f"their first SYN")
        if not sent:
            problems.append(f"the flood gave no summary: {tail(flood.stderr())}")
        # Issue 17's goal: a legitimate client completes at least 99% of its handshakes.
        if legit["tried"] == 0 or legit["greeted"] < 0.99 * legit["tried"]:
            problems.append(f"the steady client completed {legit['greeted']} of "
                            f"{legit['tried']} connections: {legit['problems']}")
        # Engaged from the second after the flood's first one: at least two seconds' worth of
        # its SYNs. Not all of them: a made-up flow opened before (its entry lives 30 s) gets
        # its repeated SYNs forwarded as any retransmitted SYN (29,509 flows opened, 73,191 of
        # 160,072 SYNs answered with cookies in one CI run; 15,509 and 111,075 in another).
        handled, how = (stateless, "sent on without state") if dnat else (cookies, "answered")
        if sent and handled < rate / 2:
            problems.append(f"the guard {how} {handled:g} of {sent['sent']} SYNs: it did not "
                            f"engage")
        if not dnat and proxied < echoed:
            problems.append(f"{echoed} new connections to the flooded VIP echoed, but only "
                            f"{proxied:g} went through the SYN proxy")
        if dnat and translated < echoed:
            problems.append(f"{echoed} new connections to the flooded VIP echoed, but only "
                            f"{translated:g} SYN-ACKs were translated without an entry")
        stream_summary(stream, seconds, "the flood", out, problems)
