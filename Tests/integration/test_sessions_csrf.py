"""CSRF protection for session cookies (SPEC §7.2, the rules of Go's
`net/http.CrossOriginProtection`) and the gateway endpoints under the global CORS policy
(SPEC §3 step 4): every row of the table is its own case, on a cookie-authenticated unsafe
request (POST to a route) and on the login, keepalive and logout endpoints.

A refused request is 403 `csrf_rejected` with the uniform body, never forwarded, logged with
reason `csrf_rejected`; a passing one gets the normal answer (200 from the upstream, 200 from
login, 204 from keepalive and logout). A login refused by CSRF does not count toward
throttling.
"""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

import support
from session_support import (CORS_ORIGIN, CORS_WILDCARD_ORIGIN, COOKIE, FOREIGN_ORIGIN, PUBLIC_ORIGIN,
                             ROUTE_CORS_ORIGIN, USERS, SessionGateways, assert_refused, received, session_gateways,
                             sessions_section, set_cookies, upstream_record)

HOST_ORIGIN = "HOST"          # replaced by http://127.0.0.1:<gateway port>
HOST_OTHER_PORT = "HOST:1"    # replaced by http://127.0.0.1:1
HOST_HTTPS = "HOSTS"          # replaced by https://127.0.0.1:<gateway port> (Go compares host:port only)

# (case id, headers, passes)
TABLE = [
    ("sfs-same-origin", [("Sec-Fetch-Site", "same-origin")], True),
    ("sfs-same-origin-with-foreign-origin", [("Sec-Fetch-Site", "same-origin"), ("Origin", FOREIGN_ORIGIN)], True),
    ("sfs-none", [("Sec-Fetch-Site", "none")], True),
    ("sfs-cross-site-foreign-origin", [("Sec-Fetch-Site", "cross-site"), ("Origin", FOREIGN_ORIGIN)], False),
    ("sfs-cross-site-no-origin", [("Sec-Fetch-Site", "cross-site")], False),
    ("sfs-same-site-foreign-origin", [("Sec-Fetch-Site", "same-site"), ("Origin", FOREIGN_ORIGIN)], False),
    ("sfs-unknown-value", [("Sec-Fetch-Site", "bogus")], False),
    ("sfs-cross-site-public-origin", [("Sec-Fetch-Site", "cross-site"), ("Origin", PUBLIC_ORIGIN)], True),
    ("public-origin", [("Origin", PUBLIC_ORIGIN)], True),
    ("public-origin-suffix-trick", [("Origin", PUBLIC_ORIGIN + ".evil.net")], False),
    ("cors-allowed-origin", [("Sec-Fetch-Site", "cross-site"), ("Origin", CORS_ORIGIN)], True),
    ("cors-wildcard-origin", [("Origin", CORS_WILDCARD_ORIGIN)], True),
    ("cors-wildcard-lookalike", [("Origin", "https://evilexample.com")], False),
    ("cors-wildcard-suffix-trick", [("Origin", "https://a.example.com.evil.net")], False),
    ("neither-header", [], True),
    ("empty-headers-count-as-absent", [("Sec-Fetch-Site", ""), ("Origin", "")], True),
    ("origin-equals-host", [("Origin", HOST_ORIGIN)], True),
    ("origin-equals-host-other-scheme", [("Origin", HOST_HTTPS)], True),
    ("origin-host-other-port", [("Origin", HOST_OTHER_PORT)], False),
    ("origin-equals-host-but-cross-site", [("Sec-Fetch-Site", "cross-site"), ("Origin", HOST_ORIGIN)], False),
    ("foreign-origin", [("Origin", FOREIGN_ORIGIN)], False),
    ("null-origin", [("Origin", "null")], False),
]
IDS = [row[0] for row in TABLE]


class Setup:
    def __init__(self, gws: SessionGateways, echo):
        self.gws = gws
        self.echo = echo
        self.gw = gws.start(upstream_url=echo.url, name="csrf")
        self.cookie = self.gw.login_cookie("alice")

    def headers(self, rows):
        out = []
        for name, value in rows:
            if value == HOST_ORIGIN:
                value = f"http://127.0.0.1:{self.gw.port}"
            elif value == HOST_HTTPS:
                value = f"https://127.0.0.1:{self.gw.port}"
            elif value == HOST_OTHER_PORT:
                value = "http://127.0.0.1:1"
            out.append((name, value))
        return out


