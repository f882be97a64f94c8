#!/usr/bin/python3
"""Servers and clients that tests/e2e/e2e.py runs inside its network namespaces
(`ip netns exec NS /usr/bin/python3 agent.py COMMAND ...`). Standard library only.

Commands:
  serve NAME [--stay]  a backend: HTTP on 8080 and 80 (answers "backend=NAME peer=A:P local=A:P"),
                       UDP echo on 5353 (IPv4 and IPv6; answers the datagram plus " from NAME"),
                       TCP line echo on 9000 (greets "hello from NAME", then echoes each line).
                       Prints "ready" once every socket listens; exits when its parent dies
                       (unless --stay: e2e.py --keep).
  udp ADDR PORT N [S [SIZE]]
                       sends N datagrams (within S seconds; of SIZE bytes, fragmented when they
                       exceed the MTU), each from a fresh socket (its own source port), and
                       prints one JSON line: the answers and what went wrong.
  stream ADDR PORT S [TIMEOUT]
                       one TCP connection: prints the greeting as JSON, then sends a line every
                       100 ms for S seconds, checks each echo (waiting up to TIMEOUT seconds,
                       2 by default), and prints a JSON summary.
  tuples ADDR PORT FIRST N
                       one HTTP GET from each local port FIRST..FIRST+N-1, each closed with a
                       reset (no TIME-WAIT: the same tuples can be sent again another way);
                       prints one JSON line: each port's answer or error.
  burst ADDR PORT N S  opens N TCP connections at once (non-blocking connects), waits S seconds
                       and prints one JSON line: how many were established by then.
  bulk ADDR PORT N     one TCP connection to a line echo (port 9000 of `serve`): sends one line of
                       N bytes and reads it back; prints one JSON line: the greeting, the bytes
                       echoed, the time taken and what went wrong.
  steady ADDR PORT RATE S
                       a steady client of a line echo (port 9000 of `serve`): RATE new TCP
                       connections a second for S seconds, each waiting up to 3 s for the
                       greeting; prints one JSON line: connections tried, greeted, established
                       at the first SYN (within 0.9 s, before the kernel's first retransmission),
                       and what went wrong.
  synflood ADDR PORT N S RATE
                       TCP SYNs to ADDR:PORT from N made-up IPv4 sources (198.19.128.0/17, a
                       port each) for S seconds at RATE a second (raw socket: root), round and
                       round; prints "flooding" when it starts, then one JSON line: SYNs sent,
                       distinct flows, seconds.
  udpflood ADDR PORT RATE S
                       small UDP datagrams to ADDR:PORT from one socket at RATE a second for S
                       seconds; prints "flooding" when it starts, then one JSON line: datagrams
                       sent, seconds.
  ping ADDR N          N ICMP or ICMPv6 echo requests (raw socket: root), 200 ms apart; prints one
                       JSON line: how many were answered, from where, and what went wrong.
"""
import ctypes
import json
import os
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def die_with_parent():
    """The harness may be killed without cleaning up: go with it (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def plain(addr):
    """'::ffff:198.18.0.1' -> '198.18.0.1' (IPv4 peers of a dual-stack socket)."""
    return addr[7:] if addr.startswith("::ffff:") else addr


class DualStackMixin:
    """Listens on [::]:PORT for IPv4 and IPv6, without HTTPServer's reverse DNS lookup
    (socket.getfqdn hangs in a namespace without DNS: see /work/shared/FIELD-NOTES.md)."""
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name = "e2e"
        self.server_port = self.server_address[1]


class HttpServer(DualStackMixin, socketserver.ThreadingMixIn, HTTPServer):
    pass


class LineServer(DualStackMixin, socketserver.ThreadingTCPServer):
    pass


def http_handler(name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            peer = self.client_address
            local = self.connection.getsockname()
            body = (f"backend={name} peer={plain(peer[0])}:{peer[1]} "
                    f"local={plain(local[0])}:{local[1]}\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def line_handler(name):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(f"hello from {name}\n".encode())
            for line in self.rfile:
                self.wfile.write(line)

    return Handler


def udp_echo(sock, name):
    """Echoes each datagram from the address it was sent to (IP_PKTINFO / IPV6_PKTINFO), as a
    UDP server behind a direct-return load balancer must: the VIP on lo, not eth0's address."""
    suffix = f" from {name}".encode()
    if sock.family == socket.AF_INET:
        level, opt = socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8)  # Linux's value
        sock.setsockopt(level, opt, 1)
    else:
        level, opt = socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO
        sock.setsockopt(level, opt, 1)
        opt = socket.IPV6_PKTINFO
    while True:
        data, ancillary, _, peer = sock.recvmsg(65535, socket.CMSG_SPACE(64))
        cmsgs = [(lv, ty, d) for lv, ty, d in ancillary if lv == level and ty == opt]
        if sock.family == socket.AF_INET and cmsgs:
            # struct in_pktinfo: ifindex, spec_dst (the source to send from), addr
            dst = cmsgs[0][2][8:12]
            cmsgs = [(level, opt, struct.pack("i", 0) + dst + bytes(4))]
        elif cmsgs:
            # struct in6_pktinfo: addr (the source to send from), ifindex 0
            cmsgs = [(level, opt, cmsgs[0][2][:16] + struct.pack("I", 0))]
        sock.sendmsg([data + suffix], cmsgs, 0, peer)


