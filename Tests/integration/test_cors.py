"""CORS at the raw-HTTP level (SPEC §2 `cors`, §3 step 6, §3.1, §6; docs/cors.md,
docs/config-reference.md `cors`): preflights answered after the route match and before
authentication, the origin patterns, the CORS headers on every other response (the upstream's
and the gateway's own refusals), the upstream's CORS headers replaced or dropped, per-route
blocks that replace the global one, `cors: false`, the gateway endpoints under the global
policy, CSRF judged by the route's policy, a reload that swaps the policy, and what `check` and
`explain` say. Gateway bugs found are strict xfails naming the bug.

Most tests share one gateway (module scope, one worker) with many routes; each request carries
its own X-Request-Id so that its access-log line and its upstream record (or their absence)
can be found. Everything talks to 127.0.0.1.

Run:  GATEHOUSE_BIN=.build-corsit/debug/gatehouse python3 -m pytest Tests/integration/test_cors.py -q
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import jwt as pyjwt
import pytest

import support
from session_support import write_users_file
from support import (LOOPBACK, EchoUpstream, GatewayProcess, assert_uniform_raw, free_port, raw_exchange,
                     raw_request)

# ---------------------------------------------------------------------------------------------
# The policies

SECRET = b"cors-tests-hmac-secret-0123456789abcdef-0123456789abcdef-xyz"  # 60 bytes: fine for HS256
ISSUER = "https://issuer.cors.test"

# The global policy: an exact origin, a host wildcard, an http origin with a port.
GLOBAL_CORS = {
    "allow_origins": ["https://app.example.org", "https://*.example.com", "http://localhost:3000"],
    "allow_methods": ["GET", "POST", "PUT", "DELETE"],
    "allow_headers": ["Authorization", "Content-Type", "X-Requested-With"],
    "expose_headers": ["X-Request-Id", "X-Upstream"],
    "allow_credentials": True,
    "max_age": "10m",
}
GLOBAL_ORIGIN = "https://a.example.com"          # allowed by the global policy only
EVIL_ORIGIN = "https://evil.test"                 # allowed nowhere

# Two routes on the same path for different methods, each with its own block.
PUT_ORIGIN = "https://put.example.org"
PUT_CORS = {
    "allow_origins": [PUT_ORIGIN],
    "allow_methods": ["PUT"],
    "allow_headers": ["X-Put-Token", "Content-Type"],
    "expose_headers": ["X-Put-Exposed"],
    "allow_credentials": False,
    "max_age": "1m",
}
GET_ORIGIN = "https://get.example.org"
GET_CORS = {
    "allow_origins": [GET_ORIGIN],
    "allow_methods": ["GET", "DELETE"],          # the route also takes POST: a POST preflight is refused
    "allow_headers": ["X-Get-Token", "Authorization"],
    "expose_headers": ["X-Get-Exposed"],
    "allow_credentials": True,
    "max_age": "2m",
}
# Only allow_origins: every other key takes its default (methods GET, HEAD, POST; no headers;
# max_age 10m; no credentials), never the global value.
MIN_ORIGIN = "https://min.example.org"
MIN_CORS = {"allow_origins": [MIN_ORIGIN]}
STAR_CORS = {"allow_origins": ["*"], "allow_methods": ["GET", "PUT"], "allow_headers": ["X-Any"],
             "expose_headers": ["X-Upstream"], "allow_credentials": False, "max_age": "30s"}
NULL_CORS = {"allow_origins": ["null", "https://app.example.org"], "allow_methods": ["GET", "POST"],
             "allow_credentials": True}
ANYHDR_ORIGIN = "https://hdr.example.org"
ANYHDR_CORS = {"allow_origins": [ANYHDR_ORIGIN], "allow_methods": ["POST"], "allow_headers": ["*"],
               "allow_credentials": False, "max_age": "0s"}

PREFLIGHT_VARY = ["origin", "access-control-request-method", "access-control-request-headers"]

# What the upstream adds to every answer: CORS headers of its own, which the gateway must
# replace (allowed origin) or drop (any other origin) on a route with a policy.
UPSTREAM_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Access-Control-Expose-Headers", "X-Secret"),
    ("Access-Control-Allow-Methods", "TRACE"),
    ("Access-Control-Max-Age", "86400"),
    ("Vary", "Accept-Encoding"),
    ("access-control-allow-headers", "X-Evil"),              # any letter case
    ("ACCESS-CONTROL-ALLOW-PRIVATE-NETWORK", "true"),
]


def routes() -> list:
    return [
        {"name": "api-put", "match": {"path": "/api/**", "methods": ["PUT"]}, "upstream": "echo",
         "cors": PUT_CORS},
        {"name": "api-get", "match": {"path": "/api/**", "methods": ["GET", "POST", "DELETE"]}, "upstream": "echo",
         "cors": GET_CORS},
        {"name": "admin", "match": {"path": "/global/admin/**"}, "upstream": "echo",
         "require": {"roles_any": ["admin"]}},
        {"name": "global", "match": {"path": "/global/**"}, "upstream": "echo"},
        {"name": "app", "match": {"path": "/app/**", "methods": ["GET"]}, "upstream": "echo",
         "login_redirect": "/login.html"},
        {"name": "open", "match": {"path": "/open/**"}, "upstream": "echo", "auth": "none"},
        {"name": "dead", "match": {"path": "/dead/**"}, "upstream": "dead", "auth": "none"},
        {"name": "down", "match": {"path": "/down/**"}, "upstream": "down", "auth": "none"},
        {"name": "slow", "match": {"path": "/slow/**"}, "upstream": "slow", "auth": "none"},
        {"name": "dead-own", "match": {"path": "/dead-own/**"}, "upstream": "dead-own", "auth": "none",
         "cors": GET_CORS},
        {"name": "dead-nocors", "match": {"path": "/dead-nocors/**"}, "upstream": "dead-nocors", "auth": "none",
         "cors": False},
        {"name": "down-own", "match": {"path": "/down-own/**"}, "upstream": "down-own", "auth": "none",
         "cors": GET_CORS},
        {"name": "slow-own", "match": {"path": "/slow-own/**"}, "upstream": "slow", "auth": "none",
         "cors": GET_CORS},
        {"name": "slow-nocors", "match": {"path": "/slow-nocors/**"}, "upstream": "slow", "auth": "none",
         "cors": False},
        {"name": "minimal", "match": {"path": "/minimal/**"}, "upstream": "echo", "auth": "none", "cors": MIN_CORS},
        {"name": "nocors", "match": {"path": "/nocors/**"}, "upstream": "plain", "cors": False},
        {"name": "nocors-open", "match": {"path": "/nocors-open/**"}, "upstream": "plain", "auth": "none",
         "cors": False},
        {"name": "nocors-echo", "match": {"path": "/nocors-echo/**"}, "upstream": "echo", "auth": "none",
         "cors": False},
        {"name": "star", "match": {"path": "/star/**"}, "upstream": "echo", "auth": "none", "cors": STAR_CORS},
        {"name": "nullok", "match": {"path": "/nullok/**"}, "upstream": "echo", "auth": "none", "cors": NULL_CORS},
        {"name": "anyhdr", "match": {"path": "/anyhdr/**"}, "upstream": "echo", "auth": "none", "cors": ANYHDR_CORS},
    ]


# ---------------------------------------------------------------------------------------------
# The shared gateway

class Env:
    """The module's gateway and its upstreams."""

    def __init__(self, gw: GatewayProcess, echo: EchoUpstream, plain: EchoUpstream, config_path: Path):
        self.gw = gw
        self.echo = echo
        self.plain = plain
        self.config_path = config_path

    def request(self, method: str, path: str, origin: str | None = None, headers: list | None = None,
                token: str | None = None, body: bytes = b"", request_id: str | None = None):
        """A raw request with its own X-Request-Id; returns (response, request_id)."""
        request_id = request_id or f"cors-{uuid.uuid4().hex}"
        hs = [("X-Request-Id", request_id)]
        if origin is not None:
            hs.append(("Origin", origin))
        if token is not None:
            hs.append(("Authorization", f"Bearer {token}"))
        hs.extend(headers or [])
        return raw_request(self.gw.port, method, path, hs, body=body), request_id

    def preflight(self, path: str, origin: str | None, method: str | None, request_headers=None,
                  extra: list | None = None):
        """OPTIONS with Origin, Access-Control-Request-Method and (a str, or a list of header
        lines) Access-Control-Request-Headers."""
        hs = []
        if method is not None:
            hs.append(("Access-Control-Request-Method", method))
        if isinstance(request_headers, str):
            hs.append(("Access-Control-Request-Headers", request_headers))
        elif request_headers:
            hs.extend(("Access-Control-Request-Headers", v) for v in request_headers)
        hs.extend(extra or [])
        return self.request("OPTIONS", path, origin=origin, headers=hs)

    def forwarded(self, request_id: str, upstream: EchoUpstream | None = None) -> list[dict]:
        """The upstream's records of this request (matched by the forwarded X-Request-Id)."""
        upstream = upstream or self.echo
        with upstream.lock:
            records = list(upstream.requests)
        return [r for r in records if support.pairs_get(r["headers"], "X-Request-Id") == request_id]

    def log(self, request_id: str) -> dict:
        return self.gw.wait_log_record(request_id)