@pytest.fixture(scope="module")
def setup(gatehouse_bin, tmp_path_factory):
    echo = support.EchoUpstream(name="csrf-echo")
    gws = SessionGateways(gatehouse_bin, tmp_path_factory.mktemp("sessions-csrf"))
    try:
        yield Setup(gws, echo)
    finally:
        gws.close()
        echo.stop()


def assert_csrf_refused(setup, resp, rid, upstream=True):
    record = assert_refused(setup.gw, setup.echo if upstream else None, resp, rid, status=403, error="csrf_rejected",
                            reason="csrf_rejected")
    assert resp.header("WWW-Authenticate") is None, resp.headers
    assert set_cookies(resp) == [], "a CSRF refusal must not touch the cookie"
    return record


@pytest.mark.parametrize("rows,passes", [(r[1], r[2]) for r in TABLE], ids=IDS)
def test_cookie_authenticated_post(setup, rows, passes):
    resp, rid = setup.gw.request("POST", "/api/transfer", cookie=setup.cookie, headers=setup.headers(rows),
                                 body=b"amount=100")
    if passes:
        assert resp.status == 200, resp
        rec = upstream_record(setup.echo, rid)
        assert rec is not None and received(rec, "X-Auth-Subject") == ["alice"]
    else:
        assert_csrf_refused(setup, resp, rid)


@pytest.mark.parametrize("rows,passes", [(r[1], r[2]) for r in TABLE], ids=IDS)
def test_login_endpoint(setup, rows, passes):
    resp, rid = setup.gw.login("bob", USERS["bob"], headers=setup.headers(rows))
    if passes:
        assert resp.status == 200, resp
        assert len(set_cookies(resp, COOKIE)) == 1
    else:
        assert_csrf_refused(setup, resp, rid)


@pytest.mark.parametrize("rows,passes", [(r[1], r[2]) for r in TABLE], ids=IDS)
def test_keepalive_endpoint(setup, rows, passes):
    resp, rid = setup.gw.request("POST", "/keepalive", cookie=setup.cookie, headers=setup.headers(rows))
    if passes:
        assert resp.status == 204, resp
    else:
        assert_csrf_refused(setup, resp, rid)


@pytest.mark.parametrize("rows,passes", [(r[1], r[2]) for r in TABLE], ids=IDS)
def test_logout_endpoint(setup, rows, passes):
    cookie = setup.gw.login_cookie("carol")
    resp, rid = setup.gw.request("POST", "/logout", cookie=cookie, headers=setup.headers(rows))
    after, _ = setup.gw.request("GET", "/api/after-logout", cookie=cookie)
    if passes:
        assert resp.status == 204, resp
        assert after.status == 401, "logout passed CSRF but did not revoke"
    else:
        assert_csrf_refused(setup, resp, rid)
        assert after.status == 200, "a logout refused by CSRF must leave the session alone"


@pytest.mark.parametrize("method,rows", [
    ("GET", [("Origin", FOREIGN_ORIGIN)]),
    ("GET", [("Sec-Fetch-Site", "cross-site"), ("Origin", FOREIGN_ORIGIN)]),
    ("HEAD", [("Sec-Fetch-Site", "cross-site"), ("Origin", FOREIGN_ORIGIN)]),
], ids=["get-foreign-origin", "get-cross-site", "head-cross-site"])
def test_safe_methods_pass_with_a_foreign_origin(setup, method, rows):
    resp, rid = setup.gw.request(method, "/api/read", cookie=setup.cookie, headers=rows)
    assert resp.status == 200, resp
    assert upstream_record(setup.echo, rid) is not None


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_unsafe_methods_are_checked(setup, method):
    resp, rid = setup.gw.request(method, "/api/thing", cookie=setup.cookie, headers=[("Origin", FOREIGN_ORIGIN)])
    assert_csrf_refused(setup, resp, rid)
    resp, rid = setup.gw.request(method, "/api/thing", cookie=setup.cookie, headers=[("Sec-Fetch-Site", "same-origin")])
    assert resp.status == 200, resp


def test_csrf_comes_before_authentication(setup):
    """An unknown or expired cookie with a foreign Origin is a CSRF refusal (403), not a 401."""
    forged = "F" * 43
    resp, rid = setup.gw.request("POST", "/api/transfer", cookie=forged, headers=[("Origin", FOREIGN_ORIGIN)])
    assert_csrf_refused(setup, resp, rid)


