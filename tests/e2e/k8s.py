#!/usr/bin/python3
"""Kubernetes for the end-to-end test: the fake API server (tests/k8s_client/fake_apiserver.py)
run beside Magline, a kubeconfig pointing at it, and the Service and EndpointSlice objects the
cases write into it. Magline is the shipped DaemonSet's service account: the fake enforces the
RBAC of config/deploy/kubernetes/ on its requests (tests/deploy/manifests.py, python3-yaml), while the
cases' own requests are a cluster admin's."""
import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request

from topology import PYTHON, Fail

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_APISERVER = os.path.join(HERE, "..", "k8s_client", "fake_apiserver.py")
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
import manifests  # noqa: E402

TOKEN = "e2e-token"
SA_TOKEN = "e2e-magline-service-account"
NS = "e2e"


class FakeApi:
    """The fake API server in the root namespace (where Magline runs), on 127.0.0.1 or `host`
    (an address of the root namespace that other nodes' namespaces reach: case l2_failover);
    its files named after `name`."""

    def __init__(self, workdir, host="127.0.0.1", name="fake-apiserver"):
        self.host = host
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self.rbac = manifests.rbac_policy(SA_TOKEN)
        policy = os.path.join(workdir, f"{name}-rbac-policy.json")
        with open(policy, "w") as f:
            json.dump(self.rbac, f)
        self.proc = subprocess.Popen(
            [PYTHON, FAKE_APISERVER, "--host", host, "--port", "0", "--token", TOKEN, "--rbac",
             policy],
            stdout=subprocess.PIPE, stderr=open(self.err_path, "w"), stdin=subprocess.DEVNULL,
            start_new_session=True)
        line = b""
        end = time.monotonic() + 10
        fd = self.proc.stdout.fileno()
        while time.monotonic() < end and not line.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 1)
            if not chunk:
                break
            line += chunk
        words = line.decode(errors="replace").split()
        if len(words) != 3 or words[:2] != ["listening", "on"]:
            self.stop()
            raise Fail(f"fake API server did not start: {line!r}")
        self.port = int(words[2])
        self.kubeconfig = os.path.join(workdir, "kubeconfig" if name == "fake-apiserver"
                                       else f"{name}.kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://{host}:{self.port}
users:
- name: magline
  user:
    token: {SA_TOKEN}
contexts:
- name: fake
  context:
    cluster: fake
    user: magline
current-context: fake
""")

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.host}:{self.port}{path}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def api(self, method, path, body=None, content_type="application/json"):
        """A request to the API itself (authenticated, as Magline's): the status code and the
        body (an object, or {} when there is none)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.host}:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": content_type,
                                              "Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def service_object(self, name):
        """The Service as the server has it now, or None."""
        code, body = self.api("GET", f"/api/v1/namespaces/{NS}/services/{name}")
        return body if code == 200 else None

    def write(self, *objects, delete=()):
        return self.call("POST", "/fake/objects", {
            "items": list(objects),
            "delete": [{"kind": k, "namespace": NS, "name": n} for k, n in delete]})

    def rbac_findings(self, allow_list):
        """Magline's requests so far against the shipped role: (forbidden requests, granted
        rules never used, less `allow_list`)."""
        log = self.call("GET", "/fake/requests")["requests"]
        allowed, forbidden = manifests.used(log, self.rbac["users"][SA_TOKEN])
        return forbidden, manifests.unused(manifests.granted(self.rbac), allowed, allow_list)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()


def service(name, vip, port, node_port=None, protocol="TCP"):
    """A LoadBalancer Service; `vip` None: no status (the provider assigns one)."""
    p = {"name": "main", "protocol": protocol, "port": port, "targetPort": port}
    if node_port:
        p["nodePort"] = node_port
    svc = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"namespace": NS, "name": name},
           "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20",
                    "clusterIPs": ["10.96.0.20"], "ports": [p],
                    "externalTrafficPolicy": "Cluster", "sessionAffinity": "None"}}
    if vip is not None:
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": vip, "ipMode": "VIP"}]}}
    return svc


def slice_(service_name, suffix, port, ready=(), terminating=()):
    """An EndpointSlice of `service_name`: `ready` addresses serving, `terminating` ones being
    deleted (serving, not ready)."""
    eps = [{"addresses": [a], "conditions": {"ready": True, "serving": True,
                                             "terminating": False}} for a in ready]
    eps += [{"addresses": [a], "conditions": {"ready": False, "serving": True,
                                              "terminating": True}} for a in terminating]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"namespace": NS, "name": f"{service_name}-{suffix}",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "main", "protocol": "TCP", "port": port}]}
