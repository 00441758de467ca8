"""Tracing and the operator metrics (SPEC §15.3) against the real binary: a valid W3C
`traceparent` is kept and forwarded as received, anything else is replaced by a new valid one;
`trace_id` is on every JSON access-log line (refusals and evhttp's own errors too) and never in
the combined format; `/metrics` has request durations by route, the last successful reload
time and the build version.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request

import pytest

from support import pairs_all, pairs_get, raw_request, wait_until

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

ROUTES = [
    {"name": "open", "match": {"path": "/open/**"}, "upstream": "api", "auth": "none"},
]


@pytest.fixture
def gw(gateway_factory, echo):
    return gateway_factory(upstreams={"api": echo}, routes=ROUTES)


def forwarded(gw, echo, headers, target="/open/x"):
    rid = f"tr-{time.monotonic_ns()}"
    resp = raw_request(gw.port, "GET", target, [("X-Request-Id", rid)] + headers)
    assert resp.status == 200, resp
    with echo.lock:
        record = next(r for r in echo.requests if pairs_get(r["headers"], "X-Request-Id") == rid)
    return record, gw.wait_log_record(rid)


def test_a_valid_traceparent_is_kept_forwarded_and_logged(gw, echo):
    record, log = forwarded(gw, echo, [("traceparent", VALID), ("tracestate", "vendor=1")])
    assert pairs_all(record["headers"], "traceparent") == [VALID]
    assert pairs_get(record["headers"], "tracestate") == "vendor=1"
    assert log["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("value", [
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",   # uppercase
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   # another version
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   # zero parent id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  # too long
    "garbage",
    "",
])
def test_an_invalid_traceparent_is_replaced_by_a_new_valid_one(gw, echo, value):
    record, log = forwarded(gw, echo, [("traceparent", value)])
    sent = pairs_all(record["headers"], "traceparent")
    assert len(sent) == 1 and sent[0] != value
    m = TRACEPARENT.match(sent[0])
    assert m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16, sent
    assert log["trace_id"] == m.group(1)


def test_with_two_traceparent_fields_the_upstream_still_gets_one(gw, echo):
    other = "00-11111111111111111111111111111111-2222222222222222-00"
    record, log = forwarded(gw, echo, [("traceparent", VALID), ("Traceparent", other)])
    assert pairs_all(record["headers"], "traceparent") == [VALID]
    assert log["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    record, log = forwarded(gw, echo, [("traceparent", "bogus"), ("traceparent", VALID)])
    sent = pairs_all(record["headers"], "traceparent")
    assert len(sent) == 1 and sent[0] != VALID and TRACEPARENT.match(sent[0])


def test_without_a_traceparent_each_request_gets_its_own_trace(gw, echo):
    ids = set()
    for _ in range(20):
        record, log = forwarded(gw, echo, [])
        m = TRACEPARENT.match(pairs_get(record["headers"], "traceparent"))
        assert m and log["trace_id"] == m.group(1)
        ids.add(m.group(1))
    assert len(ids) == 20


def test_every_log_line_has_a_trace_id_refusals_and_evhttp_errors_too(gateway_factory, echo, helpers):
    gw = gateway_factory(upstreams={"api": echo}, routes=ROUTES + [
        {"name": "closed", "match": {"path": "/closed/**"}, "upstream": "api"}],
        server={"max_header_bytes": 4096})
    resp = raw_request(gw.port, "GET", "/closed/x", [("X-Request-Id", "t-401"), ("traceparent", VALID)])
    assert resp.status == 401
    assert gw.wait_log_record("t-401")["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert raw_request(gw.port, "GET", "/nowhere", [("X-Request-Id", "t-404")]).status == 404
    assert re.fullmatch(r"[0-9a-f]{32}", gw.wait_log_record("t-404")["trace_id"])
    assert raw_request(gw.port, "GET", "/open/a%2Fb", [("X-Request-Id", "t-400")]).status == 400
    assert re.fullmatch(r"[0-9a-f]{32}", gw.wait_log_record("t-400")["trace_id"])
    big = raw_request(gw.port, "GET", "/open/x", [("X-Big", "a" * 8000)])
    assert big.status == 431
    def lines():
        return [r for r in gw.log_records() if r["status"] == 431]
    rec = wait_until(lines, 3, message="the 431 line")[0]
    assert re.fullmatch(r"[0-9a-f]{32}", rec["trace_id"])
    assert all("trace_id" in r for r in gw.log_records())


def test_the_combined_format_is_unchanged(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=ROUTES, access_log_format="combined")
    resp = raw_request(gw.port, "GET", "/open/x?q=1", [("X-Request-Id", "comb-1"), ("traceparent", VALID)])
    assert resp.status == 200
    line = wait_until(lambda: next((l for l in gw.log_lines() if l.endswith(" comb-1")), None), 3, message="line")
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /open/x\?q=1 HTTP/1\.1" 200 \d+ "-" "-" comb-1', line), line
    assert "4bf92f" not in line


def metrics(gw) -> str:
    return urllib.request.urlopen(gw.admin_url("/metrics"), timeout=5).read().decode()


def test_request_durations_by_route_build_info_and_reload_time(gw, echo, gatehouse_bin):
    before = time.time()
    for _ in range(3):
        forwarded(gw, echo, [])
    assert raw_request(gw.port, "GET", "/nowhere", [("X-Request-Id", "m-404")]).status == 404
    gw.wait_log_record("m-404")
    text = metrics(gw)
    assert re.search(r'^gatehouse_request_duration_seconds_count\{route="open"\} 3$', text, re.M), text
    assert re.search(r'^gatehouse_request_duration_seconds_bucket\{route="open",le="\+Inf"\} 3$', text, re.M)
    assert re.search(r'^gatehouse_request_duration_seconds_count\{route=""\} 1$', text, re.M)
    assert "# TYPE gatehouse_request_duration_seconds histogram" in text
    version = __import__("subprocess").run([gatehouse_bin, "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert re.search(r'^gatehouse_build_info\{version="%s"\} 1$' % re.escape(version), text, re.M), text

    started = float(re.search(r"^gatehouse_config_last_reload_success_timestamp_seconds (\S+)$", text, re.M).group(1))
    assert before - 60 < started <= time.time() + 1
    time.sleep(1.1)
    gw.send_signal(signal.SIGHUP)
    def reloaded():
        value = float(re.search(r"^gatehouse_config_last_reload_success_timestamp_seconds (\S+)$", metrics(gw), re.M).group(1))
        return value if value > started else None
    wait_until(reloaded, 10, interval=0.1, message="the reload time to move")
