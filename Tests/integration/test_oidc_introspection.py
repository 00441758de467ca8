"""Opaque-token introspection end to end (SPEC §14.3) against a real provider
(django-oidc-provider, oidc_support.py): its opaque access tokens are checked by RFC 7662 POST
with HTTP Basic client authentication at the introspection_endpoint its discovery document
names; active, expired and revoked tokens; answers cached by token hash (one call for many
requests, concurrent ones included); the provider stopped -> 503 for opaque tokens while JWTs
keep working; a hanging endpoint -> at most 8 calls in flight per client, then 503.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import support
from jwt_support import assert_forwarded, assert_refused, received_headers, wait_for
from oidc_support import INTROSPECT_SECRET


def start_gateway(gateways, upstream, tmp_path, issuer: str, audiences=("api-client",), cache: str = "60s",
                  secret: str = INTROSPECT_SECRET):
    (tmp_path / "introspect.secret").write_text(secret + "\n")
    jwt = {"issuers": [{"name": "sso", "issuer": issuer, "audiences": list(audiences), "algorithms": ["RS256"],
                        "discovery": True,
                        "introspection": {"client_id": "gatehouse", "client_secret_file": "introspect.secret",
                                          "cache": cache}}]}
    routes = [{"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api", "require": {"roles_any": ["admin"]}},
              {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}]
    gw = gateways.start(upstream_url=upstream.url, jwt=jwt, routes=routes)
    wait_for(gw.ready, 15, "/readyz 200 (discovery and keys)")
    return gw


def assert_introspected(gw, upstream, token: str, sub: str = "alice", roles: str = "admin", path: str = "/api/x"):
    response, rid = gw.get(path, token)
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == [sub]
    assert received_headers(record, "X-Auth-Roles") == [roles]
    assert received_headers(record, "X-Auth-Method") == ["introspection"]
    log = gw.wait_log_record(rid)
    assert log["auth"] == "introspection" and log["decision"] == "allow" and log["subject"] == sub
    assert token not in json.dumps(log)
    return record


def assert_unavailable(gw, upstream, response, rid, reason: str):
    """503 for this token only (SPEC §14.3), logged as an `error` with the precise reason."""
    support.assert_uniform_raw(response, 503, "service_unavailable")
    record = gw.wait_log_record(rid)
    assert record["decision"] == "error" and record["reason"] == reason and record["auth"] == "introspection", record
    from jwt_support import upstream_record
    assert upstream_record(upstream, rid) is None


def test_active_opaque_token_is_introspected_once_and_cached(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer)
    token = oidc_provider.password_grant("alice")["access_token"]
    assert_introspected(gw, upstream, token)
    assert gw.metric("gatehouse_introspection_calls_total") == 1
    for _ in range(5):
        assert_introspected(gw, upstream, token, path="/admin/panel")
    assert gw.metric("gatehouse_introspection_calls_total") == 1, "answers are cached"
    bob = oidc_provider.password_grant("bob")["access_token"]
    response, rid = gw.get("/admin/panel", bob)
    assert_refused(gw, upstream, response, rid, "insufficient_role", status=403, error="forbidden",
                   challenge='Bearer realm="gatehouse", error="insufficient_scope"', auth="introspection")
    # JWTs of the same issuer still go the JWT way
    response, rid = gw.get("/api/x", oidc_provider.password_grant("alice")["id_token"])
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Method") == ["jwt"]
    assert token not in gw.stderr()


def test_expired_revoked_and_unknown_tokens_are_refused(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer)
    expired = oidc_provider.password_grant("alice")["access_token"]
    oidc_provider.expire(expired)
    revoked = oidc_provider.password_grant("bob")["access_token"]
    oidc_provider.revoke(revoked)
    for token in (expired, revoked, "0123456789abcdef0123456789abcdef", "x" * 100):
        response, rid = gw.get("/api/x", token)
        assert_refused(gw, upstream, response, rid, "token_inactive", auth="introspection")
    calls = gw.metric("gatehouse_introspection_calls_total")
    response, rid = gw.get("/api/x", expired)   # inactive answers are cached for 10 s
    assert_refused(gw, upstream, response, rid, "token_inactive", auth="introspection")
    assert gw.metric("gatehouse_introspection_calls_total") == calls


def test_revocation_is_seen_when_the_cache_ends(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer, cache="2s")
    token = oidc_provider.password_grant("alice")["access_token"]
    assert_introspected(gw, upstream, token)
    oidc_provider.revoke(token)
    time.sleep(2.2)
    response, rid = gw.get("/api/x", token)
    assert_refused(gw, upstream, response, rid, "token_inactive", auth="introspection")


def test_audience_is_checked(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer, audiences=("another-api",))
    response, rid = gw.get("/api/x", oidc_provider.password_grant("alice")["access_token"])
    assert_refused(gw, upstream, response, rid, "wrong_audience", auth="introspection")


def test_wrong_client_secret_makes_every_token_inactive(oidc_provider, gateways, upstream, tmp_path):
    # django-oidc-provider answers {"active": false} to a client it does not know
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer, secret="not-the-secret")
    response, rid = gw.get("/api/x", oidc_provider.password_grant("alice")["access_token"])
    assert_refused(gw, upstream, response, rid, "token_inactive", auth="introspection")


def test_concurrent_requests_with_one_token_share_one_call(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer)
    token = oidc_provider.password_grant("alice")["access_token"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: gw.get("/api/x", token)[0].status, range(32)))
    assert results == [200] * 32
    assert gw.metric("gatehouse_introspection_calls_total") == 1


def test_provider_stopped_opaque_tokens_503_jwts_keep_working(oidc_provider, gateways, upstream, tmp_path):
    gw = start_gateway(gateways, upstream, tmp_path, oidc_provider.issuer)
    cached = oidc_provider.password_grant("alice")["access_token"]
    fresh = oidc_provider.password_grant("alice")["access_token"]
    id_token = oidc_provider.password_grant("bob")["id_token"]
    assert_introspected(gw, upstream, cached)
    oidc_provider.stop()
    response, rid = gw.get("/api/x", fresh)
    assert_unavailable(gw, upstream, response, rid, "introspection_unavailable")
    assert_introspected(gw, upstream, cached)          # still in the cache
    response, rid = gw.get("/api/x", id_token)
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == ["bob"]
    assert gw.metric("gatehouse_introspection_failures_total") >= 1


class HangingIntrospection:
    """Serves a discovery document (the real provider's, with its issuer and jwks_uri) whose
    introspection_endpoint is this server, which holds every POST `hold` seconds unanswered."""

    def __init__(self, document: dict, hold: float):
        owner = self
        self.document = dict(document)
        self.hold = hold
        self.posts = 0
        self.lock = threading.Lock()
        self.port = support.free_port()
        self.document["introspection_endpoint"] = f"http://127.0.0.1:{self.port}/introspect"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                with owner.lock:
                    owner.posts += 1
                time.sleep(owner.hold)
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_hanging_endpoint_at_most_8_calls_per_client_then_503(oidc_provider, gateways, upstream, tmp_path):
    document = oidc_provider.discovery()
    hanging = HangingIntrospection(document, hold=8)
    try:
        # the issuer stays the real provider's; discovery is read from the hanging server by
        # pointing the gateway's issuer there would break the exact-issuer rule, so the real
        # provider's document is doctored in place: the issuer is the hanging server's own URL
        hanging.document["issuer"] = f"http://127.0.0.1:{hanging.port}"
        gw = start_gateway(gateways, upstream, tmp_path, hanging.document["issuer"])
        tokens = [f"opaque-token-{i:02d}" for i in range(12)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            def ask(token):
                rid = f"hang-{token}"
                return support.raw_request(gw.port, "GET", "/api/x", [("X-Request-Id", rid),
                                                                      ("Authorization", f"Bearer {token}")],
                                           timeout=20), rid
            futures = [pool.submit(ask, t) for t in tokens]
            answers = [f.result(timeout=30) for f in futures]
        elapsed = time.monotonic() - started
        statuses = [r.status for r, _ in answers]
        assert statuses == [503] * 12, statuses
        reasons = sorted(gw.wait_log_record(rid)["reason"] for _, rid in answers)
        assert reasons.count("introspection_busy") == 4, reasons
        assert reasons.count("introspection_unavailable") == 8, reasons
        assert hanging.posts == 8
        assert elapsed < 8, "the call deadline (5 s) ends the wait, not the endpoint"
        assert gw.metric("gatehouse_introspection_busy_total") == 4
    finally:
        hanging.stop()
