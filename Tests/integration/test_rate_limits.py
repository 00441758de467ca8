"""Rate limits (SPEC §2 `rate_limits`, `routes[].rate_limit`, §3 step 9, §13), end to end:
the burst then the rate, keys kept apart (subjects, addresses behind a trusted proxy, API keys
set by a trusted proxy) and never fresh for a client inventing header values, anonymous callers
keyed by address, `Retry-After`, exactness across the workers of one instance (memory store)
and across two instances sharing one real `redis-server`, a Redis that stops (requests pass,
counted) and comes back (limits again), and a reload that changes a rate.

Timing: limits that must not refill during a test use per-hour rates; the one test of the
refill rate counts admissions over a measured window with a slack of one request each way.
Every loop is bounded in count and time; everything runs on 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import time

import jwt as pyjwt
import pytest

import support
from conftest import build_config
from session_support import RedisServer, session_gateways  # noqa: F401 (a fixture)
from support import LOOPBACK, GatewayProcess, free_port, wait_until

ISSUER = "https://issuer.test"
SECRET = b"rate-limit-tests-hs256-secret-0123456789"
APP_ORIGIN = "https://app.example.com"


def token(sub: str) -> str:
    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "sub": sub, "exp": now + 600, "iat": now}, SECRET, algorithm="HS256")


def route(name: str, path: str, limit: dict, auth: str = "required") -> dict:
    return {"name": name, "match": {"path": path}, "upstream": "api", "auth": auth, "rate_limit": limit}


class Gateways:
    """Starts gateways with a JWT issuer, a CORS policy and the given routes / rate_limits."""

    def __init__(self, binary: str, tmp_path):
        self.binary = binary
        self.tmp_path = tmp_path
        self.started: list[GatewayProcess] = []
        (tmp_path / "hs256.key").write_bytes(SECRET)

    def config(self, gw: GatewayProcess | None, *, echo, routes: list, store: str = "memory", trusted=None,
               workers: int = 2) -> dict:
        port = gw.port if gw else free_port()
        admin = gw.admin_port if gw else free_port()
        log = gw.access_log if gw else self.tmp_path / f"gw{len(self.started)}-access.log"
        extra = {
            "jwt": {"issuers": [{"name": "local", "issuer": ISSUER, "algorithms": ["HS256"], "secret_file": "hs256.key"}]},
            "cors": {"allow_origins": [APP_ORIGIN], "allow_methods": ["GET"], "expose_headers": ["Retry-After"]},
            "rate_limits": {"store": store},
        }
        server = {"workers": workers}
        if trusted is not None:
            server["trusted_proxies"] = trusted
        return build_config(port, admin, log, upstreams={"api": echo}, routes=routes, server=server, extra=extra)

    def start(self, **kw) -> GatewayProcess:
        config = self.config(None, **kw)
        name = f"gw{len(self.started)}"
        gw = GatewayProcess(self.binary, self.tmp_path, config, int(config["server"]["listen"][0].split(":")[1]),
                            int(config["admin"]["listen"].split(":")[1]), self.tmp_path / f"{name}-access.log", name=name)
        gw.kw = kw
        self.started.append(gw)
        gw.start()
        return gw

    def close(self, dump: bool):
        for gw in self.started:
            gw.kill()
            if dump:
                print(f"---- stderr of {gw.config_path.name} ----\n{gw.stderr()[-3000:]}")


@pytest.fixture
def gateways(gatehouse_bin, tmp_path, request):
    yield from support.closed_after(Gateways(gatehouse_bin, tmp_path), request)


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def get(gw: GatewayProcess, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One request on a fresh connection (so that requests spread over the workers)."""
    conn = http.client.HTTPConnection(LOOPBACK, gw.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def statuses(gw, path, n, headers=None) -> list[int]:
    return [get(gw, path, headers)[0] for _ in range(n)]


def bearer(sub: str) -> dict:
    return {"Authorization": f"Bearer {token(sub)}"}


def metric(gw: GatewayProcess, name: str) -> float:
    conn = http.client.HTTPConnection(LOOPBACK, gw.admin_port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


SLOW = {"rate": "1/h", "burst": 3, "key": "subject"}


# ---------------------------------------------------------------------------------------------
# The bucket

def test_the_burst_passes_then_429_with_retry_after_cors_and_the_log_reason(gateways, echo):
    gw = gateways.start(echo=echo, routes=[route("api", "/api/**", {"rate": "1/m", "burst": 3, "key": "subject"})])
    headers = {**bearer("alice"), "Origin": APP_ORIGIN, "X-Request-Id": "rl-burst"}
    assert statuses(gw, "/api/x", 3, bearer("alice")) == [200, 200, 200]
    status, resp_headers, body = get(gw, "/api/x", headers)
    assert status == 429
    support.assert_uniform_error(status, lambda n: resp_headers.get(n.lower()), body, 429, "too_many_requests")
    assert 58 <= int(resp_headers["retry-after"]) <= 60, resp_headers
    assert resp_headers["access-control-allow-origin"] == APP_ORIGIN
    assert resp_headers["x-request-id"] == "rl-burst"
    record = gw.wait_log_record("rl-burst")
    assert (record["status"], record["decision"], record["reason"]) == (429, "deny", "rate_limited")
    assert record["route"] == "api" and record["subject"] == "alice" and record["auth"] == "jwt"
    assert echo.request_count == 3, "a refused request never reaches the upstream"
    wait_until(lambda: metric(gw, 'gatehouse_rate_limited_total{route="api"}') == 1, 3, message="the route's metric")


def test_the_rate_refills_the_bucket(gateways, echo):
    """4/s, burst 2: over a measured window, admitted = burst + 4 × elapsed, ± 1."""
    gw = gateways.start(echo=echo, routes=[route("api", "/api/**", {"rate": "4/s", "burst": 2, "key": "subject"})])
    headers = bearer("rater")
    admitted = 0
    start = time.monotonic()
    first_ok = None
    for _ in range(60):  # about 3 s at 20 requests per second
        status = get(gw, "/api/x", headers)[0]
        assert status in (200, 429)
        if status == 200:
            admitted += 1
            first_ok = first_ok or time.monotonic()
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    expected = 2 + 4 * elapsed
    assert expected - 2 <= admitted <= expected + 1, (admitted, elapsed)
    # Right after, the bucket is empty: the next refill is at most one interval (0.25 s) away.
    status, resp_headers, _ = get(gw, "/api/x", headers)
    if status == 429:
        assert resp_headers["retry-after"] == "1"


def test_retry_after_says_when_a_slow_bucket_refills(gateways, echo):
    gw = gateways.start(echo=echo, routes=[route("api", "/api/**", {"rate": "2/h", "burst": 1, "key": "subject"})])
    assert get(gw, "/api/x", bearer("r"))[0] == 200
    status, headers, _ = get(gw, "/api/x", bearer("r"))
    assert status == 429
    assert 1790 <= int(headers["retry-after"]) <= 1800, headers  # one interval: 30 minutes


# ---------------------------------------------------------------------------------------------
# Keys

def test_two_subjects_have_two_buckets_and_routes_are_apart(gateways, echo):
    gw = gateways.start(echo=echo, routes=[route("a", "/a/**", SLOW), route("b", "/b/**", SLOW)])
    assert statuses(gw, "/a/x", 4, bearer("alice")) == [200, 200, 200, 429]
    assert statuses(gw, "/a/x", 4, bearer("bob")) == [200, 200, 200, 429]
    assert statuses(gw, "/b/x", 4, bearer("alice")) == [200, 200, 200, 429]


def test_anonymous_callers_on_key_subject_are_keyed_by_address(gateways, echo):
    gw = gateways.start(echo=echo, trusted=["127.0.0.1/32"],
                        routes=[route("opt", "/opt/**", SLOW, auth="optional")])
    one = {"X-Forwarded-For": "203.0.113.1"}
    two = {"X-Forwarded-For": "203.0.113.2"}
    assert statuses(gw, "/opt/x", 4, one) == [200, 200, 200, 429]
    assert statuses(gw, "/opt/x", 4, two) == [200, 200, 200, 429]
    assert statuses(gw, "/opt/x", 4, {**one, **bearer("alice")}) == [200, 200, 200, 429], \
        "an authenticated caller from the same address has its own bucket"


def test_two_addresses_behind_a_trusted_proxy_and_ipv6_per_slash_64(gateways, echo):
    gw = gateways.start(echo=echo, trusted=["127.0.0.1/32"],
                        routes=[route("pub", "/pub/**", {"rate": "1/h", "burst": 2, "key": "client"}, auth="none")])
    assert statuses(gw, "/pub/x", 3, {"X-Forwarded-For": "198.51.100.1"}) == [200, 200, 429]
    assert statuses(gw, "/pub/x", 3, {"X-Forwarded-For": "198.51.100.2"}) == [200, 200, 429]
    # One /64: one client, whatever address of it it uses.
    assert statuses(gw, "/pub/x", 2, {"X-Forwarded-For": "2001:db8:1:2::1"}) == [200, 200]
    assert statuses(gw, "/pub/x", 1, {"X-Forwarded-For": "2001:db8:1:2:ffff::9"}) == [429]
    assert statuses(gw, "/pub/x", 1, {"X-Forwarded-For": "2001:db8:1:3::1"}) == [200]


def test_api_keys_set_by_a_trusted_proxy_are_buckets(gateways, echo):
    limit = {"rate": "1/h", "burst": 2, "key": "header:X-Api-Key"}
    gw = gateways.start(echo=echo, trusted=["127.0.0.1/32"], routes=[route("partner", "/p/**", limit, auth="none")])
    assert statuses(gw, "/p/x", 3, {"X-Api-Key": "key-one"}) == [200, 200, 429]
    assert statuses(gw, "/p/x", 3, {"X-Api-Key": "key-two"}) == [200, 200, 429]
    # Without the header: the client address (the proxy's own here).
    assert statuses(gw, "/p/x", 3) == [200, 200, 429]


def test_a_client_inventing_header_values_gets_no_fresh_buckets(gateways, echo):
    """The peer (127.0.0.1) is not a trusted proxy: its X-Api-Key and X-Forwarded-For are not
    believed, every request counts under its address."""
    limit = {"rate": "1/h", "burst": 3, "key": "header:X-Api-Key"}
    gw = gateways.start(echo=echo, trusted=["10.0.0.0/8"], routes=[route("partner", "/p/**", limit, auth="none")])
    got = [get(gw, "/p/x", {"X-Api-Key": f"invented-{i}", "X-Forwarded-For": f"203.0.113.{i}"})[0] for i in range(6)]
    assert got == [200, 200, 200, 429, 429, 429]


# ---------------------------------------------------------------------------------------------
# Exactness: the workers of one instance, two instances on one Redis

def hammer(gws: list[GatewayProcess], path: str, total: int, headers: dict, threads: int = 16) -> list[int]:
    def one(i):
        return get(gws[i % len(gws)], path, headers)[0]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(total), timeout=60))


