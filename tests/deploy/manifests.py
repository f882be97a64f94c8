"""The shipped deployment files as data, for the tests in this folder and the end-to-end test:
the Kubernetes manifests (config/deploy/kubernetes/, through kustomization.yaml), the configuration in
the ConfigMap, the RBAC policy they grant Magline's service account (in the form the fake API
server's --rbac takes), and the admin endpoints control/admin.cpp serves. Needs python3-yaml."""
import json
import os
import re

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
KUBERNETES = os.path.join(ROOT, "config", "deploy", "kubernetes")
SYSTEMD = os.path.join(ROOT, "config", "deploy", "systemd")
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def files():
    """The manifest files kustomization.yaml lists, in its order."""
    with open(os.path.join(KUBERNETES, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    return [os.path.join(KUBERNETES, r) for r in k.get("resources", [])]


def objects():
    """Every object of every listed file: [(file name, object)]."""
    out = []
    for path in files():
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    out.append((os.path.basename(path), doc))
    return out


def find(kind, name=None):
    found = [o for _, o in objects() if o.get("kind") == kind and
             (name is None or o.get("metadata", {}).get("name") == name)]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def daemonset():
    return find("DaemonSet", "magline")


def container():
    return daemonset()["spec"]["template"]["spec"]["containers"][0]


def config_path():
    """The --config path of the DaemonSet's container."""
    args = container().get("args", [])
    return args[args.index("--config") + 1]


def configuration():
    """The configuration file the container reads: the ConfigMap key its --config names, through
    the volume mounted at that path's directory. (text, the mount's ConfigMap, key)"""
    path = config_path()
    pod = daemonset()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in container().get("volumeMounts", []):
        if os.path.dirname(path) == m["mountPath"].rstrip("/"):
            cm_name = volumes[m["name"]]["configMap"]["name"]
            cm = find("ConfigMap", cm_name)
            key = os.path.basename(path)
            return cm["data"][key], cm_name, key
    raise LookupError(f"no volume is mounted where --config {path} points")


def service_account():
    """(namespace, name) of the DaemonSet's pods' service account."""
    ds = daemonset()
    return ds["metadata"]["namespace"], ds["spec"]["template"]["spec"]["serviceAccountName"]


def rbac_policy(token):
    """The fake API server's --rbac policy: `token` is the DaemonSet's service account, and
    every RBAC object of the manifests."""
    ns, name = service_account()
    return {"users": {token: f"system:serviceaccount:{ns}:{name}"},
            "objects": [o for _, o in objects() if o.get("kind") in RBAC_KINDS]}


def granted(policy):
    """Every (apiGroup, resource[/subresource], verb, namespace or "") the policy's bindings
    grant its one user: what "nothing unused" must see used. Wildcards are refused (a least-
    privilege role names what it grants)."""
    (user,) = policy["users"].values()
    objs = policy["objects"]
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objs if o["kind"] in ("ClusterRole", "Role")}
    ns_user, name_user = user.split(":")[2:4]
    out = set()
    for b in objs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        bns = b["metadata"].get("namespace", "")
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == name_user and
                   (s.get("namespace") or bns) == ns_user for s in b.get("subjects", [])):
            continue
        ref = b["roleRef"]
        role = roles[(ref["kind"], bns if ref["kind"] == "Role" else "", ref["name"])]
        for rule in role.get("rules", []):
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        if "*" in (g, r, v):
                            raise ValueError(f"{ref['name']}: a wildcard grants more than is used")
                        out.add((g, r, v, bns if b["kind"] == "RoleBinding" else ""))
    return out


def used(requests, user):
    """The (apiGroup, resource[/subresource], verb, namespace) of a user's requests that were
    allowed (the fake API server's request log), and those that were forbidden."""
    allowed, forbidden = set(), []
    for r in requests:
        if r.get("user") != user or "verb" not in r:
            continue
        res = r["resource"] + ("/" + r["subresource"] if r["subresource"] else "")
        key = (r["apiGroup"], res, r["verb"], r["namespace"])
        if r.get("status") == 403:
            forbidden.append(f"{r['method']} {r['path']} ({r['verb']} {res})")
        else:
            allowed.add(key)
    return allowed, forbidden


def unused(granted_set, allowed, allow_list=()):
    """The grants no allowed request used: a ClusterRoleBinding's grant ("" namespace) is used by
    a request in any namespace. `allow_list`: (apiGroup, resource, verb) left out, with reasons
    kept by the caller."""
    left = []
    for g, r, v, ns in sorted(granted_set):
        if (g, r, v) in allow_list:
            continue
        if not any(a[:3] == (g, r, v) and (ns == "" or a[3] == ns) for a in allowed):
            left.append(f"{v} {r}" + (f".{g}" if g else "") + (f" in {ns}" if ns else ""))
    return left


def admin_endpoints():
    """The paths control/admin.cpp serves (srv.Get("/path", ...))."""
    with open(os.path.join(ROOT, "control", "admin.cpp")) as f:
        return set(re.findall(r'srv\.Get\("(/[^"]*)"', f.read()))


def config_json():
    return json.loads(configuration()[0])
