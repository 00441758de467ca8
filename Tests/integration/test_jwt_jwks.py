"""JWKS from a URL end to end (SPEC §5.2, §8): a real JWKS server on 127.0.0.1 (Python
http.server, `Cache-Control: max-age=60`) that counts every fetch; readiness until the first
fetch succeeds (with the 1 s, 2 s… backoff), key rotation picked up by the on-demand refresh,
the 30 s rate limit under a flood of unknown kids, the last good key set kept when refreshes
fail, and HTTPS with a throwaway CA (SSL_CERT_FILE) — trusted, untrusted, wrong name, expired.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time
import uuid

import pytest

import support
from jwt_support import (AUDIENCE, AsymmetricKey, JWKSServer, ThrowawayCA, assert_forwarded, assert_refused,
                         claims_for, mint_joserfc, mint_pyjwt, received_headers, server_tls_context, upstream_record,
                         wait_for, write_json)

ISSUER = "https://idp.test/"


@pytest.fixture(scope="module")
def keys():
    return {"k1": AsymmetricKey("RSA", "k1"), "k2": AsymmetricKey("RSA", "k2"),
            "e1": AsymmetricKey("EC", "e1", "P-256"), "attacker": AsymmetricKey("RSA", "attacker")}


@pytest.fixture
def servers():
    started: list[JWKSServer] = []

    def make(*args, **kw) -> JWKSServer:
        s = JWKSServer(*args, **kw)
        started.append(s)
        return s
    yield make
    for s in started:
        s.stop()


def start_gateway(gateways, upstream, jwks_url: str, env: dict | None = None, **issuer_extra):
    jwt = {"issuers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256", "ES256"],
                        "jwks_url": jwks_url, **issuer_extra}]}
    routes = [{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}]
    return gateways.start(upstream_url=upstream.url, jwt=jwt, routes=routes, env=env)


def token_for(key: AsymmetricKey, sub: str = "alice", kid: str | None = None, minter=mint_pyjwt) -> str:
    alg = "ES256" if key.kind == "EC" else "RS256"
    return minter(claims_for(ISSUER, sub=sub, roles=["reader"]), key, alg, kid=kid or key.kid)


def wait_ready(gw, timeout: float = 10.0):
    wait_for(gw.ready, timeout, "/readyz 200")


def assert_passes(gw, upstream, token, sub="alice"):
    response, rid = gw.get("/api/x", token)
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == [sub]
    return record


# ---------------------------------------------------------------------------------------------
# Start-up: not ready until the first fetch succeeds

def test_not_ready_until_the_first_fetch_succeeds_then_tokens_pass(gateways, upstream, servers, keys):
    port = support.free_port()
    server = servers(document={"keys": [keys["k1"].public_jwk, keys["e1"].public_jwk]}, port=port, start=False)
    started = time.monotonic()
    gw = start_gateway(gateways, upstream, server.url())

    # Nothing listens on the JWKS port yet: the first fetch fails, the gateway keeps serving.
    wait_for(lambda: gw.metric("gatehouse_jwks_refresh_failures_total") >= 1, 5, "a failed start-up fetch")
    assert gw.admin_get("/readyz").status == 503
    assert gw.admin_get("/healthz").status == 200
    response, rid = gw.get("/api/x", token_for(keys["k1"]))
    assert_refused(gw, upstream, response, rid, "no_keys")

    time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
    assert gw.admin_get("/readyz").status == 503
    server.start()
    wait_ready(gw, 10)                              # the retry at ~3 s (1 s, then 2 s of backoff)
    became_ready = time.monotonic() - started
    assert became_ready < 8, f"ready only after {became_ready:.1f}s"
    assert server.fetches >= 1
    path, headers = server.requests[0]
    assert path == "/.well-known/jwks.json"
    assert gw.metric("gatehouse_jwks_refreshes_total") >= 1

    assert_passes(gw, upstream, token_for(keys["k1"]))
    assert_passes(gw, upstream, token_for(keys["e1"], sub="ec-user", minter=mint_joserfc), sub="ec-user")
    # Cache-Control: max-age=60 means no periodic refetch in the next seconds: the gateway says
    # when it scheduled the next one (a positive signal, instead of waiting to see none come).
    assert f"key(s) for issuer idp from {server.url()}; next refresh in 60 s" in gw.stderr(), gw.stderr()


def test_start_up_retries_back_off_1s_then_2s(gateways, upstream, servers, keys):
    """A JWKS server that answers 500: the gateway retries after 1 s, then 2 s (SPEC §5.2),
    and is ready as soon as a retry succeeds."""
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    server.status = 500
    gw = start_gateway(gateways, upstream, server.url())
    wait_for(lambda: server.fetches >= 3, 6, "three fetch attempts")
    server.status = 200
    times = server.fetch_times[:3]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    assert 0.8 <= gaps[0] <= 1.6 and 1.8 <= gaps[1] <= 2.8, f"retry gaps {gaps}, expected about 1 s then 2 s"
    assert gw.admin_get("/readyz").status == 503
    assert gw.metric("gatehouse_jwks_refresh_failures_total") >= 3
    wait_ready(gw, 7)                               # the next retry, 4 s later
    gaps.append(round(server.fetch_times[3] - server.fetch_times[2], 2))
    assert 3.6 <= gaps[2] <= 5.0, f"retry gaps {gaps}"
    assert_passes(gw, upstream, token_for(keys["k1"]))


def test_ready_only_when_every_issuer_has_keys(gateways, upstream, servers, keys):
    up = servers(document={"keys": [keys["k1"].public_jwk]})
    late = servers(document={"keys": [keys["e1"].public_jwk]}, port=support.free_port(), start=False)
    jwt = {"issuers": [
        {"name": "one", "issuer": "https://one.test", "algorithms": ["RS256"], "jwks_url": up.url()},
        {"name": "two", "issuer": "https://two.test", "algorithms": ["ES256"], "jwks_url": late.url()},
    ]}
    gw = gateways.start(upstream_url=upstream.url, jwt=jwt,
                        routes=[{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}])
    wait_for(lambda: up.fetches >= 1, 5, "the first issuer's keys")
    time.sleep(0.3)
    assert gw.admin_get("/readyz").status == 503
    one = mint_pyjwt(claims_for("https://one.test", sub="one"), keys["k1"], "RS256", kid="k1")
    two = mint_pyjwt(claims_for("https://two.test", sub="two"), keys["e1"], "ES256", kid="e1")
    assert_passes(gw, upstream, one, sub="one")     # an issuer with keys serves meanwhile
    response, rid = gw.get("/api/x", two)
    assert_refused(gw, upstream, response, rid, "no_keys")
    late.start()
    wait_ready(gw, 8)
    assert_passes(gw, upstream, two, sub="two")


@pytest.mark.filterwarnings("ignore")   # PyJWT and joserfc rightly warn about the 1024-bit key
def test_keys_unfit_for_signatures_are_skipped(gateways, upstream, servers, keys):
    """An encryption key and an RSA key under 2048 bits in a fetched set never verify a token;
    the good key of the same set does."""
    enc = AsymmetricKey("RSA", "enc")
    weak = AsymmetricKey("RSA", "weak", key_size=1024)
    enc_jwk = {**enc.public_jwk, "use": "enc"}
    server = servers(document={"keys": [enc_jwk, weak.public_jwk, keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    assert_passes(gw, upstream, token_for(keys["k1"]))
    for key in (enc, weak):
        response, rid = gw.get("/api/x", token_for(key, sub=key.kid))
        assert_refused(gw, upstream, response, rid, "unknown_kid")


# ---------------------------------------------------------------------------------------------
# Rotation and the on-demand refresh

@pytest.mark.parametrize("framing", ["content-length", "chunked-keep-alive"])
def test_rotation_to_a_new_kid_is_picked_up_on_demand(gateways, upstream, servers, keys, framing):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    server.chunked = framing == "chunked-keep-alive"
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    assert server.fetches == 1
    assert_passes(gw, upstream, token_for(keys["k1"]))

    server.set_keys(keys["k2"])                     # the IdP rotates: k2 only
    # SPEC §3.2 Keys: the first request with the new kid waits for the refresh it triggers and
    # is accepted — no 401 during a rotation.
    response, rid = gw.get("/api/x", token_for(keys["k2"], sub="after-rotation"))
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == ["after-rotation"]
    assert server.fetches == 2                      # start-up + one on-demand refresh

    # The fetched set replaced the old one: k1 is gone. Its unknown kid is answered only after
    # the main loop has decided about a refresh (none: within 30 s of the last one), so the
    # refusal itself shows that no fetch was started.
    response, rid = gw.get("/api/x", token_for(keys["k1"]))
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    assert server.fetches == 2                      # the on-demand refresh is rate limited


def test_a_flood_of_unknown_kids_causes_at_most_one_extra_fetch(gateways, upstream, servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    assert server.fetches == 1

    def attempt(i):
        token = mint_pyjwt(claims_for(ISSUER), keys["attacker"], "RS256", kid=f"flood-{i}-{uuid.uuid4().hex[:8]}")
        response, rid = gw.get("/api/x", token)
        return response, rid

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(attempt, range(50)))
    for response, rid in results:
        assert_refused(gw, upstream, response, rid, "unknown_kid")
    time.sleep(2.0)
    extra = server.fetches - 1
    assert extra <= 1, f"{extra} extra JWKS fetches for 50 unknown kids (SPEC §5.2: at most one per 30 s)"
    # Known keys are unaffected.
    assert_passes(gw, upstream, token_for(keys["k1"]))


# ---------------------------------------------------------------------------------------------
# An unknown kid waits for the refresh (SPEC §3.2 Keys)

def timed_get(gw, token):
    started = time.monotonic()
    response, rid = gw.get("/api/x", token)
    return response, rid, time.monotonic() - started


def test_requests_with_a_new_kid_share_one_fetch_and_all_pass(gateways, upstream, servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    server.delay = 0.5                              # so that the requests overlap the fetch
    server.set_keys(keys["k1"], keys["k2"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: gw.get("/api/x", token_for(keys["k2"], sub=f"user-{i}")), range(8)))
    for i, (response, rid) in enumerate(results):
        record = assert_forwarded(gw, upstream, response, rid)
        assert received_headers(record, "X-Auth-Subject") == [f"user-{i}"]
    assert server.fetches == 2, f"{server.fetches - 1} fetches for one new kid (SPEC §3.2: one shared by all waiters)"


def test_a_kid_never_published_is_refused_after_the_refresh_and_a_second_one_at_once(gateways, upstream, servers,
                                                                                     keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    never = mint_pyjwt(claims_for(ISSUER), keys["attacker"], "RS256", kid="never-published")
    response, rid, took = timed_get(gw, never)
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    assert server.fetches == 2                      # the refresh it triggered came before the answer
    assert took < 2.0 + 1.5, f"decided after {took:.2f} s (SPEC §3.2: at most 2 s)"

    # Within 30 s of that refresh, another unknown kid triggers none: decided at once, well
    # before the 2 s a wait could last, and the JWKS server sees no further fetch.
    other = mint_pyjwt(claims_for(ISSUER), keys["attacker"], "RS256", kid="never-published-either")
    response, rid, took = timed_get(gw, other)
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    assert took < 1.5, f"a rate-limited unknown kid waited {took:.2f} s"
    assert server.fetches == 2
    assert_passes(gw, upstream, token_for(keys["k1"]))


def test_a_slow_jwks_server_the_waiting_request_is_decided_by_the_deadline(gateways, upstream, servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    server.delay = 6.0                              # the refresh outlasts the 2 s wait
    server.set_keys(keys["k1"], keys["k2"])
    new_kid = token_for(keys["k2"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(timed_get, gw, new_kid)
        wait_for(lambda: server.pending == 1, 3, "the on-demand fetch in flight")
        # The loops keep serving while a request waits (the wait blocks no event loop).
        for _ in range(4):
            started = time.monotonic()
            assert_passes(gw, upstream, token_for(keys["k1"]))
            assert time.monotonic() - started < 1.0
        response, rid, took = waiting.result(timeout=10)
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    assert 1.8 <= took < 2.0 + 1.5, f"decided after {took:.2f} s, expected by the 2 s deadline"
    assert server.pending == 1, "the fetch ended first: the deadline was not what decided"
    # Once the slow fetch lands, the key is there.
    wait_for(lambda: server.pending == 0, 8, "the slow fetch answered")
    wait_for(lambda: gw.get("/api/x", new_kid)[0].status == 200, 3, "k2 accepted after the fetch")


def test_a_jwks_server_that_is_down_the_waiting_request_is_decided_once_the_fetch_fails(gateways, upstream,
                                                                                        servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    server.stop()
    failures = gw.metric("gatehouse_jwks_refresh_failures_total")
    response, rid, took = timed_get(gw, token_for(keys["k2"]))
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    assert took < 2.0 + 1.5, f"decided after {took:.2f} s"
    assert gw.metric("gatehouse_jwks_refresh_failures_total") >= failures + 1   # counted before the answer
    assert_passes(gw, upstream, token_for(keys["k1"]))


def test_a_client_that_leaves_while_its_request_waits_for_keys_is_let_go(gateways, upstream, servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    server.delay = 6.0
    rid = f"leaves-{uuid.uuid4().hex}"
    token = mint_pyjwt(claims_for(ISSUER), keys["attacker"], "RS256", kid="unknown-while-leaving")
    sock = socket.create_connection((support.LOOPBACK, gw.port), timeout=5)
    sock.sendall((f"GET /api/x HTTP/1.1\r\nHost: gw.test\r\nX-Request-Id: {rid}\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    wait_for(lambda: server.pending == 1, 3, "the on-demand fetch in flight (the request is waiting)")
    sock.close()
    # Ended by the client leaving, not by the 2 s deadline (that would log `unknown_kid`).
    record = gw.wait_log_record(rid, timeout=5)
    assert record["reason"] == "client_closed", record
    assert record["decision"] == "error", record
    assert upstream_record(upstream, rid) is None
    assert_passes(gw, upstream, token_for(keys["k1"]))


def test_a_reload_during_a_key_wait_decides_under_the_requests_own_routes(gateways, upstream, servers, keys):
    """SPEC §3: the request that waits for keys is decided under the config it started with.
    Before: /admin/** needs the admin role. The reload puts a catch-all route without `require`
    first. A reader's token with a new kid, parked across that reload, is still refused 403 on
    the admin route; a request after the reload gets the new routes."""
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    jwt = {"issuers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
                        "jwks_url": server.url()}]}
    admin = {"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api", "require": {"roles_any": ["admin"]}}
    open_ = {"name": "open", "match": {"path": "/**"}, "upstream": "api"}
    gw = gateways.start(upstream_url=upstream.url, jwt=jwt, routes=[admin, open_])
    wait_ready(gw)
    server.delay = 1.5                              # the refresh lands within the 2 s wait
    server.set_keys(keys["k1"], keys["k2"])
    reader = token_for(keys["k2"], sub="reader")   # roles: reader
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(gw.get, "/admin/x", reader)
        wait_for(lambda: server.pending == 1, 3, "the on-demand fetch in flight (the request is waiting)")
        before = gw.stderr().count("configuration reloaded")
        gw.reload(dict(gw.config, routes=[open_, admin]))
        wait_for(lambda: gw.stderr().count("configuration reloaded") > before, 5, "the reload")
        assert server.pending == 1, "the fetch ended before the reload landed: the race was not run"
        response, rid = waiting.result(timeout=10)
    record = assert_refused(gw, upstream, response, rid, "insufficient_role", status=403, error="forbidden",
                            challenge='Bearer realm="gatehouse", error="insufficient_scope"')
    assert record["route"] == "admin", record
    response, rid = gw.get("/admin/y", reader)
    record = assert_forwarded(gw, upstream, response, rid)
    assert record is not None


# ---------------------------------------------------------------------------------------------
# A failed refresh keeps the last good key set

@pytest.mark.parametrize("failure", ["server-stopped", "http-500", "not-json", "empty-key-set"])
def test_a_failed_refresh_keeps_the_last_good_key_set(gateways, upstream, servers, keys, failure):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    assert_passes(gw, upstream, token_for(keys["k1"]))
    failures_before = gw.metric("gatehouse_jwks_refresh_failures_total")

    if failure == "server-stopped":
        server.stop()
    elif failure == "http-500":
        server.status = 500
    elif failure == "not-json":
        server.raw_body = b"<html>maintenance</html>"
    else:
        server.document = {"keys": []}

    # An unknown kid asks for a refresh, which fails.
    unknown = mint_pyjwt(claims_for(ISSUER), keys["attacker"], "RS256", kid="not-there")
    response, rid = gw.get("/api/x", unknown)
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    wait_for(lambda: gw.metric("gatehouse_jwks_refresh_failures_total") > failures_before, 5,
             "the failed refresh counted in /metrics")

    for _ in range(3):
        assert_passes(gw, upstream, token_for(keys["k1"]))
    assert gw.ready()


def test_a_slow_jwks_server_blocks_no_request_and_the_fetched_set_replaces_the_file(gateways, upstream, servers,
                                                                                     keys, tmp_path):
    """jwks_file (k1) and jwks_url (k2, answered only after 2 s): the file's keys serve at once
    and the gateway is ready; requests are answered while the fetch hangs (fetching never
    blocks an event loop); once it lands, the fetched set replaces the issuer's whole set."""
    write_json(tmp_path / "idp.jwks.json", {"keys": [keys["k1"].public_jwk]})
    server = servers(document={"keys": [keys["k2"].public_jwk]})
    server.delay = 2.0
    gw = start_gateway(gateways, upstream, server.url(), jwks_file="idp.jwks.json")
    wait_for(lambda: server.pending == 1, 5, "the start-up fetch in flight")
    for _ in range(5):
        started = time.monotonic()
        assert_passes(gw, upstream, token_for(keys["k1"]))
        assert gw.ready() and gw.admin_get("/healthz").status == 200
        assert time.monotonic() - started < 0.5, "a request waited for the JWKS fetch"
    assert server.pending == 1, "the fetch finished too early for this test to mean anything"
    wait_for(lambda: server.pending == 0, 5, "the slow fetch answered")
    wait_for(lambda: gw.get("/api/x", token_for(keys["k2"], sub="k2"))[0].status == 200, 3, "k2 accepted")
    response, rid = gw.get("/api/x", token_for(keys["k1"]))
    assert_refused(gw, upstream, response, rid, "unknown_kid")


def test_reload_keeps_the_fetched_keys_without_a_gap(gateways, upstream, servers, keys):
    server = servers(document={"keys": [keys["k1"].public_jwk]})
    gw = start_gateway(gateways, upstream, server.url())
    wait_ready(gw)
    assert_passes(gw, upstream, token_for(keys["k1"]))
    server.stop()                                  # a re-fetch after the reload could not succeed
    reloads = gw.metric("gatehouse_config_reloads_total")
    gw.reload(gw.config)
    wait_for(lambda: gw.metric("gatehouse_config_reloads_total") > reloads, 5, "the reload")
    assert gw.ready()
    for _ in range(3):
        assert_passes(gw, upstream, token_for(keys["k1"]))


# ---------------------------------------------------------------------------------------------
# HTTPS

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwks-pki")
    good, rogue = ThrowawayCA("gatehouse test CA"), ThrowawayCA("rogue CA")
    return {
        "dir": d,
        "ca": good.write_pem(d / "ca.pem"),
        "good": good.issue_server(d, "good", ["localhost"], ["127.0.0.1"]),
        "rogue": rogue.issue_server(d, "rogue", ["localhost"], ["127.0.0.1"]),
        "wrong-name": good.issue_server(d, "wrong-name", ["jwks.other.example"], []),
        "expired": good.issue_server(d, "expired", ["localhost"], ["127.0.0.1"], valid_days=(-2, -1)),
        "not-yet-valid": good.issue_server(d, "not-yet-valid", ["localhost"], ["127.0.0.1"], valid_days=(1, 2)),
    }


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_jwks_over_https_with_a_trusted_ca(gateways, upstream, servers, keys, pki, host):
    server = servers(document={"keys": [keys["k1"].public_jwk]}, tls=server_tls_context(*pki["good"]))
    gw = start_gateway(gateways, upstream, server.url(host=host), env={"SSL_CERT_FILE": str(pki["ca"])})
    wait_ready(gw, 10)
    assert server.fetches >= 1 and not server.handshake_failures
    assert server.requests[0][1].get("Host") == f"{host}:{server.port}"
    assert_passes(gw, upstream, token_for(keys["k1"]))
    assert gw.metric("gatehouse_jwks_refresh_failures_total") == 0
    if host == "localhost":
        assert server.sni_names and set(server.sni_names) == {"localhost"}, server.sni_names


def test_no_sni_for_an_ip_address_jwks_url(gateways, upstream, servers, keys, pki):
    server = servers(document={"keys": [keys["k1"].public_jwk]}, tls=server_tls_context(*pki["good"]))
    gw = start_gateway(gateways, upstream, server.url(host="127.0.0.1"), env={"SSL_CERT_FILE": str(pki["ca"])})
    wait_ready(gw, 10)
    assert server.handshakes >= 1
    # Python calls the SNI callback with None when the client hello has no server_name.
    assert [n for n in server.sni_names if n is not None] == [], f"SNI sent for an IP address: {server.sni_names}"


@pytest.mark.parametrize("cert,ca,alert", [
    ("rogue", None, "UNKNOWN_CA"),            # an unknown CA, and no SSL_CERT_FILE
    ("rogue", "ca", "UNKNOWN_CA"),            # an unknown CA, while our test CA is trusted
    ("wrong-name", "ca", "BAD_CERTIFICATE"),  # a trusted CA, but the certificate names another host
    ("expired", "ca", "CERTIFICATE_EXPIRED"),
    ("not-yet-valid", "ca", "BAD_CERTIFICATE"),
], ids=["untrusted-ca-no-ssl-cert-file", "untrusted-ca", "wrong-host-name", "expired", "not-yet-valid"])
def test_jwks_over_https_with_a_bad_certificate_never_yields_keys(gateways, upstream, servers, keys, pki, cert, ca,
                                                                  alert):
    server = servers(document={"keys": [keys["k1"].public_jwk]}, tls=server_tls_context(*pki[cert]))
    env = {"SSL_CERT_FILE": str(pki[ca])} if ca else {}
    gw = start_gateway(gateways, upstream, server.url(host="localhost"), env=env)
    # The start-up fetch and the retry 1 s later both fail in the handshake.
    wait_for(lambda: gw.metric("gatehouse_jwks_refresh_failures_total") >= 2, 6, "two failed JWKS fetches")
    assert server.connections >= 2, "the gateway never connected to the JWKS server"
    assert server.fetches == 0, "the gateway fetched the key set over an unverified connection"
    # The server saw the handshakes fail with the client's alert: it is certificate verification
    # that refused, for the right reason.
    wait_for(lambda: server.handshake_failures, 2, "a failed handshake at the JWKS server")
    assert alert in server.handshake_failures[0], server.handshake_failures
    assert gw.admin_get("/readyz").status == 503
    response, rid = gw.get("/api/x", token_for(keys["k1"]))
    assert_refused(gw, upstream, response, rid, "no_keys")