def test_csrf_refusals_log_auth_none(setup):
    """SPEC §9: a request refused before authentication logs `auth: none`; SPEC §7.2: the CSRF
    check comes before authentication."""
    logged = {}
    resp, rid = setup.gw.request("POST", "/api/transfer", cookie=setup.cookie, headers=[("Origin", FOREIGN_ORIGIN)])
    logged["POST /api/transfer"] = assert_csrf_refused(setup, resp, rid)["auth"]
    resp, rid = setup.gw.login("bob", USERS["bob"], headers=[("Origin", FOREIGN_ORIGIN)])
    logged["POST /login"] = assert_csrf_refused(setup, resp, rid)["auth"]
    resp, rid = setup.gw.request("POST", "/keepalive", cookie=setup.cookie, headers=[("Origin", FOREIGN_ORIGIN)])
    logged["POST /keepalive"] = assert_csrf_refused(setup, resp, rid)["auth"]
    assert logged == {k: "none" for k in logged}, logged


def test_the_route_cors_policy_decides_on_its_route(setup):
    """"Allowed by CORS" is the policy that applies: the route's own block replaces the global one."""
    resp, rid = setup.gw.request("POST", "/rc/x", cookie=setup.cookie, headers=[("Origin", ROUTE_CORS_ORIGIN)])
    assert resp.status == 200, resp
    assert resp.header("Access-Control-Allow-Origin") == ROUTE_CORS_ORIGIN
    resp, rid = setup.gw.request("POST", "/rc/x", cookie=setup.cookie, headers=[("Origin", CORS_ORIGIN)])
    assert_csrf_refused(setup, resp, rid)
    # Gateway endpoints use the global policy: the route-only origin is foreign there.
    resp, rid = setup.gw.request("POST", "/keepalive", cookie=setup.cookie, headers=[("Origin", ROUTE_CORS_ORIGIN)])
    assert_csrf_refused(setup, resp, rid, upstream=False)


def test_bearer_authenticated_unsafe_requests_are_exempt(session_gateways, echo, tmp_path):
    secret = b"k" * 48
    (tmp_path / "hs.key").write_bytes(secret)
    gw = session_gateways.start(upstream_url=echo.url, jwt={"issuers": [
        {"name": "local", "issuer": "https://issuer.test", "algorithms": ["HS256"], "secret_file": "hs.key"}]})
    now = int(time.time())
    token = pyjwt.encode({"iss": "https://issuer.test", "sub": "svc", "exp": now + 600}, secret, algorithm="HS256")
    hs = [("Sec-Fetch-Site", "cross-site"), ("Origin", FOREIGN_ORIGIN)]
    resp, rid = gw.request("POST", "/api/hook", token=token, headers=hs)
    assert resp.status == 200, resp
    cookie = gw.login_cookie("alice")
    resp, rid = gw.request("POST", "/api/hook", token=token, cookie=cookie, headers=hs)
    assert resp.status == 200, resp
    assert received(upstream_record(echo, rid), "X-Auth-Method") == ["jwt"]