def mint(roles: list[str] | None = None, sub: str = "alice") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": sub, "iat": now, "nbf": now, "exp": now + 600, "roles": roles or []}
    return pyjwt.encode(claims, SECRET, algorithm="HS256")


def make_config(port: int, admin_port: int, log_path: Path, workdir: Path, *, echo: EchoUpstream,
                plain: EchoUpstream, slow: EchoUpstream, users_file: Path) -> dict:
    secret_file = workdir / "hs256.key"
    secret_file.write_bytes(SECRET)
    return {
        "server": {"listen": [f"{LOOPBACK}:{port}"], "workers": 1, "shutdown_grace": "2s",
                   "max_header_bytes": "4KiB", "max_body_bytes": "1KiB",
                   "public_origin": f"http://{LOOPBACK}:{port}"},
        "admin": {"listen": f"{LOOPBACK}:{admin_port}"},
        "upstreams": {
            "echo": {"targets": [echo.url]},
            "plain": {"targets": [plain.url]},
            "dead": {"targets": [f"http://{LOOPBACK}:{free_port()}"]},
            "down": {"targets": [f"http://{LOOPBACK}:{free_port()}"]},
            "dead-own": {"targets": [f"http://{LOOPBACK}:{free_port()}"]},
            "dead-nocors": {"targets": [f"http://{LOOPBACK}:{free_port()}"]},
            "down-own": {"targets": [f"http://{LOOPBACK}:{free_port()}"]},
            "slow": {"targets": [slow.url], "timeout": "300ms"},
        },
        "jwt": {"issuers": [{"name": "local", "issuer": ISSUER, "algorithms": ["HS256"],
                             "secret_file": str(secret_file)}]},
        "sessions": {"cookie": {"secure": False},
                     "login": {"path": "/login", "users_file": str(users_file), "roles": {"carol": ["reader"]}}},
        "cors": GLOBAL_CORS,
        "routes": routes(),
        "access_log": {"path": str(log_path), "format": "json"},
    }


