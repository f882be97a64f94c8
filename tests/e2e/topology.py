#!/usr/bin/python3
"""The end-to-end topology: names and addresses, command helpers, building the namespaces
around a bridge, and removing everything a run (or a crashed one) left behind. Used by
e2e.py; standard library only."""
import os
import signal
import subprocess
import tempfile
import time


PREFIX = "mle2e-"
HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "agent.py")
DECAP = os.path.join(HERE, "decap.py")
PYTHON = "/usr/bin/python3"  # Debian's (FIELD-NOTES): the same everywhere
LOCK_PATH = "/tmp/mle2e.lock"

FABRIC = PREFIX + "fabric"   # holds the bridge (the "switch")
BRIDGE = "br0"
LB_IF = PREFIX + "lb"        # Magline's af_packet port, root namespace
LB_PEER = "lb"               # its other end, on the bridge (inside FABRIC)
CLIENT = PREFIX + "c1"
CLIENT2 = PREFIX + "c2"      # another subnet: DNAT
BACKENDS = [  # (namespace, name, IPv4, IPv6)
    (PREFIX + "b0", "b0", "198.18.1.10", "2001:db8::10"),
    (PREFIX + "b1", "b1", "198.18.1.11", "2001:db8::11"),
    (PREFIX + "b2", "b2", "198.18.1.12", "2001:db8::12"),
]
# Backends anywhere routable (IPIP, GUE): behind a router, on a link with a smaller MTU.
ROUTER = PREFIX + "r"
ROUTER_V4, ROUTER_V6 = "198.18.0.254", "2001:db8::fe"  # on the bridge
FAR_NET_V4, FAR_NET_V6 = "198.19.200.0/24", "2001:db8:200::/64"
FAR_GW_V4, FAR_GW_V6 = "198.19.200.1", "2001:db8:200::1"  # the router, on the far link
FAR_MTU = 1400
FAR_BACKENDS = [  # (namespace, name, IPv4, IPv6)
    (PREFIX + "f0", "f0", "198.19.200.10", "2001:db8:200::10"),
    (PREFIX + "f1", "f1", "198.19.200.11", "2001:db8:200::11"),
]
NAMESPACES = [FABRIC, CLIENT, CLIENT2, ROUTER] + [b[0] for b in BACKENDS + FAR_BACKENDS]

LB_V4, LB_V4_DNAT, LB_V6 = "198.18.0.1", "198.19.0.1", "2001:db8::1"
LB_V6_DNAT = "2001:db8:19::1"  # client 2's IPv6 gateway
CLIENT_V4, CLIENT_V6, CLIENT2_V4 = "198.18.10.1", "2001:db8::a", "198.19.0.10"
CLIENT2_V6 = "2001:db8:19::10"
VIP_HTTP, VIP_UDP, VIP_DSR, VIP_DNAT, VIP_ECHO = (
    "198.18.100.1", "198.18.100.2", "198.18.100.3", "198.18.100.4", "198.18.100.5")
