#!/usr/bin/env python3
"""The strict exposition-format checker (tests/e2e/prometheus.py) refuses each thing it is meant
to refuse, and takes a well-formed text: without this, a checker that accepts everything would
pass every scrape."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from prometheus import check_exposition  # noqa: E402

GOOD = """# HELP a_total A.
# TYPE a_total counter
a_total{worker="0",reason="x \\"q\\" \\\\ \\n"} 1
a_total{worker="1",reason="x"} 2 1700000000000
# HELP g_bytes G.
# TYPE g_bytes gauge
g_bytes NaN
# HELP h_seconds H.
# TYPE h_seconds histogram
h_seconds_bucket{port="p",le="0.5"} 1
h_seconds_bucket{port="p",le="+Inf"} 2
h_seconds_sum{port="p"} 3.5
h_seconds_count{port="p"} 2
"""

H = "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
BAD = {
    "no TYPE": "# HELP x_total X.\nx_total 1\n",
    "no HELP": "# TYPE x_total counter\nx_total 1\n",
    "HELP twice": "# HELP x_total X.\n# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n",
    "TYPE twice": "# HELP x_total X.\n# TYPE x_total counter\n# TYPE x_total counter\nx_total 1\n",
    "TYPE after samples": "# HELP x X.\n# TYPE x gauge\nx 1\n# HELP y Y.\n# TYPE y gauge\ny 1\n"
                          "# TYPE x gauge\n",
    "family split": "# HELP x X.\n# TYPE x gauge\nx{a=\"1\"} 1\n# HELP y Y.\n# TYPE y gauge\n"
                    "y 1\nx{a=\"2\"} 1\n",
    "counter without _total": "# HELP x X.\n# TYPE x counter\nx 1\n",
    "gauge with _total": "# HELP x_total X.\n# TYPE x_total gauge\nx_total 1\n",
    "series twice": "# HELP x X.\n# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",
    "bad metric name": "# HELP 1x X.\n# TYPE 1x gauge\n1x 1\n",
    "bad label name": "# HELP x X.\n# TYPE x gauge\nx{a-b=\"1\"} 1\n",
    "reserved label name": "# HELP x X.\n# TYPE x gauge\nx{__a=\"1\"} 1\n",
    "repeated label": "# HELP x X.\n# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
    "unquoted label": "# HELP x X.\n# TYPE x gauge\nx{a=1} 1\n",
    "unknown escape": "# HELP x X.\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",
    "unclosed labels": "# HELP x X.\n# TYPE x gauge\nx{a=\"1\" 1\n",
    "bad value": "# HELP x X.\n# TYPE x gauge\nx one\n",
    "unknown type": "# HELP x X.\n# TYPE x meter\nx 1\n",
    "negative counter": "# HELP x_total X.\n# TYPE x_total counter\nx_total -1\n",
    "milliseconds": "# HELP x_milliseconds X.\n# TYPE x_milliseconds gauge\nx_milliseconds 1\n",
    "buckets not cumulative": H + "h_seconds_bucket{le=\"1\"} 2\nh_seconds_bucket{le=\"+Inf\"} 1\n"
                              "h_seconds_sum 1\nh_seconds_count 1\n",
    "no +Inf bucket": H + "h_seconds_bucket{le=\"1\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n",
    "+Inf is not _count": H + "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1\n"
                          "h_seconds_count 2\n",
    "le out of order": H + "h_seconds_bucket{le=\"2\"} 1\nh_seconds_bucket{le=\"1\"} 1\n"
                       "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n",
    "no _sum": H + "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_count 1\n",
    "bucket without le": H + "h_seconds_bucket 1\nh_seconds_sum 1\nh_seconds_count 1\n",
}


def main():
    failures = []
    families, samples = check_exposition(GOOD)
    if families != {"a_total": "counter", "g_bytes": "gauge", "h_seconds": "histogram"}:
        failures.append(f"good text: families {families}")
    if samples[("a_total", (("reason", 'x "q" \\ \n'), ("worker", "0")))] != 1:
        failures.append("good text: escaped label value misread")
    for what, text in BAD.items():
        try:
            check_exposition(text)
            failures.append(f"{what}: accepted")
        except ValueError:
            pass
    for f in failures:
        print("FAIL", f)
    print(f"{len(BAD) + 1 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
