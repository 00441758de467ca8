"""The operator docs keep up with the code: every access-log reason and every metric that
/metrics serves is explained in docs/logs-and-metrics.md."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

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
