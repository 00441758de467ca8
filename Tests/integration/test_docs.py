"""The operator docs keep up with the code: every access-log reason, every JSON log field and
every metric that /metrics serves (or that Metrics.swift can write) is explained in
docs/logs-and-metrics.md, and the Prometheus recipe of docs/operations.md is valid YAML whose
rules use only metrics that exist."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "logs-and-metrics.md").read_text()


def test_every_reason_in_the_code_is_documented():
    source = (ROOT / "Sources" / "GatehouseCore" / "Reason.swift").read_text()
    enum = source.split("public enum Reason", 1)[1].split("\n}", 1)[0]
    reasons = re.findall(r'case \w+ = "([a-z_]+)"', enum)
    assert len(reasons) > 30
    missing = [r for r in reasons if f"| `{r}` |" not in DOC]
    assert not missing, f"reasons missing from docs/logs-and-metrics.md: {missing}"


def test_every_metric_on_the_admin_listener_is_documented(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo},
                         routes=[{"name": "all", "match": {"path": "/**"}, "upstream": "api", "auth": "none"}])
    text = urllib.request.urlopen(gw.admin_url("/metrics"), timeout=5).read().decode()
    names = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    assert names
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"metrics missing from docs/logs-and-metrics.md: {missing}"


METRICS_SOURCE = (ROOT / "Sources" / "GatehouseServer" / "Metrics.swift").read_text()


def test_every_metric_the_code_can_write_is_documented():
    # Also those a short test run never shows (a histogram with no observation yet, a counter
    # another helper's feature increments).
    names = set(re.findall(r"# TYPE (gatehouse_\w+) ", METRICS_SOURCE))
    assert len(names) >= 14, names
    missing = sorted(n for n in names if f"| `{n}` |" not in DOC)
    assert not missing, f"metrics missing from docs/logs-and-metrics.md: {missing}"


def test_every_json_log_field_is_documented():
    source = (ROOT / "Sources" / "GatehouseCore" / "AccessLogRecord.swift").read_text()
    # The fields are written by writeJSON (appendJSON reserves the memory and calls it).
    body = source.split("func writeJSON", 1)[1].split("\n    }\n", 1)[0]
    fields = re.findall(r'"([a-z_]+)":', body)
    assert {"ts", "request_id", "trace_id", "reason", "shadow"} <= set(fields), fields
    missing = [f for f in fields if f"| `{f}` |" not in DOC]
    assert not missing, f"log fields missing from docs/logs-and-metrics.md: {missing}"


def test_the_prometheus_recipe_is_valid_and_uses_real_metrics():
    ops = (ROOT / "docs" / "operations.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", ops, re.S)]
    scrape = next(b for b in blocks if isinstance(b, dict) and "scrape_configs" in b)
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    rules = next(b for b in blocks if isinstance(b, dict) and "groups" in b)["groups"][0]["rules"]
    assert len(rules) >= 3
    documented = set(re.findall(r"\| `(gatehouse_\w+)` \|", DOC))
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
        used = set(re.findall(r"gatehouse_\w+", rule["expr"]))
        assert used, rule
        base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        assert base <= documented, (rule["alert"], base - documented)