def test_memory_store_is_exact_across_the_workers_of_one_instance(gateways, echo):
    gw = gateways.start(echo=echo, workers=2,
                        routes=[route("api", "/api/**", {"rate": "1/h", "burst": 40, "key": "subject"})])
    got = hammer([gw], "/api/x", 160, bearer("many"))
    assert got.count(200) == 40 and got.count(429) == 120, (got.count(200), got.count(429))


def test_two_instances_on_one_redis_share_one_budget_exactly(gateways, echo, redis):
    routes = [route("api", "/api/**", {"rate": "1/h", "burst": 30, "key": "subject"})]
    a = gateways.start(echo=echo, routes=routes, store=redis.url)
    b = gateways.start(echo=echo, routes=routes, store=redis.url)
    got = hammer([a, b], "/api/x", 120, bearer("shared"))
    assert got.count(200) == 30 and got.count(429) == 90, (got.count(200), got.count(429))
    keys = [k for k in redis.keys() if k.startswith("gatehouse:ratelimit:")]
    assert len(keys) == 1 and keys[0].startswith("gatehouse:ratelimit:api:"), keys
    assert "shared" not in redis.dump_all(), "the subject never reaches Redis as such"
    # Another subject: its own bucket, on both instances.
    assert [get(x, "/api/x", bearer("other"))[0] for x in (a, b, a, b)] == [200, 200, 200, 200]


