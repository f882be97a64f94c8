#!/usr/bin/env python3
"""The built `magline` binary as a user runs it: real standard streams (/dev/full as standard
output, a pipe as standard input) and, for `magline run`, a real EAL over net_null. Each case
checks the exit status, that standard error is the one expected line, and what standard output
holds; the in-process tests (tests/unit/cli_test.cpp) cannot see the process's own streams,
nor start the EAL without taking it from every later test.

Usage: exit_status.py MAGLINE CASE. Exit 0 pass, 1 fail, 77 skipped (cases that start the EAL
need root: its runtime directory and memory locking).
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPLAY = os.path.join(os.path.dirname(HERE), "replay")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from dpdk_capture import Hugepages, hugepages_free, pcapng_frames  # noqa: E402

K8S_LIST = json.dumps({"kind": "List", "items": []})


def net_null_config(**dataplane):
    """A configuration `magline run` starts on this machine without hugepages or a NIC."""
    d = {"main_core": 0, "worker_cores": [1], "hugepages": False, "memory_mb": 256,
         "ports": [{"name": "p0", "device": "net_null0", "addresses": ["198.18.0.1/16"]}]}
    d.update(dataplane)
    return {"flow_table": {"capacity": 65536}, "admin": {"enabled": False}, "dataplane": d}


class Case:
    def __init__(self, magline, tmp):
        self.magline = magline
        self.tmp = tmp

    def write(self, name, content):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    def run(self, args, stdout=None, stdin=None, timeout=60):
        out = stdout if stdout is not None else subprocess.PIPE
        p = subprocess.run([self.magline] + args, stdout=out, stderr=subprocess.PIPE,
                           input=stdin, timeout=timeout)
        return p.returncode, (p.stdout or b"").decode(), p.stderr.decode()

    def expect(self, args, rc, err, stdout=None, stdin=None, out_empty=True):
        """`err`: the exact line (a str) or a pattern (re.Pattern) it must match as a whole."""
        if stdout is not None:
            with open(stdout, "w") as f:
                got_rc, out, got_err = self.run(args, stdout=f, stdin=stdin)
        else:
            got_rc, out, got_err = self.run(args, stdin=stdin)
        where = " ".join(args)
        assert got_rc == rc, f"{where}: exit {got_rc}, expected {rc}; stderr: {got_err!r}"
        if isinstance(err, re.Pattern):
            assert err.fullmatch(got_err), f"{where}: stderr {got_err!r} !~ {err.pattern!r}"
        else:
            assert got_err == err, f"{where}: stderr {got_err!r}, expected {err!r}"
        if out_empty:
            assert out == "", f"{where}: standard output not empty: {out[:300]!r}"
        return out


CASES = {}


def case(fn=None, *, root=False):
    """Registers a case under its name with dashes; root: it starts the EAL."""
    def register(f):
        f.needs_root = root
        CASES[f.__name__.replace("_", "-")] = f
        return f
    return register(fn) if fn else register


# Write errors: one line naming what could not be written, exit 1.
@case
def table_to_full(c):
    c.expect(["table"], 1, "magline: standard output: cannot write: No space left on device\n",
             stdout="/dev/full")


@case
def plan_to_full(c):
    c.expect(["plan", "--k8s", c.write("k8s.json", K8S_LIST)], 1,
             "magline: standard output: cannot write: No space left on device\n",
             stdout="/dev/full")


@case
def plan_strict(c):
    """plan --strict for CI: 0 when everything is served as asked, 1 with one line per problem
    on standard error (the plan still on standard output), 2 for a bad command line."""
    served = {"kind": "List", "items": [
        {"kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"type": "NodePort", "clusterIP": "10.96.0.2",
                  "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}},
        {"kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "shop",
                                               "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "endpoints": [{"addresses": ["198.18.1.10"]}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
        {"kind": "Service", "metadata": {"name": "internal", "namespace": "shop"},
         "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}]}
    out = c.expect(["plan", "--k8s", c.write("ok.json", served), "--strict"], 0, "",
                   out_empty=False)
    assert json.loads(out)["services"], out
    served["items"].append({"kind": "Service", "metadata": {"name": "odd", "namespace": "shop"},
                            "spec": {"type": "Special", "ports": [{"port": 1}]}})
    out = c.expect(["plan", "--k8s", c.write("odd.json", served), "--strict"], 1,
                   'magline plan: strict: shop/odd: skipped: unknown type "Special"\n',
                   out_empty=False)
    assert json.loads(out)["skipped"], out
    c.expect(["plan", "--k8s", c.write("odd.json", served), "--strict=yes"], 2,
             re.compile(r"magline plan: .*\nRun 'magline plan --help' for its options\.\n"))


@case
def completion(c):
    """The completion script: bash accepts it, every command and every option of each
    command's --help is offered, and values complete as their kind says."""
    script = c.expect(["completion", "bash"], 0, "", out_empty=False)
    path = c.write("magline.bash", script)
    subprocess.run(["bash", "-n", path], check=True)

    def complete(*words):
        """What bash's completion offers for `magline WORDS...` (the last word being typed)."""
        line = " ".join(f"'{w}'" for w in words)
        p = subprocess.run(["bash", "-c", f"source {path}; cd {c.tmp}; COMP_WORDS=(magline {line}); "
                            f"COMP_CWORD={len(words)}; _magline; printf '%s\\n' \"${{COMPREPLY[@]}}\""],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        return set(p.stdout.decode().split())

    usage = c.expect(["--help"], 0, "", out_empty=False)
    commands = re.findall(r"^  (\w+) ", usage, re.M)
    assert "plan" in commands and "completion" in commands, usage
    assert set(commands) <= complete(""), complete("")
    for command in commands:
        help_text = c.expect([command, "--help"], 0, "", out_empty=False)
        options = set(re.findall(r"(?<![-\w])--[a-z][a-z0-9-]*", help_text.split("\n\n", 1)[1]))
        offered = complete(command, "-")
        assert options <= offered, f"{command}: {options - offered} not offered"
    assert complete("plan", "-o", "") == {"json", "table"}
    assert complete("plan", "--output", "t") == {"table"}
    assert complete("completion", "") >= {"bash", "zsh"}
    c.write("k8s-objects.yaml", "")
    assert complete("plan", "--k8s", "k8s-o") == {"k8s-objects.yaml"}
    assert complete("plan", "--node-address", "") == set()
    zsh = c.expect(["completion", "zsh"], 0, "", out_empty=False)
    assert zsh.startswith("#compdef magline\n") and script in zsh
    c.expect(["completion"], 2, "magline completion: expected one shell, bash or zsh\n"
             "Run 'magline completion --help' for its options.\n")
    c.expect(["completion", "fish"], 2, 'magline completion: expected one shell, bash or zsh, '
             'got "fish"\nRun \'magline completion --help\' for its options.\n')


@case
def replay_to_full(c):
    args = ["replay", "--config", os.path.join(REPLAY, "config.json"),
            "--in", os.path.join(REPLAY, "in.pcap")]
    c.expect(args + ["--out", "/dev/full"], 1,
             "/dev/full: cannot write: No space left on device\n")
    # The capture written, the counters not.
    c.expect(args + ["--out", os.path.join(c.tmp, "out.pcap")], 1,
             "magline: standard output: cannot write: No space left on device\n",
             stdout="/dev/full")


@case
def replay_through_pipes(c):
    """replay --in - --out -: the capture through standard input and output, as written to
    files; the counters on standard error then."""
    config = os.path.join(REPLAY, "config.json")
    capture = os.path.join(REPLAY, "in.pcap")
    out_file = os.path.join(c.tmp, "out.pcap")
    rc, counters, err = c.run(["replay", "--config", config, "--in", capture, "--out", out_file])
    assert rc == 0, err
    with open(capture, "rb") as f:
        p = subprocess.run([c.magline, "replay", "--config", config, "--in", "-", "--out", "-"],
                           stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == open(out_file, "rb").read(), "the capture on standard output differs"
    assert json.loads(p.stderr) == json.loads(counters), "counters differ"
    # /dev/full as standard output: named as such.
    c.expect(["replay", "--config", config, "--in", capture, "--out", "-"], 1,
             "<stdout>: cannot write: No space left on device\n", stdout="/dev/full")


@case
def run_stats_unwritable(c):
    # Refused before anything starts: no EAL, so no root needed.
    c.expect(["run", "-c", c.write("run.json", net_null_config()), "--duration", "0.5",
              "--stats", "/unwritable/path"], 1,
             "magline: --stats /unwritable/path: cannot write: No such file or directory\n")


# What run checks before it starts anything: one line, nothing on standard output (the EAL's
# usage text went there), no port opened ("forwarding" never printed).
@case
def run_missing_core(c):
    conf = c.write("run.json", net_null_config(worker_cores=[1000]))
    c.expect(["run", "-c", conf, "--duration", "0.5"], 1,
             re.compile(re.escape(conf) + r": dataplane\.worker_cores\[0\]: core 1000 is not available "
                        r"\(the online CPUs of this process's cpuset: [0-9,-]+\)\n"))


@case
def run_unknown_device(c):
    conf = c.write("run.json", net_null_config(
        ports=[{"name": "p0", "device": "net_bogus0", "addresses": ["198.18.0.1/16"]}]))
    c.expect(["run", "-c", conf, "--duration", "0.5"], 1,
             re.compile(re.escape(conf) + r": dataplane\.ports\[0\]\.device: expected a PCI "
                        r"address .*, got \"net_bogus0\"\n"))


@case
def run_kubeconfig_directory(c):
    conf = net_null_config()
    conf["kubernetes"] = {"kubeconfig": c.tmp}
    path = c.write("run.json", conf)
    c.expect(["run", "-c", path, "--duration", "0.5"], 1,
             f"{path}: kubernetes.kubeconfig: kubeconfig {c.tmp}: cannot read the file: "
             "Is a directory\n")


@case
def run_missing_ca(c):
    kubeconfig = c.write("kubeconfig", "clusters: [{name: k, cluster: {server: "
                         "\"https://198.18.0.100:6443\", certificate-authority: ca.crt}}]\n"
                         "contexts: [{name: c, context: {cluster: k}}]\ncurrent-context: c\n")
    conf = net_null_config()
    conf["kubernetes"] = {"kubeconfig": kubeconfig}
    path = c.write("run.json", conf)
    c.expect(["run", "-c", path, "--duration", "0.5"], 1,
             f"{path}: kubernetes.kubeconfig: kubeconfig {kubeconfig}: certificate-authority "
             f"{c.tmp}/ca.crt: cannot read: No such file or directory\n")


@case
def run_admin_port_taken(c):
    """The admin address is taken before DPDK starts: one line with the system's reason."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        conf = net_null_config()
        conf["admin"] = {"address": "127.0.0.1", "port": port}
        c.expect(["run", "-c", c.write("run.json", conf), "--duration", "0.5"], 1,
                 f"magline: admin listener: cannot listen on 127.0.0.1:{port}: "
                 "Address already in use\n")


@case(root=True)
def run_bad_eal_args(c):
    """What only the EAL can tell: its usage text never reaches standard output, and its
    complaints make one line."""
    conf = c.write("run.json", net_null_config(eal_args=["--no-such-eal-option"]))
    c.expect(["run", "-c", conf, "--duration", "0.5"], 1,
             re.compile(r"magline: cannot start DPDK: rte_eal_init failed: Invalid argument "
                        r"\(.*unrecognized option '--no-such-eal-option'.*\)\n"))


@case(root=True)
def run_net_null(c):
    """The baseline the refusals are measured against: this configuration runs."""
    stats = os.path.join(c.tmp, "stats.json")
    out = c.expect(["run", "-c", c.write("run.json", net_null_config()), "--duration", "0.5",
                    "--stats", stats], 0,
                   re.compile(r"magline: forwarding 0 services on 1 port\(s\) with 1 worker\(s\); "
                              r"p0: single-queue\n"), out_empty=False)
    assert json.loads(out) == json.load(open(stats)), "stats file differs from standard output"


@case(root=True)
def run_json_log(c):
    """--log-format json: every line on standard error is one JSON record with time, level and
    msg, DPDK's own lines too (a port whose interface does not exist: the af_packet driver and
    the EAL log errors, then Magline refuses); logfmt and --log-level too; a bad format is a
    usage error, before anything starts."""
    def records(err):
        out = []
        for line in err.splitlines():
            r = json.loads(line)  # raises on a line that is not JSON
            assert set(r) == {"time", "level", "msg"}, r
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]), r
            out.append(r)
        return out
    def run(args, rc):
        got_rc, _, err = c.run(args)
        assert got_rc == rc, f"{' '.join(args)}: exit {got_rc}, expected {rc}; stderr: {err!r}"
        return err
    conf = c.write("run.json", net_null_config())
    got = records(run(["run", "-c", conf, "--duration", "0.3", "--log-format", "json"], 0))
    assert [r["level"] for r in got] == ["info"], got
    assert got[0]["msg"].startswith("forwarding 0 services on 1 port(s)"), got
    bad = net_null_config()
    bad["dataplane"]["ports"][0]["device"] = "net_af_packet0,iface=mle2e-nosuch0"
    bad_conf = c.write("bad.json", bad)
    got = records(run(["run", "-c", bad_conf, "--duration", "0.3", "--log-format", "json"], 1))
    assert any(r["level"] == "error" and "EAL:" in r["msg"] for r in got), got
    assert got[-1]["level"] == "error" and "port p0" in got[-1]["msg"], got
    err = run(["run", "-c", bad_conf, "--duration", "0.3", "--log-format", "logfmt",
               "--log-level", "error"], 1)
    assert err, "nothing logged"
    for line in err.splitlines():
        assert re.fullmatch(r'time=\S+ level=error msg=".*"', line), line
    c.expect(["run", "-c", conf, "--log-format", "xml"], 2,
             'magline run: --log-format: expected text, logfmt or json, got "xml"\n')
    c.expect(["run", "-c", conf, "--log-level", "loud"], 2,
             'magline run: --log-level: expected debug, info, warning or error, got "loud"\n')


@case(root=True)
def run_to_full(c):
    c.expect(["run", "-c", c.write("run.json", net_null_config()), "--duration", "0.2"], 1,
             re.compile(r"magline: forwarding .*\n"
                        r"magline: standard output: cannot write: No space left on device\n"),
             stdout="/dev/full")


@case
def version(c):
    """`magline version`: what the binary is; the commit is the source tree's, as meson's
    vcs_tag baked it in at the build (meson test builds first), or 'unknown' outside git."""
    out = c.expect(["version"], 0, "", out_empty=False)
    lines = dict(line.split(": ", 1) for line in out.splitlines()[1:])
    assert out.startswith("magline "), out
    assert set(lines) == {"commit", "build type", "DPDK", "compiler"}, out
    repo = os.path.dirname(os.path.dirname(HERE))
    git = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12",
                          "--exclude=*"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    expected = git.stdout.decode().strip() if git.returncode == 0 else "unknown"
    assert lines["commit"] == expected, f"commit {lines['commit']!r}, the tree is {expected!r}"
    assert c.expect(["--version"], 0, "", out_empty=False) == out


@case(root=True)
def run_metrics(c):
    """A running `magline run`'s /metrics, scraped and read by the strict exposition-format
    checker (tests/e2e/prometheus.py): the build, the process, the port's device counters."""
    from prometheus import check_exposition
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = net_null_config()
    conf["admin"] = {"address": "127.0.0.1", "port": port}
    p = subprocess.Popen([c.magline, "run", "-c", c.write("run.json", conf), "--duration", "5"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = None
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        time.sleep(0.5)  # the ports' counters are read every 250 ms
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                    timeout=2) as m:
                            text = m.read().decode()
                        break
            except OSError:
                time.sleep(0.1)
        assert text is not None, "no answer from /healthz and /metrics"
        try:
            families, samples = check_exposition(text)
        except ValueError as e:
            raise AssertionError(f"/metrics: {e}")
    finally:
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, f"magline run exited {p.returncode}: {err.decode()!r}"
    version = subprocess.run([c.magline, "version"], stdout=subprocess.PIPE).stdout.decode()
    commit = version.split("commit: ", 1)[1].split("\n", 1)[0]
    build = [dict(labels) for (name, labels), v in samples.items()
             if name == "magline_build_info" and v == 1]
    assert len(build) == 1 and build[0]["commit"] == commit, build
    assert build[0]["dpdk"].startswith("DPDK "), build
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_max_fds", "process_start_time_seconds",
                   "magline_port_rx_packets_total", "magline_port_rx_missed_total",
                   "magline_port_rx_nombuf_total", "magline_port_link_up",
                   "magline_rx_packets_total", "magline_drops_total"):
        assert family in families, f"/metrics has no {family}"
    assert samples[("magline_port_link_up", (("port", "p0"),))] in (0, 1)
    assert samples[("process_resident_memory_bytes", ())] > 0


def start_run(c, conf, seconds):
    """`magline run` in the background with its admin listener on a free port; returns the
    process and the port once /healthz answers."""
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf["admin"] = {"address": "127.0.0.1", "port": port}
    p = subprocess.Popen([c.magline, "run", "-c", c.write("run.json", conf), "--duration",
                          str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + seconds - 1
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return p, port
        except OSError:
            time.sleep(0.1)
    p.kill()
    raise AssertionError(f"no answer from /healthz: {p.communicate()[1].decode()!r}")


def get_json(port, path):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return json.loads(r.read())


def telemetry(path, command):
    """One request to DPDK's telemetry socket (the protocol of dpdk-telemetry.py): the
    greeting, then the answer to `command`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(2)
        s.connect(path)
        greeting = json.loads(s.recv(16384))
        s.send(command.encode())
        return greeting, json.loads(s.recv(65536))


@case(root=True)
def run_telemetry(c):
    """DPDK's telemetry socket is on by default, in the runtime directory of the configured file
    prefix, and answers for this process (ports, their counters); a second process with the same
    prefix says in one line that it has none; both leave nothing in /var/run/dpdk."""
    prefix = f"magline-exit-{os.getpid()}"
    conf = net_null_config(file_prefix=prefix)
    runtime = f"/var/run/dpdk/{prefix}"
    first, port = start_run(c, conf, 6)
    try:
        dpdk = get_json(port, "/stats")["dpdk"]
        sock = f"{runtime}/dpdk_telemetry.v2"
        assert dpdk == {"file_prefix": prefix, "runtime_dir": runtime, "telemetry": sock,
                        "capture": False}, dpdk
        greeting, ports = telemetry(sock, "/ethdev/list")
        assert greeting["pid"] == first.pid, (greeting, first.pid)
        assert ports == {"/ethdev/list": [0]}, ports
        import time
        deadline = time.monotonic() + 2
        while True:  # net_null receives without end once the worker polls
            _, stats = telemetry(sock, "/ethdev/stats,0")
            if stats["/ethdev/stats"]["ipackets"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert stats["/ethdev/stats"]["ipackets"] > 0, stats
        second = c.run(["run", "-c", c.write("second.json", conf), "--duration", "0.3"])
        assert second[0] == 0, second
        warning = (f"magline: DPDK telemetry is off: {sock} belongs to process {first.pid} "
                   f"(give each Magline process its own dataplane.file_prefix)\n")
        assert second[2].startswith(warning), second[2]
        assert telemetry(sock, "/info")[0]["pid"] == first.pid, "the second took the socket"
    finally:
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert not os.path.exists(runtime), f"{runtime} left behind: {os.listdir(runtime)}"


@case(root=True)
def run_capture(c):
    """dataplane.capture: DPDK's own dpdk-dumpcap attaches to the running process and captures
    a port's frames (pcapng); at the end the process leaves no hugepage file or runtime file,
    so the pages are free again."""
    import shutil
    dumpcap = shutil.which("dpdk-dumpcap")
    assert dumpcap, "dpdk-dumpcap is not installed (dpdk-dev, tools/install-deps.sh)"
    pages = Hugepages(160)
    try:
        if not pages.ok:
            raise Skip("no hugepages on this machine")
        capture_and_stop(c, dumpcap, hugepages_free())
    finally:
        pages.give_back()


def capture_and_stop(c, dumpcap, free_before):
    prefix = f"magline-cap-{os.getpid()}"
    conf = net_null_config(file_prefix=prefix, hugepages=True, capture=True)
    p, port = start_run(c, conf, 8)
    try:
        assert get_json(port, "/stats")["dpdk"]["capture"] is True
        out = os.path.join(c.tmp, "p0.pcapng")
        cap = subprocess.run([dumpcap, "--file-prefix", prefix, "-i", "net_null0", "-c", "16",
                              "-w", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=20)
        assert cap.returncode == 0, cap.stdout.decode()
        lengths = [length for length, _ in pcapng_frames(out)]
        # net_null receives 64-byte frames without end; the count is at least -c (whole bursts).
        assert len(lengths) >= 16 and set(lengths) == {64}, lengths[:20]
    finally:
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    left = [n for n in os.listdir("/dev/hugepages") if n.startswith(prefix + "map_")]
    assert not left, f"hugepage files left behind: {left[:5]}"
    assert not os.path.exists(f"/var/run/dpdk/{prefix}"), os.listdir(f"/var/run/dpdk/{prefix}")
    assert hugepages_free() == free_before, (hugepages_free(), free_before)


@case(root=True)
def run_capture_without_hugepages(c):
    """Capture needs memory other processes can map: refused when the file is read."""
    conf = c.write("run.json", net_null_config(capture=True))
    c.expect(["run", "-c", conf, "--duration", "0.5"], 1,
             f"{conf}: dataplane.capture: capture needs hugepages: DPDK's capture tools map this "
             "process's hugepage memory\n")


class Skip(Exception):
    pass


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} MAGLINE CASE; cases: {' '.join(sorted(CASES))}",
              file=sys.stderr)
        return 2
    fn = CASES[sys.argv[2]]
    if fn.needs_root and os.geteuid() != 0:
        print("skipped: starts the EAL, which needs root here", file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory(prefix="magline-exit-") as tmp:
        try:
            fn(Case(os.path.abspath(sys.argv[1]), tmp))
        except Skip as e:
            print(f"skipped: {e}", file=sys.stderr)
            return SKIP
        except AssertionError as e:
            print(f"FAIL {sys.argv[2]}: {e}", file=sys.stderr)
            return 1
    print(f"ok {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
