"""Forward auth, asked directly (SPEC §11): the decision endpoint of each style, its answers
(200 with every identity header, 401 with the challenge, 403 with the `forbidden` body, 404 for
peers outside `allow_from`), hostile descriptions (a header missing, the other convention's
headers, path tricks), CORS preflights, the WebSocket Origin rule, sessions and key waits, and
the access-log line. The real front proxies are in test_forward_auth_nginx.py and
test_forward_auth_caddy.py.
"""

from __future__ import annotations

import json

import pytest

import jwt_support
import support
from forward_auth_support import (APP_ORIGIN, FOREIGN_ORIGIN, FWD_PATH, IDENTITY, ISSUER, ForwardAuthGateway,
                                  identity, start_gateway, token)
from session_support import (CHALLENGE_INVALID, CHALLENGE_PLAIN, CHALLENGE_SCOPE, PUBLIC_ORIGIN, USERS,
                             session_gateways, set_cookies)  # noqa: F401 (fixture)
from support import raw_request

STYLES = ["forwarded", "original", "envoy"]


def assert_allowed(gw: ForwardAuthGateway, response, request_id: str, **expected) -> dict:
    """200, empty body, every identity header exactly once, the request id; the log line."""
    assert response.status == 200, (response, gw.stderr()[-2000:])
    assert response.body == b""
    assert response.header("X-Request-Id") == request_id
    assert response.header("Cache-Control") == "no-store"
    assert len(response.header_all("Date")) == 1 and response.header("Date").endswith(" GMT"), response.headers
    found = identity(response)
    for name in IDENTITY:
        assert len(found[name]) == 1, (name, response.headers)
    for name, value in expected.items():
        assert found[name.replace("_", "-")] == [value], (name, response.headers)
    record = gw.wait_log_record(request_id)
    assert record["forward_auth"] is True and record["status"] == 200, record
    assert record["upstream"] is None and record["upstream_status"] is None, record
    return record


def assert_refused(gw: ForwardAuthGateway, response, request_id: str, status: int, error: str, reason: str,
                   challenge: str | None = None, forward_auth: bool = True) -> dict:
    support.assert_uniform_raw(response, status, error)
    assert response.header("X-Request-Id") == request_id
    assert response.header_all("WWW-Authenticate") == ([challenge] if challenge else []), response.headers
    for name in IDENTITY:
        assert response.header(name) is None, response.headers
    record = gw.wait_log_record(request_id)
    assert record["status"] == status and record["reason"] == reason, record
    assert record.get("forward_auth", False) is forward_auth, record
    return record


@pytest.fixture
def fwd(session_gateways, echo, request):
    """A gateway of the style named by the test's `style` parameter (default forwarded)."""
    style = getattr(request, "param", "forwarded")
    return start_gateway(session_gateways, echo.url, style)


@pytest.mark.parametrize("fwd", STYLES, indirect=True)
def test_each_style_allows_denies_and_logs(fwd, echo):
    reader = token("alice", ["reader"], email="alice@example.com")
    resp, rid = fwd.decide("GET", "/api/items?page=2", token=reader)
    record = assert_allowed(fwd, resp, rid, X_Auth_Subject="alice", X_Auth_Roles="reader", X_Auth_Method="jwt",
                            X_Auth_Email="alice@example.com")
    assert (record["method"], record["path"], record["route"], record["auth"], record["subject"], record["decision"]) \
        == ("GET", "/api/items", "api", "jwt", "alice", "allow"), record

    resp, rid = fwd.decide("DELETE", "/admin/users/7", token=reader)
    record = assert_refused(fwd, resp, rid, 403, "forbidden", "insufficient_role", CHALLENGE_SCOPE)
    assert record["method"] == "DELETE" and record["path"] == "/admin/users/7" and record["route"] == "admin"

    resp, rid = fwd.decide("POST", "/api/items")
    assert_refused(fwd, resp, rid, 401, "unauthorized", "missing_credentials", CHALLENGE_PLAIN)
    resp, rid = fwd.decide("GET", "/api/items", token=token(lifetime=-120))
    assert_refused(fwd, resp, rid, 401, "unauthorized", "token_expired", CHALLENGE_INVALID)
    resp, rid = fwd.decide("GET", "/nowhere")
    assert_refused(fwd, resp, rid, 403, "forbidden", "no_route")
    assert echo.request_count == 0, "forward auth never forwards anything"


