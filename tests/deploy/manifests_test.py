#!/usr/bin/env python3
"""The Kubernetes manifests (config/deploy/kubernetes/) checked by rule, not by eye: every object's
apiVersion and kind are a pair the API serves, with the fields it requires; names and
namespaces agree; every reference resolves (service account, roles, ConfigMap, selectors,
ports); the ConfigMap's configuration passes `magline check`; the container's arguments are
ones `magline run` takes; the probes ask for endpoints control/admin.cpp serves, on the admin
port the configuration listens on, at an address a hostNetwork pod's probes reach; the pod
asks for what DPDK needs (hugepages as requested and mounted, the memory the flow tables take,
whole CPUs for the cores); and the objects the fake API server serves are accepted by it.

Usage: manifests_test.py MAGLINE [unittest args]. Needs python3-yaml."""
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "k8s_client"))
import manifests as m  # noqa: E402
from fake_apiserver_test import Server  # noqa: E402

MAGLINE = None

# (apiVersion, kind) -> namespaced; the pairs a cluster serves (the last with the Prometheus
# Operator's CRDs).
KINDS = {
    ("v1", "Namespace"): False,
    ("v1", "ServiceAccount"): True,
    ("v1", "ConfigMap"): True,
    ("v1", "Service"): True,
    ("apps/v1", "DaemonSet"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): True,
}
# Fields each kind requires (dotted paths), beyond apiVersion, kind and metadata.name.
REQUIRED = {
    "DaemonSet": ["spec.selector", "spec.template.metadata.labels", "spec.template.spec.containers"],
    "Service": ["spec.ports"],
    "ConfigMap": ["data"],
    "ClusterRole": ["rules"],
    "Role": ["rules"],
    "ClusterRoleBinding": ["roleRef.apiGroup", "roleRef.kind", "roleRef.name", "subjects"],
    "RoleBinding": ["roleRef.apiGroup", "roleRef.kind", "roleRef.name", "subjects"],
    "ServiceMonitor": ["spec.selector", "spec.endpoints"],
}
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "data", "rules", "roleRef", "subjects"}
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
MIB = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, None: 1 / (1024 * 1024)}


