"""Hugepages and pcapng for the tests that attach DPDK's dpdk-dumpcap to a running Magline
(tests/cli/exit_status.py over net_null, tests/e2e/e2e.py on the namespace topology).
Standard library only."""
import os
import struct
import subprocess


def hugepages_free():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


class Hugepages:
    """At least `pages` free hugepages of the default size on a mounted hugetlbfs, as
    FIELD-NOTES says; `ok` is False when the machine will not give them. give_back() restores
    the number reserved before."""

    def __init__(self, pages):
        with open("/proc/sys/vm/nr_hugepages") as f:
            self.before = f.read().strip()
        self.ok = self._reserve(pages)

    @staticmethod
    def _reserve(pages):
        with open("/proc/mounts") as f:
            mounted = any(line.split()[2] == "hugetlbfs" for line in f)
        if not mounted:
            os.makedirs("/dev/hugepages", exist_ok=True)
            if subprocess.run(["mount", "-t", "hugetlbfs", "nodev", "/dev/hugepages"]).returncode:
                return False
        if hugepages_free() < pages:
            with open("/proc/sys/vm/nr_hugepages") as f:
                total = int(f.read())
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(total + pages - hugepages_free()))
        return hugepages_free() >= pages

    def give_back(self):
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(self.before)


def pcapng_frames(path):
    """The frames of the Enhanced Packet Blocks (type 6) of a little-endian pcapng file, each as
    (original length, captured bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    frames = []
    at = 0
    while at + 12 <= len(data):
        kind, size = struct.unpack_from("<II", data, at)
        assert size >= 12 and at + size <= len(data), f"{path}: damaged block at {at}"
        if kind == 6:
            captured, original = struct.unpack_from("<II", data, at + 20)
            frames.append((original, data[at + 28:at + 28 + captured]))
        at += size
    return frames
