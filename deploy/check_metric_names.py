#!/usr/bin/env python3
"""Checks that every query of the Grafana dashboard and every expression of
the Prometheus rules names only metrics that a live slotgate exports.

    check_metric_names.py METRICS_TEXT DASHBOARD_JSON RULES_YAML
    check_metric_names.py --self-test

METRICS_TEXT is a scrape of a real server's /metrics (deploy/test.sh starts
the binary and makes one). A name counts as exported when a sample of it is
in that text, so the scraped server must have had something to count (an
org, calls, a refusal). The rules may also use the names their own `record:`
rules define. Every expression must name at least one metric. Exits 1,
naming each expression and unknown name, when a check fails.
"""

import json
import re
import sys

import yaml

# PromQL words that look like names but are not metrics.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr):
    """The metric names an expression selects (PromQL, with Grafana's $variables)."""
    # label_values(METRIC_SELECTOR, LABEL): the label is not a metric.
    expr = re.sub(r"label_values\((.*),\s*\w+\s*\)", r"\1", expr, flags=re.S)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    # Label lists of aggregations and vector matching.
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr
    )
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables
    expr = re.sub(r"\boffset\s+-?[0-9smhdwy]+", " ", expr)
    # Whole words only (a function's name is not cut short to a "metric").
    names = re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", expr)
    return {n for n in names if n.lower() not in KEYWORDS}


# What metric_names must find, checked before every run (--self-test alone).
EXAMPLES = {
    'sum by (org) (rate(a_total{org=~"$org"}[5m]))': {"a_total"},
    "max by (org) (b) >= bool max by (org) (c) unless max by (org) (c) == 0": {"b", "c"},
    "clamp_max(sum_over_time((d >= bool e)[1h:1m]), 60)": {"d", "e"},
    "histogram_quantile(0.9, sum by (le) (rate(f_bucket[$__rate_interval])))": {"f_bucket"},
    'label_values(g{job=~"$job"}, instance)': {"g"},
    "max by (job) (h) < 1 or absent(h)": {"h"},
    "x:y:rate5m > 0.1 and on (org) increase(i[15m] offset 1h) >= 5": {"x:y:rate5m", "i"},
    "vector(1)": set(),
}


def self_test():
    for expr, want in EXAMPLES.items():
        got = metric_names(expr)
        assert got == want, f"metric_names({expr!r}) = {sorted(got)}, not {sorted(want)}"


def exported(metrics_text):
    """The names of every sample in a Prometheus text exposition."""
    names = set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][\w:]*", line).group(0))
    return names


def dashboard_queries(dashboard):
    """(where, expression) for every panel target and template variable."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            for t in node.get("targets", []):
                found.append((f"panel {title!r} {t.get('refId', '')}", t["expr"]))
            for child in node.get("panels", []):
                walk(child, where)
        elif isinstance(node, list):
            for child in node:
                walk(child, where)

    walk(dashboard.get("panels", []), "")
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            found.append((f"variable ${v['name']}", q))
    return found


def rule_expressions(rules):
    """(where, expression) for every rule, and the names the rules record."""
    found, recorded = [], set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            found.append((f"rule {name}", rule["expr"]))
            if "record" in rule:
                recorded.add(rule["record"])
    return found, recorded


def main():
    self_test()
    if sys.argv[1:] == ["--self-test"]:
        print(f"metric name extraction: {len(EXAMPLES)} examples pass")
        return
    metrics_path, dashboard_path, rules_path = sys.argv[1:4]
    with open(metrics_path) as f:
        have = exported(f.read())
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    rule_exprs, recorded = rule_expressions(rules)
    checks = [(w, e, have) for w, e in dashboard_queries(dashboard)]
    checks += [(w, e, have | recorded) for w, e in rule_exprs]
    failures, used = [], set()
    for where, expr, known in checks:
        names = metric_names(expr)
        used |= names
        if not names:
            failures.append(f"{where}: names no metric: {expr!r}")
        for name in sorted(names - known):
            failures.append(f"{where}: {name} is not exported by the server")
    print(
        f"{len(checks)} expressions ({len(checks) - len(rule_exprs)} in the dashboard, "
        f"{len(rule_exprs)} in the rules) name {len(used)} metrics; "
        f"the server exports {len(have)} sample names"
    )
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in have}
    unused = sorted(
        f for f in families if not any(u == f or u.startswith(f + "_") for u in used)
    )
    if unused:
        print("exported but not used by the dashboard or the rules: " + ", ".join(unused))
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
