#!/usr/bin/env python3
"""Writes the seed corpus of the parse fuzzer: valid packets of every kind the parser knows, with
correct checksums (so the rewrite invariants are exercised), and malformed variants of each.

Usage: make_corpus.py [OUT_DIR]   (default: corpus/parse next to this script)

Seeds are named seed_*.bin; files added by libFuzzer merges keep their hash names. Standard
library only.
"""

import os
import struct
import sys

CLIENT4, VIP4, ROUTER4 = bytes([198, 18, 0, 1]), bytes([198, 18, 100, 1]), bytes([198, 18, 1, 254])
CLIENT6 = bytes.fromhex("20010db8000000000000000000000001")
VIP6 = bytes.fromhex("20010db8010000000000000000000001")
ROUTER6 = bytes.fromhex("20010db80001000000000000000000fe")
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")

TCP, UDP, SCTP, ICMP, ICMP6 = 6, 17, 132, 1, 58


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return ~crc & 0xFFFFFFFF


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def eth(payload, ether_type, vlans=()):
    hdr = MAC_B + MAC_A
    for tpid, tci in vlans:
        hdr += struct.pack("!HH", tpid, tci)
    return hdr + struct.pack("!H", ether_type) + payload


def tcp(sport, dport, flags=0x02, options=b"", payload=b""):
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, doff << 4, flags, 65535, 0, 0) + \
        options + payload


def udp(sport, dport, payload=b"", length=None):
    return struct.pack("!HHHH", sport, dport, length or 8 + len(payload), 0) + payload


def sctp(sport, dport, payload=b""):
    return struct.pack("!HHII", sport, dport, 0x01020304, 0) + payload


def icmp(type_, code, rest=0, payload=b""):
    return struct.pack("!BBHI", type_, code, 0, rest) + payload


def fill_l4(src, dst, proto, l4):
    """Fills the L4 checksum of a whole (unfragmented) segment."""
    l4 = bytearray(l4)
    if proto == TCP and len(l4) >= 20:
        l4[16:18] = struct.pack("!H", csum(pseudo(src, dst, TCP, len(l4)) + bytes(l4)))
    elif proto == UDP and len(l4) >= 8:
        c = csum(pseudo(src, dst, UDP, len(l4)) + bytes(l4)) or 0xFFFF
        l4[6:8] = struct.pack("!H", c)
    elif proto == SCTP and len(l4) >= 12:
        l4[8:12] = struct.pack("<I", crc32c(bytes(l4)))
    elif proto == ICMP and len(src) == 4 and len(l4) >= 4:
        l4[2:4] = struct.pack("!H", csum(bytes(l4)))
    elif proto == ICMP6 and len(src) == 16 and len(l4) >= 4:
        l4[2:4] = struct.pack("!H", csum(pseudo(src, dst, ICMP6, len(l4)) + bytes(l4)))
    return bytes(l4)


def ipv4(src, dst, proto, l4, ttl=64, options=b"", frag=0, ident=0x1234, l4_checksum=True):
    if l4_checksum and frag & 0x3FFF == 0:
        l4 = fill_l4(src, dst, proto, l4)
    ihl = (20 + len(options)) // 4
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(l4),
                                ident, frag, ttl, proto, 0, src, dst) + options)
    hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
    return bytes(hdr) + l4