def test_login_refused_by_csrf_does_not_count_toward_throttling(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    for i in range(10):
        resp, rid = gw.login("alice", f"wrong-{i}", headers=[("Origin", FOREIGN_ORIGIN)])
        assert resp.status == 403, resp
    rec = gw.wait_log_record(rid)
    assert rec["reason"] == "csrf_rejected", rec
    # Ten CSRF refusals later: five real failures are still 401, the sixth attempt 429.
    for i in range(5):
        resp, rid = gw.login("alice", f"wrong-again-{i}")
        assert resp.status == 401, (i, resp)
    resp, rid = gw.login("alice", USERS["alice"])
    assert resp.status == 429, resp
    # And with the right password after CSRF refusals only, login succeeds.
    for i in range(8):
        resp, _ = gw.login("bob", USERS["bob"], headers=[("Sec-Fetch-Site", "cross-site")])
        assert resp.status == 403
    assert gw.login_cookie("bob")


# ---------------------------------------------------------------------------------------------
# Gateway endpoints under the global CORS policy (SPEC §3 step 4)

@pytest.mark.parametrize("path", ["/login", "/keepalive", "/logout"])
def test_endpoint_preflights_are_answered_by_the_global_policy(setup, path):
    resp, rid = setup.gw.request("OPTIONS", path, headers=[
        ("Origin", CORS_ORIGIN), ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type")])
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == CORS_ORIGIN
    assert resp.header("Access-Control-Allow-Credentials") == "true"
    assert "POST" in (resp.header("Access-Control-Allow-Methods") or "")
    assert "content-type" in (resp.header("Access-Control-Allow-Headers") or "").lower()
    resp, rid = setup.gw.request("OPTIONS", path, headers=[
        ("Origin", FOREIGN_ORIGIN), ("Access-Control-Request-Method", "POST")])
    support.assert_uniform_raw(resp, 403, "cors_rejected")
    assert not any(k.lower().startswith("access-control-") for k, _ in resp.headers), resp.headers
    assert upstream_record(setup.echo, rid) is None


def test_endpoint_responses_carry_the_global_cors_headers(setup):
    resp, _ = setup.gw.login("bob", USERS["bob"], headers=[("Origin", CORS_ORIGIN)])
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") == CORS_ORIGIN
    assert resp.header("Access-Control-Allow-Credentials") == "true"
    assert "origin" in (resp.header("Vary") or "").lower()
    cookie = set_cookies(resp, COOKIE)[0].value
    resp, _ = setup.gw.request("POST", "/keepalive", cookie=cookie, headers=[("Origin", CORS_WILDCARD_ORIGIN)])
    assert resp.status == 204
    assert resp.header("Access-Control-Allow-Origin") == CORS_WILDCARD_ORIGIN
    # A failed login (401) from an allowed origin carries them too, so the page can read it.
    resp, _ = setup.gw.login("bob", "wrong", headers=[("Origin", CORS_ORIGIN)])
    support.assert_uniform_raw(resp, 401, "invalid_credentials")
    assert resp.header("Access-Control-Allow-Origin") == CORS_ORIGIN
    # A CSRF refusal for a foreign origin carries none.
    resp, _ = setup.gw.request("POST", "/logout", cookie=cookie, headers=[("Origin", FOREIGN_ORIGIN)])
    assert resp.status == 403
    assert resp.header("Access-Control-Allow-Origin") is None


# ---------------------------------------------------------------------------------------------
# SPEC §12: a cookie-authenticated request carrying Sec-WebSocket-Key (an upgrade handshake)
# needs an Origin equal to server.public_origin or allowed by the route's CORS policy, on every
# route and method (GET too): cross-site WebSocket hijacking. Decided in the pipeline.

WS_HEADERS = [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]

# (case id, path, extra headers, passes)
WS_TABLE = [
    ("foreign-origin", "/api/ws", [("Origin", FOREIGN_ORIGIN)], False),
    ("foreign-origin-with-upgrade-headers", "/api/ws",
     [("Origin", FOREIGN_ORIGIN), ("Upgrade", "websocket"), ("Connection", "Upgrade")], False),
    ("no-origin", "/api/ws", [], False),
    ("null-origin", "/api/ws", [("Origin", "null")], False),
    ("same-origin-fetch-site-does-not-replace-origin", "/api/ws", [("Sec-Fetch-Site", "same-origin")], False),
    ("origin-equals-host-is-not-enough", "/api/ws", [("Origin", HOST_ORIGIN)], False),
    ("public-origin-suffix-trick", "/api/ws", [("Origin", PUBLIC_ORIGIN + ".evil.net")], False),
    ("route-cors-origin-on-another-route", "/api/ws", [("Origin", ROUTE_CORS_ORIGIN)], False),
    ("public-origin", "/api/ws", [("Origin", PUBLIC_ORIGIN)], True),
    ("global-cors-origin", "/api/ws", [("Origin", CORS_ORIGIN)], True),
    ("route-cors-origin-on-its-route", "/rc/ws", [("Origin", ROUTE_CORS_ORIGIN)], True),
]


@pytest.mark.parametrize("path,rows,passes", [(r[1], r[2], r[3]) for r in WS_TABLE], ids=[r[0] for r in WS_TABLE])
def test_cookie_websocket_handshake_needs_an_allowed_origin(setup, path, rows, passes):
    resp, rid = setup.gw.request("GET", path, cookie=setup.cookie, headers=WS_HEADERS + setup.headers(rows))
    if passes:
        assert resp.status == 200, resp
        rec = upstream_record(setup.echo, rid)
        assert rec is not None and received(rec, "X-Auth-Subject") == ["alice"]
    else:
        record = assert_csrf_refused(setup, resp, rid)
        assert record["auth"] == "none", record


def test_websocket_origin_rule_is_for_cookie_requests_only(setup):
    """Without the cookie the rule does not apply: the request is refused for its missing
    credentials (401), not as a cross-site request."""
    resp, rid = setup.gw.request("GET", "/api/ws", headers=WS_HEADERS + [("Origin", FOREIGN_ORIGIN)])
    assert_refused(setup.gw, setup.echo, resp, rid, status=401, reason="missing_credentials")
    resp, rid = setup.gw.request("GET", "/public/ws", headers=WS_HEADERS + [("Origin", FOREIGN_ORIGIN)])
    assert resp.status == 200, resp
