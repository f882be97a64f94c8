#!/usr/bin/env python3
"""`magline run` as its service managers see it, over a real EAL on net_null (root: the EAL's
runtime directory and memory locking):

  notify-*  systemd's notification protocol: a datagram socket where $NOTIFY_SOCKET points
            receives READY=1 once Magline forwards (and, with a kubernetes section, only after
            the first sync), WATCHDOG=1 pings at half $WATCHDOG_USEC, and STOPPING=1 last.
  rbac      the Kubernetes RBAC of config/deploy/kubernetes/rbac.yaml against the requests Magline
            makes: the fake API server (tests/k8s_client/fake_apiserver.py --rbac) enforces the
            shipped rules for the DaemonSet's service account while Magline watches, and its
            provider assigns an address, loses a race (an injected 409), and withdraws the
            address of a deleted Service, then (kubernetes.targets "nodes") watches the Nodes;
            then no request may have been forbidden, and every rule the role grants must have
            been used.
  two-providers  two Magline processes, one API server: one leads and only it writes; the
            leader stops and the other takes over, writes of the two never interleave.

Usage: run_test.py MAGLINE CASE. Exit 0 pass, 1 fail, 77 skipped (not root)."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "k8s_client"))
from fake_apiserver_test import Server  # noqa: E402

ADMIN_TOKEN = "admin-token"
SA_TOKEN = "magline-service-account-token"


def net_null_config(**extra):
    """A configuration `magline run` starts on this machine without hugepages or a NIC."""
    d = {"flow_table": {"capacity": 65536}, "admin": {"enabled": False},
         "dataplane": {"main_core": 0, "worker_cores": [1], "hugepages": False, "memory_mb": 256,
                       "ports": [{"name": "p0", "device": "net_null0",
                                  "addresses": ["198.18.0.1/16"]}]}}
    d.update(extra)
    return d


class Notifications:
    """A datagram socket bound where systemd's would be."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path
        self.got = []  # (seconds since start, text)
        self.t0 = time.monotonic()

    def read(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if select.select([self.sock], [], [], max(0.0, end - time.monotonic()))[0]:
                self.got.append((time.monotonic() - self.t0, self.sock.recv(4096).decode()))
            else:
                break

    def texts(self):
        return [t for _, t in self.got]


class Fake:
    """The fake API server, and a kubeconfig for `token`."""

    def __init__(self, tmp, token, *args):
        self.server = Server("--token", ADMIN_TOKEN, *args)
        self.port = self.server.port
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                    f"    server: http://127.0.0.1:{self.port}\nusers:\n- name: m\n  user:\n"
                    f"    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n"
                    f"    user: m\ncurrent-context: fake\n")

    def call(self, method, path, body=None, token=ADMIN_TOKEN, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        if not path.startswith("/fake/"):
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stop(self):
        self.server.stop()


def start(magline, config_path, env=None):
    return subprocess.Popen([magline, "run", "--config", config_path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, **(env or {})))


def stop(proc, timeout=20):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def write(tmp, name, obj):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def wait_for(what, predicate, timeout, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"magline exited ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CASES = {}


def case(root=True):
    def register(f):
        f.needs_root = root
        CASES[f.__name__.replace("_", "-")] = f
        return f
    return register


@case()
def notify_ready_watchdog_stopping(magline, tmp):
    n = Notifications(os.path.join(tmp, "notify"))
    p = start(magline, write(tmp, "run.json", net_null_config()),
              {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
    try:
        n.read(2.0)
    finally:
        rc, out, err = stop(p)
    n.read(0.2)
    texts = n.texts()
    assert rc == 0, f"exit {rc}: {err}"
    # Ready on the first turn (nothing to wait for without kubernetes), and the first ping
    assert texts[:2] == ["READY=1\nSTATUS=forwarding on 1 port(s) with 1 worker(s)",
                         "WATCHDOG=1"], texts
    assert sum(t.startswith("READY=1") for t in texts) == 1, texts
    pings = [at for at, t in n.got if t == "WATCHDOG=1"]
    # 2 s at one ping per 200 ms; generous bounds for a loaded machine
    assert 5 <= len(pings) <= 12, f"{len(pings)} pings: {n.got}"
    assert all(b - a < 0.5 for a, b in zip(pings, pings[1:])), n.got
    assert texts[-1] == "STOPPING=1\nSTATUS=stopping", texts
    assert not any("withheld" in t for t in texts), texts


@case()
def notify_waits_for_the_first_sync(magline, tmp):
    """READY=1 only once both first lists are in: the EndpointSlices' list is held 1.5 s."""
    fake = Fake(tmp, ADMIN_TOKEN)
    try:
        code, body = fake.call("POST", "/fake/inject", {
            "path": "/apis/discovery.k8s.io/v1/endpointslices", "match": "list", "delay": 1.5})
        assert code == 200, body
        n = Notifications(os.path.join(tmp, "notify"))
        conf = net_null_config(kubernetes={"kubeconfig": fake.kubeconfig})
        t0 = time.monotonic()
        p = start(magline, write(tmp, "run.json", conf), {"NOTIFY_SOCKET": n.path})
        try:
            n.read(4.0)
        finally:
            rc, out, err = stop(p)
        n.read(0.2)
        assert rc == 0, f"exit {rc}: {err}"
        ready = [at for at, t in n.got if t.startswith("READY=1")]
        assert len(ready) == 1, n.got
        assert ready[0] >= 1.5 - (n.t0 - t0), f"READY=1 at {ready[0]:.2f} s, before the list"
        assert n.texts()[-1].startswith("STOPPING=1"), n.got
        assert "WATCHDOG=1" not in n.texts(), "pings without $WATCHDOG_USEC"
    finally:
        fake.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path):
    """The status of GET http://127.0.0.1:PORT/PATH, or None when nothing answers."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@case()
def readyz_waits_for_the_first_sync(magline, tmp):
    """/healthz answers 200 once the workers run; /readyz only once the first lists are in
    (the EndpointSlices' list is held 3 s), as READY=1."""
    fake = Fake(tmp, ADMIN_TOKEN)
    try:
        code, body = fake.call("POST", "/fake/inject", {
            "path": "/apis/discovery.k8s.io/v1/endpointslices", "match": "list", "delay": 3.0})
        assert code == 200, body
        port = free_port()
        conf = net_null_config(kubernetes={"kubeconfig": fake.kubeconfig},
                               admin={"address": "127.0.0.1", "port": port})
        t0 = time.monotonic()
        p = start(magline, write(tmp, "run.json", conf))
        try:
            wait_for("/healthz 200", lambda: http_status(port, "/healthz") == 200, 10, p)
            healthy_at = time.monotonic() - t0
            assert healthy_at < 2.5, f"the workers took {healthy_at:.1f} s: too slow to tell"
            assert http_status(port, "/readyz") == 503, "ready before the EndpointSlices' list"
            wait_for("/readyz 200", lambda: http_status(port, "/readyz") == 200, 10, p)
            ready_at = time.monotonic() - t0
            assert ready_at >= 3.0, f"/readyz 200 at {ready_at:.2f} s, before the list"
        finally:
            rc, out, err = stop(p)
        assert rc == 0, f"exit {rc}: {err}"
    finally:
        fake.stop()


@case(root=False)
def notify_bad_socket(magline, tmp):
    """A malformed $NOTIFY_SOCKET is refused before anything starts, in one line."""
    p = subprocess.run([magline, "run", "--config", write(tmp, "run.json", net_null_config())],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, NOTIFY_SOCKET="relative/notify"))
    assert p.returncode == 1, p
    assert p.stderr == ("magline: $NOTIFY_SOCKET: expected an absolute path or an @abstract "
                        "name, got \"relative/notify\"\n"), p.stderr


@case()
def rbac(magline, tmp):
    import manifests as m  # python3-yaml
    policy = m.rbac_policy(SA_TOKEN)
    user = policy["users"][SA_TOKEN]
    shipped = m.config_json()
    fake = Fake(tmp, SA_TOKEN, "--rbac", write(tmp, "policy.json", policy))
    ns = "shop"
    svc_path = f"/api/v1/namespaces/{ns}/services/web"
    try:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": "web"},
               "spec": {"type": "LoadBalancer",
                        "loadBalancerClass": shipped["kubernetes"]["load_balancer_class"],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                   "targetPort": 8080}]}}
        code, body = fake.call("POST", f"/api/v1/namespaces/{ns}/services", svc)
        assert code == 201, body
        code, body = fake.call("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": ns, "name": "web-a",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["198.18.10.11"], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        assert code == 201, body
        # The provider's first write loses a race: it reads the Service again (get).
        code, body = fake.call("POST", "/fake/inject", {"method": "PATCH", "status": 409})
        assert code == 200, body
        # The shipped configuration's Kubernetes and provider sections, on net_null.
        k = dict(shipped["kubernetes"])
        del k["in_cluster"]
        k["kubeconfig"] = fake.kubeconfig
        conf = net_null_config(kubernetes=k, provider=shipped["provider"])
        p = start(magline, write(tmp, "run.json", conf))
        try:
            def assigned():
                code, s = fake.call("GET", svc_path)
                return (code == 200 and s.get("status", {}).get("loadBalancer", {}).get("ingress")
                        and s["metadata"].get("finalizers"))
            wait_for("an address and the finalizer", assigned, 20, p)
            code, body = fake.call("DELETE", svc_path)
            assert code == 200, body
            wait_for("the Service to go (finalizer removed)",
                     lambda: fake.call("GET", svc_path)[0] == 404, 20, p)
        finally:
            rc, out, err = stop(p)
        assert rc == 0, f"exit {rc}: {err}"
        # One LIST and one WATCH of the Services serve forwarding and the provider, without a
        # label selector (the provider reads every Service; the forwarding side filters).
        code, log = fake.call("GET", "/fake/requests")
        reads = [r for r in log["requests"] if r.get("user") == user and
                 r.get("resource") == "services" and r.get("verb") in ("list", "watch")]
        verbs = sorted(r["verb"] for r in reads)
        assert verbs == ["list", "watch"], f"Service reads: {verbs}"
        assert not any("labelSelector" in json.dumps(r.get("query", {})) for r in reads), reads
        # The node-targets role: the same configuration with targets "nodes" lists and watches
        # the Nodes (and no EndpointSlices).
        k["targets"] = "nodes"
        conf = net_null_config(kubernetes=k, provider=shipped["provider"])
        p = start(magline, write(tmp, "run-nodes.json", conf))
        try:
            def nodes_watched():
                code, log = fake.call("GET", "/fake/requests")
                return code == 200 and any(
                    r.get("user") == user and r.get("resource") == "nodes" and
                    r.get("verb") == "watch" for r in log["requests"])
            wait_for("a watch of the Nodes", nodes_watched, 20, p)
        finally:
            rc, out, err = stop(p)
        assert rc == 0, f"exit {rc}: {err}"
        code, log = fake.call("GET", "/fake/requests")
        allowed, forbidden = m.used(log["requests"], user)
        assert not forbidden, "forbidden by the shipped role:\n  " + "\n  ".join(forbidden)
        # An Event's series is patched only when it repeats 30 s after its last write.
        left = m.unused(m.granted(policy), allowed, {("events.k8s.io", "events", "patch")})
        assert not left, "granted, never used: " + ", ".join(left)
        assert any(r.get("status") == 409 for r in log["requests"]), "the 409 was not injected"
    finally:
        fake.stop()


def metric(port, name):
    """One unlabelled sample of /metrics, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


@case()
def two_providers(magline, tmp):
    """Two `magline run` processes with the shipped provider section against one API server,
    each its own service account: exactly one leads at any moment and only the leader writes
    (Services, their status, Events); the leader stops (SIGTERM, releasing the Lease), the other
    takes over at its next try and assigns the next Service; every write of the first comes
    before every write of the second."""
    import manifests as m  # python3-yaml
    policy = m.rbac_policy(SA_TOKEN)
    users = {"a": policy["users"][SA_TOKEN], "b": "system:serviceaccount:magline-system:magline-b"}
    policy["users"]["token-b"] = users["b"]
    for obj in policy["objects"]:
        if obj["kind"].endswith("Binding"):
            obj["subjects"].append({"kind": "ServiceAccount", "name": "magline-b",
                                    "namespace": "magline-system"})
    shipped = m.config_json()
    fake = Fake(tmp, SA_TOKEN, "--rbac", write(tmp, "policy.json", policy))
    kubeconfig_b = write(tmp, "kubeconfig-b", open(fake.kubeconfig).read().replace(
        f"token: {SA_TOKEN}", "token: token-b"))
    ns = "shop"

    def create(name):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name},
               "spec": {"type": "LoadBalancer",
                        "loadBalancerClass": shipped["kubernetes"]["load_balancer_class"],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
        code, body = fake.call("POST", f"/api/v1/namespaces/{ns}/services", svc)
        assert code == 201, body

    def assigned(name):
        code, s = fake.call("GET", f"/api/v1/namespaces/{ns}/services/{name}")
        return code == 200 and bool(s.get("status", {}).get("loadBalancer", {}).get("ingress"))

    procs, ports = {}, {}
    try:
        for who, kubeconfig in (("a", fake.kubeconfig), ("b", kubeconfig_b)):
            ports[who] = free_port()
            k = dict(shipped["kubernetes"], kubeconfig=kubeconfig)
            del k["in_cluster"]
            provider = json.loads(json.dumps(shipped["provider"]))
            provider["election"].update({"identity": f"edge-{who}", "lease_duration_ms": 3000,
                                         "renew_deadline_ms": 2000, "retry_period_ms": 250})
            conf = net_null_config(kubernetes=k, provider=provider,
                                   admin={"address": "127.0.0.1", "port": ports[who]})
            conf["dataplane"]["file_prefix"] = f"magline-two-{who}-{os.getpid()}"
            procs[who] = start(magline, write(tmp, f"run-{who}.json", conf))
        for name in ("web-1", "web-2", "web-3"):
            create(name)
        for name in ("web-1", "web-2", "web-3"):
            wait_for(f"{name}'s address", lambda: assigned(name), 20, procs["a"])
        # Each node's view, once both answer (a loaded machine may be slow to): one leads.
        leading = {}

        def both_answer():
            leading.update({w: metric(ports[w], "magline_provider_leading") for w in procs})
            return None not in leading.values()
        wait_for("both nodes' magline_provider_leading", both_answer, 10, procs["a"])
        assert sorted(leading.values()) == [0.0, 1.0], f"leading: {leading}"
        first = "a" if leading["a"] == 1 else "b"
        second = "b" if first == "a" else "a"
        rc, _, err = stop(procs.pop(first))
        assert rc == 0, f"the first leader exited {rc}: {err}"
        stopped_at = fake.call("GET", "/fake/requests")[1]["requests"][-1]["t"]
        wait_for("the other to lead", lambda: metric(ports[second], "magline_provider_leading")
                 == 1, 10, procs[second])
        create("web-4")
        wait_for("web-4's address", lambda: assigned("web-4"), 20, procs[second])
    finally:
        for p in procs.values():
            stop(p)
        code, log = fake.call("GET", "/fake/requests")
        fake.stop()
    writes = [(r["t"], r.get("user"), r["resource"], r["method"]) for r in log["requests"]
              if r.get("method") in ("POST", "PUT", "PATCH", "DELETE") and
              r.get("resource") in ("services", "events") and r.get("user") in users.values()]
    by = {w: [t for t, u, _, _ in writes if u == users[w]] for w in users}
    assert by[first], f"the leader wrote nothing: {writes}"
    assert by[second], f"the new leader wrote nothing: {writes}"
    assert max(by[first]) <= min(by[second]), \
        f"writes interleave: {first} until {max(by[first])}, {second} from {min(by[second])}"
    assert max(by[first]) <= stopped_at, "the first leader wrote after it stopped"
    print(f"writes: {first} {len(by[first])} until {max(by[first]):.2f} s, {second} {len(by[second])} from {min(by[second]):.2f} s")
    forbidden = [r for r in log["requests"] if r.get("status") == 403]
    assert not forbidden, f"forbidden: {forbidden[:3]}"


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} MAGLINE CASE; cases: {' '.join(sorted(CASES))}",
              file=sys.stderr)
        return 2
    fn = CASES[sys.argv[2]]
    if fn.needs_root and os.geteuid() != 0:
        print("skipped: starts the EAL, which needs root here", file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory(prefix="magline-deploy-") as tmp:
        try:
            fn(os.path.abspath(sys.argv[1]), tmp)
        except AssertionError as e:
            print(f"FAIL {sys.argv[2]}: {e}", file=sys.stderr)
            return 1
    print(f"ok {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