def test_redis_stopped_lets_requests_pass_counted_then_limits_again(gateways, echo, redis):
    routes = [route("api", "/api/**", {"rate": "1/h", "burst": 2, "key": "subject"})]
    gw = gateways.start(echo=echo, routes=routes, store=redis.url)
    assert statuses(gw, "/api/x", 3, bearer("down")) == [200, 200, 429]
    redis.stop()
    assert statuses(gw, "/api/x", 8, bearer("down")) == [200] * 8, "a store that does not answer lets requests pass"
    assert metric(gw, "gatehouse_rate_limit_store_errors_total") >= 8
    logged = gw.stderr().count("the store did not answer")
    assert logged == 1, "logged at most once per 10 s (the message, not each request)"
    redis.start()  # empty: nothing persisted
    # Each worker reconnects by itself within its backoff (at most 2 s); then the limit holds.
    # Every worker must be back (requests go to either): the last four of six all refused.
    def limited_again():
        return statuses(gw, "/api/x", 6, bearer("back"))[-4:] == [429] * 4
    wait_until(limited_again, 15, interval=0.3, message="limits again on every worker after Redis came back")
    assert statuses(gw, "/api/x", 2, bearer("back")) == [429, 429]


# ---------------------------------------------------------------------------------------------
# Reload