def serve(name, stay):
    if not stay:
        die_with_parent()
    servers = [HttpServer(("::", 8080), http_handler(name)),
               HttpServer(("::", 80), http_handler(name)),
               LineServer(("::", 9000), line_handler(name))]
    udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp4.bind(("0.0.0.0", 5353))
    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp6.bind(("::", 5353))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    threads += [threading.Thread(target=udp_echo, args=(s, name), daemon=True)
                for s in (udp4, udp6)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    while True:  # until SIGTERM or SIGKILL (default actions)
        signal.pause()


def udp_client(addr, port, n, budget, size=0):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    answers, problems = [], []
    lost_in_a_row = 0
    end = time.monotonic() + budget
    for i in range(n):
        if time.monotonic() >= end:
            problems.append(f"out of time after {i} of {n} datagrams")
            break
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            s.settimeout(2.0)
            payload = f"ping {i} {time.monotonic_ns()}".encode()
            payload += b"." * max(0, size - len(payload))  # a datagram of `size` bytes
            sport = s.getsockname()[1]
            s.sendto(payload, (addr, port))
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                problems.append(f"datagram {i} from port {sport}: no answer within 2 s")
                lost_in_a_row += 1
                if lost_in_a_row == 3 and i + 1 < n:
                    problems.append(f"gave up after 3 losses in a row ({n - i - 1} not sent)")
                    break
                continue
            lost_in_a_row = 0
            if peer[0] != addr or peer[1] != port:
                problems.append(f"datagram {i}: answer came from {peer[0]}:{peer[1]}")
            if not data.startswith(payload + b" from "):
                problems.append(f"datagram {i}: wrong answer {data!r}")
                continue
            answers.append({"sport": sport, "backend": data[len(payload) + 6:].decode()})
    print(json.dumps({"answers": answers, "problems": problems}), flush=True)


def stream_client(addr, port, seconds, timeout=2.0):
    out = {"sent": 0, "echoed": 0, "problems": []}
    try:
        s = socket.create_connection((addr, port), timeout=3)
    except OSError as e:
        print(json.dumps({"greeting": None, "error": f"connect: {e}"}), flush=True)
        return
    s.settimeout(timeout)
    f = s.makefile("rwb")
    greeting = f.readline().decode().strip()
    print(json.dumps({"greeting": greeting, "local_port": s.getsockname()[1]}), flush=True)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end and i < 1000:
        line = f"line {i} {time.monotonic_ns()}\n".encode()
        try:
            f.write(line)
            f.flush()
            out["sent"] += 1
            asked = time.monotonic()
            echo = f.readline()
            out["max_wait_s"] = round(max(out.get("max_wait_s", 0), time.monotonic() - asked), 3)
        except OSError as e:
            out["problems"].append(f"line {i}: {type(e).__name__}: {e}")
            break
        if echo == b"":
            out["problems"].append(f"line {i}: connection closed by the peer")
            break
        if echo != line:
            out["problems"].append(f"line {i}: echo {echo!r} != {line!r}")
        else:
            out["echoed"] += 1
        i += 1
        time.sleep(0.1)
    s.close()
    print(json.dumps(out), flush=True)


def tuples(addr, port, first, n):
    """One HTTP GET from each local port first..first+n-1, each closed with a reset (SO_LINGER
    0) so that no TIME-WAIT keeps the port: the same tuples can be sent again, another way.
    Prints one JSON line: [{"port": p, "answer": body} or {"port": p, "error": text}, ...]."""
    results = []
    for p in range(first, first + n):
        s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(3)
        try:
            s.bind(("", p))
            s.connect((addr, port))
            s.sendall(f"GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n".encode())
            data = b""
            while True:  # until the body is whole (Content-Length) or the server closes
                head, _, body = data.partition(b"\r\n\r\n")
                length = [int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length:")]
                if _ and length and len(body) >= length[0]:
                    break
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            body = data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
            results.append({"port": p, "answer": body})
        except OSError as e:
            results.append({"port": p, "error": f"{type(e).__name__}: {e}"})
        finally:
            s.close()
    print(json.dumps(results), flush=True)


def connect_burst(addr, port, n, seconds):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    pending = []
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((addr, port))
        pending.append(s)
    established, problems = 0, []
    end = time.monotonic() + seconds
    while pending and time.monotonic() < end:
        _, ready, _ = select.select([], pending, [], max(0.0, end - time.monotonic()))
        for s in ready:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                established += 1
            else:
                problems.append(f"connect: {os.strerror(err)}")
            pending.remove(s)
            s.close()
    for s in pending:
        s.close()  # SYN_SENT: closed without a word
    print(json.dumps({"established": established, "waiting": len(pending),
                      "problems": problems}), flush=True)


def steady_client(addr, port, rate, seconds):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    lock = threading.Lock()
    out = {"tried": 0, "greeted": 0, "first_syn": 0, "problems": []}

    def one():
        t0 = time.monotonic()
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(3.0)
                s.connect((addr, port))
                connected = time.monotonic() - t0
                greeting = s.makefile("rb").readline()
            with lock:
                out["first_syn"] += connected < 0.9
                if greeting.startswith(b"hello from "):
                    out["greeted"] += 1
                else:
                    out["problems"].append(f"greeting {greeting[:40]!r}")
        except OSError as e:
            with lock:
                out["problems"].append(f"{addr}:{port}: {e}")

    threads = []
    t0 = time.monotonic()
    while time.monotonic() < t0 + seconds:
        t = threading.Thread(target=one)
        t.start()
        threads.append(t)
        out["tried"] += 1
        ahead = t0 + len(threads) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    for t in threads:
        t.join()
    out["problems"] = out["problems"][:5]
    print(json.dumps(out), flush=True)


def syn_flood(addr, port, n, seconds, rate):
    """Spoofed SYNs, built once (checksums and all) and sent round and round."""
    dst = socket.inet_aton(addr)
    frames = []
    for i in range(n):
        src = socket.inet_aton(f"198.19.{128 + (i >> 8) % 128}.{i & 255}")
        sport = 1024 + (i * 7919) % 60000
        tcp = bytearray(struct.pack("!HHIIBBHHH", sport, port, i * 2654435761 % 2**32, 0,
                                    5 << 4, 0x02, 64240, 0, 0))
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        struct.pack_into("!H", tcp, 16, icmp_checksum(pseudo + bytes(tcp)))
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64,
                                   socket.IPPROTO_TCP, 0, src, dst))
        struct.pack_into("!H", ip, 10, icmp_checksum(bytes(ip)))
        frames.append(bytes(ip + tcp))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    target = (addr, 0)
    print("flooding", flush=True)
    sent, t0 = 0, time.monotonic()
    batch = 500
    while time.monotonic() < t0 + seconds:
        for f in frames[sent % n:sent % n + batch]:
            s.sendto(f, target)
            sent += 1
        ahead = t0 + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"sent": sent, "flows": n, "seconds": round(time.monotonic() - t0, 3)}),
          flush=True)