def test_anonymous_allow_has_every_identity_header_empty_and_ignores_the_clients_copies(fwd):
    spoofed = [("X-Auth-Subject", "root"), ("X-Auth-Roles", "admin"), ("X-Auth-Method", "jwt"),
               ("X-Auth-Email", "root@example.com")]
    resp, rid = fwd.decide("GET", "/public/docs", headers=spoofed)
    record = assert_allowed(fwd, resp, rid, X_Auth_Subject="", X_Auth_Roles="", X_Auth_Method="", X_Auth_Email="")
    assert record["auth"] == "none" and record["subject"] is None
    # A token holder's answer carries the token's identity, not the client's copies.
    resp, rid = fwd.decide("GET", "/api/x", token=token("bob", ["reader"]), headers=spoofed)
    assert_allowed(fwd, resp, rid, X_Auth_Subject="bob", X_Auth_Roles="reader", X_Auth_Email="")


def test_no_login_redirect_a_browser_gets_the_401(fwd):
    resp, rid = fwd.decide("GET", "/app/page", headers=[("Accept", "text/html,application/xhtml+xml")])
    assert_refused(fwd, resp, rid, 401, "unauthorized", "missing_credentials", CHALLENGE_PLAIN)
    assert resp.header("Location") is None


def test_peers_outside_allow_from_get_404(session_gateways, echo):
    gw = start_gateway(session_gateways, echo.url, "forwarded", forward_auth={"allow_from": ["192.0.2.0/24"]})
    resp, rid = gw.decide("GET", "/public/x")
    record = assert_refused(gw, resp, rid, 404, "not_found", "forward_auth_peer", forward_auth=False)
    assert record["path"] == FWD_PATH
    # The rest of the listener is unchanged for that peer.
    resp = raw_request(gw.port, "GET", "/public/x", [])
    assert resp.status == 200


@pytest.mark.parametrize("fwd", ["forwarded", "original"], indirect=True)
def test_a_missing_or_repeated_description_header_is_403(fwd):
    _, _, full = __import__("forward_auth_support").describe(fwd.style, "GET", "/public/x", "api.example.test")
    for name, _ in full:
        headers = [("X-Request-Id", f"miss-{name}")] + [h for h in full if h[0] != name]
        resp = raw_request(fwd.port, "GET", FWD_PATH, headers)
        assert_refused(fwd, resp, f"miss-{name}", 403, "forbidden", "forward_auth_incomplete")
        # A client's copy that the proxy appended to instead of replacing: two values.
        # (in another letter case: names compare without case)
        headers = [("X-Request-Id", f"twice-{name}")] + full + [(name.lower(), "/admin/x" if "ur" in name.lower() else "x")]
        resp = raw_request(fwd.port, "GET", FWD_PATH, headers)
        assert_refused(fwd, resp, f"twice-{name}", 403, "forbidden", "forward_auth_incomplete")


def test_envoy_without_a_path_after_the_prefix_is_403(session_gateways, echo):
    gw = start_gateway(session_gateways, echo.url, "envoy")
    for target in (FWD_PATH, FWD_PATH + "?a=1"):
        resp = raw_request(gw.port, "GET", target, [("X-Request-Id", "envoy-empty")])
        assert_refused(gw, resp, "envoy-empty", 403, "forbidden", "forward_auth_incomplete")


def test_the_other_conventions_headers_never_decide(session_gateways, echo):
    original = start_gateway(session_gateways, echo.url, "original", name="orig")
    # A client's X-Forwarded-* description is not the nginx convention: incomplete.
    forged = [("X-Request-Id", "other-1"), ("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/public/x"),
              ("X-Forwarded-Host", "api.example.test"), ("X-Forwarded-Proto", "http")]
    assert_refused(original, raw_request(original.port, "GET", FWD_PATH, forged), "other-1", 403, "forbidden",
                   "forward_auth_incomplete")
    # Both sets: the original's describe /admin/x; the forged X-Forwarded-Uri says /public/x.
    resp, rid = original.decide("GET", "/admin/x", headers=forged[1:3])
    assert_refused(original, resp, rid, 401, "unauthorized", "missing_credentials", CHALLENGE_PLAIN)
    forwarded = start_gateway(session_gateways, echo.url, "forwarded", name="fwdd")
    resp, rid = forwarded.decide("GET", "/admin/x", headers=[("X-Original-URI", "/public/x"), ("X-Original-Method", "GET")])
    assert_refused(forwarded, resp, rid, 401, "unauthorized", "missing_credentials", CHALLENGE_PLAIN)


@pytest.mark.parametrize("fwd", STYLES, indirect=True)
def test_path_tricks_in_the_description_are_refused(fwd, echo):
    admin = token("alice", ["admin"])
    for trick in ("/public/%2e%2e/admin/x", "/public/../admin/x", "//admin/x", "/public//x", "/public/x;jsessionid=1",
                  "/public/a%2Fb", "/public/%2561", "/public/./x", "/public/%7Euser", "/PUBLIC/../public/x"):
        resp, rid = fwd.decide("GET", trick, token=admin)
        record = assert_refused(fwd, resp, rid, 403, "forbidden", "path_rejected")
        assert record["path"] == trick.split("?")[0], record
    # The query is the described request's, as it is.
    resp, rid = fwd.decide("GET", "/public/x?next=/../admin&q=%2F")
    assert_allowed(fwd, resp, rid)


