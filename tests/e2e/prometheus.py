"""Prometheus text exposition format 0.0.4, read strictly: what the end-to-end cases, the
`magline run` case of tests/cli/exit_status.py and tests/metrics/check_metrics.py read Magline's
/metrics with (standard library only; promtool is not packaged for this machine).

Beyond the format's grammar it holds Magline to the conventions docs/metrics.md promises:
every family has one HELP and one TYPE before its samples, and its samples are together;
counters (and only counters) end in _total; a histogram's buckets are cumulative, in rising
`le` order, end at +Inf equal to _count, with a _sum; no series twice.

Usage as a program: prometheus.py FILE|- : exit 0 and the number of families and series, or 1
and the first problem."""
import math
import re
import sys

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# Units Prometheus wants in base units: seconds and bytes, not these.
NON_BASE_UNITS = re.compile(r"_(milliseconds|microseconds|nanoseconds|ms|us|ns|minutes|hours|"
                            r"kilobytes|megabytes|gigabytes|kb|mb|gb)(_|\Z)")


def parse_prometheus(text):
    """Prometheus text -> {(name, ((label, value), ...)): value}, labels sorted. Label values
    may hold the escapes \\\\, \\" and \\n. Raises ValueError naming the line on anything
    check_exposition() refuses."""
    return check_exposition(text)[1]


def check_exposition(text):
    """-> ({family: type}, samples as parse_prometheus gives them). Raises ValueError."""
    families = {}   # name -> {"type", "help", "samples": n}
    done = set()    # families whose samples have ended (another family's began)
    current = None  # the family whose samples come now
    samples = {}
    histograms = {}  # (family, labels without le) -> {"buckets": [(le, v)], "sum", "count"}
    for n, line in enumerate(text.splitlines(), 1):
        where = f"line {n} {line!r}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3:
                    raise ValueError(f"{where}: {parts[1]} without a metric name")
                name = parts[2]
                if not METRIC_NAME.match(name):
                    raise ValueError(f"{where}: invalid metric name {name!r}")
                f = families.setdefault(name, {"type": None, "help": None, "samples": 0})
                key = parts[1].lower()
                if f[key] is not None:
                    raise ValueError(f"{where}: second {parts[1]} for {name}")
                if f["samples"]:
                    raise ValueError(f"{where}: {parts[1]} for {name} after its samples")
                if key == "type":
                    kind = parts[3].strip() if len(parts) > 3 else ""
                    if kind not in TYPES:
                        raise ValueError(f"{where}: unknown type {kind!r}")
                    f["type"] = kind
                else:
                    f["help"] = parts[3] if len(parts) > 3 else ""
            continue
        try:
            name, labels, value = parse_sample(line)
        except IndexError:
            raise ValueError(f"{where}: ends inside its labels")
        except ValueError as e:
            raise ValueError(f"{where}: {e}")
        family, suffix = family_of(name, families)
        if family is None:
            raise ValueError(f"{where}: no # TYPE for {name} before it")
        f = families[family]
        if f["help"] is None:
            raise ValueError(f"{where}: no # HELP for {family} before it")
        if family != current:
            if family in done:
                raise ValueError(f"{where}: samples of {family} apart from the others")
            if current is not None:
                done.add(current)
            current = family
        f["samples"] += 1
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ValueError(f"{where}: series given twice")
        samples[key] = value
        if f["type"] == "counter" and (value < 0 or math.isnan(value)):
            raise ValueError(f"{where}: a counter below zero")
        if f["type"] == "histogram":
            le = labels.pop("le", None)
            h = histograms.setdefault((family, tuple(sorted(labels.items()))),
                                      {"buckets": [], "sum": None, "count": None, "line": where})
            if suffix == "_bucket":
                if le is None:
                    raise ValueError(f"{where}: a bucket without le")
                h["buckets"].append((float(le), value))
            elif le is not None:
                raise ValueError(f"{where}: le on {suffix}")
            else:
                h[suffix[1:]] = value
    for name, f in families.items():
        if f["type"] is None or f["help"] is None:
            raise ValueError(f"{name}: HELP and TYPE are both needed")
        if NON_BASE_UNITS.search(name):
            raise ValueError(f"{name}: not in base units (seconds, bytes)")
        if (f["type"] == "counter") != name.endswith("_total"):
            raise ValueError(f"{name}: a {f['type']}: only counters end in _total, and all do")
    for (family, labels), h in histograms.items():
        check_histogram(family, dict(labels), h)
    return {name: f["type"] for name, f in families.items()}, samples


def family_of(name, families):
    """The family a sample's name belongs to, and its suffix ('' or _bucket, _sum, _count)."""
    if name in families and families[name]["type"] not in ("histogram", "summary"):
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram",
                                                                           "summary"):
            if suffix == "_bucket" and families[base]["type"] == "summary":
                break
            return base, suffix
    return None, None


def check_histogram(family, labels, h):
    where = f"{family}{labels or ''}"
    b = h["buckets"]
    if not b:
        raise ValueError(f"{where}: a histogram without buckets")
    if any(b[i][0] >= b[i + 1][0] for i in range(len(b) - 1)):
        raise ValueError(f"{where}: buckets not in rising le order")
    if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        raise ValueError(f"{where}: buckets not cumulative")
    if b[-1][0] != math.inf:
        raise ValueError(f"{where}: no +Inf bucket")
    if h["count"] is None or h["sum"] is None:
        raise ValueError(f"{where}: no _count or _sum")
    if b[-1][1] != h["count"]:
        raise ValueError(f"{where}: +Inf bucket {b[-1][1]} != _count {h['count']}")


UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def parse_sample(line):
    """'name{a="x",b="y \\"q\\""} 12 [timestamp]' -> (name, {label: value}, 12.0)."""
    i = 0
    while i < len(line) and line[i] not in "{ \t":
        i += 1
    name = line[:i]
    if not METRIC_NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    labels = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            while line[i] in " \t":
                i += 1
            if line[i] == "}":
                i += 1
                break
            eq = line.index("=", i)
            key = line[i:eq].strip()
            if not LABEL_NAME.match(key) or key.startswith("__") or key in labels:
                raise ValueError(f"bad, reserved or repeated label name {key!r}")
            i = eq + 1
            if line[i] != '"':
                raise ValueError(f"label {key}: value not quoted")
            i += 1
            chars = []
            while line[i] != '"':
                if line[i] == "\\":
                    i += 1
                    if line[i] not in UNESCAPE:
                        raise ValueError(f"label {key}: unknown escape \\{line[i]}")
                    chars.append(UNESCAPE[line[i]])
                else:
                    chars.append(line[i])
                i += 1
            i += 1
            labels[key] = "".join(chars)
            while line[i] in " \t":
                i += 1
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError(f"after label {key}: {line[i]!r}, not ',' or '}}'")
    rest = line[i:].split()
    if len(rest) not in (1, 2):
        raise ValueError("no value, or more than a value and a timestamp")
    if len(rest) == 2 and not re.fullmatch(r"-?[0-9]+", rest[1]):
        raise ValueError(f"timestamp {rest[1]!r} is not an integer")
    if not re.fullmatch(r"[+-]?(Inf|NaN|[0-9.]+([eE][+-]?[0-9]+)?)", rest[0]):
        raise ValueError(f"value {rest[0]!r} is not a number")
    return name, labels, float(rest[0])


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} FILE|-", file=sys.stderr)
        return 2
    text = sys.stdin.read() if sys.argv[1] == "-" else open(sys.argv[1]).read()
    try:
        families, samples = check_exposition(text)
    except ValueError as e:
        print(f"{sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    print(f"{len(families)} families, {len(samples)} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
