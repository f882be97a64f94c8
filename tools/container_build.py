#!/usr/bin/python3
"""Builds Magline's container image file system the way `docker build` would, without a Docker
engine (none runs on the project's machines), then runs what is in it.

    tools/container_build.py [--dockerfile config/deploy/container/Dockerfile] [--context .]
                             [--work /var/tmp/magline-image] [--keep]

Each stage starts from Debian 12 installed by debootstrap (the variant `minbase`: what
debian:bookworm-slim holds), then the Dockerfile's instructions run in order: RUN in a chroot
with the stage's ENV and WORKDIR, COPY from the build context (less the patterns of the
Dockerfile's `.dockerignore`) or from an earlier stage. Then, in the last stage's file system:
`magline version` names the context's commit, `magline run` forwards on net_null for a second
and exits 0, each DPDK tool the image carries starts, every virtual driver docs/config.md accepts
has its poll-mode driver installed, and ENTRYPOINT and CMD are the DaemonSet's command and args.
Root only (debootstrap, chroot, mounts); downloads Debian packages. Exit status 0 when all held.
"""
import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PMDS = "usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0"
# docs/config.md's virtual drivers, and the library each comes in.
VIRTUAL_DRIVERS = {
    "net_af_packet": "net_af_packet", "net_af_xdp": "net_af_xdp", "net_bonding": "net_bond",
    "net_failsafe": "net_failsafe", "net_memif": "net_memif", "net_null": "net_null",
    "net_pcap": "net_pcap", "net_ring": "net_ring", "net_softnic": "net_softnic",
    "net_tap": "net_tap", "net_tun": "net_tap", "net_vdev_netvsc": "net_vdev_netvsc",
    "net_vhost": "net_vhost", "net_virtio_user": "net_virtio",
}


class Failed(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def instructions(path):
    """(keyword, argument) pairs of a Dockerfile: continuation lines joined, comments dropped."""
    out, pending = [], ""
    with open(path) as f:
        for line in f:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if pending and stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            whole = pending + stripped
            pending = ""
            keyword, _, arg = whole.partition(" ")
            out.append((keyword.upper(), arg.strip()))
    if pending:
        raise Failed(f"{path}: the last instruction ends with a continuation")
    return out


def ignore_patterns(dockerfile, context):
    for path in (dockerfile + ".dockerignore", os.path.join(context, ".dockerignore")):
        if os.path.exists(path):
            with open(path) as f:
                return [p.strip().rstrip("/") for p in f
                        if p.strip() and not p.startswith("#")]
    return []


def copy_context(context, dest, patterns):
    def ignored(folder, names):
        rel = os.path.relpath(folder, context)
        out = set()
        for n in names:
            path = n if rel == "." else os.path.join(rel, n)
            for p in patterns:
                if fnmatch.fnmatch(path, p) or (p.startswith("**/") and fnmatch.fnmatch(n, p[3:])):
                    out.add(n)
        return out
    shutil.copytree(context, dest, ignore=ignored, symlinks=True, dirs_exist_ok=True)


class Mounts:
    """/proc, /sys and /dev of the host in a stage's root while something runs there."""

    def __init__(self, root):
        self.points = [os.path.join(root, p) for p in ("proc", "sys", "dev")]

    def __enter__(self):
        for point, how in zip(self.points, (["-t", "proc", "proc"], ["--rbind", "/sys"],
                                            ["--rbind", "/dev"])):
            os.makedirs(point, exist_ok=True)
            subprocess.run(["mount"] + how + [point], check=True)
        return self

    def __exit__(self, *_):
        for point in reversed(self.points):
            subprocess.run(["umount", "-R", "-l", point], check=False)


def chroot(root, command, env=None, workdir="/", timeout=3600, check=True):
    env = dict(env or {})
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/root")
    script = f"cd {shlex.quote(workdir)} && {command}"
    with Mounts(root):
        p = subprocess.run(["chroot", root, "/bin/sh", "-c", script], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if check and p.returncode != 0:
        raise Failed(f"`{command[:120]}` exited {p.returncode}:\n{p.stdout[-3000:]}")
    return p


def base_system(work):
    """A Debian 12 minbase, made once and kept in the work folder."""
    base = os.path.join(work, "bookworm-minbase")
    if not os.path.exists(os.path.join(base, "etc", "debian_version")):
        log("debootstrap --variant=minbase bookworm (once)")
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", base,
                        "http://deb.debian.org/debian"], check=True, stdout=subprocess.DEVNULL)
    return base


