#!/usr/bin/python3
"""A userspace tunnel endpoint for a backend namespace: the kernel here has no ipip, fou or
ip6_tunnel modules (FIELD-NOTES), so this program decapsulates what Magline tunnels to a backend
and writes each inner packet, unchanged, to a TUN device, where the backend's own stack receives
it (the VIP is on lo; the answer goes straight back to the client: receive direction only).
Standard library only; root.

  ip netns exec NS /usr/bin/python3 decap.py --tun NAME [--gue-port 6080] [--stats FILE]

Accepts, on any local address of NS:
  IPIP  outer IPv4 (protocol 4 or 41) or IPv6 (next header 4 or 41), then the inner IPv4 or IPv6
        packet (raw sockets, which also keep the kernel from answering "protocol unreachable");
  GUE   variant 1 (direct IP encapsulation, draft-ietf-intarea-gue section 5, as Katran sends
        it): UDP to the GUE port whose payload is the inner packet (first nibble 4 or 6).
        IPv4 UDP checksums may be 0; IPv6 ones are checked by the kernel (a bad one, or 0, is
        dropped before this program sees it).
Anything else that reaches these sockets (a truncated packet, an inner version that does not
match, a GUE header of variant 0) is counted as "bad" and dropped.

Setup: creates the TUN device (IFF_TUN | IFF_NO_PI), sets it up, and turns rp_filter off on it
and on "all" (the inner source, a client, is not routed via the TUN: strict reverse-path
filtering would drop every packet). IPv6 has no reverse-path filter; the TUN only needs IPv6
enabled (disable_ipv6=0). The VIP must be a local address (e.g. on lo) and the clients must be
routable from NS; nothing is routed to the TUN.

Prints "ready" once every socket is open and the TUN is up. Counts packets by kind (ipip4 and
ipip6 by outer family, gue4, gue6, bad) and writes them as one JSON line to --stats FILE every
second and on SIGTERM or SIGINT (written to FILE.tmp, then renamed). Exits on SIGTERM, SIGINT
and when its parent dies.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from agent import die_with_parent  # its neighbour in tests/e2e

TUNSETIFF = 0x400454ca
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IPPROTO_IPIP, IPPROTO_IPV6 = 4, 41
KINDS = ("ipip4", "ipip6", "gue4", "gue6", "bad")


class Stop(Exception):
    """SIGTERM or SIGINT."""


def stop(signum, frame):
    for sig in (signal.SIGTERM, signal.SIGINT):  # a second one must not cut the last write
        signal.signal(sig, signal.SIG_IGN)
    raise Stop()


def write_proc(path, value):
    with open(path, "w") as f:
        f.write(value)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    for dev in (name, "all"):
        write_proc(f"/proc/sys/net/ipv4/conf/{dev}/rp_filter", "0")
    write_proc(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
    return fd


def big_buffer(sock):
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
            return
        except OSError:
            pass


def open_sockets(gue_port):
    """{socket: (family, kind)} for every receiving socket."""
    socks = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for proto in (IPPROTO_IPIP, IPPROTO_IPV6):
            s = socket.socket(family, socket.SOCK_RAW, proto)
            socks[s] = (family, proto)
    udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp4.bind(("0.0.0.0", gue_port))
    socks[udp4] = (socket.AF_INET, "gue")
    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp6.bind(("::", gue_port))
    socks[udp6] = (socket.AF_INET6, "gue")
    for s in socks:
        s.setblocking(False)
        big_buffer(s)
    return socks


def inner(family, what, data):
    """(kind, inner packet) or ("bad", None) for one datagram read from a socket."""
    if what == "gue":
        kind = "gue4" if family == socket.AF_INET else "gue6"
        version = data[0] >> 4 if data else 0
        return (kind, data) if version in (4, 6) else ("bad", None)
    kind = "ipip4" if family == socket.AF_INET else "ipip6"
    if family == socket.AF_INET:  # IPv4 raw sockets return the outer header too
        if len(data) < 20 or data[0] >> 4 != 4:
            return "bad", None
        data = data[(data[0] & 0x0f) * 4:]
    want = 4 if what == IPPROTO_IPIP else 6
    if len(data) < (20 if want == 4 else 40) or data[0] >> 4 != want:
        return "bad", None
    return kind, data


def write_stats(path, counts):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(counts) + "\n")
    os.replace(tmp, path)


def serve(tun, socks, stats_path):
    counts = dict.fromkeys(KINDS, 0)
    write_stats(stats_path, counts)
    print("ready", flush=True)
    readers = list(socks) + [tun]
    next_write = time.monotonic() + 1.0
    try:
        while True:
            ready, _, _ = select.select(readers, [], [], max(0.0, next_write - time.monotonic()))
            for r in ready:
                if r == tun:  # nothing is routed here, but IPv6 autoconf sends a few
                    drain(tun)
                    continue
                family, what = socks[r]
                for _ in range(64):  # a batch, then the other sockets and the stats get a turn
                    try:
                        data = r.recv(65536)
                    except BlockingIOError:
                        break
                    kind, packet = inner(family, what, data)
                    if packet is not None:
                        try:
                            os.write(tun, packet)
                        except OSError as e:  # the kernel refused it (EINVAL: not IP at all)
                            print(f"decap: tun write: {e}", file=sys.stderr, flush=True)
                            kind = "bad"
                    counts[kind] += 1
            if time.monotonic() >= next_write:
                write_stats(stats_path, counts)
                next_write = time.monotonic() + 1.0
    except Stop:
        write_stats(stats_path, counts)


def drain(tun):
    for _ in range(64):
        try:
            os.read(tun, 65536)
        except BlockingIOError:
            return


def main():
    p = argparse.ArgumentParser(description="IPIP and GUE decapsulation onto a TUN device")
    p.add_argument("--tun", required=True, help="name of the TUN device to create")
    p.add_argument("--gue-port", type=int, default=6080, help="UDP port of GUE (default 6080)")
    p.add_argument("--stats", help="JSON counters, rewritten every second and on exit")
    args = p.parse_args()
    die_with_parent()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        tun = open_tun(args.tun)
        socks = open_sockets(args.gue_port)
    except Stop:
        return 0
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"decap: {e}", file=sys.stderr, flush=True)
        return 1
    serve(tun, socks, args.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
