"""Running the gateway (SPEC §1 signals, §8 admin, §9 access log): reload, log reopen, graceful
stop, the access-log line in both formats, and the admin listener."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time

import pytest
import requests

from support import (ACCESS_LOG_FIELDS, LOOPBACK, assert_uniform_requests, free_port, port_accepts, raw_request, read_response,
                     wait_until)

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}
API = {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def get(gw, path, **kw):
    kw.setdefault("timeout", 5)
    return requests.get(gw.url(path), **kw)


# ---------------------------------------------------------------------------------------------
# SIGHUP

def test_sighup_with_a_good_config_adds_the_new_route_and_removes_the_old(gateway_factory, upstreams):
    a, b = upstreams.echo("a"), upstreams.echo("b")
    old = {"name": "old", "match": {"path": "/old/**"}, "upstream": "api", "auth": "none"}
    gw = gateway_factory(upstreams={"api": a}, routes=[old])
    assert get(gw, "/old/x").json()["server"] == "a"
    new = {"name": "new", "match": {"path": "/new/**"}, "upstream": "api", "auth": "none"}
    gw.reload(gw.make_config(upstreams={"api": b}, routes=[new]))
    wait_until(lambda: get(gw, "/new/x").status_code == 200, 5, message="the new route after SIGHUP")
    r = get(gw, "/new/x")
    assert r.json()["server"] == "b"  # the reloaded upstream targets too
    assert_uniform_requests(get(gw, "/old/x"), 404, "not_found")
    assert gw.running()


@pytest.mark.parametrize("bad_text,needle", [
    ("routez: []\n", "routez"),
    ("server: [unclosed\n", "error"),
    ("upstreams:\n  api:\n    targets: [\"http://127.0.0.1:1\"]\nroutes:\n  - name: r\n    match: { path: \"/x/**\" }\n"
     "    upstream: nope\n", "nope"),
], ids=["unknown-key", "yaml-syntax", "unknown-upstream"])
def test_sighup_with_a_bad_config_keeps_the_old_one_serving_and_logs_why(gateway_factory, echo, bad_text, needle):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    assert get(gw, "/docs/x").status_code == 200
    before = len(gw.stderr())
    good = gw.config_path.read_text()
    gw.reload(bad_text)
    wait_until(lambda: needle in gw.stderr()[before:], 5, message=f"{needle!r} logged after a bad reload")
    gw.wait_stderr("reload rejected", start=before)  # the reload's outcome, not a pause
    assert gw.running()
    for _ in range(5):
        assert get(gw, "/docs/x").status_code == 200
    assert_uniform_requests(get(gw, "/x/y"), 404, "not_found")
    # A later good reload still works (the bad one did not wedge reloading).
    gw.reload(good.replace('"/docs/**"', '"/docs2/**"'))
    wait_until(lambda: get(gw, "/docs2/x").status_code == 200, 5, message="a good reload after a bad one")


def test_sighup_with_the_config_file_gone_keeps_serving_and_counts_the_failure(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    before = len(gw.stderr())
    gw.config_path.unlink()
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: "error" in gw.stderr()[before:], 5, message="the failed reload logged")
    assert gw.running()
    assert get(gw, "/docs/x").status_code == 200
    text = requests.get(gw.admin_url("/metrics"), timeout=5).text
    failures = [l for l in text.splitlines() if not l.startswith("#") and "reload" in l and "fail" in l]
    assert failures and float(failures[0].rsplit(" ", 1)[1]) >= 1, failures


def test_request_in_flight_during_a_reload_completes(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    results = {}
    t = _in_flight(gw, "/docs/slow?gh_sleep=0.8", results)
    assert echo.received.wait(3)
    other = {"name": "other", "match": {"path": "/other/**"}, "upstream": "api", "auth": "none"}
    gw.reload(gw.make_config(routes=[other]))
    wait_until(lambda: get(gw, "/other/x").status_code == 200, 5, message="the reloaded route")
    t.join(5)
    assert "error" not in results, results.get("error")
    assert results["response"].status_code == 200
    assert results["response"].json()["path"] == "/docs/slow"


def test_sighup_can_move_the_access_log(gateway_factory, echo, tmp_path):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    first = get(gw, "/docs/one").headers["X-Request-Id"]
    gw.wait_log_record(first)
    moved = tmp_path / "moved-access.log"
    config = gw.make_config()
    config["access_log"]["path"] = str(moved)
    gw.reload(config)
    wait_until(lambda: "reloaded" in gw.stderr() or moved.exists(), 5, message="the reload")

    def logged_in_moved():
        rid = get(gw, "/docs/two").headers["X-Request-Id"]
        time.sleep(0.15)
        return rid in (moved.read_text() if moved.exists() else "")
    wait_until(logged_in_moved, 5, interval=0.05, message="lines in the new access-log file")


def test_sighup_changes_limits_for_new_requests(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"max_body_bytes": "1KiB"})
    assert requests.post(gw.url("/docs/up"), data=b"x" * 2000, timeout=5).status_code == 413
    gw.reload(gw.make_config(server={"max_body_bytes": "4KiB"}))
    wait_until(lambda: requests.post(gw.url("/docs/up"), data=b"x" * 2000, timeout=5).status_code == 200, 5,
               message="max_body_bytes raised by reload")


# ---------------------------------------------------------------------------------------------
# SIGTERM / SIGINT

def _in_flight(gw, path, results):
    def run():
        try:
            results["response"] = requests.get(gw.url(path), timeout=15)
        except Exception as e:  # noqa: BLE001 - reported by the test
            results["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_sigterm_lets_the_request_in_flight_finish_refuses_new_connections_and_exits_0(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"shutdown_grace": "5s"})
    results = {}
    t = _in_flight(gw, "/docs/slow?gh_sleep=1", results)
    assert echo.received.wait(3)
    sent = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    wait_until(lambda: not port_accepts(gw.port, timeout=0.1), 1.0, message="the listener closed after SIGTERM")
    assert "response" not in results, "the in-flight request was still running when new connections were refused"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, gw.port), timeout=1).close()
    t.join(5)
    assert "error" not in results, results.get("error")
    r = results["response"]
    assert r.status_code == 200 and r.json()["path"] == "/docs/slow"
    assert gw.wait_exit(5) == 0
    assert time.monotonic() - sent < 5
    # Its access-log line was written before the process ended.
    assert any(rec["request_id"] == r.headers["X-Request-Id"] for rec in gw.log_records())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_gateway_stops_promptly_with_exit_0(gateway_factory, echo, sig):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"shutdown_grace": "10s"})
    assert get(gw, "/docs/x").status_code == 200
    started = time.monotonic()
    gw.send_signal(sig)
    assert gw.wait_exit(5) == 0
    assert time.monotonic() - started < 2


def test_idle_keep_alive_client_connection_does_not_hold_the_stop(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"shutdown_grace": "10s"})
    with requests.Session() as s:
        assert s.get(gw.url("/docs/ka"), timeout=5).status_code == 200  # the connection stays open, idle
        started = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        assert gw.wait_exit(5) == 0
        assert time.monotonic() - started < 2


def test_request_longer_than_shutdown_grace_is_cut_and_the_process_exits_0(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"shutdown_grace": "1s"})
    results = {}
    t = _in_flight(gw, "/docs/too-slow?gh_sleep=8", results)
    assert echo.received.wait(3)
    started = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    assert gw.wait_exit(4) == 0
    assert 0.8 <= time.monotonic() - started < 3
    t.join(3)


# ---------------------------------------------------------------------------------------------
# Client timeouts

def test_client_that_stalls_inside_its_request_head_is_disconnected_after_read_timeout(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"read_timeout": "500ms"})
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"GET /docs/x HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 3
    assert echo.request_count == 0


def test_idle_keep_alive_client_connection_is_closed_after_read_timeout(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"read_timeout": "500ms"})
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"GET /docs/x HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = s.makefile("rb")
        assert read_response(reader).status == 200
        started = time.monotonic()
        try:
            assert reader.read() == b""
        except ConnectionResetError:
            pass
        assert 0.3 < time.monotonic() - started < 3


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_any_worker_count_serves_and_two_listen_addresses_both_serve(gateway_factory, echo, workers):
    second = free_port()
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"workers": workers})
    config = gw.make_config()
    config["server"]["listen"].append(f"127.0.0.1:{second}")
    gw.kill()
    gw.write_config(config)
    gw.start()
    wait_until(lambda: port_accepts(second), 5, message="the second listen address")
    for port in (gw.port, second):
        for i in range(6):
            r = requests.get(f"http://127.0.0.1:{port}/docs/w/{i}", timeout=5)
            assert r.status_code == 200


# ---------------------------------------------------------------------------------------------
# SIGUSR1

def test_sigusr1_reopens_the_access_log_and_no_line_is_lost(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    ids = []

    def burst(tag, n):
        for i in range(n):
            rid = f"{tag}-{i}"
            assert get(gw, f"/docs/{tag}/{i}", headers={"X-Request-Id": rid}).status_code == 200
            ids.append(rid)

    burst("before", 5)
    wait_until(lambda: len(gw.log_lines()) == 5, 3, message="5 lines in the access log")
    rotated = gw.access_log.with_name(gw.access_log.name + ".1")
    gw.access_log.rename(rotated)
    burst("between", 5)  # still written to the renamed file: its descriptor is open
    gw.send_signal(signal.SIGUSR1)
    wait_until(lambda: gw.access_log.exists(), 3, message="a new access log file after SIGUSR1")
    burst("after", 5)

    def all_ids():
        recs = gw.log_records(rotated) + gw.log_records(gw.access_log)
        return [r["request_id"] for r in recs]
    wait_until(lambda: len(all_ids()) >= 15, 3, message="all 15 lines across both files")
    got = all_ids()
    assert sorted(got) == sorted(ids), "every request logged exactly once"
    new_ids = [r["request_id"] for r in gw.log_records(gw.access_log)]
    assert [i for i in ids if i.startswith("after")] == new_ids[-5:]
    assert not any(i.startswith("before") for i in new_ids)
    assert gw.running()


def test_sigusr1_with_the_access_log_on_stdout_keeps_logging(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_to_stdout=True)
    before = len(gw.stderr())
    gw.send_signal(signal.SIGUSR1)
    gw.wait_stderr("reopening log files", start=before)
    rid = get(gw, "/docs/after-usr1").headers["X-Request-Id"]
    wait_until(lambda: rid in gw.stdout(), 3, message="a line on stdout after SIGUSR1")
    assert gw.running()


# ---------------------------------------------------------------------------------------------
# The access log (SPEC §9)

def check_common_fields(rec, response, method, user_agent):
    missing = [k for k in ACCESS_LOG_FIELDS if k not in rec]
    assert not missing, f"missing access-log fields {missing} in {rec}"
    assert TS_RE.match(rec["ts"]), rec["ts"]
    assert rec["request_id"] == response.header("X-Request-Id")
    assert rec["client"] == "127.0.0.1"
    assert rec["method"] == method
    assert rec["status"] == response.status
    assert rec["bytes_sent"] == len(response.body)
    assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0
    assert rec["user_agent"] == user_agent


@pytest.mark.parametrize("target,status,expect", [
    ("/docs/a/../b//c?x=1&y=2", 200, {"path": "/docs/b/c", "route": "docs", "upstream": "api", "upstream_status": 200,
                                      "auth": "none", "subject": None, "decision": "allow", "reason": None}),
    ("/nowhere?x=1", 404, {"path": "/nowhere", "route": None, "upstream": None, "upstream_status": None,
                           "upstream_ms": None, "auth": "none", "subject": None, "decision": "deny", "reason": "no_route"}),
    ("/api/users?x=1", 401, {"path": "/api/users", "route": "api", "upstream_status": None, "upstream_ms": None,
                             "auth": "none", "subject": None, "decision": "deny", "reason": "missing_credentials"}),
    ("/docs/a%2Fb?x=1", 400, {"auth": "none", "subject": None, "route": None, "upstream_status": None,
                              "reason": "path_rejected", "decision": ("deny", "error")}),
], ids=["allow", "no-route-404", "missing-credentials-401", "path-rejected-400"])
def test_access_log_json_line_has_every_field_and_the_decision(gateway_factory, echo, target, status, expect):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS, API])
    r = raw_request(gw.port, "GET", target, headers=[("User-Agent", "it-agent/2.0")])
    assert r.status == status
    rec = gw.wait_log_record(r.header("X-Request-Id"))
    check_common_fields(rec, r, "GET", "it-agent/2.0")
    for key, value in expect.items():
        if isinstance(value, tuple):
            assert rec[key] in value, (key, rec[key])
        else:
            assert rec[key] == value, (key, rec[key], rec)
    if status == 200:
        assert isinstance(rec["upstream_ms"], (int, float)) and 0 <= rec["upstream_ms"] <= rec["duration_ms"]
    assert "?" not in (rec["path"] or "")


def test_access_log_records_the_attempted_method_for_a_presented_bearer_token(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS, API])
    r = get(gw, "/api/x", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401
    rec = gw.wait_log_record(r.headers["X-Request-Id"])
    assert rec["auth"] == "jwt" and rec["decision"] == "deny" and rec["reason"]


def test_credentials_never_appear_in_the_access_log(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS, API])
    secrets = ["Bearer-SECRET-TOKEN-1", "COOKIE-SECRET-2", "BASIC-SECRET-3"]
    ids = [
        get(gw, "/api/x", headers={"Authorization": f"Bearer {secrets[0]}"}).headers["X-Request-Id"],
        get(gw, "/docs/x", headers={"Cookie": f"gatehouse_session={secrets[1]}"}).headers["X-Request-Id"],
        get(gw, "/docs/x", headers={"Authorization": f"Basic {secrets[2]}"}).headers["X-Request-Id"],
    ]
    for rid in ids:
        gw.wait_log_record(rid)
    text = gw.access_log.read_text() + gw.stderr() + gw.stdout()
    for s in secrets:
        assert s not in text


def test_access_log_combined_format_line_shape(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format="combined")
    raw = raw_request(gw.port, "GET", "/docs/a/../b?x=1", headers=[
        ("User-Agent", 'agent "quoted"/1.0'), ("Referer", "http://ref.example/page")])
    assert raw.status == 200
    rid = raw.header("X-Request-Id")
    line = wait_until(lambda: next((l for l in gw.log_lines() if l.endswith(" " + rid)), None), 3,
                      message="the combined line")
    m = re.fullmatch(r'(\S+) - (\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) '
                     r'"([^"]*)" "([^"]*)" (\S+)', line)
    assert m, line
    client, user, _, request_line, status, size, referer, agent, logged_id = m.groups()
    assert client == "127.0.0.1" and user == "-"
    assert request_line == "GET /docs/a/../b?x=1 HTTP/1.1"  # as received
    assert status == "200" and int(size) == len(raw.body)
    assert referer == "http://ref.example/page"
    assert '"' not in agent and agent.startswith("agent ")
    assert logged_id == rid
    r404 = raw_request(gw.port, "GET", "/nope")
    rid404 = r404.header("X-Request-Id")
    line404 = wait_until(lambda: next((l for l in gw.log_lines() if l.endswith(" " + rid404)), None), 3,
                         message="the 404 combined line")
    assert '"GET /nope HTTP/1.1" 404 ' in line404 and '"-" "-"' in line404


def test_access_log_to_stdout(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_to_stdout=True)
    rid = get(gw, "/docs/out").headers["X-Request-Id"]
    wait_until(lambda: rid in gw.stdout(), 3, message="the access-log line on stdout")
    line = next(l for l in gw.stdout().splitlines() if rid in l)
    assert json.loads(line)["path"] == "/docs/out"
    assert rid not in gw.stderr()


def test_access_log_line_appears_quickly(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    rid = get(gw, "/docs/quick").headers["X-Request-Id"]
    started = time.monotonic()
    gw.wait_log_record(rid, timeout=2)
    assert time.monotonic() - started < 1.0  # written by a background thread within ~100 ms


# ---------------------------------------------------------------------------------------------
# Admin (SPEC §8)

def test_admin_healthz_readyz_and_metrics(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS, API])
    for _ in range(3):
        assert get(gw, "/docs/m").status_code == 200
    assert get(gw, "/nope").status_code == 404
    assert get(gw, "/api/x").status_code == 401
    assert requests.get(gw.admin_url("/healthz"), timeout=5).status_code == 200
    assert requests.get(gw.admin_url("/readyz"), timeout=5).status_code == 200
    m = requests.get(gw.admin_url("/metrics"), timeout=5)
    assert m.status_code == 200
    assert m.headers["Content-Type"].startswith("text/plain")
    text = m.text
    assert "# TYPE gatehouse_requests_total counter" in text
    lines = [l for l in text.splitlines() if l.startswith("gatehouse_requests_total{")]
    docs = [l for l in lines if '"docs"' in l and '"2xx"' in l]
    assert docs and docs[0].endswith(" 3"), lines
    assert any('"api"' in l and '"4xx"' in l for l in lines), lines
    # §8 also lists an upstream latency histogram.
    assert re.search(r"^# TYPE \S+ histogram$", text, re.M), "no histogram in /metrics"
    for l in text.splitlines():  # every sample line is `name{labels} value` or `name value`
        if l and not l.startswith("#"):
            assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+', l), l


def test_admin_listener_answers_404_for_other_paths(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    assert requests.get(gw.admin_url("/docs/x"), timeout=5).status_code == 404
    assert echo.request_count == 0


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_admin_paths_are_not_served_on_the_public_listener(gateway_factory, echo, path):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    assert_uniform_requests(get(gw, path), 404, "not_found")


def test_admin_paths_on_the_public_listener_go_to_the_upstream_when_a_route_matches(gateway_factory, echo):
    everything = {"name": "all", "match": {"path": "/**"}, "upstream": "api", "auth": "none"}
    gw = gateway_factory(upstreams={"api": echo}, routes=[everything])
    r = get(gw, "/metrics")
    assert r.status_code == 200 and r.json()["path"] == "/metrics"  # the upstream's, not the gateway's