def test_a_query_on_the_decision_request_is_ignored(fwd):
    """Caddy 2.6 appends the original query to the endpoint's URI: it matches on the path alone."""
    _, _, described = __import__("forward_auth_support").describe("forwarded", "GET", "/admin/x")
    resp = raw_request(fwd.port, "GET", FWD_PATH + "?uri=/public/x&x=1", [("X-Request-Id", "q-1")] + described)
    assert_refused(fwd, resp, "q-1", 401, "unauthorized", "missing_credentials", CHALLENGE_PLAIN)
    # Not the endpoint: a longer path, another case, an encoded form.
    for target in (FWD_PATH + "x", FWD_PATH + "/", FWD_PATH.upper(), FWD_PATH.replace("auth", "%61uth")):
        resp = raw_request(fwd.port, "GET", target, [("X-Request-Id", "q-2")] + described)
        assert resp.status in (400, 404), (target, resp)


@pytest.mark.parametrize("fwd", STYLES, indirect=True)
def test_preflights(fwd):
    preflight = [("Origin", APP_ORIGIN), ("Access-Control-Request-Method", "PUT"),
                 ("Access-Control-Request-Headers", "authorization")]
    resp, rid = fwd.decide("OPTIONS", "/api/items", headers=preflight)
    assert resp.status == 200 and resp.body == b"", resp
    assert resp.header("Access-Control-Allow-Origin") == APP_ORIGIN
    assert "PUT" in resp.header("Access-Control-Allow-Methods")
    assert resp.header("Access-Control-Allow-Credentials") == "true"
    record = fwd.wait_log_record(rid)
    assert record["decision"] == "preflight" and record["forward_auth"] is True and record["route"] == "api", record
    bad = [("Origin", FOREIGN_ORIGIN), ("Access-Control-Request-Method", "PUT")]
    resp, rid = fwd.decide("OPTIONS", "/api/items", headers=bad)
    assert_refused(fwd, resp, rid, 403, "forbidden", "cors_rejected")
    assert resp.header("Access-Control-Allow-Origin") is None
    # An allowed origin's ordinary request gets the CORS response headers with the allow.
    resp, rid = fwd.decide("GET", "/api/items", token=token(), headers=[("Origin", APP_ORIGIN)])
    assert_allowed(fwd, resp, rid, X_Auth_Subject="alice")
    assert resp.header("Access-Control-Allow-Origin") == APP_ORIGIN


def test_sessions_work_on_the_same_listener_and_the_websocket_origin_rule(session_gateways, echo):
    gw = start_gateway(session_gateways, echo.url, "original")
    cookie = gw.login_cookie("alice")
    resp, rid = gw.decide("GET", "/admin/panel", cookie=cookie)
    record = assert_allowed(gw, resp, rid, X_Auth_Subject="alice", X_Auth_Roles="admin,ops", X_Auth_Method="session")
    assert record["auth"] == "session"
    # An upgrade handshake with the cookie: the Origin rule of SPEC §12.
    key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), key]
    resp, rid = gw.decide("GET", "/api/live", cookie=cookie, headers=upgrade + [("Origin", FOREIGN_ORIGIN)])
    assert_refused(gw, resp, rid, 403, "forbidden", "csrf_rejected")
    resp, rid = gw.decide("GET", "/api/live", cookie=cookie, headers=[key])
    assert_refused(gw, resp, rid, 403, "forbidden", "csrf_rejected")
    resp, rid = gw.decide("GET", "/api/live", cookie=cookie, headers=upgrade + [("Origin", PUBLIC_ORIGIN)])
    assert_allowed(gw, resp, rid, X_Auth_Subject="alice")
    resp, rid = gw.decide("GET", "/api/live", token=token(), headers=upgrade + [("Origin", FOREIGN_ORIGIN)])
    assert_allowed(gw, resp, rid, X_Auth_Subject="alice")  # Bearer handshakes: no Origin rule
    # A cross-site unsafe method with the cookie: CSRF (SPEC §7.2), answered 403.
    resp, rid = gw.decide("POST", "/api/items", cookie=cookie, headers=[("Origin", FOREIGN_ORIGIN),
                                                                        ("Sec-Fetch-Site", "cross-site")])
    assert_refused(gw, resp, rid, 403, "forbidden", "csrf_rejected")
    # keepalive and logout on the same listener; the session then ends everywhere.
    assert gw.keepalive(cookie)[0].status == 204
    assert gw.logout(cookie)[0].status == 204
    resp, rid = gw.decide("GET", "/api/x", cookie=cookie)
    assert_refused(gw, resp, rid, 401, "unauthorized", "session_revoked", CHALLENGE_PLAIN)