def test_a_reload_that_changes_the_rate_applies_to_later_requests(gateways, echo):
    gw = gateways.start(echo=echo, routes=[route("api", "/api/**", {"rate": "1/h", "burst": 2, "key": "subject"})])
    assert statuses(gw, "/api/x", 3, bearer("reload")) == [200, 200, 429]
    before = metric(gw, "gatehouse_config_reloads_total")
    new = gateways.config(gw, echo=echo, routes=[route("api", "/api/**", {"rate": "1/h", "burst": 5, "key": "subject"})])
    gw.reload(new)
    wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") > before, 5, message="the reload")
    # The bucket is kept (2 used); the larger burst admits 3 more, then 429.
    assert statuses(gw, "/api/x", 4, bearer("reload")) == [200, 200, 200, 429]
    # And a reload that removes the limit lets everything through.
    before = metric(gw, "gatehouse_config_reloads_total")
    plain = gateways.config(gw, echo=echo, routes=[{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}])
    gw.reload(plain)
    wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") > before, 5, message="the reload")
    assert statuses(gw, "/api/x", 3, bearer("reload")) == [200, 200, 200]


# ---------------------------------------------------------------------------------------------
# check and explain

def test_check_refuses_hostile_limits_with_their_place(run_cli, tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "upstreams:\n  api: { targets: [\"http://127.0.0.1:9\"] }\n"
        "routes:\n  - { name: a, match: { path: \"/a\" }, upstream: api, auth: none,\n"
        "      rate_limit: { rate: 0/s, burst: 99999999999999999999, key: \"header:bad name\" } }\n")
    out = run_cli("check", "--config", "bad.yaml")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 3, out.stderr
    assert all(line.startswith("bad.yaml:5:") for line in errors), out.stderr
    assert "configuration bad.yaml has 3 errors" in out.stdout


