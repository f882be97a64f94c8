#!/usr/bin/python3
"""End to end through `magline run` against nftables DNAT, in the same run (issue 19).

A client and a server in network namespaces of their own, each on a veth pair whose other end
is the middle: either Magline's two af_packet ports (DNAT services) in the root namespace, whose
interfaces the kernel leaves to Magline (an nftables ingress drop after af_packet's tap), or a
router namespace whose kernel forwards with nftables DNAT rules (what kube-proxy's nftables mode
programs: a prerouting nat chain, conntrack). Same addresses, same offloads (all off on every
veth: af_packet takes no GSO super-frames, so neither side gets them), same CPU placement: the
forwarder on CPU 1 (Magline's worker; the kernel's softirqs steered there by RPS), the client,
the server and everything else on CPU 0. Three measurements, each `--seconds` long:

  udp   64-byte frames (18 bytes of UDP payload) from 256 client ports to VIP:9, sent as fast as
        trafgen can on CPU 0; the frames the server's interface received per second
  tcp   one iperf3 TCP stream through VIP:5201, Gbit/s received
  http  wrk (1 thread, 32 connections) against nginx (1 worker) through VIP:80, requests/s

Magline's ports are af_packet's by default; `--driver af_xdp` gives it DPDK's AF_XDP driver on the
same interfaces instead (the kernel's XDP on the veth hands each frame to Magline's socket
before the IP stack sees it: one copy each way, where af_packet makes two).

A veth delivers a frame in the sender's context: the endpoints' own receive work (the server's
TCP receive of every segment, the client's of every ACK) runs on the CPU that sent the frame,
the forwarder's, in Magline's `sendto()` as in the kernel's forwarding softirq. `--endpoints-rx
own` steers it to the endpoints' CPU (RPS on their interfaces), as it would be were the
endpoints other machines; `forwarder` (the default) leaves it where veth puts it.

Rounds alternate Magline and nftables (`--rounds`, 3 by default); min/median/max of each and the
ratios of the medians are printed, with one JSON object. With each measurement, both CPUs' busy
share and the forwarder CPU's busy microseconds per frame the server received (the worker's and
the kernel's work there alike): a frame's cost where that CPU is saturated, as in the TCP case.
`--csv FILE` writes the figures for docs/img's plot. Needs root, `magline`, and Debian's iperf3,
wrk, nginx-light, netsniff-ng (trafgen) and nftables. Not part of CI (about 2 minutes).

Usage: perf/e2e_bench.py --magline build/control/magline [--seconds S] [--rounds N]
                         [--only udp,tcp,http] [--driver af_packet|af_xdp]
                         [--endpoints-rx forwarder|own] [--csv FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PREFIX = "mlbench-"
CLIENT, SERVER, ROUTER = PREFIX + "c", PREFIX + "s", PREFIX + "r"
MID_C, MID_S = "mlbench-mc", "mlbench-ms"  # the middle's ends of the two veth pairs
CLIENT_V4, SERVER_V4, VIP = "198.18.60.10", "198.18.61.10", "198.18.62.1"
GW_C, GW_S = "198.18.60.1", "198.18.61.1"  # the middle, on each side
ENDPOINT_CPU, FORWARDER_CPU = 0, 1
ADMIN_PORT = 9191
TOOLS = ["iperf3", "wrk", "nginx", "trafgen", "nft", "ethtool", "taskset"]


def run(cmd, check=True, timeout=60, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


def ns(name, *cmd, **kw):
    return run(["ip", "netns", "exec", name, *cmd], **kw)


def nsx(name, *cmd):
    return ["ip", "netns", "exec", name, *cmd]


def offloads_off(netns, ifname):
    cmd = ["ethtool", "-K", ifname, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
           "gro", "off"]
    if netns:
        ns(netns, *cmd)
    else:
        run(cmd)


def given_to_magline(ifname):
    """Gives an af_packet port's interface to Magline alone, as a NIC bound to DPDK is: the
    kernel's own receive path drops every frame at the interface's ingress hook, after
    af_packet's tap has copied it for Magline. Without it the kernel also runs each frame
    through its IP stack (a route lookup, then a drop: forwarding is off on the interface), on
    the CPU that sent it: a quarter of the UDP generator's CPU here."""
    table = f"{PREFIX}port-{ifname}"
    run(["nft", "add", "table", "netdev", table])
    run(["nft", "add", "chain", "netdev", table, "ingress",
         f"{{ type filter hook ingress device {ifname} priority 0; policy drop; }}"])