def ext(nh, body_len=6, type_=None):
    """An options-style extension header (hop-by-hop, routing, destination options)."""
    total = 2 + body_len
    body = bytes([1, body_len - 2]) + b"\0" * (body_len - 2)  # PadN
    if type_ == 43:
        body = bytes([253, 0]) + b"\0" * (body_len - 2)
    return bytes([nh, total // 8 - 1]) + body


def ipv6(src, dst, proto, l4, hop=64, exts=(), frag=None):
    """exts: list of (type, builder(nh) -> bytes); frag: (offset, more, id) appended last."""
    chain = list(exts)
    if frag is not None:
        off, more, ident = frag
        chain.append((44, lambda nh: struct.pack("!BxHI", nh, off | more, ident)))
    if frag is None or (frag[0] == 0 and frag[1] == 0):
        l4 = fill_l4(src, dst, proto, l4)
    body = b""
    nexts = [t for t, _ in chain[1:]] + [proto]
    for (t, build), nh in zip(chain, nexts):
        body += build(nh)
    first = chain[0][0] if chain else proto
    hdr = struct.pack("!IHBB", 6 << 28, len(body) + len(l4), first, hop) + src + dst
    return hdr + body + l4


def hbh(nh):
    return ext(nh)


def dst_opts(nh):
    return ext(nh, 14)


def routing(nh):
    return ext(nh, 6, 43)


def ah(nh):
    return struct.pack("!BBxxII", nh, 4, 0x100, 1) + b"\0" * 12


def arp(op=1, htype=1, ptype=0x0800, hlen=6, plen=4):
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + MAC_A + CLIENT4 + b"\0" * 6 + VIP4


def seeds():
    s = {}
    hello = b"hello"
    # --- valid, one per protocol and encapsulation ---
    s["tcp4_syn"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(40000, 80, 0x02)), 0x0800)
    s["tcp4_payload_64b"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(40000, 80, 0x18, payload=b"x" * 6)),
                                0x0800)
    s["tcp4_options"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 2, 0x12, bytes([2, 4, 5, 0xB4, 1, 3, 3,
                                                                             7]), hello)), 0x0800)
    s["tcp4_ip_options"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 2), options=bytes([0x94, 4, 0, 0])),
                               0x0800)
    s["tcp4_vlan"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 80)), 0x0800, [(0x8100, 100)])
    s["tcp4_qinq"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 80)), 0x0800, [(0x88A8, 10), (0x8100, 20)])
    s["tcp4_ttl1"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 80), ttl=1), 0x0800)
    s["udp4"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(5353, 53, b"query")), 0x0800)
    s["udp4_padded"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(1, 2, b"x")), 0x0800) + b"\0" * 17
    s["udp4_no_checksum"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(1, 2, b"abc"), l4_checksum=False),
                                0x0800)
    s["sctp4"] = eth(ipv4(CLIENT4, VIP4, SCTP, sctp(5000, 5001, b"\1\0\0\x10" + b"\0" * 12)),
                     0x0800)
    s["icmp4_echo"] = eth(ipv4(CLIENT4, VIP4, ICMP, icmp(8, 0, 0x00070001, b"ping")), 0x0800)
    s["icmp4_echo_reply"] = eth(ipv4(VIP4, CLIENT4, ICMP, icmp(0, 0, 0x00070001)), 0x0800)
    reply4 = ipv4(VIP4, CLIENT4, TCP, tcp(80, 40000, 0x12))
    s["icmp4_unreachable"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(3, 4, 1400, reply4[:28])), 0x0800)
    s["icmp4_time_exceeded_full"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(11, 0, 0, reply4)), 0x0800)
    s["icmp4_param_problem_udp"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(
        12, 0, 0, ipv4(VIP4, CLIENT4, UDP, udp(53, 40000, b"answer")))), 0x0800)
    s["icmp4_source_quench_sctp"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(
        4, 0, 0, ipv4(VIP4, CLIENT4, SCTP, sctp(1, 2))[:24])), 0x0800)
    s["gre4"] = eth(ipv4(CLIENT4, VIP4, 47, b"\0" * 24), 0x0800)
    s["frag4_first"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(1, 2, b"y" * 64, length=3000),
                                frag=0x2000), 0x0800)
    s["frag4_middle"] = eth(ipv4(CLIENT4, VIP4, UDP, b"z" * 64, frag=0x2000 | 185), 0x0800)
    s["frag4_last"] = eth(ipv4(CLIENT4, VIP4, TCP, b"z" * 64, frag=370), 0x0800)
    s["tcp6"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(40000, 443, 0x02)), 0x86DD)
    s["tcp6_vlan"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(40000, 443, 0x10, payload=hello)), 0x86DD,
                         [(0x8100, 7)])
    s["udp6"] = eth(ipv6(CLIENT6, VIP6, UDP, udp(1, 53, b"q")), 0x86DD)
    s["sctp6"] = eth(ipv6(CLIENT6, VIP6, SCTP, sctp(9, 10, b"\0" * 16)), 0x86DD)
    s["icmp6_echo"] = eth(ipv6(CLIENT6, VIP6, ICMP6, icmp(128, 0, 0x00090002)), 0x86DD)
    s["icmp6_ns"] = eth(ipv6(CLIENT6, VIP6, ICMP6, icmp(135, 0, 0, VIP6)), 0x86DD)
    reply6 = ipv6(VIP6, CLIENT6, UDP, udp(53, 40000, b"x"), exts=[(0, hbh)])
    s["icmp6_too_big"] = eth(ipv6(ROUTER6, VIP6, ICMP6, icmp(2, 0, 1280, reply6)), 0x86DD)
    s["icmp6_unreachable_tcp"] = eth(ipv6(ROUTER6, VIP6, ICMP6, icmp(
        1, 4, 0, ipv6(VIP6, CLIENT6, TCP, tcp(443, 40000))[:44])), 0x86DD)
    s["icmp6_time_exceeded_frag"] = eth(ipv6(ROUTER6, VIP6, ICMP6, icmp(
        3, 1, 0, ipv6(VIP6, CLIENT6, UDP, b"q" * 16, frag=(64, 1, 7)))), 0x86DD)
    s["ipv6_ext_chain"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(1, 2), exts=[
        (0, hbh), (43, routing), (60, dst_opts), (51, ah)]), 0x86DD)
    s["ipv6_eight_ext"] = eth(ipv6(CLIENT6, VIP6, UDP, udp(1, 2), exts=[(0, hbh)] + [
        (60, dst_opts)] * 7), 0x86DD)
    s["ipv6_no_next_header"] = eth(ipv6(CLIENT6, VIP6, 59, b"abc", exts=[(60, dst_opts)]), 0x86DD)
    s["ipv6_esp"] = eth(ipv6(CLIENT6, VIP6, 50, b"\0" * 32), 0x86DD)
    s["frag6_first"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(1, 2, payload=b"a" * 40),
                                frag=(0, 1, 0xDEAD)), 0x86DD)
    s["frag6_non_first"] = eth(ipv6(CLIENT6, VIP6, TCP, b"b" * 40, frag=(1232, 1, 0xDEAD)), 0x86DD)
    s["frag6_atomic"] = eth(ipv6(CLIENT6, VIP6, UDP, udp(7, 8, b"c"), frag=(0, 0, 5)), 0x86DD)
    s["sctp6_first_fragment"] = eth(ipv6(CLIENT6, VIP6, SCTP, sctp(1, 2, b"\0" * 16),
                                         frag=(0, 1, 9)), 0x86DD)
    s["arp_request"] = eth(arp(), 0x0806)
    s["arp_reply_padded"] = eth(arp(2), 0x0806) + b"\0" * 18
    s["lldp"] = eth(b"\x02\x07\x04" + MAC_A + b"\0" * 20, 0x88CC)

    # --- malformed ---
    t4 = s["tcp4_syn"]
    s["bad_eth_13"] = t4[:13]
    s["bad_vlan_cut"] = s["tcp4_vlan"][:16]
    s["bad_vlan_three_tags"] = eth(ipv4(CLIENT4, VIP4, TCP, tcp(1, 2)), 0x0800,
                                   [(0x88A8, 1), (0x8100, 2), (0x8100, 3)])
    s["bad_arp_ipv6"] = eth(arp(1, 1, 0x86DD, 6, 16), 0x0806)
    s["bad_arp_cut"] = s["arp_request"][:30]
    s["bad_ipv4_ihl4"] = t4[:14] + bytes([0x44]) + t4[15:]
    s["bad_ipv4_ihl15"] = t4[:14] + bytes([0x4F]) + t4[15:]
    s["bad_ipv4_version6"] = t4[:14] + bytes([0x65]) + t4[15:]
    s["bad_ipv4_total_long"] = t4[:16] + struct.pack("!H", 1000) + t4[18:]
    s["bad_ipv4_total_short"] = t4[:16] + struct.pack("!H", 19) + t4[18:]
    s["bad_ipv4_frag_overflow"] = eth(ipv4(CLIENT4, VIP4, UDP, b"\0" * 16, frag=8190), 0x0800)
    s["bad_tcp_doff4"] = t4[:46] + bytes([0x40]) + t4[47:]
    s["bad_tcp_doff15"] = t4[:46] + bytes([0xF0]) + t4[47:]
    s["bad_udp_len7"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(1, 2, length=7)), 0x0800)
    s["bad_udp_len_long"] = eth(ipv4(CLIENT4, VIP4, UDP, udp(1, 2, b"abc", length=100)), 0x0800)
    s["bad_sctp_cut"] = eth(ipv4(CLIENT4, VIP4, SCTP, b"\0" * 11), 0x0800)
    s["bad_icmp_cut"] = eth(ipv4(CLIENT4, VIP4, ICMP, b"\x08\0\0"), 0x0800)
    s["bad_icmp4_quote_short"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(3, 1, 0, reply4[:19])), 0x0800)
    s["bad_icmp4_quote_v6"] = eth(ipv4(ROUTER4, VIP4, ICMP, icmp(3, 1, 0, reply6)), 0x0800)
    s["bad_icmp6_quote_chain_cut"] = eth(ipv6(ROUTER6, VIP6, ICMP6, icmp(1, 0, 0, reply6[:44])),
                                         0x86DD)
    t6 = s["tcp6"]
    s["bad_ipv6_version4"] = t6[:14] + bytes([0x40]) + t6[15:]
    s["bad_ipv6_plen_long"] = t6[:18] + struct.pack("!H", 21) + t6[20:]
    s["bad_ipv6_plen_short"] = t6[:18] + struct.pack("!H", 19) + t6[20:]
    s["bad_ipv6_chain_too_long"] = eth(ipv6(CLIENT6, VIP6, UDP, udp(1, 2),
                                            exts=[(60, dst_opts)] * 9), 0x86DD)
    s["bad_ipv6_hbh_misplaced"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(1, 2),
                                           exts=[(60, dst_opts), (0, hbh)]), 0x86DD)
    s["bad_ipv6_ext_cut"] = eth(ipv6(CLIENT6, VIP6, TCP, tcp(1, 2), exts=[
        (0, lambda nh: bytes([nh, 10]) + b"\0" * 6)]), 0x86DD)
    s["bad_frag6_first_no_l4"] = eth(ipv6(CLIENT6, VIP6, TCP, b"\0" * 12, frag=(0, 1, 1)), 0x86DD)
    s["bad_frag6_overflow"] = eth(ipv6(CLIENT6, VIP6, UDP, b"\0" * 8, frag=(65528, 0, 1)), 0x86DD)
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "parse")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, "seed_" + name + ".bin"), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds()), out))


if __name__ == "__main__":
    main()