VIP_HTTP6, VIP_UDP6 = "2001:db8:100::1", "2001:db8:100::2"
VIP_DSR6, VIP_DNAT6 = "2001:db8:100::3", "2001:db8:100::4"
VIP_LIMITED = "198.18.100.16"  # a frontend with a new-connection limit
VIP_IPIP, VIP_GUE, VIP_IPIP6 = "198.18.100.20", "198.18.100.21", "2001:db8:100::20"
VIP_FAR, VIP_FAR6 = "198.18.100.22", "2001:db8:100::22"  # full-NAT to the far backends
FLOOD_NET_V4 = "198.19.128.0/17"  # agent.py synflood's made-up sources
ENCAP_SOURCE_V4 = "198.18.250.0/24"  # IPIP's outer sources: host bits from each flow's hash
NODE_PORT = 30080
# Other Magline nodes, each in a namespace of its own on the bridge (cases_nodes.py): namespace,
# the bridge's end of its port, its port addresses (the node's own, on its kernel interface).
NODES = [
    (PREFIX + "n1", "n1", "198.18.0.2", "2001:db8::2"),
    (PREFIX + "n2", "n2", "198.18.0.3", "2001:db8::3"),
]
VIP_NODES = "198.18.100.30"  # a full-NAT service the other nodes forward
# ...and one they announce over BGP to the router (case bgp_announce), off every on-link subnet:
# clients reach it through the router, which learns it from the nodes.
VIP_BGP = "198.19.100.1"
VIP_ECMP_DSR = "198.19.100.2"  # L2 DSR, announced by two nodes (case ecmp_failover)
VIP_ECMP_DNAT = "198.19.100.3"  # DNAT, likewise, for client 2 (off the backends' link)
ROUTER_V4_C2 = "198.19.0.254"   # the router on client 2's subnet too
CLIENT2_NET = "198.19.0.0/24"
ROUTER_AS, NODE_AS = 65000, 65001
# The L2 speaker (case l2_failover): an on-link address two nodes share, one answering ARP for
# it; the nodes reach a second fake API server (their Leases) over a management network to the
# root namespace, as nodes with a management NIC do.
VIP_L2 = "198.18.100.40"
MGMT_BRIDGE = PREFIX + "mgmt"  # in the root namespace
MGMT_HOST = "198.19.250.1"     # the root namespace's address there
MGMT_NODES = {"n1": "198.19.250.2", "n2": "198.19.250.3"}
# Services watched through the fake Kubernetes API server.
VIP_K8S, VIP_K8S_ECHO, NODE_PORT_K8S = "198.18.100.6", "198.18.100.7", 30081
# The provider's pool (docs/provider.md): the k8s VIPs above are taken back from their status,
# the rest is assigned.
PROVIDER_POOL = "198.18.100.6-198.18.100.15"


