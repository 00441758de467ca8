"""Sessions in a real Redis shared by two gateway instances (SPEC §2 `sessions.store`, §5.3):
a session made on A works on B, a logout on B is refused on A at once, Redis holds only the
SHA-256 of a session id, a Redis that goes away makes cookie requests 503 quickly while Bearer
requests keep working, and a Redis that comes back (empty: nothing is persisted) takes new
logins again.

The test starts its own `redis-server` on a free loopback port (no persistence) and stops it.
"""

from __future__ import annotations

import hashlib
import time

import jwt as pyjwt
import pytest

import support
from session_support import (CHALLENGE_PLAIN, COOKIE, USERS, RedisServer, assert_no_secret_in_logs, assert_refused,
                             received, session_gateways, sessions_section, set_cookies, upstream_record)

ISSUER = "https://issuer.test"
SECRET = b"redis-tests-hs256-secret-0123456789abcdef"


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pair(session_gateways, echo, redis, tmp_path):
    """Gateways A and B sharing `redis`, with a JWT issuer for Bearer requests."""
    (tmp_path / "hs256.key").write_bytes(SECRET)
    jwt_cfg = {"issuers": [{"name": "local", "issuer": ISSUER, "algorithms": ["HS256"], "secret_file": "hs256.key"}]}
    sessions = sessions_section(store=redis.url, idle="10m", absolute="1h")
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, jwt=jwt_cfg, name="gwA")
    b = session_gateways.start(upstream_url=echo.url, sessions=sessions, jwt=jwt_cfg, name="gwB")
    return a, b


def token(sub: str = "svc") -> str:
    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "sub": sub, "exp": now + 600, "iat": now}, SECRET, algorithm="HS256")


def test_a_session_made_on_one_instance_works_on_the_other_and_logout_is_everywhere(pair, echo):
    a, b = pair
    cookie = a.login_cookie("alice")
    resp, rid = b.request("GET", "/api/on-b", cookie=cookie)
    assert resp.status == 200, resp
    rec = upstream_record(echo, rid)
    assert received(rec, "X-Auth-Subject") == ["alice"]
    assert received(rec, "X-Auth-Roles") == ["admin,ops"]
    assert received(rec, "X-Auth-Method") == ["session"]
    resp, _ = b.keepalive(cookie)
    assert resp.status == 204
    resp, _ = a.request("GET", "/admin/on-a", cookie=cookie)
    assert resp.status == 200

    resp, _ = b.logout(cookie)
    assert resp.status == 204
    cleared = set_cookies(resp, COOKIE)
    assert cleared and cleared[0].attrs.get("max-age") == "0"
    # At once, on both instances (several requests: each worker has its own Redis connection).
    for gw in (a, b, a, b):
        resp, rid = gw.request("GET", "/api/after-logout", cookie=cookie)
        assert_refused(gw, echo, resp, rid, reason="session_revoked", challenge=CHALLENGE_PLAIN)
    resp, rid = a.keepalive(cookie)
    assert resp.status == 401

    # And the other way round.
    cookie2 = b.login_cookie("bob")
    resp, _ = a.request("GET", "/api/bob-on-a", cookie=cookie2)
    assert resp.status == 200
    resp, rid = a.request("GET", "/admin/bob-on-a", cookie=cookie2)
    assert resp.status == 403
    assert_no_secret_in_logs(a, cookie, cookie2)
    assert_no_secret_in_logs(b, cookie, cookie2)


def test_redis_holds_only_the_hash_of_a_session_id(pair, redis):
    a, b = pair
    cookies = [a.login_cookie("alice"), b.login_cookie("bob"), a.login_cookie("carol")]
    keys = redis.keys()
    assert keys, "no session keys in Redis"
    dump = redis.dump_all()
    for cookie in cookies:
        assert not any(cookie in k for k in keys), keys
        assert cookie not in dump, "a raw session id is stored in Redis"
        digest = hashlib.sha256(cookie.encode()).hexdigest()
        assert digest in dump, f"SHA-256 of the id not found in Redis: {keys}"
    for password in USERS.values():
        assert password not in dump
    # Every session key expires: kept until the absolute timeout (1 h), or one idle timeout
    # (10 min) after the session ended when that is later (SessionRecord.forgetAt); +1 s for
    # whole-second rounding.
    for key in keys:
        ttl = int(redis.cmd("TTL", key).strip())
        assert 3600 - 60 < ttl <= 3600 + 1, (key, ttl)
    # Logging out keeps no raw id either.
    b.logout(cookies[0])
    assert cookies[0] not in redis.dump_all()


