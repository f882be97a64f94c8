#!/usr/bin/env python3
"""/metrics held to its documentation, and the Grafana dashboard held to both.

  check_metrics.py exposition SAMPLE REPO  SAMPLE (metrics_sample) prints every family the admin
      listener renders; the text must pass the strict checker (tests/e2e/prometheus.py), and its
      families must be exactly the ones docs/metrics.md's table lists, with the same types.
  check_metrics.py dashboard REPO  every metric the dashboard's expressions use
      (config/deploy/grafana/magline.json) is a family of docs/metrics.md's table, or a histogram's
      _bucket, _sum or _count of one: the dashboard cannot drift from the code.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from prometheus import check_exposition  # noqa: E402

ROW = re.compile(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \| (counter|gauge|histogram) \|")
# Words in PromQL that are not metric names.
PROMQL = {"sum", "rate", "irate", "increase", "by", "without", "histogram_quantile", "le",
          "max", "min", "avg", "count", "topk", "bottomk", "on", "ignoring", "group_left",
          "group_right", "and", "or", "unless", "time", "vector", "label_replace", "offset",
          "clamp_min", "clamp_max", "abs", "delta", "deriv", "changes", "resets", "bool"}


def documented(repo):
    """docs/metrics.md's table: {family: type}."""
    table = {}
    with open(os.path.join(repo, "docs", "metrics.md")) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                if m.group(1) in table:
                    raise SystemExit(f"docs/metrics.md: {m.group(1)} listed twice")
                table[m.group(1)] = m.group(2)
    if not table:
        raise SystemExit("docs/metrics.md: no metric table found")
    return table


def exposition(sample, repo):
    text = subprocess.run([sample], check=True, stdout=subprocess.PIPE, timeout=30).stdout.decode()
    try:
        families, samples = check_exposition(text)
    except ValueError as e:
        return [f"/metrics (metrics_sample): {e}"]
    docs = documented(repo)
    problems = []
    for name, kind in sorted(families.items()):
        if name not in docs:
            problems.append(f"{name} ({kind}) is rendered but not in docs/metrics.md")
        elif docs[name] != kind:
            problems.append(f"{name}: rendered as a {kind}, documented as a {docs[name]}")
    for name in sorted(set(docs) - set(families)):
        problems.append(f"{name} is in docs/metrics.md but metrics_sample does not render it")
    print(f"{len(families)} families, {len(samples)} series, all documented")
    return problems


def metric_names(expr):
    """The metric names an expression reads: identifiers outside label matchers and strings
    that are not PromQL words or durations."""
    expr = re.sub(r'"(\\.|[^"\\])*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"(?<![a-zA-Z_:])[0-9.]+([eE][+-]?[0-9]+)?", "", expr)  # numbers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = m.group(0)
        if word not in PROMQL and not re.fullmatch(r"[0-9]+[smhdwy]", word):
            names.add(word)
    return names


def dashboard(repo):
    docs = documented(repo)
    with open(os.path.join(repo, "config", "deploy", "grafana", "magline.json")) as f:
        board = json.load(f)
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(board)
    problems = []
    used = set()
    for expr in exprs:
        for name in metric_names(expr):
            used.add(name)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            ok = name in docs or (base in docs and docs[base] == "histogram")
            if not ok:
                problems.append(f"dashboard expression {expr!r}: {name} is not in docs/metrics.md")
    if not exprs:
        problems.append("the dashboard has no expressions")
    print(f"{len(exprs)} expressions over {len(used)} metrics: {' '.join(sorted(used))}")
    return problems


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "exposition":
        problems = exposition(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "dashboard":
        problems = dashboard(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
