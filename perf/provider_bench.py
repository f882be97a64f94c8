#!/usr/bin/python3
"""The LoadBalancer provider at N Services (issue 15): a restart with every Service already
assigned, then new Services one at a time. `magline run` (one worker on net_null, no traffic,
provider pools in 198.19.0.0/16 and 2001:db8:1::/112) against the fake API server
(tests/k8s_client/fake_apiserver.py), several runs against one fake.

  before the first run  N LoadBalancer Services of Magline's class, each with one EndpointSlice
            of E endpoints, written as Magline writes them: its finalizer, and
            status.loadBalancer.ingress [{ip, ipMode: VIP}] with the address a cold start gives
            (first free address in name order). The first run proves it: it must write nothing;
            and the Services Magline assigns in each run must come out the same way.
  restart   from magline's start to every Service forwarding (held, published, and the last
            publication in effect on the worker: /stats, as perf/k8s_update_bench.py), and to
            the provider synced and leading (/metrics). The writes it makes, from the fake's
            request log, from its start until 3 s after it leads (more than one election retry
            period, so that every Service has been decided): Services, their status, Events,
            and apart from them the Leases (the election's and the node's own, which are
            renewed every retry period by design). Before it, the same restart without the
            provider section (`w/o`): forwarding alone, the baseline of the same moment.
  new       M new Services (and their slices), each created through the API (POST) once the one
            before has its status. The sample, on the fake's one clock: from when the provider's
            watch (the Service watch without a label selector) wrote the ADDED event of the
            Service to the kernel (/fake/watch-events) to when the fake had read the provider's
            status PATCH for it (/fake/requests: logged once the body is read, before it is
            served). The finalizer PATCH comes first; both are shown.
  alone     the fake's LIST of the N Services (pages of 500, as magline reads them) timed by
            this script with nothing else running, to tell which side a slow restart is on.
The Services of one run's `new` phase are kept: the next run restarts over them too (so a
restart over Services Magline wrote itself is measured, with N grown by M).

Goals (--check: exit 1 when one is missed): 0 writes to Services and Events at a restart;
every Service forwarding within 2 s of the start; status written p99 <= 100 ms after the
watch event.

Usage (root, a built magline): perf/provider_bench.py [--magline PATH] [--services N]
    [--endpoints E] [--new M] [--runs R] [--check] [--logs DIR]
Prints a table and one JSON object (docs/performance.md); the JSON names, per run, the slowest
samples (with what else the fake served meanwhile) and the provider's leadership lines.
"""
import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "tests", "k8s_client", "fake_apiserver.py")
ADMIN = 9103
NS = "bench"
CLASS = "magline.io/lb"
FINALIZER = "magline.io/load-balancer"
POOL_V4 = ipaddress.ip_network("198.19.0.0/16")
POOL_V6 = "2001:db8:1::/112"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
SETTLE_S = 3.0  # after leading: more than one retry period (2 s)