@pytest.fixture(scope="module")
def env(gatehouse_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cors")
    echo = EchoUpstream("echo")
    echo.extra_headers = list(UPSTREAM_CORS)
    plain = EchoUpstream("plain")
    slow = EchoUpstream("slow", delay=1.5)
    users_file = write_users_file(gatehouse_bin, workdir / "users.htpasswd", {"carol": "carol-password"})
    port, admin_port = free_port(), free_port()
    log_path = workdir / "cors-access.log"
    config = make_config(port, admin_port, log_path, workdir, echo=echo, plain=plain, slow=slow,
                         users_file=users_file)
    gw = GatewayProcess(gatehouse_bin, workdir, config, port, admin_port, log_path, name="cors")
    gw.config = config
    try:
        gw.start()
        yield Env(gw, echo, plain, gw.config_path)
    finally:
        gw.kill()
        for u in (echo, plain, slow):
            u.stop()


# ---------------------------------------------------------------------------------------------
# Helpers

def cors_headers(resp) -> list[tuple[str, str]]:
    return [(k, v) for k, v in resp.headers if k.lower().startswith("access-control-")]


def vary_tokens(resp) -> list[str]:
    return [t.strip().lower() for v in resp.header_all("Vary") for t in v.split(",") if t.strip()]


def list_tokens(value: str | None) -> list[str]:
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def one(resp, name: str) -> str | None:
    """The single value of `name` (fails when the header is repeated)."""
    values = resp.header_all(name)
    assert len(values) <= 1, f"{name} repeated: {values}"
    return values[0] if values else None


def assert_no_cors(resp):
    assert cors_headers(resp) == [], f"unexpected CORS headers: {cors_headers(resp)}"


def assert_allowed_preflight(resp, origin: str, policy: dict, *, acao: str | None = None):
    """SPEC §6: 204 with the policy's preflight headers."""
    assert resp.status == 204, resp
    assert one(resp, "Access-Control-Allow-Origin") == (acao or origin)
    assert list_tokens(one(resp, "Access-Control-Allow-Methods")) == [m.lower() for m in policy["allow_methods"]]
    headers = policy.get("allow_headers", [])
    if headers and headers != ["*"]:
        assert list_tokens(one(resp, "Access-Control-Allow-Headers")) == [h.lower() for h in headers]
    max_age = {"10m": 600, "1m": 60, "2m": 120, "30s": 30, "0s": 0}[policy.get("max_age", "10m")]
    assert one(resp, "Access-Control-Max-Age") == str(max_age)
    if policy.get("allow_credentials"):
        assert one(resp, "Access-Control-Allow-Credentials") == "true"
    else:
        assert one(resp, "Access-Control-Allow-Credentials") is None
    assert sorted(vary_tokens(resp)) == sorted(PREFLIGHT_VARY), resp.header_all("Vary")
    assert resp.header("WWW-Authenticate") is None
    assert resp.header("X-Request-Id")


def assert_response_cors(resp, origin: str, policy: dict, *, acao: str | None = None):
    """SPEC §6: an allowed origin on a non-preflight response."""
    assert one(resp, "Access-Control-Allow-Origin") == (acao or origin), resp
    if policy.get("allow_credentials"):
        assert one(resp, "Access-Control-Allow-Credentials") == "true", resp
    else:
        assert one(resp, "Access-Control-Allow-Credentials") is None, resp
    expose = policy.get("expose_headers", [])
    if expose:
        assert list_tokens(one(resp, "Access-Control-Expose-Headers")) == [h.lower() for h in expose], resp
    else:
        assert one(resp, "Access-Control-Expose-Headers") is None, resp
    # Nothing else: the preflight-only headers, and the upstream's copies of anything, are not on it.
    names = {k.lower() for k, _ in cors_headers(resp)}
    assert names <= {"access-control-allow-origin", "access-control-allow-credentials",
                     "access-control-expose-headers"}, cors_headers(resp)
    assert "origin" in vary_tokens(resp), resp.header_all("Vary")


def assert_cors_rejected(env: Env, resp, request_id: str, *, log_auth: bool = True):
    """SPEC §3.1/§6: 403 cors_rejected, uniform body, no CORS header; never forwarded; logged
    (refused before authentication: `auth: none`, SPEC §9)."""
    assert_uniform_raw(resp, 403, "cors_rejected")
    assert_no_cors(resp)
    assert env.forwarded(request_id) == [] and env.forwarded(request_id, env.plain) == []
    rec = env.log(request_id)
    assert (rec["status"], rec["decision"], rec["reason"]) == (403, "deny", "cors_rejected"), rec
    if log_auth:
        assert rec["auth"] == "none", rec


# ---------------------------------------------------------------------------------------------
# 1. Preflights

ALLOWED_PREFLIGHTS = [
    # id, path, origin, requested method, Access-Control-Request-Headers, policy, route
    pytest.param("/api/items/1", PUT_ORIGIN, "PUT", "x-put-token", PUT_CORS, "api-put",
                 id="put-route-own-origin-lowercase-header"),
    pytest.param("/api/items/1", PUT_ORIGIN, "PUT", "X-PUT-TOKEN, CONTENT-TYPE", PUT_CORS, "api-put",
                 id="put-route-uppercase-headers"),
    pytest.param("/api/items/1", PUT_ORIGIN, "PUT", ["x-put-token", "content-type"], PUT_CORS, "api-put",
                 id="put-route-headers-on-two-lines"),
    pytest.param("/api/items/1", PUT_ORIGIN, "PUT", None, PUT_CORS, "api-put", id="put-route-no-request-headers"),
    pytest.param("/api/items/1", PUT_ORIGIN, "PUT", "", PUT_CORS, "api-put", id="put-route-empty-request-headers"),
    pytest.param("/api/items", GET_ORIGIN, "GET", "authorization,x-get-token", GET_CORS, "api-get",
                 id="get-route-own-origin-credentials"),
    pytest.param("/api/items", GET_ORIGIN, "DELETE", "Authorization", GET_CORS, "api-get",
                 id="get-route-delete"),
    pytest.param("/global/things", GLOBAL_ORIGIN, "PUT", "authorization, content-type", GLOBAL_CORS, "global",
                 id="global-policy-auth-required-route"),
    pytest.param("/global/admin/panel", "https://a.b.example.com", "DELETE", "x-requested-with", GLOBAL_CORS,
                 "admin", id="global-policy-require-route"),
    pytest.param("/open/x", "https://app.example.org", "POST", "Content-Type", GLOBAL_CORS, "open",
                 id="global-policy-open-route"),
    pytest.param("/dead/x", GLOBAL_ORIGIN, "GET", None, GLOBAL_CORS, "dead", id="route-with-a-dead-upstream"),
    pytest.param("/minimal/x", MIN_ORIGIN, "GET", None, MIN_CORS, "minimal", id="route-block-defaults"),
    pytest.param("/minimal/x", MIN_ORIGIN, "HEAD", None, MIN_CORS, "minimal", id="route-block-default-head"),
]


@pytest.mark.parametrize("path,origin,method,req_headers,policy,route", ALLOWED_PREFLIGHTS)
def test_allowed_preflight_is_answered_204_never_forwarded_never_authenticated(env, path, origin, method,
                                                                                req_headers, policy, route):
    before = env.echo.request_count
    resp, rid = env.preflight(path, origin, method, req_headers)
    pol = dict(policy)
    pol.setdefault("allow_methods", ["GET", "HEAD", "POST"])
    assert_allowed_preflight(resp, origin, pol)
    assert resp.body == b""
    # Never forwarded, though every route above but `open`/`minimal` requires credentials.
    assert env.forwarded(rid) == [] and env.echo.request_count == before
    rec = env.log(rid)
    assert (rec["status"], rec["decision"], rec["route"], rec["method"]) == (204, "preflight", route, "OPTIONS"), rec
    assert rec["auth"] == "none" and rec["upstream_status"] is None, rec


def test_preflight_with_an_invalid_bearer_token_is_still_answered(env):
    """SPEC §3: step 6 (CORS) comes before step 7 (authentication): a credential sent along
    with a preflight is not even looked at."""
    resp, rid = env.preflight("/global/x", GLOBAL_ORIGIN, "GET",
                              extra=[("Authorization", "Bearer not.a.token")])
    assert_allowed_preflight(resp, GLOBAL_ORIGIN, GLOBAL_CORS)
    assert env.forwarded(rid) == []


def test_preflight_on_a_login_redirect_route_is_not_redirected(env):
    resp, rid = env.preflight("/app/page", GLOBAL_ORIGIN, "GET", extra=[("Accept", "text/html")])
    assert_allowed_preflight(resp, GLOBAL_ORIGIN, GLOBAL_CORS)
    assert resp.header("Location") is None


def test_star_preflight_answers_star_without_credentials(env):
    resp, rid = env.preflight("/star/x", "https://anything.test", "PUT", "x-any")
    assert_allowed_preflight(resp, "https://anything.test", STAR_CORS, acao="*")
    assert env.forwarded(rid) == []


def test_any_header_policy_echoes_the_requested_names(env):
    """docs/cors.md: with allow_headers ["*"] the requested names are echoed."""
    resp, rid = env.preflight("/anyhdr/x", ANYHDR_ORIGIN, "POST", "X-Foo, authorization")
    assert_allowed_preflight(resp, ANYHDR_ORIGIN, ANYHDR_CORS)
    assert list_tokens(one(resp, "Access-Control-Allow-Headers")) == ["x-foo", "authorization"]


REFUSED_PREFLIGHTS = [
    # The route of the requested method decides: PUT goes to api-put, GET to api-get.
    pytest.param("/api/items", GET_ORIGIN, "PUT", None, id="get-routes-origin-asking-put"),
    pytest.param("/api/items", PUT_ORIGIN, "GET", None, id="put-routes-origin-asking-get"),
    pytest.param("/api/items", PUT_ORIGIN, "PUT", "x-get-token", id="put-with-the-get-routes-header"),
    pytest.param("/api/items", GET_ORIGIN, "GET", "x-put-token", id="get-with-the-put-routes-header"),
    pytest.param("/api/items", GET_ORIGIN, "GET", "authorization, x-other", id="one-header-of-two-not-allowed"),
    pytest.param("/api/items", GET_ORIGIN, "GET", ["authorization", "x-other"], id="unlisted-header-on-second-line"),
    pytest.param("/api/items", GET_ORIGIN, "POST", None, id="route-takes-post-policy-does-not"),
    # A route block replaces the global one entirely.
    pytest.param("/api/items", GLOBAL_ORIGIN, "GET", None, id="globally-allowed-origin-on-route-block"),
    pytest.param("/minimal/x", MIN_ORIGIN, "PUT", None, id="route-block-default-methods-not-global"),
    pytest.param("/minimal/x", MIN_ORIGIN, "GET", "authorization", id="route-block-default-headers-not-global"),
    pytest.param("/minimal/x", GLOBAL_ORIGIN, "GET", None, id="route-block-origins-not-global"),
    # The global policy.
    pytest.param("/global/x", EVIL_ORIGIN, "GET", None, id="unknown-origin"),
    pytest.param("/global/x", GLOBAL_ORIGIN, "PATCH", None, id="unlisted-method"),
    pytest.param("/global/x", GLOBAL_ORIGIN, "put", None, id="method-case-sensitive"),
    pytest.param("/global/x", GLOBAL_ORIGIN, "HEAD", None, id="safelisted-method-not-listed"),
    pytest.param("/global/x", GLOBAL_ORIGIN, "GET", "x-custom", id="unlisted-header"),
    pytest.param("/global/x", GLOBAL_ORIGIN, "GET", "accept", id="safelisted-header-not-listed"),
    pytest.param("/global/x", "null", "GET", None, id="null-origin"),
    # `cors: false`: no policy, so no preflight passes, not even for a globally allowed origin.
    pytest.param("/nocors/x", GLOBAL_ORIGIN, "GET", None, id="cors-false-route"),
    pytest.param("/nocors-open/x", GLOBAL_ORIGIN, "GET", None, id="cors-false-open-route"),
    pytest.param("/star/x", "null", "GET", None, id="star-does-not-cover-null"),
    pytest.param("/star/x", "https://anything.test", "GET", "x-other", id="star-origin-unlisted-header"),
]


@pytest.mark.parametrize("path,origin,method,req_headers", REFUSED_PREFLIGHTS)
def test_refused_preflight_is_403_cors_rejected_without_cors_headers(env, path, origin, method, req_headers):
    before = (env.echo.request_count, env.plain.request_count)
    resp, rid = env.preflight(path, origin, method, req_headers)
    assert_cors_rejected(env, resp, rid)
    assert (env.echo.request_count, env.plain.request_count) == before


@pytest.mark.parametrize("path,origin,method,status,error", [
    pytest.param("/nowhere/x", GLOBAL_ORIGIN, "GET", 404, "not_found", id="no-route-for-the-path"),
    pytest.param("/api/items", PUT_ORIGIN, "PATCH", 404, "not_found", id="no-route-for-the-requested-method"),
    pytest.param("/app/x", GLOBAL_ORIGIN, "POST", 404, "not_found", id="route-only-for-other-methods"),
    pytest.param("/api/items", GLOBAL_ORIGIN, "PATCH", 404, "not_found", id="no-route-global-origin"),
    pytest.param("/global/a%2Fb", GLOBAL_ORIGIN, "GET", 400, "bad_request", id="path-policy-400"),
    pytest.param("/api/a%2Fb", PUT_ORIGIN, "PUT", 400, "bad_request", id="path-policy-400-route-origin"),
    pytest.param("*", GLOBAL_ORIGIN, "GET", 400, "bad_request", id="asterisk-form-400"),
])
def test_preflight_refused_before_the_route_match(env, path, origin, method, status, error):
    """SPEC §3: the path policy (400) and the route match (404) come before the CORS step, so
    these are not preflight answers; being refusals made before a route is known, they carry
    the global policy's response headers (SPEC §6) — for an origin the global policy allows."""
    resp, rid = env.preflight(path, origin, method)
    assert_uniform_raw(resp, status, error)
    assert resp.header("Access-Control-Allow-Methods") is None and resp.header("Access-Control-Max-Age") is None
    if origin == GLOBAL_ORIGIN:
        assert_response_cors(resp, origin, GLOBAL_CORS)
    else:
        assert_no_cors(resp)
    assert env.forwarded(rid) == []
    rec = env.log(rid)
    assert (rec["status"], rec["route"]) == (status, None), rec
    assert rec["decision"] in (("deny",) if status == 404 else ("deny", "error")), rec   # as test_operations
    assert rec["reason"] == {404: "no_route", 400: "path_rejected"}[status], rec


def test_preflight_path_is_normalized_before_the_route_match(env):
    resp, rid = env.preflight("/open/../api/./items//1", PUT_ORIGIN, "PUT", "x-put-token")
    assert_allowed_preflight(resp, PUT_ORIGIN, PUT_CORS)
    assert env.log(rid)["route"] == "api-put"


@pytest.mark.parametrize("path,headers,token,status,forwarded", [
    pytest.param("/global/x", [], None, 401, False, id="no-origin-no-token-401"),
    pytest.param("/global/x", [("Origin", GLOBAL_ORIGIN)], None, 401, False, id="origin-only-no-token-401"),
    pytest.param("/global/x", [("Access-Control-Request-Method", "GET")], None, 401, False,
                 id="request-method-without-origin-401"),
    pytest.param("/global/x", [("Origin", GLOBAL_ORIGIN)], "valid", 200, True, id="origin-only-with-token-forwarded"),
    pytest.param("/open/x", [], None, 200, True, id="open-route-forwarded"),
    pytest.param("/api/items", [("Origin", GET_ORIGIN)], None, 404, False, id="no-options-route-on-api-404"),
])
def test_plain_options_is_an_ordinary_request(env, path, headers, token, status, forwarded):
    """An OPTIONS without Origin + Access-Control-Request-Method is not a preflight: it is
    routed (by OPTIONS), authenticated and forwarded like any other request."""
    resp, rid = env.request("OPTIONS", path, headers=headers, token=mint() if token else None)
    assert resp.status == status, resp
    records = env.forwarded(rid)
    if forwarded:
        assert len(records) == 1 and records[0]["method"] == "OPTIONS"
    else:
        assert records == []
        assert_uniform_raw(resp, status, {401: "unauthorized", 404: "not_found"}[status])
    rec = env.log(rid)
    assert rec["decision"] != "preflight", rec
    origin = dict(headers).get("Origin")
    if origin == GLOBAL_ORIGIN:
        assert_response_cors(resp, origin, GLOBAL_CORS)


# ---------------------------------------------------------------------------------------------
# 2. Origin patterns (global: https://app.example.org, https://*.example.com, http://localhost:3000)

ORIGINS = [
    pytest.param("https://app.example.org", True, id="exact"),
    pytest.param("https://app.example.org:443", True, id="exact-default-port"),
    pytest.param("https://APP.Example.ORG", True, id="exact-host-case-insensitive"),
    pytest.param("https://sub.app.example.org", False, id="exact-is-not-a-wildcard"),
    pytest.param("https://app.example.org.evil.net", False, id="exact-suffix-attack"),
    pytest.param("https://app.example.orgx", False, id="exact-longer-host"),
    pytest.param("http://app.example.org", False, id="exact-other-scheme"),
    pytest.param("https://app.example.org:8443", False, id="exact-other-port"),
    pytest.param("https://app.example.org/", False, id="exact-with-a-path"),
    pytest.param("https://a.example.com", True, id="wildcard-one-label"),
    pytest.param("https://a.b.example.com", True, id="wildcard-two-labels"),
    pytest.param("https://a.example.com:443", True, id="wildcard-default-port"),
    pytest.param("https://example.com", False, id="wildcard-bare-domain"),
    pytest.param("https://evilexample.com", False, id="wildcard-no-dot"),
    pytest.param("https://a.example.com.evil.net", False, id="wildcard-suffix-attack"),
    pytest.param("http://a.example.com", False, id="wildcard-other-scheme"),
    pytest.param("https://a.example.com:8443", False, id="wildcard-other-port"),
    pytest.param("https://.example.com", False, id="wildcard-empty-label"),
    pytest.param("http://localhost:3000", True, id="http-with-port"),
    pytest.param("http://localhost:3001", False, id="http-other-port"),
    pytest.param("http://localhost", False, id="http-port-missing"),
    pytest.param("https://localhost:3000", False, id="http-with-port-other-scheme"),
    pytest.param("HTTPS://A.EXAMPLE.COM", True, id="wildcard-scheme-and-host-case-insensitive"),
    pytest.param("https://xn--bcher-kva.example.com", True, id="wildcard-punycode-label"),
    pytest.param("https://a-b.example.com:443", True, id="wildcard-hyphen-default-port"),
    pytest.param("https://a..example.com", False, id="wildcard-empty-inner-label"),
    pytest.param("https://user@a.example.com", False, id="userinfo"),
    pytest.param("https://a.example.com@evil.net", False, id="userinfo-host-confusion"),
    pytest.param("https://evil.net#.example.com", False, id="fragment-suffix"),
    pytest.param("https://evil.net/.example.com", False, id="path-suffix"),
    pytest.param("https://a.example.com?x=1", False, id="query"),
    pytest.param("https://a.example.com:80", False, id="wildcard-http-default-port-on-https"),
    pytest.param("http://localhost:3000:3000", False, id="two-ports"),
    pytest.param("HTTP://LOCALHOST:3000", True, id="http-with-port-case-insensitive"),
    pytest.param("null", False, id="null-not-listed"),
    pytest.param("*", False, id="literal-star"),
    pytest.param("", False, id="empty"),
]


@pytest.mark.parametrize("origin,allowed", ORIGINS)
def test_origin_pattern(env, origin, allowed):
    pre, pre_id = env.preflight("/open/x", origin, "GET")
    got, got_id = env.request("GET", "/open/x", origin=origin)
    assert got.status == 200
    if allowed:
        assert_allowed_preflight(pre, origin, GLOBAL_CORS)
        assert_response_cors(got, origin, GLOBAL_CORS)
    else:
        assert_cors_rejected(env, pre, pre_id)
        assert_no_cors(got)


@pytest.mark.parametrize("origin,allowed", [
    pytest.param("null", True, id="null-listed"),
    pytest.param("https://app.example.org", True, id="other-entry"),
    pytest.param("https://a.example.com", False, id="global-origin-not-inherited"),
    pytest.param("NULL", False, id="null-is-exact"),
])
def test_null_origin_only_when_listed(env, origin, allowed):
    pre, pre_id = env.preflight("/nullok/x", origin, "POST")
    got, _ = env.request("GET", "/nullok/x", origin=origin)
    assert got.status == 200
    if allowed:
        assert_allowed_preflight(pre, origin, {**NULL_CORS, "max_age": "10m"})
        assert_response_cors(got, origin, NULL_CORS)
    else:
        assert_cors_rejected(env, pre, pre_id)
        assert_no_cors(got)


@pytest.mark.parametrize("origin", ["https://anything.test", "http://127.0.0.1:9", "https://a.example.com"])
def test_star_policy_answers_star_on_responses(env, origin):
    got, _ = env.request("GET", "/star/x", origin=origin)
    assert got.status == 200
    # The upstream's Access-Control-Allow-Credentials: true is dropped: the policy has none.
    assert_response_cors(got, origin, STAR_CORS, acao="*")


# ---------------------------------------------------------------------------------------------
# 3. CORS headers on every non-preflight response (SPEC §3.1, §6)

def _oversize_head(env: Env, origin: str | None):
    rid = f"cors-{uuid.uuid4().hex}"
    origin_line = f"Origin: {origin}\r\n" if origin else ""
    data = (f"GET /open/x HTTP/1.1\r\nHost: {LOOPBACK}:{env.gw.port}\r\nX-Request-Id: {rid}\r\n{origin_line}"
            f"X-Big: {'a' * 6000}\r\nConnection: close\r\n\r\n").encode()
    return raw_exchange(env.gw.port, data), rid


def _down_target(env: Env, origin: str | None, path: str = "/down/x"):
    # The target refuses connections: 3 failures in a row mark it down, then 503.
    for _ in range(3):
        r, _ = env.request("GET", path, origin=origin)
        if r.status == 503:
            break
        assert r.status == 502, r
    return env.request("GET", path, origin=origin)


# name, status, error (None: the upstream's answer), how to make it
NON_PREFLIGHT = [
    ("upstream-200", 200, None, lambda env, o: env.request("GET", "/open/x", origin=o)),
    ("upstream-200-chunked", 200, None, lambda env, o: env.request("GET", "/open/x?gh_chunked=1", origin=o)),
    ("upstream-404", 404, None, lambda env, o: env.request("GET", "/open/x?gh_status=404", origin=o)),
    ("upstream-500", 500, None, lambda env, o: env.request("GET", "/open/x?gh_status=500", origin=o)),
    ("upstream-200-head", 200, None, lambda env, o: env.request("HEAD", "/open/x", origin=o)),
    ("authenticated-200", 200, None, lambda env, o: env.request("GET", "/global/x", origin=o, token=mint())),
    ("401-no-token", 401, "unauthorized", lambda env, o: env.request("GET", "/global/x", origin=o)),
    ("401-bad-token", 401, "unauthorized",
     lambda env, o: env.request("GET", "/global/x", origin=o, token="e30.e30.sig")),
    ("403-require", 403, "forbidden",
     lambda env, o: env.request("GET", "/global/admin/x", origin=o, token=mint(["reader"]))),
    ("404-no-route", 404, "not_found", lambda env, o: env.request("GET", "/nowhere", origin=o)),
    ("400-path-policy", 400, "bad_request", lambda env, o: env.request("GET", "/open/a%2Fb", origin=o)),
    ("400-dotdot-above-root", 400, "bad_request", lambda env, o: env.request("GET", "/open/../../x", origin=o)),
    ("413-body", 413, "payload_too_large",
     lambda env, o: env.request("POST", "/open/x", origin=o, body=b"b" * 2048)),
    ("431-head", 431, "headers_too_large", _oversize_head),
    ("502-refused", 502, "bad_gateway", lambda env, o: env.request("GET", "/dead/x", origin=o)),
    ("503-all-down", 503, "service_unavailable", _down_target),
    ("504-timeout", 504, "gateway_timeout", lambda env, o: env.request("GET", "/slow/x", origin=o)),
]


@pytest.mark.parametrize("name,status,error,make", [pytest.param(*c, id=c[0]) for c in NON_PREFLIGHT])
@pytest.mark.parametrize("origin,allowed", [
    pytest.param(GLOBAL_ORIGIN, True, id="allowed"),
    pytest.param(EVIL_ORIGIN, False, id="disallowed"),
    pytest.param(None, False, id="no-origin"),
])
def test_every_response_carries_cors_headers_for_an_allowed_origin(env, name, status, error, make, origin, allowed):
    resp, rid = make(env, origin)
    assert resp.status == status, resp
    if error is not None:
        assert_uniform_raw(resp, status, error)
    if allowed:
        assert_response_cors(resp, origin, GLOBAL_CORS)
    else:
        # None of the gateway's, and the upstream's own CORS headers are dropped too.
        assert_no_cors(resp)
    if error is None:
        # The upstream's Vary is kept.
        assert "accept-encoding" in vary_tokens(resp), resp.header_all("Vary")


@pytest.mark.parametrize("origin,expected", [
    pytest.param(GLOBAL_ORIGIN, GLOBAL_CORS, id="global-origin-gets-global-headers"),
    pytest.param(GET_ORIGIN, None, id="route-origin-gets-none"),
])
def test_413_on_a_route_with_its_own_block_uses_the_global_policy(env, origin, expected):
    """SPEC §6: refusals made before a route is known (400, 404, 413, 431) use the global policy."""
    resp, rid = env.request("POST", "/api/items", origin=origin, body=b"b" * 2048)
    assert_uniform_raw(resp, 413, "payload_too_large")
    if expected is None:
        assert_no_cors(resp)
    else:
        assert_response_cors(resp, origin, expected)
    assert env.forwarded(rid) == []


def test_login_throttling_429_carries_cors_headers(env):
    body = json.dumps({"username": "mallory", "password": "guess"}).encode()
    statuses = []
    for _ in range(8):
        resp, _ = env.request("POST", "/login", origin=GLOBAL_ORIGIN, headers=[("Content-Type", "application/json")],
                              body=body)
        statuses.append(resp.status)
        assert_response_cors(resp, GLOBAL_ORIGIN, GLOBAL_CORS)
        if resp.status == 429:
            break
    assert statuses[-1] == 429, statuses
    assert_uniform_raw(resp, 429, "too_many_requests")
    assert resp.header("Retry-After")


def test_login_redirect_carries_cors_headers(env):
    resp, _ = env.request("GET", "/app/page", origin=GLOBAL_ORIGIN, headers=[("Accept", "text/html")])
    assert resp.status == 302 and resp.header("Location").startswith("/login.html?")
    assert_response_cors(resp, GLOBAL_ORIGIN, GLOBAL_CORS)
    other, _ = env.request("GET", "/app/page", origin=EVIL_ORIGIN, headers=[("Accept", "text/html")])
    assert other.status == 302
    assert_no_cors(other)


def test_upstream_cors_headers_are_replaced_for_an_allowed_origin(env):
    resp, rid = env.request("GET", "/open/x", origin=GLOBAL_ORIGIN)
    assert resp.status == 200
    assert resp.header_all("Access-Control-Allow-Origin") == [GLOBAL_ORIGIN]
    assert resp.header_all("Access-Control-Allow-Credentials") == ["true"]
    assert resp.header_all("Access-Control-Expose-Headers") == [resp.header("Access-Control-Expose-Headers")]
    assert "x-secret" not in list_tokens(resp.header("Access-Control-Expose-Headers"))
    assert resp.header_all("Access-Control-Allow-Methods") == []
    assert resp.header_all("Access-Control-Max-Age") == []
    assert sorted(vary_tokens(resp)) == ["accept-encoding", "origin"]
    assert len(env.forwarded(rid)) == 1


@pytest.mark.parametrize("origin", [EVIL_ORIGIN, "null", None], ids=["other-origin", "null", "no-origin"])
def test_upstream_cors_headers_are_dropped_for_other_origins(env, origin):
    resp, _ = env.request("GET", "/open/x", origin=origin)
    assert resp.status == 200 and resp.header("X-Upstream") == "echo"
    assert_no_cors(resp)
    assert "accept-encoding" in vary_tokens(resp), resp.header_all("Vary")


VARY_EVERYWHERE = [
    # method, path, origin, token, extra headers, status
    pytest.param("GET", "/open/x", None, False, [], 200, id="upstream-200-no-origin"),
    pytest.param("GET", "/open/x", EVIL_ORIGIN, False, [], 200, id="upstream-200-refused-origin"),
    pytest.param("GET", "/open/x", "null", False, [], 200, id="upstream-200-null-origin"),
    pytest.param("GET", "/global/x", None, False, [], 401, id="gateway-401-no-origin"),
    pytest.param("GET", "/global/x", EVIL_ORIGIN, False, [], 401, id="gateway-401-refused-origin"),
    pytest.param("GET", "/api/items", GLOBAL_ORIGIN, False, [], 401, id="own-policy-401-other-origin"),
    pytest.param("GET", "/api/items", None, True, [], 200, id="own-policy-200-no-origin"),
    pytest.param("GET", "/minimal/x", None, False, [], 200, id="minimal-policy-no-origin"),
    pytest.param("GET", "/nowhere/x", None, False, [], 404, id="no-route-404-global-policy"),
    pytest.param("GET", "/dead-own/x", EVIL_ORIGIN, False, [], 502, id="upstream-failure-502"),
    pytest.param("GET", "/app/page", None, False, [("Accept", "text/html")], 302, id="login-redirect"),
]


@pytest.mark.parametrize("method,path,origin,token,headers,status", VARY_EVERYWHERE)
def test_every_response_on_a_route_with_a_policy_varies_on_origin_whatever_the_origin(
        env, method, path, origin, token, headers, status):
    """SPEC §6: the answer depends on the origin even when this one gets no CORS header, so a
    shared cache must key on it: `Vary: Origin` on every response, the gateway's own included."""
    resp, _ = env.request(method, path, origin=origin, headers=headers, token=mint() if token else None)
    assert resp.status == status, resp
    assert "origin" in vary_tokens(resp), (resp.header_all("Vary"), resp)
    assert_no_cors(resp)                            # none of these origins is allowed where it asks


@pytest.mark.parametrize("path", ["/star/x", "/nocors-open/x"], ids=["star-without-credentials", "cors-false"])
def test_no_vary_origin_where_the_answer_is_the_same_for_every_origin(env, path):
    resp, _ = env.request("GET", path)
    assert resp.status == 200
    assert "origin" not in vary_tokens(resp), resp.header_all("Vary")


def test_the_origin_reaches_the_upstream_untouched(env):
    """The gateway answers CORS itself but forwards the request as it is."""
    resp, rid = env.request("GET", "/open/x", origin=GLOBAL_ORIGIN)
    assert resp.status == 200
    (record,) = env.forwarded(rid)
    assert support.pairs_get(record["headers"], "Origin") == GLOBAL_ORIGIN


# ---------------------------------------------------------------------------------------------
# 4. Per-route blocks replace the global one; `cors: false`

ROUTE_RESPONSES = [
    # id, method, path, origin, token, status, policy (None: no CORS headers at all)
    pytest.param("GET", "/api/items", GET_ORIGIN, "valid", 200, GET_CORS, id="get-route-own-origin"),
    pytest.param("GET", "/api/items", GET_ORIGIN, None, 401, GET_CORS, id="get-route-401-own-origin"),
    pytest.param("GET", "/api/items", GLOBAL_ORIGIN, "valid", 200, None, id="get-route-global-origin"),
    pytest.param("GET", "/api/items", GLOBAL_ORIGIN, None, 401, None, id="get-route-401-global-origin"),
    pytest.param("GET", "/api/items", PUT_ORIGIN, "valid", 200, None, id="get-route-put-routes-origin"),
    pytest.param("PUT", "/api/items", PUT_ORIGIN, "valid", 200, PUT_CORS, id="put-route-no-credentials"),
    pytest.param("PUT", "/api/items", PUT_ORIGIN, None, 401, PUT_CORS, id="put-route-401"),
    pytest.param("PUT", "/api/items", GET_ORIGIN, "valid", 200, None, id="put-route-get-routes-origin"),
    pytest.param("GET", "/minimal/x", MIN_ORIGIN, None, 200, MIN_CORS, id="minimal-block-defaults"),
    pytest.param("GET", "/minimal/x", GLOBAL_ORIGIN, None, 200, None, id="minimal-block-global-origin"),
    pytest.param("GET", "/nocors/x", GLOBAL_ORIGIN, "valid", 200, None, id="cors-false-200"),
    pytest.param("GET", "/nocors/x", GLOBAL_ORIGIN, None, 401, None, id="cors-false-401"),
    pytest.param("GET", "/nocors-open/x", GLOBAL_ORIGIN, None, 200, None, id="cors-false-open-200"),
]


@pytest.mark.parametrize("method,path,origin,token,status,policy", ROUTE_RESPONSES)
def test_route_block_replaces_the_global_policy(env, method, path, origin, token, status, policy):
    resp, rid = env.request(method, path, origin=origin, token=mint() if token else None)
    assert resp.status == status, resp
    if status == 401:
        assert_uniform_raw(resp, 401, "unauthorized")
    if policy is None:
        assert_no_cors(resp)
    else:
        assert_response_cors(resp, origin, policy)


UPSTREAM_FAILURE_POLICY_BUG = (
    "gateway bug: a 502/503/504 made after the route match (ProxyExchange.fail -> Worker.refuse without "
    "`cors:`) carries the GLOBAL policy's headers instead of the route's: on a route with its own block "
    "the route's origin gets none and a globally allowed origin gets the global ones; on a `cors: false` "
    "route a globally allowed origin still gets CORS headers (SPEC §2, §3.1, §6)")


def _route_failure(status, path, origin, policy, bug):
    return pytest.param(status, path, origin, policy,
                        id=f"{status}-{path.strip('/').split('/')[0]}-{'route-origin' if origin == GET_ORIGIN else 'global-origin'}")


@pytest.mark.parametrize("status,path,origin,policy", [
    _route_failure(502, "/dead-own/x", GET_ORIGIN, GET_CORS, bug=True),
    _route_failure(502, "/dead-own/x", GLOBAL_ORIGIN, None, bug=True),
    _route_failure(502, "/dead-nocors/x", GLOBAL_ORIGIN, None, bug=True),
    _route_failure(503, "/down-own/x", GET_ORIGIN, GET_CORS, bug=True),
    _route_failure(504, "/slow-own/x", GET_ORIGIN, GET_CORS, bug=True),
    _route_failure(504, "/slow-own/x", GLOBAL_ORIGIN, None, bug=True),
    _route_failure(504, "/slow-nocors/x", GLOBAL_ORIGIN, None, bug=True),
])
def test_upstream_failures_after_the_route_match_use_the_routes_policy(env, status, path, origin, policy):
    """Only refusals made before a route is known use the global policy (SPEC §6); a 502/503/504
    comes after the route match, so the route's own block (or `cors: false`) decides."""
    if status == 503:
        resp, _ = _down_target(env, origin, path)
    else:
        resp, _ = env.request("GET", path, origin=origin)
    assert_uniform_raw(resp, status, {502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}[status])
    if policy is None:
        assert_no_cors(resp)
    else:
        assert_response_cors(resp, origin, policy)


@pytest.mark.parametrize("origin", [GLOBAL_ORIGIN, EVIL_ORIGIN], ids=["globally-allowed-origin", "other-origin"])
def test_cors_false_leaves_the_upstreams_own_cors_headers_alone(env, origin):
    """docs/cors.md: the upstream's Access-Control-* headers are replaced or dropped only on a
    route with a policy; with `cors: false` the gateway adds none and leaves the upstream's
    (an upstream that does its own CORS keeps doing it)."""
    resp, _ = env.request("GET", "/nocors-echo/x", origin=origin)
    assert resp.status == 200
    assert resp.header_all("Access-Control-Allow-Origin") == ["*"]          # the upstream's, untouched
    assert resp.header_all("Access-Control-Allow-Credentials") == ["true"]
    assert resp.header_all("Access-Control-Expose-Headers") == ["X-Secret"]
    assert "origin" not in vary_tokens(resp)


# ---------------------------------------------------------------------------------------------
# 5. The gateway endpoints use the global policy (SPEC §3 step 4)

@pytest.mark.parametrize("path,method,origin,req_headers,allowed", [
    pytest.param("/login", "POST", GLOBAL_ORIGIN, "content-type", True, id="login-allowed"),
    pytest.param("/logout", "POST", "https://app.example.org", None, True, id="logout-allowed"),
    pytest.param("/keepalive", "POST", "http://localhost:3000", None, True, id="keepalive-allowed"),
    pytest.param("/login", "POST", EVIL_ORIGIN, None, False, id="login-other-origin"),
    pytest.param("/login", "POST", GET_ORIGIN, None, False, id="login-route-only-origin"),
    pytest.param("/login", "POST", GLOBAL_ORIGIN, "x-custom", False, id="login-unlisted-header"),
    pytest.param("/login", "PATCH", GLOBAL_ORIGIN, None, False, id="login-unlisted-method"),
])
def test_gateway_endpoint_preflight_uses_the_global_policy(env, path, method, origin, req_headers, allowed):
    resp, rid = env.preflight(path, origin, method, req_headers)
    if allowed:
        assert_allowed_preflight(resp, origin, GLOBAL_CORS)
        rec = env.log(rid)
        assert (rec["status"], rec["decision"]) == (204, "preflight"), rec
    else:
        # The `auth` field of these lines: test_gateway_endpoint_preflight_logs_auth_none.
        assert_cors_rejected(env, resp, rid, log_auth=False)


ENDPOINT_AUTH_BUG = ("gateway bug: a preflight to a gateway endpoint (login/keepalive/logout) is logged "
                     "with auth=session although no credential is involved; SPEC §9 wants auth=none for "
                     "a request refused before authentication (and route preflights log none)")


@pytest.mark.parametrize("origin,allowed", [
    pytest.param(EVIL_ORIGIN, False, id="refused"),
    pytest.param(GLOBAL_ORIGIN, True, id="allowed"),
])
def test_gateway_endpoint_preflight_logs_auth_none(env, origin, allowed):
    resp, rid = env.preflight("/login", origin, "POST")
    assert resp.status == (204 if allowed else 403), resp
    rec = env.log(rid)
    assert rec["auth"] == "none", rec


@pytest.mark.parametrize("origin,allowed", [
    pytest.param(GLOBAL_ORIGIN, True, id="allowed"),
    pytest.param(GET_ORIGIN, False, id="route-only-origin"),
])
def test_gateway_endpoint_responses_carry_the_global_headers(env, origin, allowed):
    bad, _ = env.request("POST", "/login", origin=origin, headers=[("Content-Type", "application/json")],
                         body=json.dumps({"username": "carol", "password": "wrong"}).encode())
    keep, _ = env.request("POST", "/keepalive", origin=origin)
    out, _ = env.request("POST", "/logout", origin=origin)
    if allowed:
        assert_uniform_raw(bad, 401, "invalid_credentials")
        assert_response_cors(bad, origin, GLOBAL_CORS)
        assert_uniform_raw(keep, 401, "unauthorized")     # no session to keep alive
        assert_response_cors(keep, origin, GLOBAL_CORS)
        assert out.status == 204, out                     # logout without a session: nothing to revoke
        assert_response_cors(out, origin, GLOBAL_CORS)
        good, _ = env.request("POST", "/login", origin=origin, headers=[("Content-Type", "application/json")],
                              body=json.dumps({"username": "carol", "password": "carol-password"}).encode())
        assert good.status == 200, good
        assert_response_cors(good, origin, GLOBAL_CORS)
    else:
        # Not allowed by the global policy: the CSRF check refuses it, without CORS headers.
        for resp in (bad, keep, out):
            assert_uniform_raw(resp, 403, "csrf_rejected")
            assert_no_cors(resp)


# ---------------------------------------------------------------------------------------------
# 6. check and explain

CHECK_BASE = """\
server:
  listen: ["127.0.0.1:18080"]
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
"""


def _check(run_cli, tmp_path: Path, text: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    out = run_cli("check", "--config", str(path))
    return out, str(path)


def _problem_lines(stderr: str, path: str) -> list[tuple[int, int, str, str]]:
    found = []
    for line in stderr.splitlines():
        m = re.match(re.escape(path) + r":(\d+):(\d+): (error|warning): (.*)$", line)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    return found


@pytest.mark.parametrize("where", ["global", "route"])
def test_check_refuses_star_with_credentials(run_cli, tmp_path, where):
    if where == "global":
        text = CHECK_BASE + (
            "cors:\n"                                    # line 6
            "  allow_origins: [\"*\"]\n"                 # line 7
            "  allow_credentials: true\n"                # line 8
            "routes:\n"
            "  - name: open\n"
            "    match: { path: \"/open/**\" }\n"
            "    upstream: api\n"
            "    auth: none\n")
        line = 7
    else:
        text = CHECK_BASE + (
            "routes:\n"                                  # line 6
            "  - name: open\n"
            "    match: { path: \"/open/**\" }\n"
            "    upstream: api\n"
            "    auth: none\n"
            "    cors:\n"                                # line 11
            "      allow_origins: [\"*\"]\n"             # line 12
            "      allow_credentials: true\n")
        line = 12
    out, path = _check(run_cli, tmp_path, text)
    assert out.returncode == 1, (out.stdout, out.stderr)
    errors = [p for p in _problem_lines(out.stderr, path) if p[2] == "error"]
    assert len(errors) == 1, out.stderr
    ln, col, _, message = errors[0]
    assert ln in (line, line + 1), out.stderr     # at the entry/key, or at allow_credentials
    assert col >= 1
    assert "allow_credentials" in message and "*" in message, message
    assert out.stdout.strip() == f"configuration {path} has 1 error"


def test_check_refuses_route_cors_true(run_cli, tmp_path):
    text = CHECK_BASE + (
        "routes:\n"                                      # line 6
        "  - name: open\n"
        "    match: { path: \"/open/**\" }\n"
        "    upstream: api\n"
        "    auth: none\n"
        "    cors: true\n")                              # line 11
    out, path = _check(run_cli, tmp_path, text)
    assert out.returncode == 1, (out.stdout, out.stderr)
    errors = [p for p in _problem_lines(out.stderr, path) if p[2] == "error"]
    assert len(errors) == 1, out.stderr
    ln, col, _, message = errors[0]
    assert ln == 11 and col >= 5, out.stderr
    assert "cors" in message and "false" in message, message
    assert out.stdout.strip() == f"configuration {path} has 1 error"


CHECK_ROUTES = ("routes:\n"
                "  - name: open\n"
                "    match: { path: \"/open/**\" }\n"
                "    upstream: api\n"
                "    auth: none\n")


@pytest.mark.parametrize("block,line,severity", [
    # The block's lines start at line 7 (line 6 is `cors:`); `line` is where the problem must be.
    pytest.param(["allow_origins: []"], 7, "error", id="empty-origins"),
    pytest.param(["allow_origins: [\"https://app.example.com/\"]"], 7, "error", id="origin-with-path"),
    pytest.param(["allow_origins: [\"app.example.com\"]"], 7, "error", id="origin-without-scheme"),
    pytest.param(["allow_origins: [\"*\", \"https://a.example.com\"]"], 7, "error", id="star-not-alone"),
    pytest.param(["allow_origins: [\"https://a.*.example.com\"]"], 7, "error", id="star-not-leftmost"),
    pytest.param(["allow_origins: [\"https://*example.com\"]"], 7, "error", id="star-part-of-a-label"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "allow_methods: [\"*\"]"], 8, "error",
                 id="star-method"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "expose_headers: [\"*\"]"], 8, "error",
                 id="star-expose"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "allow_headers: [\"*\", \"X-A\"]"], 8, "error",
                 id="star-header-not-alone"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "max_age: 600"], 8, "error", id="bare-number-max-age"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "allow_origin: [\"https://b.example.com\"]"], 8,
                 "error", id="unknown-key"),
    pytest.param(["allow_origins: [\"https://a.example.com\"]", "max_age: 48h"], 8, "warning", id="long-max-age"),
])
def test_check_cors_block_problems(run_cli, tmp_path, block, line, severity):
    text = CHECK_BASE + "cors:\n" + "".join(f"  {entry}\n" for entry in block) + CHECK_ROUTES
    out, path = _check(run_cli, tmp_path, text)
    problems = _problem_lines(out.stderr, path)
    assert [(p[0], p[2]) for p in problems] == [(line, severity)], out.stderr
    if severity == "error":
        assert out.returncode == 1 and out.stdout.strip() == f"configuration {path} has 1 error", out
    else:
        assert out.returncode == 0 and out.stdout.strip() == f"configuration {path} is valid", out