def build(dockerfile, context, work):
    patterns = ignore_patterns(dockerfile, context)
    stages = {}  # name or index -> root
    root, env, workdir, meta, index = None, {}, "/", {}, -1
    for keyword, arg in instructions(dockerfile):
        if keyword == "FROM":
            image, _, name = re.sub(r"\s+AS\s+", " AS ", arg, flags=re.I).partition(" AS ")
            if not image.startswith("debian:bookworm"):
                raise Failed(f"FROM {image}: only debian:bookworm images are built here")
            index += 1
            root = os.path.join(work, f"stage{index}")
            if os.path.exists(root):
                subprocess.run(["rm", "-rf", "--one-file-system", root], check=True)
            subprocess.run(["cp", "-a", base_system(work), root], check=True)
            shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
            stages[str(index)] = root
            if name:
                stages[name.strip()] = root
            env, workdir, meta = {}, "/", {}
            log(f"stage {index}: FROM {arg}")
        elif keyword == "RUN":
            t0 = time.monotonic()
            chroot(root, arg, env, workdir)
            log(f"RUN ({time.monotonic() - t0:.0f} s) {arg[:90]}")
        elif keyword == "COPY":
            words = shlex.split(arg)
            source_root = context
            if words[0].startswith("--from="):
                source_root = stages[words.pop(0)[len("--from="):]]
            *sources, dest = words
            for s in sources:
                target = os.path.join(root, dest.lstrip("/"))
                if source_root == context and s == ".":
                    copy_context(context, target, patterns)
                    continue
                src = os.path.join(source_root, s.lstrip("/"))
                if dest.endswith("/"):
                    os.makedirs(target, exist_ok=True)
                    shutil.copy2(src, target)
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(src, target)
            log(f"COPY {arg}")
        elif keyword == "WORKDIR":
            workdir = arg
            os.makedirs(os.path.join(root, arg.lstrip("/")), exist_ok=True)
        elif keyword == "ENV":
            key, _, value = arg.partition("=")
            env[key.strip()] = value.strip()
        elif keyword in ("ENTRYPOINT", "CMD"):
            meta[keyword] = json.loads(arg)
        elif keyword not in ("LABEL", "EXPOSE", "USER", "ARG"):
            raise Failed(f"{dockerfile}: {keyword} is not handled by this builder")
    return root, meta


def check_image(root, meta, context, problems):
    def ran(command, what):
        p = chroot(root, command, check=False, timeout=120)
        if p.returncode != 0:
            problems.append(f"{what}: `{command}` exited {p.returncode}: {p.stdout[-600:]}")
        return p

    p = ran("/usr/local/bin/magline version", "version")
    commit = subprocess.run(["git", "-C", context, "describe", "--always", "--dirty",
                             "--abbrev=12", "--exclude=*"],
                            text=True, capture_output=True).stdout.strip()
    if p.returncode == 0:
        log(f"magline version: {p.stdout.strip()}")
        if commit and commit.removesuffix("-dirty") not in p.stdout:
            problems.append(f"magline version does not name the context's commit {commit}")

    config = {"flow_table": {"capacity": 65536}, "admin": {"enabled": False},
              "dataplane": {"main_core": 0, "worker_cores": [1], "hugepages": False,
                            "memory_mb": 256, "ports": [{"name": "p0", "device": "net_null0",
                                                         "addresses": ["198.18.0.1/16"]}]}}
    with open(os.path.join(root, "tmp", "null.json"), "w") as f:
        json.dump(config, f)
    p = ran("/usr/local/bin/magline run --config /tmp/null.json --duration 1", "run on net_null")
    if p.returncode == 0:
        counters = json.loads(p.stdout[p.stdout.index("{"):])
        log(f"magline run on net_null: rx_packets {counters['total']['rx_packets']}")
    for tool in ("dpdk-dumpcap -v", "dpdk-telemetry.py -h", "dpdk-devbind.py --help"):
        ran(f"{tool} >/dev/null", tool.split()[0])
    # A secondary process: it starts only beside a running Magline; its libraries must be there.
    ran("! ldd /usr/bin/dpdk-proc-info | grep 'not found'", "dpdk-proc-info's libraries")
    plugins = os.listdir(os.path.join(root, PMDS))
    for driver, lib in VIRTUAL_DRIVERS.items():
        if not any(n.startswith(f"librte_{lib}.so") for n in plugins):
            problems.append(f"{driver}: no librte_{lib}.so in {PMDS}")
    log(f"{len(plugins)} files in {PMDS}")

    daemonset = open(os.path.join(context, "config/deploy/kubernetes/daemonset.yaml")).read()
    command = re.search(r"command: (\[.*\])", daemonset).group(1)
    args = re.search(r"args: (\[.*\])", daemonset).group(1)
    if meta.get("ENTRYPOINT") != json.loads(command) or meta.get("CMD") != json.loads(args):
        problems.append(f"ENTRYPOINT {meta.get('ENTRYPOINT')} and CMD {meta.get('CMD')} are "
                        f"not the DaemonSet's command {command} and args {args}")
    size = subprocess.run(["du", "-sm", "--exclude=proc", "--exclude=sys", "--exclude=dev", root],
                          text=True, capture_output=True).stdout.split()[0]
    log(f"image file system: {size} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dockerfile", default=os.path.join(ROOT, "config/deploy/container/Dockerfile"))
    ap.add_argument("--context", default=ROOT)
    ap.add_argument("--work", default="/var/tmp/magline-image")
    ap.add_argument("--keep", action="store_true", help="keep the stages' file systems")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("container_build.py: needs root (debootstrap, chroot)", file=sys.stderr)
        return 2
    if shutil.which("debootstrap") is None:
        print("container_build.py: needs debootstrap (apt-get install debootstrap)",
              file=sys.stderr)
        return 2
    os.makedirs(a.work, exist_ok=True)
    problems = []
    t0 = time.monotonic()
    try:
        root, meta = build(a.dockerfile, os.path.abspath(a.context), a.work)
        log(f"built in {time.monotonic() - t0:.0f} s")
        check_image(root, meta, os.path.abspath(a.context), problems)
    except (Failed, subprocess.CalledProcessError) as e:
        problems.append(str(e))
    finally:
        if not a.keep:
            for n in os.listdir(a.work):
                if n.startswith("stage"):
                    subprocess.run(["rm", "-rf", "--one-file-system", os.path.join(a.work, n)])
    for p in problems:
        print(f"FAILED: {p}")
    print("image checked: every check held" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
