"""Shadow mode (SPEC §2 `routes[].mode`, §15.2) against the real binary and a real upstream:
a route with `mode: shadow` forwards what it would refuse, logs the refusal with
`shadow: true`, counts it in `gatehouse_shadow_refusals_total{route,reason}`, sends identity
headers only for a valid credential — and still refuses CSRF, the WebSocket Origin rule and
the path policy.
"""

from __future__ import annotations

import re

import pytest
import requests

from jwt_support import hmac_sign
from session_support import PUBLIC_ORIGIN, session_gateways, upstream_record  # noqa: F401 (fixture)
from support import pairs_get

SECRET = b"shadow-mode-secret-of-enough-bytes-0123456789"
ISS = "https://shadow.test"

ROUTES = [
    {"name": "shadow-admin", "match": {"path": "/admin/**"}, "upstream": "api", "mode": "shadow",
     "require": {"roles_any": ["admin"]}},
    {"name": "enforced-admin", "match": {"path": "/enforced/**"}, "upstream": "api", "mode": "enforce",
     "require": {"roles_any": ["admin"]}},
    {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
]


def token(now: int, roles: list[str], sub: str = "svc", exp_delta: int = 600) -> str:
    return hmac_sign({"alg": "HS256", "typ": "JWT"},
                     {"iss": ISS, "sub": sub, "roles": roles, "iat": now, "exp": now + exp_delta}, SECRET)


@pytest.fixture
def gw(session_gateways, echo, tmp_path):
    (tmp_path / "hs.key").write_bytes(SECRET)
    jwt = {"issuers": [{"name": "hs", "issuer": ISS, "algorithms": ["HS256"], "secret_file": "hs.key"}]}
    return session_gateways.start(upstream_url=echo.url, jwt=jwt, routes=ROUTES, cors=False)


def now() -> int:
    import time
    return int(time.time())


def test_a_role_refusal_is_forwarded_with_the_identity_and_logged_as_shadow(gw, echo):
    resp, rid = gw.request("GET", "/admin/panel", token=token(now(), ["reader"], sub="reader-1"))
    assert resp.status == 200, resp
    record = upstream_record(echo, rid)
    assert record is not None, "the upstream never saw the shadowed request"
    assert pairs_get(record["headers"], "X-Auth-Subject") == "reader-1"
    assert pairs_get(record["headers"], "X-Auth-Roles") == "reader"
    log = gw.wait_log_record(rid)
    assert log["shadow"] is True
    assert (log["decision"], log["reason"], log["status"], log["route"]) == ("deny", "insufficient_role", 200, "shadow-admin")
    assert (log["auth"], log["subject"], log["upstream_status"]) == ("jwt", "reader-1", 200)


def test_missing_and_invalid_credentials_are_forwarded_anonymously(gw, echo):
    resp, rid = gw.request("GET", "/admin/a", headers=[("X-Auth-Subject", "forged")])
    assert resp.status == 200
    record = upstream_record(echo, rid)
    assert pairs_get(record["headers"], "X-Auth-Subject") is None
    log = gw.wait_log_record(rid)
    assert (log["decision"], log["reason"], log["auth"], log["shadow"]) == ("deny", "missing_credentials", "none", True)

    resp, rid = gw.request("GET", "/admin/b", token=token(now(), ["admin"], exp_delta=-3600))
    assert resp.status == 200
    record = upstream_record(echo, rid)
    assert pairs_get(record["headers"], "X-Auth-Subject") is None
    assert pairs_get(record["headers"], "X-Auth-Method") is None
    log = gw.wait_log_record(rid)
    assert (log["decision"], log["reason"], log["auth"], log["subject"]) == ("deny", "token_expired", "jwt", None)


def test_an_allowed_request_on_a_shadow_route_logs_no_shadow_field(gw, echo):
    resp, rid = gw.request("GET", "/admin/ok", token=token(now(), ["admin"]))
    assert resp.status == 200
    log = gw.wait_log_record(rid)
    assert "shadow" not in log
    assert (log["decision"], log["reason"]) == ("allow", None)


def test_enforce_routes_still_refuse(gw, echo):
    resp, rid = gw.request("GET", "/enforced/x", token=token(now(), ["reader"]))
    assert resp.status == 403
    assert upstream_record(echo, rid) is None
    log = gw.wait_log_record(rid)
    assert "shadow" not in log and log["reason"] == "insufficient_role"


def test_csrf_origin_rule_and_path_policy_are_never_shadowed(gw, echo):
    cookie = gw.login_cookie("bob")
    resp, rid = gw.request("POST", "/admin/x", cookie=cookie,
                           headers=[("Origin", "https://evil.test"), ("Sec-Fetch-Site", "cross-site")])
    assert resp.status == 403
    assert upstream_record(echo, rid) is None
    assert gw.wait_log_record(rid)["reason"] == "csrf_rejected"

    resp, rid = gw.request("GET", "/admin/ws", cookie=cookie,
                           headers=[("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", "https://evil.test")])
    assert resp.status == 403
    assert upstream_record(echo, rid) is None

    resp, rid = gw.request("GET", "/admin/a%2Fb")
    assert resp.status == 400
    assert upstream_record(echo, rid) is None


def test_a_session_without_the_role_is_forwarded_with_its_identity(gw, echo):
    cookie = gw.login_cookie("bob")
    resp, rid = gw.request("GET", "/admin/s", cookie=cookie)
    assert resp.status == 200
    record = upstream_record(echo, rid)
    assert pairs_get(record["headers"], "X-Auth-Subject") == "bob"
    assert pairs_get(record["headers"], "X-Auth-Method") == "session"
    log = gw.wait_log_record(rid)
    assert (log["decision"], log["reason"], log["auth"], log["shadow"]) == ("deny", "insufficient_role", "session", True)


def test_shadow_refusals_are_counted_by_route_and_reason(gw, echo):
    for _ in range(2):
        gw.request("GET", "/admin/m", token=token(now(), ["reader"]))
    rid = gw.request("GET", "/admin/m")[1]
    gw.wait_log_record(rid)
    text = requests.get(gw.admin_url("/metrics"), timeout=5).text
    assert re.search(r'^gatehouse_shadow_refusals_total\{route="shadow-admin",reason="insufficient_role"\} 2$', text, re.M), text
    assert re.search(r'^gatehouse_shadow_refusals_total\{route="shadow-admin",reason="missing_credentials"\} 1$', text, re.M), text
    # Not refused, so not denials.
    assert not re.search(r'^gatehouse_denials_total\{reason="insufficient_role"\}', text, re.M), text


def test_check_refuses_an_unknown_mode(run_cli, tmp_path):
    (tmp_path / "g.yaml").write_text("""\
upstreams: { api: { targets: ["http://127.0.0.1:9"] } }
routes:
  - { name: r, match: { path: "/**" }, upstream: api, auth: none, mode: dry-run }
""")
    out = run_cli("check", "--config", "g.yaml")
    assert out.returncode == 1
    assert re.search(r"g\.yaml:3:\d+: error: routes\[0\]\.mode: expected one of enforce, shadow, got \"dry-run\"", out.stderr), out.stderr


def test_policy_tests_report_the_shadowed_reason(run_cli, tmp_path):
    (tmp_path / "hs.key").write_bytes(SECRET)
    (tmp_path / "g.yaml").write_text(f"""\
upstreams: {{ api: {{ targets: ["http://127.0.0.1:9"] }} }}
jwt: {{ issuers: [ {{ name: hs, issuer: "{ISS}", algorithms: [HS256], secret_file: hs.key }} ] }}
routes:
  - {{ name: shadow-admin, match: {{ path: "/admin/**" }}, upstream: api, mode: shadow, require: {{ roles_any: [admin] }} }}
""")
    (tmp_path / "cases.yaml").write_text("""\
cases:
  - name: a reader is forwarded in shadow mode, logged as insufficient_role
    request: { path: /admin/x }
    token: { issuer: hs, claims: { sub: r, roles: [reader] } }
    expect: { status: 200, route: shadow-admin, reason: insufficient_role, upstream_headers: { X-Auth-Subject: r } }
""")
    out = run_cli("test", "--config", "g.yaml", "cases.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_explain_says_a_shadow_route_forwards_what_it_would_refuse(gatehouse_bin, tmp_path):
    import os
    import subprocess
    (tmp_path / "g.yaml").write_text("""\
upstreams: { api: { targets: ["http://127.0.0.1:9"] } }
jwt: { issuers: [ { name: hs, algorithms: [HS256], secret_env: GH_TEST_SECRET } ] }
routes:
  - { name: shadow-admin, match: { path: "/admin/**" }, upstream: api, mode: shadow, require: { roles_any: [admin] } }
""")
    env = dict(os.environ, GH_TEST_SECRET=SECRET.decode())
    p = subprocess.run([gatehouse_bin, "explain", "--config", "g.yaml", "GET", "/admin/x"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert "decision:        allow" in p.stdout, p.stdout
    assert "mode: shadow: forwarded, logged as deny missing_credentials (401 when enforced)" in p.stdout, p.stdout