def test_redis_down_then_back(pair, redis, echo):
    a, b = pair
    cookie = a.login_cookie("alice")
    bearer = token()
    resp, _ = a.request("GET", "/api/up", cookie=cookie)
    assert resp.status == 200
    resp, _ = b.request("GET", "/api/up", token=bearer)
    assert resp.status == 200

    redis.stop()
    # Cookie requests: 503, quickly (no hang until a timeout), on every instance and worker.
    for gw in (a, b, a, b, a, b):
        start = time.monotonic()
        resp, rid = gw.request("GET", "/api/down", cookie=cookie, timeout=5)
        took = time.monotonic() - start
        support.assert_uniform_raw(resp, 503, "service_unavailable")
        assert took < 2.5, f"503 took {took:.2f} s"
        assert upstream_record(echo, rid) is None
        record = gw.wait_log_record(rid)
        assert (record["status"], record["auth"]) == (503, "session"), record
    resp, _ = a.keepalive(cookie)
    assert resp.status == 503, resp
    # Bearer requests keep working, with or without a cookie next to the token.
    for gw in (a, b):
        resp, rid = gw.request("GET", "/api/bearer", token=bearer)
        assert resp.status == 200, resp
        assert received(upstream_record(echo, rid), "X-Auth-Method") == ["jwt"]
        resp, rid = gw.request("GET", "/api/bearer", token=bearer, cookie=cookie)
        assert resp.status == 200, resp
    # A login cannot make a session now: not a 200, and no cookie.
    resp, _ = a.login("alice", USERS["alice"])
    assert resp.status == 503, resp
    assert set_cookies(resp, COOKIE) == []
    # Public routes do not need the store.
    resp, _ = b.request("GET", "/public/x", cookie=cookie)
    assert resp.status == 200

    redis.start()  # same port, empty
    deadline = time.monotonic() + 8
    fresh = None
    while time.monotonic() < deadline:
        resp, _ = a.login("alice", USERS["alice"])
        if resp.status == 200:
            fresh = set_cookies(resp, COOKIE)[0].value
            break
        assert resp.status == 503, resp
        time.sleep(0.25)
    assert fresh, "login did not work again within 8 s of Redis coming back"
    # The old session was only in Redis' memory: gone. The new one works on both instances.
    for gw in (a, b):
        deadline = time.monotonic() + 5
        while True:
            resp, rid = gw.request("GET", "/api/back", cookie=fresh)
            if resp.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert resp.status == 200, resp
        # Each event loop has its own Redis connection and reconnects on its own backoff
        # (at most 2 s): a loop still reconnecting answers 503 until it is back.
        deadline = time.monotonic() + 5
        while True:
            resp, rid = gw.request("GET", "/api/old", cookie=cookie)
            if resp.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert_refused(gw, echo, resp, rid, challenge=CHALLENGE_PLAIN)


def test_the_idle_timer_is_shared_through_redis(session_gateways, echo, redis):
    sessions = sessions_section(store=redis.url, idle="2s", absolute="1h")
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="idleA")
    b = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="idleB")
    cookie = a.login_cookie("alice")
    logged_in = time.monotonic()
    for i in range(6):  # keepalives alternating between the instances, 0.7 s apart: 4.2 s in all
        time.sleep(max(0.0, logged_in + 0.7 * (i + 1) - time.monotonic()))
        resp, _ = (a, b)[i % 2].keepalive(cookie)
        assert resp.status == 204, (i, resp)
    assert time.monotonic() - logged_in > 2.0 + 1.5
    for gw in (a, b):
        resp, _ = gw.request("GET", "/api/alive", cookie=cookie)
        assert resp.status == 200, resp
    time.sleep(3.2)
    for gw in (b, a):
        resp, rid = gw.request("GET", "/api/idle", cookie=cookie)
        record = assert_refused(gw, echo, resp, rid, challenge=CHALLENGE_PLAIN)
        # The key outlives the session (SessionRecord.forgetAt): expired on both instances.
        assert record["reason"] == "session_expired", record
    assert redis.keys() == [] or all(int(redis.cmd("TTL", k).strip()) != -1 for k in redis.keys())


def test_a_hung_redis_is_a_quick_503_and_recovers(session_gateways, echo, redis):
    """SIGSTOP: connections stay open but nothing answers. Cookie requests must not hang."""
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=redis.url))
    cookie = gw.login_cookie("alice")
    redis.pause()
    try:
        for i in range(3):
            start = time.monotonic()
            resp, rid = gw.request("GET", "/api/hung", cookie=cookie, timeout=10)
            took = time.monotonic() - start
            support.assert_uniform_raw(resp, 503, "service_unavailable")
            assert took < 2.5, f"503 took {took:.2f} s"
    finally:
        redis.resume()
    deadline = time.monotonic() + 6
    while True:
        resp, _ = gw.request("GET", "/api/resumed", cookie=cookie)
        if resp.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resp.status == 200, "the session did not work again after Redis resumed"


