#!/usr/bin/python3
"""A hand check of decap.py, not part of the e2e suite: `python3 tests/e2e/decap_check.py` (root).

Builds two network namespaces joined by a veth pair: mldecap-s (the sender, 198.18.200.1/24,
2001:db8:200::1/64) and mldecap-b (the backend, 198.18.200.2/24, 2001:db8:200::2/64, the VIPs
198.18.201.1/32 and 2001:db8:201::1/128 on lo, a UDP echo on VIP:5353 and TCP listeners on
VIP:9000). The sender encapsulates, by hand, datagrams and SYNs from its own address to a VIP
(IPIP over IPv4 and IPv6, GUE over IPv4 and IPv6) and expects the answer straight back, not
encapsulated, and decap.py's counters to move. First, without decap.py, the kernel must answer
IPIP with "protocol unreachable"; with it, it must not. Prints PASS or FAIL per case, removes
everything even on failure and exits 1 if a case failed. Standard library only.
"""
import ctypes
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

PREFIX = "mldecap-"
SENDER, BACKEND = PREFIX + "s", PREFIX + "b"
TUN = PREFIX + "tun"
HERE = os.path.dirname(os.path.abspath(__file__))
DECAP = os.path.join(HERE, "decap.py")
PYTHON = "/usr/bin/python3"
S4, B4, VIP4 = "198.18.200.1", "198.18.200.2", "198.18.201.1"
S6, B6, VIP6 = "2001:db8:200::1", "2001:db8:200::2", "2001:db8:201::1"
ECHO_PORT, TCP_PORT, GUE_PORT = 5353, 9000, 6080
KINDS = ("ipip4", "ipip6", "gue4", "gue6", "bad")


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


# --- packets -----------------------------------------------------------------------------------


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def v6(addr):
    return ":" in addr


def addr_bytes(addr):
    return socket.inet_pton(socket.AF_INET6 if v6(addr) else socket.AF_INET, addr)


def l4_checksum(src, dst, proto, segment):
    if v6(src):
        pseudo = addr_bytes(src) + addr_bytes(dst) + struct.pack("!IxxxB", len(segment), proto)
    else:
        pseudo = addr_bytes(src) + addr_bytes(dst) + struct.pack("!xBH", proto, len(segment))
    return checksum(pseudo + segment) or 0xffff


