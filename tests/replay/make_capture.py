#!/usr/bin/python3
"""Writes in.pcap: a client and a backend talking through Magline (tests/replay/config.json),
with the neighbour discovery around it. Regenerate with `/usr/bin/python3 make_capture.py`
(needs python3-scapy), then refresh expected.pcap as tests/replay/README.md says."""
from scapy.all import ARP, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr
from scapy.all import IP, IPv6, TCP, UDP, Ether, Raw, wrpcap

LB = "02:00:00:00:00:01"
CLIENT = "02:00:00:00:00:0a"
BACKEND = "02:00:00:00:00:0b"
BCAST = "ff:ff:ff:ff:ff:ff"

frames = [
    # The client resolves the VIP, and opens a full-NAT connection: the SYN waits in the slow
    # path until the backend answers Magline's ARP request.
    Ether(src=CLIENT, dst=BCAST) / ARP(op=1, hwsrc=CLIENT, psrc="198.18.10.1", pdst="198.18.100.1"),
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.1") / TCP(sport=40000, dport=80, flags="S", seq=1000),
    Ether(src=BACKEND, dst=LB) / ARP(op=2, hwsrc=BACKEND, psrc="198.18.1.10", hwdst=LB, pdst="198.18.0.1"),
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.1") / TCP(sport=40000, dport=80, flags="A", seq=1001, ack=1) / Raw(b"GET / HTTP/1.0\r\n\r\n"),
    # DNAT: the client's address reaches the backend; the reply is translated back.
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.2") / UDP(sport=33000, dport=53) / Raw(b"query"),
    Ether(src=BACKEND, dst=LB) / IP(src="198.18.1.10", dst="198.18.10.1") / UDP(sport=5353, dport=33000) / Raw(b"answer"),
    # L2 DSR: only the destination MAC changes.
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.3") / TCP(sport=40001, dport=80, flags="S"),
    # IPv6: neighbour solicitation for the VIP, a connection, the backend's advertisement.
    Ether(src=CLIENT, dst="33:33:ff:00:00:01") / IPv6(src="2001:db8::a", dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="2001:db8:100::1") / ICMPv6NDOptSrcLLAddr(lladdr=CLIENT),
    Ether(src=CLIENT, dst=LB) / IPv6(src="2001:db8::a", dst="2001:db8:100::1") / TCP(sport=41000, dport=80, flags="S"),
    Ether(src=BACKEND, dst=LB) / IPv6(src="2001:db8::10", dst="2001:db8::1", hlim=255) / ICMPv6ND_NA(tgt="2001:db8::10", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=BACKEND),
    # No backend: rejected with a RST. Unknown destination and a malformed frame: dropped.
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.9") / TCP(sport=40002, dport=80, flags="S", seq=7),
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.77") / TCP(sport=40003, dport=80, flags="S"),
    Ether(src=CLIENT, dst=LB) / IP(src="198.18.10.1", dst="198.18.100.1", ihl=4) / TCP(sport=40004, dport=80),
]
for i, f in enumerate(frames):
    f.time = 1700000000 + i * 0.01
wrpcap("in.pcap", frames)
