#!/usr/bin/python3
"""The daemon's Kubernetes update latency, resync time and memory per Service, measured end to
end: `magline run` (one worker on net_null, no traffic) watching the fake API server
(tests/k8s_client/fake_apiserver.py) that holds N Services x E endpoints.

  resync    from magline's start to every Service published and in effect on the worker
            (LIST over HTTP, decoding, translation, Maglev tables, publication)
  change    one EndpointSlice of a random Service changes (an endpoint turns not-ready); the
            sample is magline's own measure, from the watch event read off the wire to every
            worker using the new table (magline_update_latency_seconds_sum/_count).
            p50/p99 over C changes, one at a time
  memory    magline's resident memory with N Services minus with none, per Service

Usage (root, a built magline): perf/k8s_update_bench.py [--magline PATH] [--services N,N...]
                                                         [--endpoints E] [--changes C]
Prints a table and one JSON object (docs/performance.md).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "tests", "k8s_client", "fake_apiserver.py")
ADMIN = 9102


def http(method, url, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def service(i):
    vip = f"198.18.{128 + i // 256}.{i % 256}"
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"namespace": "bench", "name": f"svc-{i}"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": vip, "ipMode": "VIP"}]}}}


def slice_(i, endpoints, not_ready=-1):
    eps = []
    for e in range(endpoints):
        a = i * endpoints + e
        eps.append({"addresses": [f"198.19.{a // 256 % 256}.{a % 256}"],
                    "conditions": {"ready": e != not_ready}})
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"namespace": "bench", "name": f"svc-{i}-x",
                         "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--max-chunk", "0",
                                      "--bookmark-interval", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().split()
        self.port = int(line[2])
        self.url = f"http://127.0.0.1:{self.port}"

    def load(self, first, last, endpoints):
        """Services first..last-1 with their slices, in batches."""
        for start in range(first, last, 2000):
            items = []
            for i in range(start, min(last, start + 2000)):
                items += [service(i), slice_(i, endpoints)]
            http("POST", self.url + "/fake/objects", {"items": items})

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stats():
    return json.loads(http("GET", f"http://127.0.0.1:{ADMIN}/stats", timeout=5))


def run(magline, fake, n, endpoints, changes, workdir, state):
    """`state`: per Service, which endpoint the API server has not-ready (kept across runs, so
    that every change really changes something)."""
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n"
                f"    server: {fake.url}\nusers:\n- name: u\n  user:\n    token: x\n"
                f"contexts:\n- name: f\n  context:\n    cluster: f\n    user: u\n"
                f"current-context: f\n")
    config = os.path.join(workdir, "magline.json")
    with open(config, "w") as f:
        json.dump({"flow_table": {"capacity": 65536},
                   "admin": {"port": ADMIN},
                   "dataplane": {"main_core": 0, "worker_cores": [1], "hugepages": False,
                                 "memory_mb": 256,
                                 "ports": [{"name": "lan0", "device": "net_null0",
                                            "addresses": ["198.18.0.1/16"]}]},
                   "kubernetes": {"kubeconfig": kubeconfig}}, f)
    t0 = time.monotonic()
    proc = subprocess.Popen([magline, "run", "--config", config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        resync = None
        while time.monotonic() < t0 + 120:
            time.sleep(0.01)
            try:
                k = stats().get("kubernetes", {})
            except OSError:
                continue
            src = k.get("source", {})
            if (src.get("services_held") == n and src.get("slices_held") == n and
                    k.get("update_latency_ms", {}).get("count", 0) >= 1 and
                    src.get("synced")):
                # Everything held; wait for the last publish to be in effect.
                count = k["update_latency_ms"]["count"]
                time.sleep(0.05)
                k2 = stats()["kubernetes"]
                if k2["update_latency_ms"]["count"] == count:
                    resync = time.monotonic() - t0 - 0.05
                    break
        if resync is None:
            raise SystemExit(f"magline did not publish {n} Services within 120 s")
        rss = rss_kb(proc.pid)
        rng = random.Random(n)
        samples = []
        for c in range(changes):
            i = rng.randrange(n)
            state[i] = (state.get(i, -1) + 1) % endpoints
            before = stats()["kubernetes"]["update_latency_ms"]
            http("POST", fake.url + "/fake/objects", slice_(i, endpoints, state[i]))
            end = time.monotonic() + 5
            while time.monotonic() < end:
                after = stats()["kubernetes"]["update_latency_ms"]
                if after["count"] > before["count"]:
                    if after["count"] == before["count"] + 1:
                        samples.append(after["sum"] - before["sum"])
                    break
                time.sleep(0.0005)
            else:
                raise SystemExit(f"change {c} not in effect within 5 s: "
                                 f"{json.dumps(stats().get('kubernetes'))}")
        return resync, rss, samples
    finally:
        proc.terminate()
        proc.wait(10)


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--magline", default="build-release/control/magline")
    ap.add_argument("--services", default="100,10000")
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=200)
    args = ap.parse_args()
    counts = [int(x) for x in args.services.split(",")]
    out = {"endpoints": args.endpoints, "changes": args.changes, "runs": []}
    with tempfile.TemporaryDirectory(prefix="magline-k8s-bench-") as workdir:
        fake = Fake()
        try:
            print(f"{'services':>9} {'resync s':>9} {'RSS MB':>8} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'max ms':>8}")
            loaded = 0
            state = {}
            for n in sorted(counts):
                fake.load(loaded, n, args.endpoints)
                loaded = n
                resync, rss, samples = run(args.magline, fake, n, args.endpoints, args.changes,
                                           workdir, state)
                row = {"services": n, "resync_s": round(resync, 3),
                       "rss_mb": round(rss / 1024, 1),
                       "p50_ms": round(quantile(samples, 0.5), 3),
                       "p99_ms": round(quantile(samples, 0.99), 3),
                       "max_ms": round(max(samples), 3) if samples else 0}
                out["runs"].append(row)
                print(f"{n:>9} {resync:>9.2f} {row['rss_mb']:>8.1f} {row['p50_ms']:>8.3f} "
                      f"{row['p99_ms']:>8.3f} {row['max_ms']:>8.3f}", flush=True)
            if len(out["runs"]) >= 2:
                a, b = out["runs"][0], out["runs"][-1]
                per = (b["rss_mb"] - a["rss_mb"]) * 1024 / (b["services"] - a["services"])
                out["kb_per_service"] = round(per, 1)
                print(f"memory: {per:.1f} KB per Service (RSS from {a['services']} to "
                      f"{b['services']} Services)")
        finally:
            fake.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
