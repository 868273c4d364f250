#!/usr/bin/env python3
"""Runs some of the chart's Grafana panel queries against a real Prometheus.

Usage: hack/dashboard-queries.py --prometheus URL --window 3m BOARD/PANEL ...
  e.g. hack/dashboard-queries.py --prometheus http://127.0.0.1:9090 --window 3m \\
         "cost/Cost per hour by team" "webhook/Reviews by endpoint and verdict"

For each BOARD/PANEL (BOARD is a file name in charts/gpu-autoscaler/dashboards
without .json, PANEL a panel title), every target's expression is expanded as
Grafana would with "All" selected: $job becomes the alternation of the jobs
its variable query (label_values(up{job=~R}, job)) finds, and $__rate_interval
becomes --window. With --totals, rate(COUNTER[...]) and increase(COUNTER[...])
become COUNTER, so counters read as their totals since each program started
(exact, where increase() would extrapolate and miss a series' first event). Each expression run and its series
are printed (--nonzero: only series whose value is not 0). Exits 1 when a panel
is unknown or Prometheus fails.
"""
import argparse
import json
import os
import re
import sys
import urllib.parse
import urllib.request

DASHBOARDS = os.path.join(os.path.dirname(__file__), "..", "charts", "gpu-autoscaler", "dashboards")


def query(prometheus, expr):
    url = prometheus.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (expr, body.get("error", "query failed")))
    data = body["data"]
    if data["resultType"] == "scalar":
        return [({}, data["result"][1])]
    return [(s["metric"], s["value"][1]) for s in data["result"]]


def job_alternation(prometheus, variable_query):
    m = re.fullmatch(r"label_values\((.*),\s*job\)", variable_query)
    if not m:
        return ""
    return "|".join(sorted({labels.get("job", "") for labels, _ in query(prometheus, m.group(1))}))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--window", default="5m", help="what $__rate_interval becomes")
    parser.add_argument("--totals", action="store_true",
                        help="rate/increase(COUNTER[...]) become COUNTER: totals since start")
    parser.add_argument("--nonzero", action="store_true", help="print only non-zero series")
    parser.add_argument("panels", nargs="+", metavar="BOARD/PANEL")
    args = parser.parse_args()

    for spec in args.panels:
        board_name, _, title = spec.partition("/")
        with open(os.path.join(DASHBOARDS, board_name + ".json"), encoding="utf-8") as f:
            board = json.load(f)
        panels = [p for p in board["panels"] if p.get("title") == title]
        if not panels:
            print("no panel %r on dashboard %s" % (title, board_name), file=sys.stderr)
            return 1
        jobs = ""
        for var in board["templating"]["list"]:
            if var.get("name") == "job":
                jobs = job_alternation(args.prometheus, var["query"]["query"])
        print("%s / %s   (job=~\"%s\")" % (board_name, title, jobs))
        for target in panels[0].get("targets", []):
            expr = (target["expr"].replace("$__rate_interval", args.window)
                    .replace("${datasource}", "").replace("$job", jobs))
            if args.totals:
                expr = re.sub(r"\b(?:rate|increase)\(([^\[\]()]+)\[[^\]]*\]\)", r"\1", expr)
            print("  " + re.sub(r'\{job=~"[^"]*"', "{job=~\"$job\"", expr))
            series = query(args.prometheus, expr)
            if args.nonzero:
                series = [s for s in series if float(s[1]) != 0]
            if not series:
                print("    (no series)")
            for labels, value in sorted(series, key=lambda s: sorted(s[0].items())):
                shown = ", ".join("%s=%s" % kv for kv in sorted(labels.items())) or "value"
                print("    %-58s %.4g" % (shown, float(value)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, ValueError) as e:
        print("dashboard-queries: %s" % e, file=sys.stderr)
        sys.exit(1)