def udp_flood(addr, port, rate, seconds):
    """Small datagrams to addr:port at `rate` a second, from one socket: a flood of frames
    for whatever answers there (the exception path's cap, case exception_path)."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    print("flooding", flush=True)
    sent, t0 = 0, time.monotonic()
    while time.monotonic() < t0 + seconds:
        for _ in range(100):
            try:
                s.sendto(b"flood", (addr, port))
                sent += 1
            except OSError:  # ICMP unreachable reported on the socket, a full queue
                pass
        ahead = t0 + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - t0, 3)}), flush=True)


def icmp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ping(addr, n):
    """Echo requests with their own identifier; an answer must come from ADDR and carry the same
    identifier, sequence number and data. ICMPv6's checksum is the kernel's (RFC 3542 3.1)."""
    v6 = ":" in addr
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    ident = 0x4d4c
    out = {"sent": 0, "answered": 0, "problems": []}
    for seq in range(n):
        data = f"magline ping {seq}".encode()
        head = bytes([128 if v6 else 8, 0]) + b"\0\0" + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
        msg = head + data
        if not v6:
            msg = msg[:2] + icmp_checksum(msg).to_bytes(2, "big") + msg[4:]
        s.sendto(msg, (addr, 0))
        out["sent"] += 1
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                pkt, peer = s.recvfrom(2048)
            except socket.timeout:
                break
            icmp = pkt if v6 else pkt[(pkt[0] & 0x0f) * 4:]  # IPv4 raw sockets include the header
            if icmp[0] != (129 if v6 else 0):
                continue
            if int.from_bytes(icmp[4:6], "big") != ident or int.from_bytes(icmp[6:8], "big") != seq:
                continue
            if plain(peer[0]) != addr or icmp[8:] != data:
                out["problems"].append(f"answer {seq} from {peer[0]} with {icmp[8:]!r}")
            else:
                out["answered"] += 1
            break
        else:
            out["problems"].append(f"no answer to {seq}")
        time.sleep(0.2)
    s.close()
    print(json.dumps(out), flush=True)


def bulk_client(addr, port, n):
    out = {"greeting": "", "echoed": 0, "seconds": 0.0, "problems": []}
    t0 = time.monotonic()
    try:
        with socket.create_connection((addr, port), timeout=10) as s:
            f = s.makefile("rb")
            out["greeting"] = f.readline().decode(errors="replace").strip()
            s.sendall(b"x" * n + b"\n")
            line = f.readline()
            out["echoed"] = len(line.rstrip(b"\n"))
            if line.rstrip(b"\n") != b"x" * n:
                out["problems"].append(f"echo of {len(line)} bytes is not the line sent")
    except OSError as e:
        out["problems"].append(f"{addr}:{port}: {e}")
    out["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out), flush=True)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "serve" and len(sys.argv) in (3, 4) and sys.argv[3:] in ([], ["--stay"]):
        serve(sys.argv[2], stay=sys.argv[3:] == ["--stay"])
    elif cmd == "udp" and len(sys.argv) in (5, 6, 7):
        budget = float(sys.argv[5]) if len(sys.argv) >= 6 else 60.0
        size = int(sys.argv[6]) if len(sys.argv) == 7 else 0
        udp_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), budget, size)
    elif cmd == "tuples" and len(sys.argv) == 6:
        tuples(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "burst" and len(sys.argv) == 6:
        die_with_parent()
        connect_burst(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "bulk" and len(sys.argv) == 5:
        die_with_parent()
        bulk_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "steady" and len(sys.argv) == 6:
        die_with_parent()
        steady_client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "synflood" and len(sys.argv) == 7:
        die_with_parent()
        syn_flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
                  float(sys.argv[6]))
    elif cmd == "udpflood" and len(sys.argv) == 6:
        die_with_parent()
        udp_flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "ping" and len(sys.argv) == 4:
        die_with_parent()
        ping(sys.argv[2], int(sys.argv[3]))
    elif cmd == "stream" and len(sys.argv) in (5, 6):
        die_with_parent()
        stream_client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                      *(float(a) for a in sys.argv[5:]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