def test_explain_shows_the_limit_that_applies(run_cli, tmp_path):
    (tmp_path / "hs256.key").write_bytes(SECRET)
    (tmp_path / "gw.yaml").write_text(
        "jwt:\n  issuers: [{ name: local, issuer: \"" + ISSUER + "\", algorithms: [HS256], secret_file: hs256.key }]\n"
        "upstreams:\n  api: { targets: [\"http://127.0.0.1:9\"] }\n"
        "routes:\n  - { name: api, match: { path: \"/api/**\" }, upstream: api,\n"
        "      rate_limit: { rate: 20/s, burst: 40, key: subject } }\n")
    out = run_cli("explain", "--config", "gw.yaml", "GET", "/api/x", "--header", f"Authorization: Bearer {token('alice')}")
    assert out.returncode == 0, out.stderr
    assert "rate limit:      20/s, burst 40, key subject" in out.stdout, out.stdout
    assert "api subject local:alice" in out.stdout
    out = run_cli("explain", "--json", "--config", "gw.yaml", "GET", "/api/x")
    doc = json.loads(out.stdout)
    assert doc["rate_limit"]["rate"] == "20/s" and doc["rate_limit"]["burst"] == 40 and doc["status"] == 401


# ---------------------------------------------------------------------------------------------
# Session callers: the store lookup first, then the limit (memory, and Redis for both)

@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_session_callers_are_keyed_by_their_subject_after_the_session_lookup(session_gateways, echo, tmp_path, shared):
    from session_support import sessions_section
    routes = [route("api", "/api/**", {"rate": "1/h", "burst": 2, "key": "subject"})]
    redis_server = None
    extra = {}
    store = "memory"
    if shared:
        redis_server = RedisServer(tmp_path / "redis-sessions")
        redis_server.start()
        store = redis_server.url
        extra = {"rate_limits": {"store": redis_server.url}}
    try:
        gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(store=store), routes=routes,
                                    extra=extra)
        alice, bob = gw.login_cookie("alice"), gw.login_cookie("bob")
        got = [gw.request("GET", "/api/x", cookie=alice)[0].status for _ in range(3)]
        assert got == [200, 200, 429], got
        resp, rid = gw.request("GET", "/api/x", cookie=alice)
        assert resp.status == 429 and resp.header("Retry-After"), resp
        record = gw.wait_log_record(rid)
        assert (record["reason"], record["auth"], record["subject"]) == ("rate_limited", "session", "alice"), record
        assert [gw.request("GET", "/api/x", cookie=bob)[0].status for _ in range(3)] == [200, 200, 429]
        if shared:
            assert len([k for k in redis_server.keys() if k.startswith("gatehouse:ratelimit:api:")]) == 2
    finally:
        if redis_server:
            redis_server.stop()


def test_a_reload_from_the_memory_store_to_redis_moves_the_buckets_there(gateways, echo, redis):
    routes = [route("api", "/api/**", {"rate": "1/h", "burst": 2, "key": "subject"})]
    gw = gateways.start(echo=echo, routes=routes)
    assert statuses(gw, "/api/x", 3, bearer("mover")) == [200, 200, 429]
    before = metric(gw, "gatehouse_config_reloads_total")
    gw.reload(gateways.config(gw, echo=echo, routes=routes, store=redis.url))
    wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") > before, 5, message="the reload")
    # A fresh bucket in Redis (the memory one stays behind), then the limit.
    assert statuses(gw, "/api/x", 3, bearer("mover")) == [200, 200, 429]
    assert [k for k in redis.keys() if k.startswith("gatehouse:ratelimit:api:")], redis.keys()


def test_a_huge_api_key_from_a_trusted_proxy_is_one_bounded_bucket(gateways, echo, redis):
    limit = {"rate": "1/h", "burst": 1, "key": "header:X-Api-Key"}
    gw = gateways.start(echo=echo, trusted=["127.0.0.1/32"], store=redis.url,
                        routes=[route("partner", "/p/**", limit, auth="none")])
    huge = "k" * 8000
    assert statuses(gw, "/p/x", 2, {"X-Api-Key": huge}) == [200, 429]
    assert statuses(gw, "/p/x", 1, {"X-Api-Key": huge + "2"}) == [200]
    keys = [k for k in redis.keys() if k.startswith("gatehouse:ratelimit:")]
    assert len(keys) == 2 and all(len(k) < 100 for k in keys), keys
