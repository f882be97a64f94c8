#!/usr/bin/env python3
"""Runs `magline replay` over in.pcap and compares every frame it writes with expected.pcap.
Usage: compare.py MAGLINE CONFIG IN EXPECTED"""
import struct
import subprocess
import sys
import tempfile


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        out.append(((sec, usec), data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out


def main():
    magline, config, capture, expected = sys.argv[1:5]
    with tempfile.NamedTemporaryFile(suffix=".pcap") as out:
        run = subprocess.run([magline, "replay", "--config", config, "--in", capture,
                              "--out", out.name], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            print(run.stdout, run.stderr)
            return 1
        got, want = frames(out.name), frames(expected)
    ok = len(got) == len(want)
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g != w:
            ok = False
            print(f"frame {i}: got {g[1].hex() if g else None}\n         want {w[1].hex() if w else None}")
    print(f"{len(got)} frames written, {len(want)} expected: {'same' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