def test_redis_with_a_password(session_gateways, echo, tmp_path):
    """`redis://:PASSWORD@host:port/db` (percent-decoded); a wrong password never leaks."""
    server = RedisServer(tmp_path / "redis-auth", password="s3cr3t@pw")
    server.start()
    try:
        url = f"redis://:s3cr3t%40pw@127.0.0.1:{server.port}/3"
        gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=url), name="authed")
        cookie = gw.login_cookie("alice")
        resp, _ = gw.request("GET", "/api/authed", cookie=cookie)
        assert resp.status == 200
        assert len(server.cmd("--raw", "-n", "3", "KEYS", "*").split()) >= 1
        bad = session_gateways.start(upstream_url=echo.url, name="wrongpw",
                                     sessions=sessions_section(store=f"redis://:not-the-pw@127.0.0.1:{server.port}/3"))
        resp, _ = bad.login("alice", USERS["alice"])
        support.assert_uniform_raw(resp, 503, "service_unavailable")
        resp, _ = bad.request("GET", "/api/wrongpw", cookie=cookie)
        support.assert_uniform_raw(resp, 503, "service_unavailable")
        time.sleep(0.3)
        for g in (gw, bad):
            out = g.stderr() + g.stdout() + "\n".join(g.log_lines())
            assert "s3cr3t" not in out and "not-the-pw" not in out
    finally:
        server.stop()


def test_metrics_count_session_store_errors(session_gateways, echo, redis):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=redis.url))
    cookie = gw.login_cookie("alice")
    redis.stop()
    for _ in range(2):
        resp, _ = gw.request("GET", "/api/down", cookie=cookie)
        assert resp.status == 503
    metrics = support.raw_request(gw.admin_port, "GET", "/metrics").body.decode()
    store_lines = [line for line in metrics.splitlines()
                   if not line.startswith("#") and "session" in line and ("store" in line or "redis" in line)]
    assert store_lines and any(float(line.rsplit(" ", 1)[1]) > 0 for line in store_lines), metrics


# ---------------------------------------------------------------------------------------------
# Login failure counts in Redis (SPEC §3.2 Login admission)

def test_failures_spread_over_two_instances_lock_the_username_and_client_on_both(session_gateways, echo, redis):
    """max_failures counts every instance's failures: 3 on A and 2 on B (max_failures: 5) lock
    alice from this client on both, even with the right password; another user is not locked;
    Redis holds only a hash of username and client."""
    sessions = sessions_section(store=redis.url, idle="10m", absolute="1h", max_failures=5)
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwA")
    b = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwB")
    for i, gw in enumerate((a, b, a, b, a)):
        resp, rid = gw.login("alice", f"wrong-{i}")
        assert_refused(gw, echo, resp, rid, error="invalid_credentials", reason="invalid_credentials")
    for gw in (a, b, a, b):   # several: each worker has its own Redis connection
        resp, rid = gw.login("alice", USERS["alice"])
        support.assert_uniform_raw(resp, 429, "too_many_requests")
        assert not set_cookies(resp)
        retry_after = resp.header("Retry-After")
        assert retry_after is not None and 800 <= int(retry_after) <= 900, resp.headers
        assert gw.wait_log_record(rid)["reason"] == "throttled"
    assert b.login_cookie("bob")
    stored = redis.dump_all()
    assert "alice" not in stored and "127.0.0.1" not in stored, stored
    assert any(k.startswith("gatehouse:login:") for k in redis.keys()), redis.keys()


def test_a_success_clears_the_shared_count(session_gateways, echo, redis):
    sessions = sessions_section(store=redis.url, idle="10m", absolute="1h", max_failures=3)
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwA")
    b = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwB")
    for gw in (a, b):
        resp, _ = gw.login("alice", "wrong")
        assert resp.status == 401
    assert b.login_cookie("alice")       # clears the count on every instance
    for gw in (a, b):
        resp, _ = gw.login("alice", "wrong")
        assert resp.status == 401
    assert a.login_cookie("alice")


def test_with_redis_down_each_instance_counts_failures_itself(session_gateways, echo, redis):
    """A Redis error falls back to the instance's own count: guessing does not become free."""
    sessions = sessions_section(store=redis.url, idle="10m", absolute="1h", max_failures=3)
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwA")
    redis.stop()
    for i in range(3):
        resp, _ = a.login("alice", f"wrong-{i}")
        assert resp.status == 401, resp
    resp, rid = a.login("alice", USERS["alice"])
    assert resp.status == 429, resp      # locked by the local count (not 503 from a session store call)
    assert a.wait_log_record(rid)["reason"] == "throttled"
