"""Prometheus text exposition format 0.0.4, read strictly: what the end-to-end cases read
Magline's /metrics with (standard library only)."""


def parse_prometheus(text):
    """Prometheus text exposition format 0.0.4 -> {(name, ((label, value), ...)): value}, labels
    sorted. Skips comments (# HELP, # TYPE) and blank lines; label values may hold the escapes
    \\\\, \\" and \\n. Raises ValueError on a line it cannot read or a series given twice."""
    samples = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, labels, value = parse_sample(line)
        except IndexError:
            raise ValueError(f"line {n} {line!r}: ends inside its labels")
        except ValueError as e:
            raise ValueError(f"line {n} {line!r}: {e}")
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ValueError(f"line {n} {line!r}: series given twice")
        samples[key] = value
    return samples


UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def parse_sample(line):
    """'name{a="x",b="y \\"q\\""} 12 [timestamp]' -> (name, {label: value}, 12.0)."""
    i = 0
    while i < len(line) and line[i] not in "{ \t":
        i += 1
    name = line[:i]
    if not name or not (name[0].isalpha() or name[0] in "_:"):
        raise ValueError("no metric name")
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
            if not key or key in labels:
                raise ValueError(f"bad or repeated label name {key!r}")
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
    return name, labels, float(rest[0])  # float() reads NaN, +Inf, -Inf too
