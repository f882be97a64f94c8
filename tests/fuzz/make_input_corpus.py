#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets for inputs from outside other than frames:
watch streams (corpus/watch), configuration files (corpus/config), kubeconfig files
(corpus/kubeconfig) and `magline replay`'s captures (corpus/replay). The frames' seeds are make_corpus.py's.

Usage: make_input_corpus.py [TESTDATA_DIR]
  TESTDATA_DIR: Kubernetes objects captured from real clusters, as YAML (default
  ../shared/testdata/k8s beside the repository, when it exists); the project's own examples and
  test data are used in any case.

Seeds are named seed_*; files added by libFuzzer merges keep their hash names. Needs PyYAML
(python3-yaml) only when TESTDATA_DIR is read.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(kind, name, data):
    out = os.path.join(HERE, "corpus", kind)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def watch_seeds(testdata):
    # The watch streams the project's own tests frame, as they are (the first byte of a fuzz
    # input chooses the chunking).
    for name in sorted(os.listdir(os.path.join(ROOT, "tests/k8s_client/testdata"))):
        if name.endswith(".json") or name.endswith(".jsonl"):
            with open(os.path.join(ROOT, "tests/k8s_client/testdata", name), "rb") as f:
                write("watch", name, b"\x07" + f.read())
    if not testdata or not os.path.isdir(testdata):
        return
    import yaml  # only for the captured objects

    for sub in ("watch",):
        d = os.path.join(testdata, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                write("watch", name, b"\x03" + f.read())
    # Each scenario's Service and EndpointSlices as one watch stream of ADDED events.
    d = os.path.join(testdata, "kind-captured")
    scenarios = {}
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, name)) as f:
            obj = yaml.safe_load(f)
        scenarios.setdefault(name.split(".")[0], []).append(obj)
    for scenario, objects in scenarios.items():
        stream = "".join(json.dumps({"type": "ADDED", "object": o}) + "\n" for o in objects)
        write("watch", scenario + ".jsonl", b"\x10" + stream.encode())


def config_seeds():
    write("config", "default.json", open(os.path.join(ROOT, "config/default.json")).read())
    d = os.path.join(ROOT, "config/examples")
    for name in sorted(os.listdir(d)):
        write("config", name, open(os.path.join(d, name)).read())


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
    tls-server-name: kubernetes.default
- name: dev
  cluster:
    server: https://[::1]:6443
    certificate-authority: certs/ca.crt
    insecure-skip-tls-verify: false
users:
- name: alice
  user:
    tokenFile: secrets/token
    client-certificate: /abs/alice.crt
    client-key: alice.key
- name: bot
  user:
    token: abc
contexts:
- name: dev
  context: {cluster: dev, user: alice, namespace: edge}
- name: prod
  context: {cluster: prod, user: bot}
"""


def kubeconfig_seeds():
    write("kubeconfig", "two-clusters.yaml", KUBECONFIG)
    write("kubeconfig", "prod.yaml", KUBECONFIG.replace("current-context: dev", "current-context: prod"))
    write("kubeconfig", "exec.yaml", """apiVersion: v1
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    write("kubeconfig", "flow.json", json.dumps({
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"client-certificate-data": "QUJD", "client-key-data": "QUJD"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x"}))


def replay_seeds():
    """The replay test's captures (every mode, both families, ARP and NDP), and the same
    truncated: a header alone, a record cut short."""
    for name in ("in.pcap", "expected.pcap"):
        with open(os.path.join(ROOT, "tests", "replay", name), "rb") as f:
            data = f.read()
        write("replay", name, data)
        write("replay", "header-" + name, data[:24])
        write("replay", "cut-" + name, data[:len(data) // 2])


def main():
    default = os.path.join(os.path.dirname(ROOT), "shared", "testdata", "k8s")
    testdata = sys.argv[1] if len(sys.argv) > 1 else default
    watch_seeds(testdata)
    config_seeds()
    kubeconfig_seeds()
    replay_seeds()


if __name__ == "__main__":
    main()