def test_check_accepts_the_config_under_test(env, run_cli):
    out = run_cli("check", "--config", str(env.config_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"configuration {env.config_path} is valid"


EXPLAIN_ENDPOINT_BUG = (
    "gateway bug: `explain` does not know the session endpoints: `explain --json OPTIONS /login` with an "
    "Origin and Access-Control-Request-Method says route null, deny 404 no_route for an allowed and for a "
    "refused preflight, while the server answers 204 (preflight) / 403 cors_rejected (SPEC §1, §3 step 4)")

EXPLAIN_CASES = [
    # method, path, headers, route, decision, status, reason
    pytest.param("OPTIONS", "/api/items", [("Origin", PUT_ORIGIN), ("Access-Control-Request-Method", "PUT")],
                 "api-put", "preflight", 204, None, id="allowed-put-preflight"),
    pytest.param("OPTIONS", "/api/items", [("Origin", GET_ORIGIN), ("Access-Control-Request-Method", "GET"),
                                           ("Access-Control-Request-Headers", "X-GET-TOKEN")],
                 "api-get", "preflight", 204, None, id="allowed-get-preflight"),
    pytest.param("OPTIONS", "/api/items", [("Origin", GET_ORIGIN), ("Access-Control-Request-Method", "PUT")],
                 "api-put", "deny", 403, "cors_rejected", id="refused-origin"),
    pytest.param("OPTIONS", "/api/items", [("Origin", PUT_ORIGIN), ("Access-Control-Request-Method", "PUT"),
                                           ("Access-Control-Request-Headers", "x-other")],
                 "api-put", "deny", 403, "cors_rejected", id="refused-header"),
    pytest.param("OPTIONS", "/nocors/x", [("Origin", GLOBAL_ORIGIN), ("Access-Control-Request-Method", "GET")],
                 "nocors", "deny", 403, "cors_rejected", id="cors-false"),
    pytest.param("OPTIONS", "/nowhere", [("Origin", GLOBAL_ORIGIN), ("Access-Control-Request-Method", "GET")],
                 None, "deny", 404, "no_route", id="no-route"),
    pytest.param("OPTIONS", "/global/x", [("Origin", GLOBAL_ORIGIN)],
                 "global", "deny", 401, "missing_credentials", id="plain-options-is-authenticated"),
    pytest.param("OPTIONS", "/api/a%2Fb", [("Origin", PUT_ORIGIN), ("Access-Control-Request-Method", "PUT")],
                 None, "deny", 400, "path_rejected", id="path-policy-before-cors"),
    # The gateway endpoints answer their preflights under the global policy (SPEC §3 step 4;
    # the server does, see test_gateway_endpoint_preflight_uses_the_global_policy).
    pytest.param("OPTIONS", "/login", [("Origin", GLOBAL_ORIGIN), ("Access-Control-Request-Method", "POST")],
                 None, "preflight", 204, None, id="login-endpoint-allowed-preflight"),
    pytest.param("OPTIONS", "/login", [("Origin", EVIL_ORIGIN), ("Access-Control-Request-Method", "POST")],
                 None, "deny", 403, "cors_rejected", id="login-endpoint-refused-preflight"),
]


@pytest.mark.parametrize("method,path,headers,route,decision,status,reason", EXPLAIN_CASES)
def test_explain_json_for_preflights(env, run_cli, method, path, headers, route, decision, status, reason):
    args = ["explain", "--config", str(env.config_path), "--json", method, path]
    for name, value in headers:
        args += ["--header", f"{name}: {value}"]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    route_name = doc["route"]["name"] if isinstance(doc["route"], dict) else doc["route"]
    assert (route_name, doc["decision"], doc["status"], doc["reason"]) == (route, decision, status, reason), doc


# ---------------------------------------------------------------------------------------------
# 7. CSRF: "allowed by CORS" means the policy of the route (SPEC §7.2)

@pytest.fixture(scope="module")
def carol_cookie(env) -> str:
    resp, _ = env.request("POST", "/login", headers=[("Content-Type", "application/json")],
                          body=json.dumps({"username": "carol", "password": "carol-password"}).encode())
    assert resp.status == 200, resp
    cookie = [v for v in resp.header_all("Set-Cookie") if v.startswith("gatehouse_session=")]
    assert cookie, resp
    return cookie[0].split(";")[0]


@pytest.mark.parametrize("path,origin,status,policy", [
    pytest.param("/api/items", GET_ORIGIN, 200, GET_CORS, id="route-block-origin-passes"),
    pytest.param("/api/items", GLOBAL_ORIGIN, 403, None, id="global-origin-on-route-block-refused"),
    pytest.param("/global/x", GLOBAL_ORIGIN, 200, GLOBAL_CORS, id="global-origin-passes"),
    pytest.param("/global/x", GET_ORIGIN, 403, None, id="route-only-origin-on-global-refused"),
    pytest.param("/nocors/x", GLOBAL_ORIGIN, 403, None, id="cors-false-refuses-cross-origin"),
])
def test_cookie_post_csrf_follows_the_routes_cors_policy(env, carol_cookie, path, origin, status, policy):
    resp, rid = env.request("POST", path, origin=origin, headers=[("Cookie", carol_cookie)], body=b"{}")
    assert resp.status == status, resp
    if status == 403:
        assert_uniform_raw(resp, 403, "csrf_rejected")
        assert env.forwarded(rid) == [] and env.forwarded(rid, env.plain) == []
    else:
        assert len(env.forwarded(rid)) == 1
    if policy is None:
        assert_no_cors(resp)
    else:
        assert_response_cors(resp, origin, policy)


# ---------------------------------------------------------------------------------------------
# 8. A reload (SIGHUP) swaps the policy; keep-alive connections

def test_reload_swaps_the_cors_policy(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[
        {"name": "open", "match": {"path": "/open/**"}, "upstream": "api", "auth": "none"}])
    first, second = "https://first.example.org", "https://second.example.org"

    def acao(origin):
        return raw_request(gw.port, "GET", "/open/x", [("Origin", origin)]).header("Access-Control-Allow-Origin")

    def preflight_status(origin):
        return raw_request(gw.port, "OPTIONS", "/open/x",
                           [("Origin", origin), ("Access-Control-Request-Method", "GET")]).status

    # No `cors` anywhere: no headers, and no preflight passes.
    assert acao(first) is None and preflight_status(first) == 403
    gw.reload(gw.make_config(extra={"cors": {"allow_origins": [first]}}))
    support.wait_until(lambda: acao(first) == first, 5, message="the first policy after SIGHUP")
    assert preflight_status(first) == 204 and preflight_status(second) == 403
    gw.reload(gw.make_config(extra={"cors": {"allow_origins": [second]}}))
    support.wait_until(lambda: acao(second) == second, 5, message="the second policy after SIGHUP")
    assert acao(first) is None
    assert preflight_status(first) == 403 and preflight_status(second) == 204
    # An invalid policy is refused by the reload: the old one keeps serving.
    before = len(gw.stderr())
    gw.reload(gw.make_config(extra={"cors": {"allow_origins": ["*"], "allow_credentials": True}}))
    gw.wait_stderr("reload rejected", start=before)  # the reload's outcome, not a pause
    assert gw.running() and acao(second) == second and acao(first) is None


def test_preflights_on_one_keep_alive_connection(env):
    """An answered and a refused preflight leave the connection usable for the next request."""
    data = (f"OPTIONS /api/items HTTP/1.1\r\nHost: x\r\nOrigin: {PUT_ORIGIN}\r\n"
            f"Access-Control-Request-Method: PUT\r\n\r\n"
            f"OPTIONS /api/items HTTP/1.1\r\nHost: x\r\nOrigin: {GET_ORIGIN}\r\n"
            f"Access-Control-Request-Method: PUT\r\n\r\n"
            f"GET /open/x HTTP/1.1\r\nHost: x\r\nOrigin: {GLOBAL_ORIGIN}\r\nConnection: close\r\n\r\n").encode()
    allowed, refused, plain = raw_exchange(env.gw.port, data, count=3)
    assert_allowed_preflight(allowed, PUT_ORIGIN, PUT_CORS)
    assert_uniform_raw(refused, 403, "cors_rejected")
    assert_no_cors(refused)
    assert plain.status == 200
    assert_response_cors(plain, GLOBAL_ORIGIN, GLOBAL_CORS)


def test_absolute_form_preflight_is_matched_by_its_path(env):
    resp = raw_request(env.gw.port, "OPTIONS", "http://api.test/api/items",
                       [("Origin", PUT_ORIGIN), ("Access-Control-Request-Method", "PUT")])
    assert_allowed_preflight(resp, PUT_ORIGIN, PUT_CORS)