def get(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def mib(quantity):
    q = QUANTITY.match(str(quantity))
    assert q and q.group(2) in MIB, f"not a binary quantity: {quantity}"
    return float(q.group(1)) * MIB[q.group(2)]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pod_spec():
    return m.daemonset()["spec"]["template"]["spec"]


class Objects(unittest.TestCase):
    def test_kustomization_lists_every_manifest(self):
        listed = {os.path.basename(p) for p in m.files()}
        for p in m.files():
            self.assertTrue(os.path.isfile(p), p)
        present = {f for f in os.listdir(m.KUBERNETES)
                   if f.endswith(".yaml") and f != "kustomization.yaml"}
        self.assertEqual(listed, present)

    def test_known_kinds_with_their_required_fields(self):
        namespaces = {o["metadata"]["name"] for _, o in m.objects() if o["kind"] == "Namespace"}
        seen = set()
        for f, o in m.objects():
            where = f"{f}: {o.get('kind')} {get(o, 'metadata.name')}"
            pair = (o.get("apiVersion"), o.get("kind"))
            self.assertIn(pair, KINDS, f"{where}: unknown apiVersion/kind")
            self.assertLessEqual(set(o), TOP_LEVEL, f"{where}: unknown top-level fields")
            name = get(o, "metadata.name")
            self.assertTrue(name and DNS1123_SUBDOMAIN.fullmatch(name), f"{where}: name")
            ns = get(o, "metadata.namespace")
            if KINDS[pair]:
                self.assertIn(ns, namespaces, f"{where}: namespace not created here")
            else:
                self.assertIsNone(ns, f"{where}: a cluster-scoped object has no namespace")
            for field in REQUIRED.get(o["kind"], []):
                self.assertTrue(get(o, field), f"{where}: {field} is required")
            key = (o["kind"], ns, name)
            self.assertNotIn(key, seen, f"{where}: twice")
            seen.add(key)

    def test_rbac_rules_are_complete_and_name_what_they_grant(self):
        for _, o in m.objects():
            for rule in o.get("rules", []) if o["kind"] in ("ClusterRole", "Role") else []:
                for field in ("apiGroups", "resources", "verbs"):
                    self.assertTrue(rule.get(field), f"{o['metadata']['name']}: {field}")
        self.assertTrue(m.granted(m.rbac_policy("t")))  # raises on a wildcard

    def test_the_rbac_checker_sees_forbidden_and_unused(self):
        # What run_test.py rbac and the e2e decide with, on a made-up request log.
        policy = m.rbac_policy("t")
        user = policy["users"]["t"]
        log = [{"user": user, "method": "GET", "path": "/api/v1/services", "verb": "list",
                "apiGroup": "", "resource": "services", "subresource": "", "namespace": "",
                "status": 200},
               {"user": user, "method": "DELETE", "path": "/api/v1/namespaces/a/services/x",
                "verb": "delete", "apiGroup": "", "resource": "services", "subresource": "",
                "namespace": "a", "status": 403},
               {"user": "someone else", "method": "GET", "path": "/api/v1/services",
                "verb": "watch", "apiGroup": "", "resource": "services", "subresource": "",
                "namespace": "", "status": 200}]
        allowed, forbidden = m.used(log, user)
        self.assertEqual(forbidden, ["DELETE /api/v1/namespaces/a/services/x (delete services)"])
        left = m.unused(m.granted(policy), allowed)
        self.assertIn("watch services", left)  # someone else's watch does not count
        self.assertNotIn("list services", left)
        self.assertNotIn("watch services",
                         m.unused(m.granted(policy), allowed, {("", "services", "watch")}))

    def test_references_resolve(self):
        ns, sa = m.service_account()
        m.find("ServiceAccount", sa)
        for _, b in m.objects():
            if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            role = m.find(b["roleRef"]["kind"], b["roleRef"]["name"])
            if b["roleRef"]["kind"] == "Role":
                self.assertEqual(role["metadata"]["namespace"], b["metadata"]["namespace"])
            for s in b["subjects"]:
                if s["kind"] == "ServiceAccount":
                    acct = m.find("ServiceAccount", s["name"])
                    self.assertEqual(acct["metadata"]["namespace"],
                                     s.get("namespace") or b["metadata"]["namespace"])
        ds = m.daemonset()
        labels = ds["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(matches(ds["spec"]["selector"]["matchLabels"], labels))
        for v in pod_spec().get("volumes", []):
            if "configMap" in v:
                m.find("ConfigMap", v["configMap"]["name"])
        mounts = {mt["name"] for mt in m.container().get("volumeMounts", [])}
        self.assertEqual(mounts, {v["name"] for v in pod_spec()["volumes"]})
        ports = {p["name"]: p["containerPort"] for p in m.container().get("ports", [])}
        svc = m.find("Service", "magline-admin")
        self.assertTrue(matches(svc["spec"]["selector"], labels))
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], ports)
        mon = m.find("ServiceMonitor", "magline")
        self.assertTrue(matches(mon["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]))
        self.assertIn(svc["metadata"]["namespace"], mon["spec"]["namespaceSelector"]["matchNames"])
        for e in mon["spec"]["endpoints"]:
            self.assertIn(e["port"], {p["name"] for p in svc["spec"]["ports"]})
            self.assertIn(e["path"], m.admin_endpoints())


class Magline(unittest.TestCase):
    def run_magline(self, *args):
        p = subprocess.run([MAGLINE, *args], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_the_configuration_passes_magline_check(self):
        config = m.config_json()
        # The sample's cores are an edge node's (2, 3, 4); `check` refuses cores this machine
        # lacks, so they become cores every machine has. The rest is checked as shipped.
        config["dataplane"]["main_core"] = 0
        config["dataplane"]["worker_cores"] = [1]
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(config, f)
            f.flush()
            rc, out, err = self.run_magline("check", "--config", f.name)
        self.assertEqual(rc, 0, err)

    def test_the_container_runs_magline_with_arguments_it_takes(self):
        c = m.container()
        self.assertEqual(os.path.basename(c["command"][0]), "magline")
        args = c["args"]
        self.assertEqual(args[0], "run")
        # The options parse (an unknown one or a missing value fails before --help is answered).
        rc, out, err = self.run_magline(*args, "--help")
        self.assertEqual(rc, 0, err)
        self.assertIn("--config", out)

    def test_probes_reach_endpoints_the_admin_listener_serves(self):
        config = m.config_json()
        admin = config.get("admin", {})
        self.assertTrue(admin.get("enabled", True))
        port = admin.get("port", 9100)
        # hostNetwork: the kubelet probes the node's address, Prometheus too: loopback would
        # answer neither.
        self.assertTrue(pod_spec()["hostNetwork"])
        self.assertTrue(ipaddress.ip_address(admin.get("address", "127.0.0.1")).is_unspecified)
        ports = {p["name"]: p["containerPort"] for p in m.container()["ports"]}
        self.assertEqual(ports["admin"], port)
        probes = [k for k in m.container() if k.endswith("Probe")]
        self.assertEqual(sorted(probes), ["livenessProbe", "readinessProbe", "startupProbe"])
        for k in probes:
            get_ = m.container()[k]["httpGet"]
            self.assertIn(get_["path"], m.admin_endpoints(), k)
            self.assertEqual(ports.get(get_["port"], get_["port"]), port, k)


class Pod(unittest.TestCase):
    def test_host_network_with_cluster_dns(self):
        self.assertEqual(pod_spec()["dnsPolicy"], "ClusterFirstWithHostNet")

    def test_only_on_labelled_tainted_edge_nodes(self):
        (key, value), = pod_spec()["nodeSelector"].items()
        self.assertIn((key, "NoSchedule"),
                      {(t["key"], t["effect"]) for t in pod_spec()["tolerations"]})

    def test_hugepages_requested_mounted_and_enough(self):
        dp = m.config_json()["dataplane"]
        res = m.container()["resources"]
        huge = {k: v for k, v in res["limits"].items() if k.startswith("hugepages-")}
        if not dp.get("hugepages", True):
            self.assertEqual(huge, {})
            return
        self.assertEqual(len(huge), 1, "one hugepage size")
        (size, amount), = huge.items()
        self.assertEqual(res["requests"].get(size), amount, "hugepages: requests == limits")
        self.assertGreaterEqual(mib(amount), dp.get("memory_mb", 512))
        medium = {v["emptyDir"].get("medium") for v in pod_spec()["volumes"] if "emptyDir" in v}
        self.assertIn("HugePages-" + size.split("-", 1)[1], medium)

    def test_guaranteed_whole_cpus_for_the_cores_and_memory_for_the_flow_tables(self):
        config = m.config_json()
        dp = config["dataplane"]
        res = m.container()["resources"]
        self.assertEqual(res["requests"], res["limits"], "Guaranteed QoS")
        cores = 1 + len(dp.get("worker_cores", [1]))
        self.assertEqual(str(res["limits"]["cpu"]), str(cores))
        # What `run` checks against the cgroup's memory.max (control/preflight.cpp, docs/config.md):
        # 72 bytes an entry, the capacity rounded up to 8 times a power of two, and 9 MiB of
        # traffic counters, per worker, plus dataplane.memory_mb; and 64 MiB for the rest.
        cap = config.get("flow_table", {}).get("capacity", 1048576)
        rounded = 8
        while rounded < cap:
            rounded *= 2
        tables = len(dp.get("worker_cores", [1])) * (rounded * 72 / 2**20 + 9)
        need = tables + dp.get("memory_mb", 512) + 64
        self.assertGreaterEqual(mib(res["limits"]["memory"]), need)

    def test_dpdk_gets_its_devices_and_credentials(self):
        dp = m.config_json()["dataplane"]
        pci = [p for p in dp["ports"] if re.fullmatch(r"[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]",
                                                       p["device"])]
        vols = {v["name"]: v for v in pod_spec()["volumes"]}
        if pci:
            mounted = {mt["mountPath"]: vols[mt["name"]] for mt in m.container()["volumeMounts"]}
            self.assertEqual(mounted["/dev/vfio"]["hostPath"]["path"], "/dev/vfio")
            sc = m.container()["securityContext"]
            self.assertTrue(sc.get("privileged") or {"IPC_LOCK", "SYS_ADMIN"} <=
                            set(sc.get("capabilities", {}).get("add", [])))
        self.assertTrue(m.config_json()["kubernetes"]["in_cluster"])
        self.assertIsNot(pod_spec().get("automountServiceAccountToken"), False)


class FakeApiServer(unittest.TestCase):
    def test_the_objects_it_serves_are_accepted(self):
        server = Server("--token", "admin")
        try:
            served = 0
            for _, o in m.objects():
                if o["kind"] != "Service":
                    continue
                ns = o["metadata"]["namespace"]
                req = urllib.request.Request(
                    f"http://127.0.0.1:{server.port}/api/v1/namespaces/{ns}/services",
                    data=json.dumps(o).encode(), method="POST",
                    headers={"Content-Type": "application/json",
                             "Authorization": "Bearer admin"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    self.assertEqual(r.status, 201)
                    back = json.loads(r.read())
                self.assertEqual(back["spec"]["clusterIP"], o["spec"].get("clusterIP", back["spec"]["clusterIP"]))
                served += 1
            self.assertGreater(served, 0)
        finally:
            server.stop()


if __name__ == "__main__":
    MAGLINE = os.path.abspath(sys.argv.pop(1))
    unittest.main()