class Fail(Exception):
    """A test case's failure, with its message."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP to the harness: unwind through every finally, like Ctrl-C."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, check=True, timeout=15, input=None):
    """Runs a short command; returns its CompletedProcess (text). Raises Fail when `check` and
    the command fails or overruns."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise Fail(f"{' '.join(cmd)}: still running after {timeout} s")
    if check and p.returncode != 0:
        raise Fail(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


def nsx(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def in_ns(ns, *cmd, **kw):
    return run(nsx(ns, *cmd), **kw)


def sysctl(ns, *settings):
    cmd = ["sysctl", "-q", "-w", *settings]
    return in_ns(ns, *cmd) if ns else run(cmd)


def no_offload(ns, ifname):
    """FIELD-NOTES: a veth with TX checksum offload hands af_packet frames whose checksums were
    never filled in. Off on every end."""
    cmd = ["ethtool", "-K", ifname, "tx", "off", "rx", "off"]
    return in_ns(ns, *cmd) if ns else run(cmd)


# --- cleanup ---------------------------------------------------------------------------------


def our_namespaces():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(PREFIX)]


def our_root_links():
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@")[0]
            if name.startswith(PREFIX):
                names.append(name)
    return names


def tagged_processes():
    """Processes of ours outside the namespaces' own: a `magline run --config` whose file is in
    a work directory of ours (TMPDIR/mle2e-*), or a tcpdump writing there. Not this process or
    its ancestors, and nothing else that merely mentions the name (an editor, a `tail -f`)."""
    workdirs = os.path.join(tempfile.gettempdir(), PREFIX).encode()
    mine = set()
    pid = os.getpid()
    while pid > 1 and pid not in mine:
        mine.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        ours = any(a.startswith(workdirs) for a in args[1:])
        prog = os.path.basename(args[0])
        if ours and ((b"run" in args and b"--config" in args) or prog == b"tcpdump"):
            found.append((int(entry), b" ".join(args).decode(errors="replace").strip()))
    return found


def processes_in(ns):
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def kill_pids(pids, grace=2.0):
    pids = [p for p in pids if p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        while time.monotonic() < end:
            pids = [p for p in pids if os.path.exists(f"/proc/{p}") and not is_zombie(p)]
            if not pids:
                return
            time.sleep(0.05)


def is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def our_dpdk_files():
    """Hugepage files and DPDK runtime directories of a Magline run under one of our EAL
    prefixes (Magline removes them when it stops; a killed one leaves them)."""
    found = []
    for folder in ("/dev/hugepages", "/var/run/dpdk"):
        try:
            found += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                      if n.startswith(PREFIX)]
        except OSError:
            pass
    return found


def remove_everything():
    """Processes first, then namespaces, then root-side veths (FIELD-NOTES: `ip netns del`
    returns before the namespace is gone while a process still runs in it)."""
    pids = [p for p, _ in tagged_processes()]
    for ns in our_namespaces():
        pids += processes_in(ns)
    kill_pids(sorted(set(pids)))
    for ns in our_namespaces():
        run(["ip", "netns", "del", ns], check=False)
    for link in our_root_links():
        run(["ip", "link", "del", link], check=False)
    end = time.monotonic() + 5
    while time.monotonic() < end and (our_namespaces() or our_root_links()):
        time.sleep(0.1)
    for path in our_dpdk_files():
        run(["rm", "-rf", path], check=False)


def leftovers():
    problems = []
    if ns := our_namespaces():
        problems.append(f"namespaces: {', '.join(ns)}")
    if links := our_root_links():
        problems.append(f"links: {', '.join(links)}")
    if procs := tagged_processes():
        problems.append("processes: " + "; ".join(f"{p} {c}" for p, c in procs))
    if files := our_dpdk_files():
        problems.append("DPDK files: " + ", ".join(files[:5]))
    return problems


# --- topology --------------------------------------------------------------------------------


def build_topology():
    for ns in NAMESPACES:
        run(["ip", "netns", "add", ns])
        in_ns(ns, "ip", "link", "set", "lo", "up")
        # No duplicate address detection: IPv6 addresses are usable at once.
        sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
    # The switch: a bridge with no address, no IPv6 chatter and no multicast snooping (Magline
    # sends no MLD reports, so snooping could starve its solicited-node groups).
    sysctl(FABRIC, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    in_ns(FABRIC, "ip", "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0",
          "mcast_snooping", "0")
    in_ns(FABRIC, "ip", "link", "set", BRIDGE, "up")
    # A real switch does not reassemble IP fragments; a Linux bridge whose frames go through
    # netfilter (br_netfilter loaded) does, when connection tracking is active: off here, so that
    # fragments reach Magline as the client sent them.
    for table in ("iptables", "ip6tables", "arptables"):
        path = f"net.bridge.bridge-nf-call-{table}"
        if run(nsx(FABRIC, "sysctl", "-q", path), check=False).returncode == 0:
            sysctl(FABRIC, f"{path}=0")

    # Magline's port: the root end has no address, no IPv6, no ARP and no forwarding, so the
    # root namespace's kernel ignores what arrives there; af_packet still sees every frame.
    run(["ip", "link", "add", LB_IF, "type", "veth", "peer", "name", LB_PEER, "netns", FABRIC])
    sysctl(None, f"net.ipv6.conf.{LB_IF}.disable_ipv6=1", f"net.ipv4.conf.{LB_IF}.forwarding=0")
    run(["ip", "link", "set", LB_IF, "arp", "off"])
    no_offload(None, LB_IF)
    run(["ip", "link", "set", LB_IF, "up"])
    attach(LB_PEER)

    for ns, short in [(CLIENT, "c1"), (CLIENT2, "c2")] + [(b[0], b[1]) for b in BACKENDS]:
        run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", short,
             "netns", FABRIC])
        sysctl(ns, "net.ipv6.conf.eth0.accept_dad=0", "net.ipv4.conf.all.rp_filter=0",
               "net.ipv4.conf.eth0.rp_filter=0")
        no_offload(ns, "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        attach(short)

    # Client 1: same /16 as the backends (the IPv4 VIPs are on-link: Magline answers ARP for
    # them); the IPv6 VIPs through Magline.
    in_ns(CLIENT, "ip", "addr", "add", f"{CLIENT_V4}/16", "dev", "eth0")
    in_ns(CLIENT, "ip", "-6", "addr", "add", f"{CLIENT_V6}/64", "dev", "eth0", "nodad")
    in_ns(CLIENT, "ip", "-6", "route", "add", "2001:db8:100::/64", "via", LB_V6)
    # Client 2: another subnet, Magline is its default gateway (DNAT), IPv4 and IPv6.
    in_ns(CLIENT2, "ip", "addr", "add", f"{CLIENT2_V4}/24", "dev", "eth0")
    in_ns(CLIENT2, "ip", "route", "add", "default", "via", LB_V4_DNAT)
    in_ns(CLIENT2, "ip", "-6", "addr", "add", f"{CLIENT2_V6}/64", "dev", "eth0", "nodad")
    in_ns(CLIENT2, "ip", "-6", "route", "add", "default", "via", LB_V6_DNAT)
    for ns, _, v4, v6 in BACKENDS:
        in_ns(ns, "ip", "addr", "add", f"{v4}/16", "dev", "eth0")
        in_ns(ns, "ip", "-6", "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        # DNAT replies go back through Magline.
        in_ns(ns, "ip", "route", "add", CLIENT2_NET, "via", LB_V4)
        in_ns(ns, "ip", "-6", "route", "add", "2001:db8:19::/64", "via", LB_V6)
        # IPv6 DSR: the VIP on loopback too (clients reach it through Magline, by route).
        in_ns(ns, "ip", "-6", "addr", "add", f"{VIP_DSR6}/128", "dev", "lo", "nodad")
        # DSR: the VIP on loopback, never answered for in ARP (only Magline answers).
        in_ns(ns, "ip", "addr", "add", f"{VIP_DSR}/32", "dev", "lo")
        sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
               "net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")
    build_far_side()


def build_far_side():
    """The router (forwarding, no reverse-path filter: the far backends answer from the VIPs
    straight to the clients) and the far backends on a bridge of its own, MTU FAR_MTU. The far
    backends hold the encapsulated services' VIPs on lo and route everything via the router."""
    run(["ip", "link", "add", "eth0", "netns", ROUTER, "type", "veth", "peer", "name", "r",
         "netns", FABRIC])
    # ECMP (case ecmp_failover): the ports in the multipath hash, as routers spread flows; no
    # redirects, which would teach the client (on the nodes' link) to bypass the router.
    sysctl(ROUTER, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
           "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0",
           "net.ipv6.conf.eth0.accept_dad=0", "net.ipv4.fib_multipath_hash_policy=1",
           "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
    no_offload(ROUTER, "eth0")
    in_ns(ROUTER, "ip", "link", "set", "eth0", "up")
    attach("r")
    in_ns(ROUTER, "ip", "addr", "add", f"{ROUTER_V4}/16", "dev", "eth0")
    in_ns(ROUTER, "ip", "addr", "add", f"{ROUTER_V4_C2}/24", "dev", "eth0")
    in_ns(ROUTER, "ip", "-6", "addr", "add", f"{ROUTER_V6}/64", "dev", "eth0", "nodad")
    in_ns(ROUTER, "ip", "link", "add", "far", "type", "bridge", "forward_delay", "0",
          "mcast_snooping", "0")
    for ns, short, v4, v6 in FAR_BACKENDS:
        run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", short,
             "netns", ROUTER])
        in_ns(ROUTER, "ip", "link", "set", short, "master", "far", "mtu", str(FAR_MTU))
        no_offload(ROUTER, short)
        in_ns(ROUTER, "ip", "link", "set", short, "up")
        sysctl(ns, "net.ipv6.conf.eth0.accept_dad=0", "net.ipv4.conf.all.rp_filter=0",
               "net.ipv4.conf.eth0.rp_filter=0")
        in_ns(ns, "ip", "link", "set", "eth0", "mtu", str(FAR_MTU))
        no_offload(ns, "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "addr", "add", f"{v4}/24", "dev", "eth0")
        in_ns(ns, "ip", "-6", "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        in_ns(ns, "ip", "route", "add", "default", "via", FAR_GW_V4)
        in_ns(ns, "ip", "-6", "route", "add", "default", "via", FAR_GW_V6)
        for vip in (VIP_IPIP, VIP_GUE):
            in_ns(ns, "ip", "addr", "add", f"{vip}/32", "dev", "lo")
        in_ns(ns, "ip", "-6", "addr", "add", f"{VIP_IPIP6}/128", "dev", "lo", "nodad")
    in_ns(ROUTER, "ip", "link", "set", "far", "mtu", str(FAR_MTU), "up")
    in_ns(ROUTER, "ip", "addr", "add", f"{FAR_GW_V4}/24", "dev", "far")
    in_ns(ROUTER, "ip", "-6", "addr", "add", f"{FAR_GW_V6}/64", "dev", "far", "nodad")


def build_node(ns, short):
    """A Magline node in a namespace of its own: eth0 on the bridge, left to Magline (no
    address, no ARP, no IPv6: the namespace's kernel reaches the network through Magline's
    kernel interface instead, the exception path). A NIC that DPDK owns shows the kernel
    nothing; af_packet leaves it a copy of every frame, which the kernel would take as its own
    (the port's addresses are on the kernel interface, and Linux accepts a packet for any local
    address on any interface) and answer with resets. Strict reverse-path filtering on eth0
    drops that copy: every route leads through the kernel interface."""
    run(["ip", "netns", "add", ns])
    in_ns(ns, "ip", "link", "set", "lo", "up")
    sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
           "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
    run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", short,
         "netns", FABRIC])
    sysctl(ns, "net.ipv6.conf.eth0.disable_ipv6=1", "net.ipv4.conf.eth0.forwarding=0",
           "net.ipv4.conf.eth0.rp_filter=1")
    in_ns(ns, "ip", "link", "set", "eth0", "arp", "off")
    no_offload(ns, "eth0")
    in_ns(ns, "ip", "link", "set", "eth0", "up")
    attach(short)