def test_the_client_address_comes_from_the_allowed_proxys_x_forwarded_for(fwd):
    resp, rid = fwd.decide("GET", "/public/x", headers=[("X-Forwarded-For", "203.0.113.7")])
    record = assert_allowed(fwd, resp, rid)
    assert record["client"] == "203.0.113.7", record


def test_a_decision_request_with_a_body_is_decided_not_refused_early(session_gateways, echo):
    gw = start_gateway(session_gateways, echo.url, "envoy")
    resp, rid = gw.decide("POST", "/api/items", token=token(), body=b"hello")
    assert_allowed(gw, resp, rid, X_Auth_Subject="alice")
    resp, rid = gw.decide("POST", "/admin/items", token=token(), body=b"hello")
    assert_refused(gw, resp, rid, 403, "forbidden", "insufficient_role", CHALLENGE_SCOPE)


def test_an_unknown_kid_waits_for_the_refresh(session_gateways, echo):
    first = jwt_support.AsymmetricKey("RSA", "k1")
    second = jwt_support.AsymmetricKey("RSA", "k2")
    jwks = jwt_support.JWKSServer(jwt_support.jwks(first))
    try:
        remote = {"name": "remote", "issuer": "https://remote.fwd.test", "algorithms": ["RS256"], "jwks_url": jwks.url()}
        gw = start_gateway(session_gateways, echo.url, "forwarded", extra_issuers=[remote])
        # Ready once every issuer has keys (SPEC §8): the first token must not trigger the refresh.
        support.wait_until(lambda: raw_request(gw.admin_port, "GET", "/readyz").status == 200, 10,
                           message="the gateway ready with the first key set")
        claims = jwt_support.claims_for("https://remote.fwd.test", sub="rita", roles=["admin"])
        resp, rid = gw.decide("GET", "/admin/x", token=jwt_support.mint_pyjwt(claims, first, "RS256", kid="k1"))
        assert_allowed(gw, resp, rid, X_Auth_Subject="rita", X_Auth_Roles="admin")
        jwks.set_keys(first, second)
        resp, rid = gw.decide("GET", "/admin/x", token=jwt_support.mint_pyjwt(claims, second, "RS256", kid="k2"))
        assert_allowed(gw, resp, rid, X_Auth_Subject="rita")
        assert jwks.fetches >= 2
    finally:
        jwks.stop()


def test_check_reports_forward_auth_problems(run_cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("forward_auth:\n  style: nginx\n  paht: /x\nroutes: []\n")
    out = run_cli("check", "--config", str(config))
    assert out.returncode == 1
    assert f"{config}:2:10: error: forward_auth.style: expected one of forwarded, original, envoy" in out.stderr, out.stderr
    assert f"{config}:3:3: error: forward_auth.paht: unknown key" in out.stderr, out.stderr


def test_a_rate_limit_refusal_is_403_with_retry_after_and_shadow_routes_answer_200(session_gateways, echo):
    """SPEC §11 with §13 and §15.2: over a route's limit the decision is 403 (`forbidden`,
    `Retry-After`, reason `rate_limited`); a shadow route's refusal is answered 200, logged as
    the refusal with `shadow: true`."""
    from forward_auth_support import ROUTES
    routes = [{"name": "limited", "match": {"path": "/limited/**"}, "upstream": "api", "auth": "none",
               "rate_limit": {"rate": "1/m", "burst": 1, "key": "client"}},
              {"name": "shadowed", "match": {"path": "/shadowed/**"}, "upstream": "api", "mode": "shadow",
               "require": {"roles_any": ["admin"]}}] + ROUTES
    gw = start_gateway(session_gateways, echo.url, "original", routes=routes)
    resp, rid = gw.decide("GET", "/limited/x", headers=[("X-Forwarded-For", "198.51.100.7")])
    assert_allowed(gw, resp, rid)
    resp, rid = gw.decide("GET", "/limited/x", headers=[("X-Forwarded-For", "198.51.100.7")])
    record = assert_refused(gw, resp, rid, 403, "forbidden", "rate_limited")
    assert int(resp.header("Retry-After")) >= 1, resp.headers
    assert record["client"] == "198.51.100.7"
    # Another client (the proxy's X-Forwarded-For: allow_from peers are trusted) has its own bucket.
    resp, rid = gw.decide("GET", "/limited/x", headers=[("X-Forwarded-For", "198.51.100.8")])
    assert_allowed(gw, resp, rid)
    resp, rid = gw.decide("GET", "/shadowed/x", token=token("bob", ["reader"]))
    record = assert_allowed(gw, resp, rid, X_Auth_Subject="bob")
    assert (record["shadow"], record["decision"], record["reason"]) == (True, "deny", "insufficient_role"), record