def http(method, url, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


CLUSTER_IPS = ipaddress.ip_network("10.96.0.0/12")  # the fake's default --service-cidr


def service(name, vip=None, index=0):
    """A LoadBalancer Service of Magline's class. With `vip`: stored as given, the fields the API
    server fills in included, as Magline leaves it once assigned; without: for a create through
    the API (which allocates its cluster IP)."""
    svc = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"namespace": NS, "name": name},
           "spec": {"type": "LoadBalancer", "loadBalancerClass": CLASS,
                    "allocateLoadBalancerNodePorts": False,
                    "ports": [{"name": "http", "protocol": "TCP", "port": 80,
                               "targetPort": 8080}]}}
    if vip is not None:
        ip = str(CLUSTER_IPS[1 + index])
        svc["spec"].update({"clusterIP": ip, "clusterIPs": [ip],
                            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                            "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                            "internalTrafficPolicy": "Cluster"})
        svc["metadata"]["finalizers"] = [FINALIZER]
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": vip, "ipMode": "VIP"}]}}
    return svc


def slice_(name, i, endpoints):
    eps = []
    for e in range(endpoints):
        a = i * endpoints + e
        eps.append({"addresses": [f"198.18.{1 + a // 250 % 250}.{1 + a % 250}"],
                    "conditions": {"ready": True}})
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"namespace": NS, "name": f"{name}-x",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--max-chunk", "0",
                                      "--bookmark-interval", "0", "--history", "1000000"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().split()
        self.url = f"http://127.0.0.1:{int(line[2])}"

    def get(self, path):
        return json.loads(http("GET", self.url + path))

    def load_assigned(self, n, endpoints):
        """Services 0..n-1, each holding the address a cold start gives it: the first free one
        in name order (the provider decides its Services in key order)."""
        for start in range(0, n, 2000):
            items = []
            for i in range(start, min(n, start + 2000)):
                name = f"svc-{i:05d}"
                items += [service(name, str(POOL_V4[i]), i), slice_(name, i, endpoints)]
            http("POST", self.url + "/fake/objects", {"items": items})

    def time_list(self, path, limit=500):
        t0 = time.monotonic()
        cont, items = "", 0
        while True:
            q = f"?limit={limit}" + (f"&continue={cont}" if cont else "")
            page = self.get(path + q)
            items += len(page["items"])
            cont = page["metadata"].get("continue", "")
            if not cont:
                return time.monotonic() - t0, items

    def requests(self, since):
        return self.get(f"/fake/requests?since={since}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def admin(path):
    return http("GET", f"http://127.0.0.1:{ADMIN}{path}", timeout=5)


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def write_config(workdir, fake, provider=True):
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n"
                f"    server: {fake.url}\nusers:\n- name: u\n  user:\n    token: x\n"
                f"contexts:\n- name: f\n  context:\n    cluster: f\n    user: u\n"
                f"current-context: f\n")
    config = os.path.join(workdir, "magline.json" if provider else "forwarding-only.json")
    pools = {"pools": [{"name": "bench", "addresses": [str(POOL_V4), POOL_V6]}],
             "election": {"identity": "bench-edge"}}
    with open(config, "w") as f:
        json.dump({"flow_table": {"capacity": 65536},
                   "admin": {"port": ADMIN},
                   "dataplane": {"main_core": 0, "worker_cores": [1], "hugepages": False,
                                 "memory_mb": 256,
                                 "ports": [{"name": "lan0", "device": "net_null0",
                                            "addresses": ["198.18.0.1/16"]}]},
                   "kubernetes": {"kubeconfig": kubeconfig, "load_balancer_class": CLASS},
                   **({"provider": pools} if provider else {})}, f)
    return config


def wait_forwarding(n, t0, deadline):
    """Seconds from t0 to every Service held, synced, and the last publication in effect."""
    while time.monotonic() < deadline:
        time.sleep(0.01)
        try:
            k = json.loads(admin("/stats")).get("kubernetes", {})
        except OSError:
            continue
        src = k.get("source", {})
        if (src.get("services_held") == n and src.get("slices_held") == n and
                k.get("update_latency_ms", {}).get("count", 0) >= 1 and src.get("synced")):
            count = k["update_latency_ms"]["count"]
            time.sleep(0.05)
            k2 = json.loads(admin("/stats"))["kubernetes"]
            if k2["update_latency_ms"]["count"] == count:
                return time.monotonic() - t0 - 0.05
    raise SystemExit(f"magline did not forward {n} Services within the deadline")


def wait_leading(t0, deadline):
    while time.monotonic() < deadline:
        try:
            m = admin("/metrics").decode()
        except OSError:
            time.sleep(0.05)
            continue
        if metric(m, "magline_provider_synced") == 1 and metric(m, "magline_provider_leading") == 1:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit("the provider did not sync and lead within the deadline")


def writes_by_resource(reqs):
    out = {}
    for r in reqs:
        if r.get("verb") in WRITE_VERBS:
            res = (r.get("resource") or "?") + ("/" + r["subresource"] if r.get("subresource")
                                                else "")
            out[res] = out.get(res, 0) + 1
    return out


def provider_watches(reqs):
    """The provider's Service watches: every Service, no label selector (the forwarding side's
    has one)."""
    return {r["seq"] for r in reqs if r.get("watch") and r.get("resource") == "services" and
            not r.get("namespace") and "labelSelector" not in r.get("query", {})}


def new_services(fake, run, first, m, endpoints, watch_seqs, since_req):
    """Creates M Services one at a time; per Service (event -> finalizer PATCH, event -> status
    PATCH, in seconds; its name; the other requests the fake logged in between)."""
    samples = []
    seen = []  # every request of the phase: what else the fake served while a sample was slow
    ev_next = fake.get("/fake/watch-events?since=0")["next"]
    req_next = fake.requests(since_req)["next"]
    for k in range(m):
        name = f"new-{run}-{k:03d}"
        http("POST", fake.url + "/fake/objects", slice_(name, first + k, endpoints))
        http("POST", f"{fake.url}/api/v1/namespaces/{NS}/services", service(name))
        end = time.monotonic() + 10
        finalizer = status = None
        while status is None:
            if time.monotonic() > end:
                raise SystemExit(f"{name}: no status write within 10 s")
            time.sleep(0.005)
            log = fake.requests(req_next)
            req_next = log["next"]
            seen += log["requests"]
            for r in log["requests"]:
                if r.get("watch") and r.get("resource") == "services" and \
                        "labelSelector" not in r.get("query", {}) and not r.get("namespace"):
                    watch_seqs.add(r["seq"])  # a re-watch
                if r.get("verb") != "patch" or r.get("name") != name:
                    continue
                if r.get("subresource") == "status":
                    status = r["t"]
                elif finalizer is None:
                    finalizer = r["t"]
        evs = fake.get(f"/fake/watch-events?since={ev_next}")
        ev_next = evs["next"]
        added = [e["t"] for e in evs["events"] if e["name"] == name and e["type"] == "ADDED" and
                 e["watch"] in watch_seqs]
        if not added:
            raise SystemExit(f"{name}: the provider's watch did not log its ADDED event")
        during = sorted({f"{r['method']} {r.get('resource')}/{r.get('name') or ''}"
                         for r in seen if added[0] <= r["t"] <= status and r.get("name") != name})
        samples.append((finalizer - added[0], status - added[0], name, during))
    return samples, req_next


def check_as_built(fake, run, first, m):
    """The new Services as Magline wrote them must look as load_assigned() builds the others:
    its finalizer alone, one ingress entry with ipMode VIP, the next free addresses in order."""
    objs = {o["metadata"]["name"]: o for o in fake.get("/fake/objects?kind=services")["items"]}
    for k in range(m):
        o = objs[f"new-{run}-{k:03d}"]
        want = service("x", str(POOL_V4[first + k]))
        if (o["metadata"].get("finalizers") != want["metadata"]["finalizers"] or
                o.get("status") != want["status"]):
            raise SystemExit(f"new-{run}-{k:03d} is not as load_assigned() builds Services: "
                             f"{json.dumps(o)}")


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0.0


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def forwarding_only(args, config, n):
    """The same restart without the provider: the baseline of the same moment."""
    t0 = time.monotonic()
    proc = subprocess.Popen([args.magline, "run", "--config", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_forwarding(n, t0, t0 + 120)
    finally:
        stop(proc)


def one_run(args, fake, configs, run, n, since_req):
    """One restart over n Services (first without the provider, then with), then args.new new
    ones."""
    config, baseline_config = configs
    baseline = forwarding_only(args, baseline_config, n)
    since_req = fake.requests(since_req)["next"]
    t0 = time.monotonic()
    log_path = os.path.join(args.logs, f"magline-run-{run}.log")
    with open(log_path, "w") as err:
        proc = subprocess.Popen([args.magline, "run", "--config", config],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        forwarding = wait_forwarding(n, t0, t0 + 120)
        leading = wait_leading(t0, t0 + 120)
        time.sleep(max(0.0, t0 + leading + SETTLE_S - time.monotonic()))
        restored = metric(admin("/metrics").decode(), "magline_provider_restored_total")
        log = fake.requests(since_req)
        writes = writes_by_resource(log["requests"])
        watches = provider_watches(log["requests"])
        samples, since_req = new_services(fake, run, n, args.new, args.endpoints, watches,
                                          log["next"])
    finally:
        stop(proc)
    check_as_built(fake, run, n, args.new)
    with open(log_path) as f:
        said = [line.rstrip() for line in f if "provider:" in line]
    restart_writes = sum(v for k, v in writes.items() if not k.startswith("leases"))
    fin = [s[0] * 1000 for s in samples]
    st = [s[1] * 1000 for s in samples]
    return {"run": run, "services": n, "forwarding_s": round(forwarding, 3),
            "forwarding_without_provider_s": round(baseline, 3),
            "leading_s": round(leading, 3), "restored": int(restored or 0),
            "restart_writes": restart_writes,
            "restart_writes_by_resource": writes,
            "status_p50_ms": round(quantile(st, 0.5), 2),
            "status_p99_ms": round(quantile(st, 0.99), 2),
            "status_max_ms": round(max(st), 2) if st else 0,
            "finalizer_p50_ms": round(quantile(fin, 0.5), 2),
            "finalizer_p99_ms": round(quantile(fin, 0.99), 2),
            # name, status ms, finalizer ms, the other requests the fake had meanwhile
            "slowest": [(x[2], round(x[1] * 1000, 1), round(x[0] * 1000, 1), x[3])
                        for x in sorted(samples, key=lambda x: -x[1])[:3]],
            "leadership": [x for x in said if x.startswith(("magline: provider: leading",
                                                            "magline: provider: not leading"))]
            }, since_req


def spread(rows, key):
    v = [r[key] for r in rows]
    return {"min": min(v), "median": statistics.median(v), "max": max(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--magline", default="build-release/control/magline")
    ap.add_argument("--services", type=int, default=10000, help="N, assigned before the first "
                    "run (default 10000)")
    ap.add_argument("--endpoints", type=int, default=10, help="E per Service (default 10)")
    ap.add_argument("--new", type=int, default=200, help="M new Services per run (default 200)")
    ap.add_argument("--runs", type=int, default=3, help="restarts, each followed by M new "
                    "Services (default 3)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    ap.add_argument("--logs", default=None, help="keep magline's standard error of each run "
                    "here (default: a temporary directory, removed)")
    args = ap.parse_args()
    if not os.access(args.magline, os.X_OK):
        ap.error(f"--magline {args.magline}: not an executable (build control/magline first)")
    if args.services + args.runs * args.new > POOL_V4.num_addresses:
        ap.error("more Services than the pool's addresses")
    out = {"services": args.services, "endpoints": args.endpoints, "new": args.new, "runs": []}
    with tempfile.TemporaryDirectory(prefix="magline-provider-bench-") as workdir:
        if args.logs is None:
            args.logs = workdir
        os.makedirs(args.logs, exist_ok=True)
        fake = Fake()
        try:
            fake.load_assigned(args.services, args.endpoints)
            out["fake_list_alone_s"] = round(fake.time_list("/api/v1/services")[0], 3)
            configs = (write_config(workdir, fake), write_config(workdir, fake, False))
            since_req = fake.requests(0)["next"]
            print(f"{'run':>3} {'services':>8} {'writes':>6} {'fwd s':>6} {'w/o s':>6} "
                  f"{'lead s':>6} "
                  f"{'status p50':>10} {'p99':>7} {'max':>7} {'finalizer p50':>13} {'p99':>7}"
                  f"   (ms)")
            n = args.services
            for run in range(1, args.runs + 1):
                row, since_req = one_run(args, fake, configs, run, n, since_req)
                out["runs"].append(row)
                print(f"{run:>3} {n:>8} {row['restart_writes']:>6} {row['forwarding_s']:>6.2f} "
                      f"{row['forwarding_without_provider_s']:>6.2f} {row['leading_s']:>6.2f} "
                      f"{row['status_p50_ms']:>10.2f} "
                      f"{row['status_p99_ms']:>7.2f} {row['status_max_ms']:>7.2f} "
                      f"{row['finalizer_p50_ms']:>13.2f} {row['finalizer_p99_ms']:>7.2f}",
                      flush=True)
                n += args.new
        finally:
            fake.stop()
    rows = out["runs"]
    for key in ("forwarding_s", "forwarding_without_provider_s", "leading_s", "status_p50_ms",
                "status_p99_ms", "status_max_ms"):
        out[key] = spread(rows, key)
    leases = sorted({k for r in rows for k in r["restart_writes_by_resource"]})
    print("writes at restart by resource (per run): " + ", ".join(
        f"{k} {[r['restart_writes_by_resource'].get(k, 0) for r in rows]}" for k in leases))
    print(f"the fake's LIST of {args.services} Services alone: {out['fake_list_alone_s']:.2f} s")
    goals = {"restart_writes_0": all(r["restart_writes"] == 0 for r in rows),
             "forwarding_within_2s": all(r["forwarding_s"] <= 2.0 for r in rows),
             "status_p99_within_100ms": all(r["status_p99_ms"] <= 100.0 for r in rows)}
    out["goals"] = goals
    for g, ok in goals.items():
        print(f"goal {g}: {'met' if ok else 'MISSED'}")
    print(json.dumps(out))
    if args.check and not all(goals.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