def ip_packet(src, dst, proto, payload, options=b""):
    """A whole IPv4 or IPv6 packet (IPv4 header checksum filled in; options: IPv4 only)."""
    if v6(src):
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + \
            addr_bytes(src) + addr_bytes(dst) + payload
    hlen = 20 + len(options)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | hlen // 4, 0, hlen + len(payload),
                       random.getrandbits(16), 0, 64, proto, 0, addr_bytes(src),
                       addr_bytes(dst)) + options
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def udp(src, dst, sport, dport, payload, csum="good"):
    """A UDP header and payload; csum: "good", "zero" or "wrong"."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    value = {"good": l4_checksum(src, dst, 17, seg), "zero": 0,
             "wrong": l4_checksum(src, dst, 17, seg) ^ 0x0101}[csum]
    return seg[:6] + struct.pack("!H", value) + seg[8:]


def tcp_syn(src, dst, sport, dport, seq):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 65535, 0, 0) + \
        struct.pack("!BBH", 2, 4, 1400)  # MSS option
    return seg[:16] + struct.pack("!H", l4_checksum(src, dst, 6, seg)) + seg[18:]


def send_outer(outer_src, outer_dst, proto, payload, options=b""):
    """Sends payload (an inner packet, or a UDP header and its payload) in an outer IPv4 packet
    built by hand (IP_HDRINCL) or an outer IPv6 packet built by the kernel (a raw socket of
    protocol `proto`, which leaves the payload, and so a UDP checksum, alone)."""
    if v6(outer_dst):
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto) as s:
            s.bind((outer_src, 0))
            s.sendto(payload, (outer_dst, 0))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            s.sendto(ip_packet(outer_src, outer_dst, proto, payload, options), (outer_dst, 0))


# --- the sender's cases --------------------------------------------------------------------------


class Sender:
    def __init__(self, stats_path):
        self.stats_path = stats_path
        self.expect = dict.fromkeys(KINDS, 0)
        self.failed = False
        self.icmp4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        for s in (self.icmp4, self.icmp6):
            s.setblocking(False)

    def result(self, name, problems):
        if problems:
            self.failed = True
            print(f"FAIL {name}: {'; '.join(problems)}", flush=True)
        else:
            print(f"PASS {name}", flush=True)

    def stats(self):
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def check_stats(self, problems, settle=False):
        """Waits for decap.py's counters to equal the expected ones (stats are written every
        second); with settle, first waits long enough for an unexpected count to show."""
        if settle:
            time.sleep(2.2)
        deadline = time.monotonic() + 3.0
        while True:
            got = self.stats()
            if got == self.expect:
                return
            if time.monotonic() > deadline:
                problems.append(f"decap stats {got}, expected {self.expect}")
                self.expect = got or self.expect  # one wrong count should not fail every case
                return
            time.sleep(0.1)

    def icmp_errors(self):
        """Protocol-unreachable errors received since the last call: ICMP 3/2 and ICMPv6 4/1."""
        found = []
        for s, want in ((self.icmp4, (3, 2)), (self.icmp6, (4, 1))):
            while True:
                try:
                    pkt, peer = s.recvfrom(2048)
                except BlockingIOError:
                    break
                icmp = pkt if s is self.icmp6 else pkt[(pkt[0] & 0x0f) * 4:]
                if (icmp[0], icmp[1]) == want:
                    found.append(f"type {icmp[0]} code {icmp[1]} from {peer[0]}")
        return found

    def udp_case(self, name, inner_family, send, kind):
        """send(inner_packet) encapsulates a datagram from the sender's UDP socket to the VIP's
        echo; kind: the counter that must move, or None when the packet must be dropped."""
        src, vip = (S6, VIP6) if inner_family == 6 else (S4, VIP4)
        problems = []
        fam = socket.AF_INET6 if inner_family == 6 else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.bind((src, 0))
            s.settimeout(2.0 if kind else 1.5)
            sport = s.getsockname()[1]
            payload = f"{name} {random.getrandbits(32)}".encode()
            pkt = ip_packet(src, vip, 17, udp(src, vip, sport, ECHO_PORT, payload))
            send(pkt)
            try:
                data, peer = s.recvfrom(2048)
            except socket.timeout:
                data, peer = None, None
        if kind:
            self.expect[kind] += 1
            if data is None:
                problems.append("no answer within 2 s")
            elif (peer[0], peer[1]) != (vip, ECHO_PORT) or data != payload + b" from backend":
                problems.append(f"answer {data!r} from {peer[0]}:{peer[1]}")
        elif data is not None:
            problems.append(f"answered ({data!r}), but the packet should have been dropped")
        self.check_stats(problems, settle=not kind)
        self.result(name, problems)

    def tcp_case(self, name, inner_family, send, kind):
        """A hand-made SYN to VIP:9000; the SYN-ACK must come back directly (raw TCP socket)."""
        src, vip = (S6, VIP6) if inner_family == 6 else (S4, VIP4)
        fam = socket.AF_INET6 if inner_family == 6 else socket.AF_INET
        sport, seq = random.randint(20000, 30000), random.getrandbits(32)
        problems = []
        with socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
            send(ip_packet(src, vip, 6, tcp_syn(src, vip, sport, TCP_PORT, seq)))
            deadline = time.monotonic() + 2.0
            synack = None
            while synack is None and time.monotonic() < deadline:
                r, _, _ = select.select([raw], [], [], max(0.0, deadline - time.monotonic()))
                if not r:
                    break
                pkt, peer = raw.recvfrom(2048)
                seg = pkt if fam == socket.AF_INET6 else pkt[(pkt[0] & 0x0f) * 4:]
                ports = struct.unpack("!HH", seg[:4])
                if peer[0] == vip and ports == (TCP_PORT, sport):
                    synack = seg
        self.expect[kind] += 1
        if synack is None:
            problems.append("no SYN-ACK within 2 s")
        else:
            ack, flags = struct.unpack("!I", synack[8:12])[0], synack[13]
            if flags & 0x12 != 0x12 or ack != (seq + 1) & 0xffffffff:
                problems.append(f"answer with flags {flags:#x} ack {ack}, not a SYN-ACK")
        self.check_stats(problems)
        self.result(name, problems)

    def before(self):
        """Without decap.py: the kernel answers IPIP with protocol unreachable."""
        for name, outer_src, outer_dst, proto, fam in (
                ("no decap: IPv4-in-IPv4 gets ICMP protocol unreachable", S4, B4, 4, 4),
                ("no decap: IPv6-in-IPv4 gets ICMP protocol unreachable", S4, B4, 41, 6),
                ("no decap: IPv6-in-IPv6 gets ICMPv6 unknown next header", S6, B6, 41, 6),
                ("no decap: IPv4-in-IPv6 gets ICMPv6 unknown next header", S6, B6, 4, 4)):
            src, vip = (S6, VIP6) if fam == 6 else (S4, VIP4)
            self.icmp_errors()
            send_outer(outer_src, outer_dst, proto,
                       ip_packet(src, vip, 17, udp(src, vip, 1234, ECHO_PORT, b"x")))
            time.sleep(1.0)
            found = self.icmp_errors()
            self.result(name, [] if found else ["no ICMP error within 1 s"])

    def after(self):
        def ipip(outer_src, outer_dst, proto, options=b""):
            return lambda pkt: send_outer(outer_src, outer_dst, proto, pkt, options)

        def gue(outer_src, outer_dst, csum="good", head=b""):
            return lambda pkt: send_outer(outer_src, outer_dst, 17, udp(
                outer_src, outer_dst, random.randint(40000, 50000), GUE_PORT, head + pkt, csum))

        self.icmp_errors()
        self.udp_case("IPIP IPv4-in-IPv4", 4, ipip(S4, B4, 4), "ipip4")
        self.udp_case("IPIP IPv6-in-IPv4", 6, ipip(S4, B4, 41), "ipip4")
        self.udp_case("IPIP IPv4-in-IPv4, outer header with options (IHL 7)", 4,
                      ipip(S4, B4, 4, b"\x01" * 7 + b"\x00"), "ipip4")
        self.udp_case("IPIP IPv6-in-IPv6", 6, ipip(S6, B6, 41), "ipip6")
        self.udp_case("IPIP IPv4-in-IPv6", 4, ipip(S6, B6, 4), "ipip6")
        self.udp_case("GUE IPv4-in-IPv4, outer UDP checksum 0", 4, gue(S4, B4, "zero"), "gue4")
        self.udp_case("GUE IPv6-in-IPv4, outer UDP checksum set", 6, gue(S4, B4), "gue4")
        self.udp_case("GUE IPv4-in-IPv6, outer UDP checksum by hand", 4, gue(S6, B6), "gue6")
        self.udp_case("GUE IPv6-in-IPv6, outer UDP checksum by hand", 6, gue(S6, B6), "gue6")
        self.udp_case("GUE over IPv6 with a wrong UDP checksum: dropped by the kernel", 4,
                      gue(S6, B6, "wrong"), None)
        self.udp_case("GUE over IPv6 with UDP checksum 0: dropped by the kernel", 4,
                      gue(S6, B6, "zero"), None)
        self.expect["bad"] += 1
        self.udp_case("GUE variant 0 header (first nibble 0): counted as bad", 4,
                      gue(S4, B4, head=b"\0\0\0\0"), None)
        self.expect["bad"] += 1
        self.udp_case("IPIP protocol 4 carrying IPv6: counted as bad", 6, ipip(S4, B4, 4), None)
        self.tcp_case("TCP SYN over IPIP IPv4-in-IPv4 gets a SYN-ACK directly", 4,
                      ipip(S4, B4, 4), "ipip4")
        self.tcp_case("TCP SYN over GUE IPv6-in-IPv6 gets a SYN-ACK directly", 6,
                      gue(S6, B6), "gue6")
        found = self.icmp_errors()
        self.result("no ICMP protocol unreachable while decap.py runs", found)
        print("EXPECT " + json.dumps(self.expect), flush=True)


def sender_main(phase, stats_path):
    die_with_parent()
    s = Sender(stats_path)
    if phase == "before":
        s.before()
    else:
        s.after()
    return 1 if s.failed else 0


def echo_main():
    """The backend's servers, bound to the VIPs."""
    die_with_parent()
    udps, listeners = [], []
    for fam, vip in ((socket.AF_INET, VIP4), (socket.AF_INET6, VIP6)):
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((vip, ECHO_PORT))
        udps.append(u)
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((vip, TCP_PORT))
        t.listen(16)
        listeners.append(t)
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(udps, [], [])
        for u in r:
            data, peer = u.recvfrom(2048)
            u.sendto(data + b" from backend", peer)