def build_mgmt():
    """The management network: a bridge in the root namespace with MGMT_HOST (no IPv6). Its MAC
    is set: a bridge otherwise takes its ports' lowest, which changes when a node's port goes,
    and the other nodes' ARP entries for MGMT_HOST would then point nowhere."""
    run(["ip", "link", "add", MGMT_BRIDGE, "address", "02:00:00:00:fa:01", "type", "bridge",
         "forward_delay", "0"])
    sysctl(None, f"net.ipv6.conf.{MGMT_BRIDGE}.disable_ipv6=1")
    run(["ip", "addr", "add", f"{MGMT_HOST}/24", "dev", MGMT_BRIDGE])
    run(["ip", "link", "set", MGMT_BRIDGE, "up"])


def attach_mgmt(ns, short):
    """Node `short`'s management interface `mgmt` (MGMT_NODES[short]/24), on the bridge; it goes
    with the node's namespace."""
    root_end = PREFIX + "m" + short
    run(["ip", "link", "add", root_end, "type", "veth", "peer", "name", "mgmt", "netns", ns])
    sysctl(None, f"net.ipv6.conf.{root_end}.disable_ipv6=1")
    run(["ip", "link", "set", root_end, "master", MGMT_BRIDGE, "up"])
    in_ns(ns, "ip", "addr", "add", f"{MGMT_NODES[short]}/24", "dev", "mgmt")
    in_ns(ns, "ip", "link", "set", "mgmt", "up")


def attach(port):
    in_ns(FABRIC, "ip", "link", "set", port, "master", BRIDGE)
    no_offload(FABRIC, port)
    in_ns(FABRIC, "ip", "link", "set", port, "up")
