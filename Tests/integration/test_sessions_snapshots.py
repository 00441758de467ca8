"""Session-cookie requests and reloads (SPEC §3's snapshot rule, §3.2 "Sessions follow the users
file"):

- a request is decided entirely under the config it started with, however long the session
  store takes: a reload that reorders the routes while Redis is frozen must not pair the
  request's route with another route's `require` (it once answered 200 to a reader on /admin);
- every request authenticated by a session re-reads the user's roles from the current users
  file and `sessions.login.roles`: a user removed from the users file is refused
  (`session_revoked`), a role taken away is a 403 — with the memory store and with Redis.

Every wait is bounded and ends on a positive signal (the reload's log line, bytes waiting in
Redis' socket), never a bare sleep.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest

import support
from session_support import (CHALLENGE_PLAIN, USERS, RedisServer, assert_refused, received, session_gateways,
                             sessions_section, upstream_record)


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def reload_and_wait(gw, config: dict):
    """SIGHUP with `config`; returns once the gateway logged that the reload is done."""
    before = gw.stderr().count("configuration reloaded")
    gw.reload(config)
    support.wait_until(lambda: gw.stderr().count("configuration reloaded") > before, 5, message="the reload")
    gw.config = config


def redis_unread_bytes(port: int) -> int:
    """Bytes clients have sent to the Redis server on `port` that it has not read (Recv-Q of its
    accepted sockets): with the server stopped, a command the gateway sent shows up here."""
    out = subprocess.run(["ss", "-Htn", f"( sport = :{port} )"], capture_output=True, text=True, timeout=5).stdout
    total = 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "ESTAB":
            total += int(fields[1])
    return total


# ---------------------------------------------------------------------------------------------
# A reload while the session store is asked (SPEC §3)

def reordered(routes: list[dict]) -> list[dict]:
    """The same routes with `admin` (require roles_any: admin) moved to the end and `api`
    (no require) into its place: the old route index now names a route without `require`."""
    by_name = {r["name"]: r for r in routes}
    names = [r["name"] for r in routes]
    i, j = names.index("admin"), names.index("api")
    names[i], names[j] = names[j], names[i]
    return [by_name[n] for n in names]


def test_a_reload_during_a_redis_lookup_never_decides_with_another_routes_require(session_gateways, echo, redis):
    if not shutil.which("ss"):
        pytest.skip("ss (iproute2) not installed")
    # One loop, so that its Redis connection is the one the warm-up request opened.
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=redis.url),
                                server={"workers": 1})
    cookie = gw.login_cookie("bob")                 # role reader
    decided = []
    for attempt in range(4):
        resp, _ = gw.request("GET", "/api/warm", cookie=cookie)
        assert resp.status == 200, resp
        config = dict(gw.config, routes=reordered(gw.config["routes"]))
        redis.pause()
        result = {}
        rid = f"race-{attempt}-{time.monotonic_ns()}"
        thread = threading.Thread(target=lambda: result.update(
            response=gw.request("GET", "/admin/x", cookie=cookie, request_id=rid, timeout=10)[0]))
        try:
            unread = redis_unread_bytes(redis.port)
            thread.start()
            # The gateway has sent the lookup: it sits unread in the frozen Redis' socket.
            support.wait_until(lambda: redis_unread_bytes(redis.port) > unread, 3, interval=0.002,
                               message="the session lookup sent to Redis")
            reload_and_wait(gw, config)             # admin and api swap places
        finally:
            redis.resume()
        thread.join(timeout=10)
        response = result["response"]
        record = gw.wait_log_record(rid)
        assert response.status != 200, f"a reader reached /admin after a reload during the lookup: {record}"
        assert response.status in (403, 503), (response, record)
        if response.status == 503:
            # Redis' 500 ms command timeout ran out before the reload finished: no race shown.
            assert record["reason"] == "session_store_down", record
            continue
        assert_refused(gw, echo, response, rid, status=403, error="forbidden", reason="insufficient_role")
        assert record["route"] == "admin", record
        decided.append(attempt)
        if len(decided) == 2:
            break
    assert decided, "every attempt timed out in Redis before the reload landed: the race was never run"
    # Requests that start after the reload are decided under it.
    resp, rid = gw.request("GET", "/admin/after", cookie=cookie)
    assert_refused(gw, echo, resp, rid, status=403, error="forbidden", reason="insufficient_role")


# ---------------------------------------------------------------------------------------------
# Sessions follow the users file (SPEC §3.2)

@pytest.fixture(params=["memory", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        yield "memory"
        return
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server.url
    server.stop()


def test_a_user_removed_from_the_users_file_loses_their_open_session(session_gateways, echo, store):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=store))
    bob = gw.login_cookie("bob")
    alice = gw.login_cookie("alice")
    resp, _ = gw.request("GET", "/api/before", cookie=bob)
    assert resp.status == 200

    session_gateways.users({name: pw for name, pw in USERS.items() if name != "bob"})
    reload_and_wait(gw, gw.config)
    for path in ("/api/after", "/admin/x"):
        resp, rid = gw.request("GET", path, cookie=bob)
        record = assert_refused(gw, echo, resp, rid, reason="session_revoked", challenge=CHALLENGE_PLAIN)
        assert record["auth"] == "session", record
    resp, rid = gw.keepalive(bob)
    assert_refused(gw, None, resp, rid, reason="session_revoked")
    # The others keep theirs; a public route needs no session at all.
    resp, rid = gw.request("GET", "/admin/x", cookie=alice)
    assert resp.status == 200, resp
    resp, _ = gw.request("GET", "/public/x", cookie=bob)
    assert resp.status == 200
    # And the removed user cannot log in again.
    resp, _ = gw.login("bob", USERS["bob"])
    assert resp.status == 401


def test_a_role_taken_away_is_refused_and_a_role_given_is_granted_at_once(session_gateways, echo, store):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=store))
    alice = gw.login_cookie("alice")                # admin, ops
    bob = gw.login_cookie("bob")                    # reader
    resp, rid = gw.request("GET", "/admin/x", cookie=alice)
    assert resp.status == 200
    resp, rid = gw.request("GET", "/admin/x", cookie=bob)
    assert resp.status == 403

    roles = {"alice": ["ops"], "bob": ["reader", "admin"]}
    reload_and_wait(gw, dict(gw.config, sessions=sessions_section(store=store, roles=roles)))
    resp, rid = gw.request("GET", "/admin/x", cookie=alice)
    assert_refused(gw, echo, resp, rid, status=403, error="forbidden", reason="insufficient_role")
    resp, rid = gw.request("GET", "/api/x", cookie=alice)
    assert resp.status == 200, resp
    assert received(upstream_record(echo, rid), "X-Auth-Roles") == ["ops"]
    resp, rid = gw.request("GET", "/admin/x", cookie=bob)
    assert resp.status == 200, resp
    assert received(upstream_record(echo, rid), "X-Auth-Roles") == ["reader,admin"]