# --- the namespaces -------------------------------------------------------------------------------


class Interrupted(BaseException):
    pass


def run(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def ns(name, *cmd, check=True):
    return run("ip", "netns", "exec", name, *cmd, check=check)


def cleanup(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for name in (SENDER, BACKEND):
        run("ip", "netns", "del", name, check=False)


def setup():
    for name in (SENDER, BACKEND):
        run("ip", "netns", "add", name)
        ns(name, "ip", "link", "set", "lo", "up")
    run("ip", "-n", SENDER, "link", "add", "eth0", "type", "veth",
        "peer", "name", "eth0", "netns", BACKEND)
    for name, a4, a6 in ((SENDER, S4, S6), (BACKEND, B4, B6)):
        ns(name, "ip", "addr", "add", f"{a4}/24", "dev", "eth0")
        ns(name, "ip", "addr", "add", f"{a6}/64", "dev", "eth0", "nodad")
        ns(name, "ip", "link", "set", "eth0", "up")
        if shutil.which("ethtool"):
            ns(name, "ethtool", "-K", "eth0", "tx", "off", "rx", "off")
    ns(BACKEND, "ip", "addr", "add", f"{VIP4}/32", "dev", "lo")
    ns(BACKEND, "ip", "addr", "add", f"{VIP6}/128", "dev", "lo", "nodad")
    ns(SENDER, "ip", "route", "add", f"{VIP4}/32", "via", B4)
    ns(SENDER, "ip", "route", "add", f"{VIP6}/128", "via", B6)


def start(procs, name, *cmd):
    p = subprocess.Popen(["ip", "netns", "exec", name, *cmd], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    return p


def wait_ready(p, what):
    r, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline() if r else ""
    if line.strip() != "ready":
        raise RuntimeError(f"{what} did not start: {line!r}")


def sender(procs, phase, stats, results):
    p = start(procs, SENDER, PYTHON, os.path.abspath(__file__), "_send", phase, stats)
    expect = None
    for line in p.stdout:
        if line.startswith("EXPECT "):
            expect = json.loads(line[7:])
            continue
        print(line, end="", flush=True)
        results.append(line.startswith("PASS"))
    p.wait()
    if p.returncode not in (0, 1):
        print(f"FAIL sender ({phase}): exit {p.returncode}", flush=True)
        results.append(False)
    return expect


def main():
    if os.geteuid() != 0:
        print("decap_check.py: needs root", file=sys.stderr)
        return 2

    def interrupted(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    procs, results = [], []
    work = tempfile.mkdtemp(prefix=PREFIX)
    stats = os.path.join(work, "stats.json")
    cleanup([])  # what a killed run left behind
    try:
        setup()
        if not shutil.which("ethtool"):
            print("note: no ethtool, checksum offload left on", flush=True)
        wait_ready(start(procs, BACKEND, PYTHON, os.path.abspath(__file__), "_echo"), "echo")
        sender(procs, "before", stats, results)
        decap = start(procs, BACKEND, PYTHON, DECAP, "--tun", TUN, "--stats", stats)
        wait_ready(decap, "decap.py")
        expect = sender(procs, "after", stats, results)
        snmp = ns(BACKEND, "cat", "/proc/net/snmp6").stdout.split()
        print(f"info: backend Udp6InCsumErrors {snmp[snmp.index('Udp6InCsumErrors') + 1]}")
        decap.send_signal(signal.SIGTERM)
        rc = decap.wait(5)
        with open(stats) as f:
            final = json.load(f)
        tun_left = ns(BACKEND, "ip", "link", "show", TUN, check=False).returncode == 0
        problems = [f"exit {rc}"] if rc else []
        problems += [f"final stats {final}, expected {expect}"] if final != expect else []
        problems += ["the TUN device outlived decap.py"] if tun_left else []
        print(f"{'FAIL' if problems else 'PASS'} SIGTERM: exit 0, final stats {final}, TUN gone"
              + (": " + "; ".join(problems) if problems else ""), flush=True)
        results.append(not problems)
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        print(f"FAIL setup: {e}", flush=True)
        results.append(False)
    except (KeyboardInterrupt, Interrupted):
        print("FAIL interrupted", flush=True)
        results.append(False)
    finally:
        cleanup(procs)
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(results)
    print(f"{passed} of {len(results)} passed", flush=True)
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["_send"]:
        sys.exit(sender_main(sys.argv[2], sys.argv[3]))
    if sys.argv[1:2] == ["_echo"]:
        sys.exit(echo_main())
    sys.exit(main())