def teardown():
    for name in (CLIENT, SERVER, ROUTER):
        run(["ip", "netns", "del", name], check=False)
    for link in (MID_C, MID_S):
        run(["nft", "delete", "table", "netdev", f"{PREFIX}port-{link}"], check=False)
    for link in (MID_C, MID_S):
        run(["ip", "link", "del", link], check=False)


def build(middle, endpoints_rx):
    """The client and the server on veth pairs to the middle: `magline` (the middle's ends in
    the root namespace, no address, for af_packet) or `nftables` (in a router namespace); the
    endpoints' receive work on the forwarder's CPU or, `endpoints_rx == "own"`, on theirs."""
    teardown()
    for name in (CLIENT, SERVER):
        run(["ip", "netns", "add", name])
        ns(name, "ip", "link", "set", "lo", "up")
    if middle == "nftables":
        run(["ip", "netns", "add", ROUTER])
        ns(ROUTER, "ip", "link", "set", "lo", "up")
    for end, name, addr, gw in ((MID_C, CLIENT, CLIENT_V4, GW_C), (MID_S, SERVER, SERVER_V4, GW_S)):
        run(["ip", "link", "add", end, "type", "veth", "peer", "name", "eth0", "netns", name])
        ns(name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        offloads_off(name, "eth0")
        if endpoints_rx == "own":
            ns(name, "sh", "-c", f"echo {1 << ENDPOINT_CPU:x} > "
               "/sys/class/net/eth0/queues/rx-0/rps_cpus")
        ns(name, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
        ns(name, "ip", "link", "set", "eth0", "up")
        ns(name, "ip", "route", "add", "default", "via", gw)
        if middle == "magline":
            run(["sysctl", "-q", "-w", f"net.ipv6.conf.{end}.disable_ipv6=1",
                 f"net.ipv4.conf.{end}.forwarding=0"])
            run(["ip", "link", "set", end, "arp", "off"])
            offloads_off(None, end)
            run(["ip", "link", "set", end, "up"])
            given_to_magline(end)
        else:
            run(["ip", "link", "set", end, "netns", ROUTER])
            offloads_off(ROUTER, end)
            ns(ROUTER, "ip", "addr", "add", f"{gw}/24", "dev", end)
            ns(ROUTER, "ip", "link", "set", end, "up")
            # The kernel forwards in the softirq of the CPU that took the frame in: steered to
            # the forwarder's CPU, as Magline's worker polls there.
            ns(ROUTER, "sh", "-c", f"echo {1 << FORWARDER_CPU:x} > "
               f"/sys/class/net/{end}/queues/rx-0/rps_cpus")
    if middle == "nftables":
        ns(ROUTER, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0")
        rules = f"""table ip mlbench {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {VIP} udp dport 9 dnat to {SERVER_V4}:9
    ip daddr {VIP} tcp dport 5201 dnat to {SERVER_V4}:5201
    ip daddr {VIP} tcp dport 80 dnat to {SERVER_V4}:80
  }}
}}
"""
        ns(ROUTER, "nft", "-f", "-", input=rules)


def mac_of(netns, ifname):
    cmd = ["cat", f"/sys/class/net/{ifname}/address"]
    return (ns(netns, *cmd) if netns else run(cmd)).stdout.strip()


# Each driver's device string for a port on interface `iface` (DPDK's vdev names, numbered).
DRIVERS = {
    "af_packet": lambda n, iface: f"net_af_packet{n},iface={iface},qpairs=1",
    "af_xdp": lambda n, iface: f"net_af_xdp{n},iface={iface}",
}


def magline_config(workdir, driver):
    services = [{"name": f"bench:{name}", "mode": "dnat",
                 "frontends": [{"address": VIP, "port": port, "protocol": proto}],
                 "backends": [{"address": SERVER_V4, "port": port}]}
                for name, port, proto in (("udp", 9, "udp"), ("tcp", 5201, "tcp"),
                                          ("http", 80, "tcp"))]
    config = {
        "flow_table": {"capacity": 65536},
        "admin": {"address": "127.0.0.1", "port": ADMIN_PORT},
        "dataplane": {
            "main_core": ENDPOINT_CPU, "worker_cores": [FORWARDER_CPU], "hugepages": False,
            "memory_mb": 512, "file_prefix": "mlbench",
            "ports": [{"name": "c", "device": DRIVERS[driver](0, MID_C),
                       "addresses": [f"{GW_C}/24"]},
                      {"name": "s", "device": DRIVERS[driver](1, MID_S),
                       "addresses": [f"{GW_S}/24"]}],
        },
        "services": services,
    }
    path = os.path.join(workdir, "magline.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def start_magline(binary, workdir, driver):
    log = open(os.path.join(workdir, "magline.log"), "w")
    proc = subprocess.Popen([binary, "run", "--config", magline_config(workdir, driver)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"magline exited with {proc.returncode}: see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/readyz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("magline not ready within 30 s")


def warm_up():
    """A few datagrams through the VIP, so that every hop has resolved its neighbours."""
    ns(CLIENT, sys.executable, "-c",
       "import socket, time\n"
       "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       f"for _ in range(20): s.sendto(b'warm', ('{VIP}', 9)); time.sleep(0.05)")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pinned(netns, *cmd):
    return nsx(netns, "taskset", "-c", str(ENDPOINT_CPU), *cmd)


def packets(netns, ifname, direction):
    out = ns(netns, "ip", "-j", "-s", "link", "show", ifname).stdout
    return json.loads(out)[0]["stats64"][direction]["packets"]


def cpu_jiffies():
    """Each CPU's (busy, total) clock ticks since boot, from /proc/stat."""
    out = {}
    for line in open("/proc/stat"):
        f = line.split()
        if f[0].startswith("cpu") and f[0] != "cpu":
            ticks = [int(x) for x in f[1:]]
            idle = ticks[3] + ticks[4]  # idle, iowait
            out[int(f[0][3:])] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return out


def cpu_use(before, after, frames):
    """The endpoints' and the forwarder's CPU busy fractions over a measurement, and the
    forwarder CPU's busy microseconds per frame the server's interface received: what one
    frame costs that CPU, whoever spent it (the worker, the kernel's softirqs in its system
    calls or in ksoftirqd). Meaningful as a cost where that CPU is saturated (TCP here);
    Magline's worker polls, so its CPU is busy whatever the load."""
    def busy(cpu):
        b = after[cpu][0] - before[cpu][0]
        t = after[cpu][1] - before[cpu][1]
        return (b / t if t else 0.0), b / os.sysconf("SC_CLK_TCK")
    endpoints, _ = busy(ENDPOINT_CPU)
    forwarder, forwarder_s = busy(FORWARDER_CPU)
    return endpoints, forwarder, (1e6 * forwarder_s / frames if frames else 0.0)


class Window:
    """A measurement's traffic span: the frames the server's interface received in it and
    every CPU's ticks at its start and end (for cpu_use())."""

    def start(self):
        self.frames0, self.cpu0 = packets(SERVER, "eth0", "rx"), cpu_jiffies()

    def stop(self):
        self.frames = packets(SERVER, "eth0", "rx") - self.frames0
        self.cpu1 = cpu_jiffies()


def measure_udp(middle, seconds, workdir, window):
    """Frames per second the server's interface received, and the client's sent."""
    mac = mac_of(ROUTER if middle == "nftables" else None, MID_C)
    conf = os.path.join(workdir, "udp.cfg")
    with open(conf, "w") as f:
        f.write(f"{{ eth(da={mac}), ipv4(saddr={CLIENT_V4}, daddr={VIP}, ttl=64), "
                f"udp(sport=dinc(1024, 1279), dport=9), fill(0x00, 18) }}\n")
    # A socket on the port that never reads: the server's kernel drops what overflows it
    # rather than answering each datagram with an ICMP error.
    sink = subprocess.Popen(pinned(SERVER, sys.executable, "-c",
                                   "import socket, time; s = socket.socket(socket.AF_INET, "
                                   "socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9)); time.sleep(3600)"))
    try:
        time.sleep(0.3)
        before = packets(SERVER, "eth0", "rx")
        sent_before = packets(CLIENT, "eth0", "tx")
        t0 = time.monotonic()
        window.start()
        gen = subprocess.Popen(pinned(CLIENT, "trafgen", "--dev", "eth0", "--conf", conf,
                                      "--cpus", "1", "--no-cpu-stats"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        time.sleep(seconds)
        os.killpg(gen.pid, signal.SIGINT)  # trafgen and the process it sends from
        try:
            gen.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(gen.pid, signal.SIGKILL)
            gen.wait()
        time.sleep(0.2)  # what is in flight arrives
        window.stop()
        elapsed = time.monotonic() - t0
        sent = (packets(CLIENT, "eth0", "tx") - sent_before) / elapsed
        print(f"  {middle:9} udp   trafgen sent {sent / 1e6:.3f} Mpps", flush=True)
        return (packets(SERVER, "eth0", "rx") - before) / elapsed
    finally:
        sink.kill()
        sink.wait()


def measure_tcp(seconds, window):
    """Gbit/s one iperf3 TCP stream delivered."""
    server = subprocess.Popen(pinned(SERVER, "iperf3", "-s", "-1"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        window.start()
        out = ns(CLIENT, "taskset", "-c", str(ENDPOINT_CPU), "iperf3", "-c", VIP, "-t",
                 str(seconds), "-J", timeout=seconds + 30).stdout
        window.stop()
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.kill()
        server.wait()


def measure_http(seconds, workdir, window):
    """Requests/s of wrk against nginx."""
    prefix = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(prefix, "html"), exist_ok=True)
    with open(os.path.join(prefix, "html", "index.html"), "w") as f:
        f.write("hello from the server\n")
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
  server {{ listen 80; root {prefix}/html; }}
}}
""")
    server = subprocess.Popen(pinned(SERVER, "nginx", "-c", conf, "-p", prefix),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        time.sleep(0.5)
        window.start()
        out = ns(CLIENT, "taskset", "-c", str(ENDPOINT_CPU), "wrk", "-t1", "-c32",
                 f"-d{max(1, round(seconds))}s", f"http://{VIP}/", timeout=seconds + 30).stdout
        window.stop()
        m = re.search(r"Requests/sec:\s*([\d.]+)", out)
        if not m:
            raise SystemExit(f"wrk: no Requests/sec in {out!r}")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        if errors:
            print(f"  wrk: {errors.group(0)}", file=sys.stderr)
        return float(m.group(1))
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the master and its worker
        server.wait()


def one_round(middle, args, workdir, results, costs):
    build(middle, args.endpoints_rx)
    proc = None
    try:
        if middle == "magline":
            proc = start_magline(args.magline, workdir, args.driver)
        warm_up()
        for what in args.only:
            window = Window()
            if what == "udp":
                value = measure_udp(middle, args.seconds, workdir, window) / 1e6
            elif what == "tcp":
                value = measure_tcp(args.seconds, window)
            else:
                value = measure_http(args.seconds, workdir, window)
            endpoints, forwarder, us = cpu_use(window.cpu0, window.cpu1, window.frames)
            results[middle][what].append(value)
            costs[middle][what].append(us)
            print(f"  {middle:9} {what:5} {value:10.3f} {UNITS[what]:11} CPU {ENDPOINT_CPU} "
                  f"{100 * endpoints:3.0f}% busy, CPU {FORWARDER_CPU} {100 * forwarder:3.0f}%: "
                  f"{us:.2f} us of it per frame the server received", flush=True)
    finally:
        stop(proc)
        teardown()


UNITS = {"udp": "Mpps", "tcp": "Gbit/s", "http": "requests/s"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--magline", required=True, help="the magline binary")
    ap.add_argument("--seconds", type=float, default=5.0, help="each measurement's length")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each Magline then nftables")
    ap.add_argument("--only", default="udp,tcp,http", help="a comma-separated subset")
    ap.add_argument("--driver", choices=sorted(DRIVERS), default="af_packet",
                    help="the DPDK driver of Magline's two ports (af_packet by default)")
    ap.add_argument("--endpoints-rx", choices=("forwarder", "own"), default="forwarder",
                    help="the CPU of the endpoints' receive work: where veth runs it (the "
                    "forwarder's, the default) or their own (RPS)")
    ap.add_argument("--csv", help="write the figures here (docs/img's plot)")
    args = ap.parse_args()
    args.only = [w for w in args.only.split(",") if w]
    if any(w not in UNITS for w in args.only):
        ap.error(f"--only: one or more of {', '.join(UNITS)}")
    if os.geteuid() != 0:
        ap.error("needs root (namespaces, af_packet)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        ap.error(f"missing {', '.join(missing)}: apt-get install iperf3 wrk nginx-light "
                 "netsniff-ng nftables ethtool util-linux")
    if os.cpu_count() < 2:
        ap.error("needs two CPUs (the forwarder's and the endpoints')")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    print(f"cpu: {cpu}; forwarder on CPU {FORWARDER_CPU}, endpoints on CPU {ENDPOINT_CPU} "
          f"(their receive work on the {args.endpoints_rx}'s); Magline on {args.driver}; "
          f"{args.seconds:g} s per measurement, {args.rounds} rounds", flush=True)
    results = {m: {w: [] for w in args.only} for m in ("magline", "nftables")}
    costs = {m: {w: [] for w in args.only} for m in ("magline", "nftables")}  # cpu_use()'s
    workdir = tempfile.mkdtemp(prefix="mlbench-")
    os.chmod(workdir, 0o755)  # nginx's workers run as nobody
    # trafgen's TX ring stops at the socket's send buffer while the kernel still holds its
    # frames (the router's backlog); it cannot raise the default from inside a namespace.
    wmem = run(["sysctl", "-n", "net.core.wmem_default"]).stdout.strip()
    run(["sysctl", "-q", "-w", "net.core.wmem_default=8388608"])
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}", flush=True)
            for middle in ("magline", "nftables"):
                one_round(middle, args, workdir, results, costs)
    except KeyboardInterrupt:
        teardown()
        raise
    finally:
        run(["sysctl", "-q", "-w", f"net.core.wmem_default={wmem}"])
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"cpu": cpu, "driver": args.driver, "endpoints_rx": args.endpoints_rx,
               "seconds": args.seconds, "rounds": args.rounds, "figures": {}}
    print(f"{'':6} {'unit':11} {'Magline min/median/max':>28} {'nftables min/median/max':>28} "
          f"{'ratio':>6}")
    rows = []
    for what in args.only:
        m, n = results["magline"][what], results["nftables"][what]
        ratio = statistics.median(m) / statistics.median(n) if statistics.median(n) else 0
        summary["figures"][what] = {
            "unit": UNITS[what], "magline": m, "nftables": n, "ratio_of_medians": ratio,
            "forwarder_cpu_us_per_frame": {k: costs[k][what] for k in ("magline", "nftables")}}
        fmt = "{:.3g}/{:.3g}/{:.3g}"
        print(f"{what:6} {UNITS[what]:11} {fmt.format(min(m), statistics.median(m), max(m)):>28} "
              f"{fmt.format(min(n), statistics.median(n), max(n)):>28} {ratio:6.2f}")
        rows.append((what, UNITS[what], min(m), statistics.median(m), max(m), min(n),
                     statistics.median(n), max(n), ratio))
    print(f"CPU {FORWARDER_CPU}'s busy microseconds per frame the server received, medians "
          "(a cost where that CPU is saturated; Magline's worker polls, so its CPU is always "
          "busy):")
    for what in args.only:
        mc = statistics.median(costs["magline"][what])
        nc = statistics.median(costs["nftables"][what])
        print(f"{what:6} Magline {mc:6.2f} us, nftables {nc:6.2f} us"
              f"{f': {mc / nc:.2f}x' if nc else ''}")
    print(json.dumps(summary))
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("measure,unit,magline_min,magline_median,magline_max,nftables_min,"
                    "nftables_median,nftables_max,ratio\n")
            for row in rows:
                f.write(",".join(str(x) for x in row) + "\n")


if __name__ == "__main__":
    main()
