"""Session cookies end to end with the memory store (SPEC §2 `sessions`, §3 step 4, §3.1, §5.3,
§7.1, §9): the seed's heartbeat script (requests.Session: login, keepalives past the idle
timeout, 401 after it, login again), JSON login, the absolute timeout, logout and revocation,
session fixation, login throttling, equal answers for an unknown user and a wrong password,
the cookie's attributes, the cookie never reaching the upstream, identity headers, `require`,
a Bearer token next to a cookie, and `explain` with a cookie.

Every loop is bounded in count and time; the timeouts are short (idle 2 s, absolute 3 s).
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt as pyjwt
import pytest
import requests

import support
from session_support import (CHALLENGE_INVALID, CHALLENGE_PLAIN, CHALLENGE_SCOPE, COOKIE, ROLES, USERS, SetCookie,
                             assert_no_secret_in_logs, assert_refused, forged_session_id, received, session_config,
                             session_gateways, sessions_section, set_cookies, upstream_record, write_users_file)

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43,}$")


def parse_rfc3339(text: str) -> float:
    assert RFC3339_UTC.match(text), f"expires_at {text!r} is not RFC 3339 UTC"
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sleep_until(deadline: float):
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def sleep_to_fraction(fraction: float):
    """Sleeps until the wall clock's sub-second part is `fraction` (within the next 1 s)."""
    now = time.time()
    wait = (fraction - (now % 1.0)) % 1.0
    time.sleep(wait)


# ---------------------------------------------------------------------------------------------
# The seed's scenario, as a script would run it

def test_seed_heartbeat_script_keeps_the_session_past_the_idle_timeout(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="2s", absolute="1h"))
    s = requests.Session()

    before = time.time()
    r = s.post(gw.url("/login"), data={"username": "alice", "password": USERS["alice"]}, timeout=5)
    logged_in = time.monotonic()
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    doc = r.json()
    assert set(doc) == {"subject", "roles", "expires_at"}, doc
    assert doc["subject"] == "alice"
    assert doc["roles"] == ROLES["alice"]
    expires = parse_rfc3339(doc["expires_at"])
    assert before + 3600 - 2 <= expires <= time.time() + 3600 + 2, (doc, before)
    cookies = set_cookies(r, COOKIE)
    assert len(cookies) == 1, r.headers
    cookie = cookies[0]
    assert SESSION_ID.match(cookie.value), cookie
    assert cookie.attrs.get("httponly") is True, cookie
    assert cookie.attrs.get("path") == "/", cookie
    assert str(cookie.attrs.get("samesite")).lower() == "lax", cookie
    assert "secure" not in cookie.attrs, cookie  # secure: false in this config
    assert COOKIE in s.cookies

    # 5 keepalives 1 s apart: 4 s in all, twice the idle timeout.
    for i in range(5):
        sleep_until(logged_in + 1.0 * (i + 1) - 0.2)
        k = s.post(gw.url("/keepalive"), timeout=5)
        assert k.status_code == 204, (i, k.status_code, k.text)
        assert k.content == b""
    assert time.monotonic() - logged_in > 2.0 + 1.5
    r = s.get(gw.url("/api/after-keepalives"), timeout=5)
    assert r.status_code == 200, r.text
    assert support.pairs_get(r.json()["headers"], "X-Auth-Subject") == "alice"

    # The script stops; after the idle timeout the session is over.
    time.sleep(3.2)
    rid = "seed-expired-1"
    r = s.get(gw.url("/api/after-idle"), headers={"X-Request-Id": rid}, timeout=5)
    support.assert_uniform_requests(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == CHALLENGE_PLAIN
    record = gw.wait_log_record(rid)
    assert (record["status"], record["decision"], record["reason"], record["auth"]) == \
        (401, "deny", "session_expired", "session"), record
    k = s.post(gw.url("/keepalive"), timeout=5)
    assert k.status_code == 401

    # Log in again: a new session that works.
    r = s.post(gw.url("/login"), data={"username": "alice", "password": USERS["alice"]}, timeout=5)
    assert r.status_code == 200, r.text
    assert set_cookies(r, COOKIE)[0].value != cookie.value
    r = s.get(gw.url("/api/again"), timeout=5)
    assert r.status_code == 200
    assert_no_secret_in_logs(gw, cookie.value, USERS["alice"])


def test_json_login_and_a_session_used_by_requests(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    s = requests.Session()
    r = s.post(gw.url("/login"), json={"username": "bob", "password": USERS["bob"]}, timeout=5)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["subject"] == "bob" and doc["roles"] == ["reader"]
    parse_rfc3339(doc["expires_at"])
    assert r.headers.get("Cache-Control") == "no-store"
    r = s.get(gw.url("/api/json-login"), timeout=5)
    assert r.status_code == 200
    assert support.pairs_get(r.json()["headers"], "X-Auth-Subject") == "bob"
    # JSON with a charset parameter, and a form with a charset, are the same media types.
    r, _ = gw.request("POST", "/login", headers=[("Content-Type", "application/json; charset=utf-8")],
                      body=json.dumps({"username": "alice", "password": USERS["alice"]}).encode())
    assert r.status == 200, r


def test_login_answers_with_the_absolute_expiry_and_a_matching_max_age(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="10m", absolute="2h"))
    before = time.time()
    resp, _ = gw.login("alice", USERS["alice"])
    assert resp.status == 200
    expires = parse_rfc3339(resp.json()["expires_at"])
    assert before + 7200 - 2 <= expires <= time.time() + 7200 + 2
    cookie = set_cookies(resp, COOKIE)[0]
    assert 7200 - 2 <= int(cookie.attrs["max-age"]) <= 7200, cookie


# ---------------------------------------------------------------------------------------------
# Timeouts

def test_absolute_timeout_ends_a_session_even_with_keepalives(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="2s", absolute="3s"))
    cookie = gw.login_cookie("alice")
    logged_in = time.monotonic()
    statuses, first_refusal = [], None
    for i in range(10):  # every 0.5 s for 5 s
        sleep_until(logged_in + 0.5 * (i + 1))
        resp, rid = gw.keepalive(cookie)
        statuses.append((round(time.monotonic() - logged_in, 2), resp.status))
        if resp.status == 401 and first_refusal is None:
            first_refusal = rid
    assert all(s in (204, 401) for _, s in statuses), statuses
    first_401 = next((t for t, s in statuses if s == 401), None)
    assert first_401 is not None, f"keepalives kept the session past its absolute timeout: {statuses}"
    # Alive while young (2 s: whole-second bookkeeping may cut up to 1 s), over by 3 s (+ slack).
    assert all(s == 204 for t, s in statuses if t < 1.9), statuses
    # Session times have one-second resolution: never early, at most a second late.
    assert first_401 <= 3.0 + 1.2, statuses
    assert all(s == 401 for t, s in statuses if t >= first_401), statuses
    record = gw.wait_log_record(first_refusal)
    assert (record["status"], record["decision"], record["reason"], record["auth"]) == \
        (401, "deny", "session_expired", "session"), record
    resp, rid = gw.request("GET", "/api/absolute", cookie=cookie)
    assert_refused(gw, echo, resp, rid, challenge=CHALLENGE_PLAIN)


def test_an_expired_session_is_logged_as_expired_on_every_use(session_gateways, echo):
    """SPEC §9: the access log records the precise reason; the store keeps the record past
    the session's end, so a cookie of an expired session is `session_expired` each time, not
    `session_unknown` from its second use on."""
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="2s", absolute="1h"))
    cookie = gw.login_cookie("alice")
    time.sleep(3.2)
    reasons = []
    for i in range(3):
        resp, rid = gw.request("GET", f"/api/expired-{i}", cookie=cookie)
        assert resp.status == 401
        reasons.append(gw.wait_log_record(rid)["reason"])
    assert reasons == ["session_expired"] * 3, reasons


def test_every_authenticated_request_refreshes_the_idle_timer(session_gateways, echo):
    """No keepalives: GETs 0.7 s apart keep a 2 s idle session alive for 4 s."""
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="2s", absolute="1h"))
    cookie = gw.login_cookie("alice")
    logged_in = time.monotonic()
    for i in range(6):
        sleep_until(logged_in + 0.7 * (i + 1))
        resp, rid = gw.request("GET", f"/api/busy/{i}", cookie=cookie)
        assert resp.status == 200, (i, resp, gw.wait_log_record(rid).get("reason"))
    assert time.monotonic() - logged_in > 4.0


def test_idle_timeout_is_not_cut_short_by_whole_second_rounding(session_gateways, echo):
    """idle_timeout 2 s: a keepalive, then 1.25 s of silence, must still find the session.
    The keepalive is sent just before a wall-clock second ends and the next request just after
    the second after that begins, so whole-second timestamps see a gap of 2 s."""
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="2s", absolute="1h"))
    cookie = gw.login_cookie("alice")
    sleep_to_fraction(0.90)
    resp, _ = gw.keepalive(cookie)
    assert resp.status == 204
    touched = time.monotonic()
    sleep_to_fraction(0.15)   # ~0.25 s later, a new second
    time.sleep(max(0.0, 1.25 - (time.monotonic() - touched)))
    idle = time.monotonic() - touched
    resp, rid = gw.request("GET", "/api/rounding", cookie=cookie)
    record = gw.wait_log_record(rid)
    assert idle < 1.6
    assert resp.status == 200, (f"the session ended after {idle:.2f} s without activity, idle_timeout is 2 s: "
                                f"{record.get('reason')}")


def test_absolute_timeout_is_not_cut_short_by_whole_second_rounding(session_gateways, echo):
    """absolute_timeout 3 s: a session logged in 2.3 s ago is still alive."""
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="3s", absolute="3s"))
    sleep_to_fraction(0.92)
    cookie = gw.login_cookie("alice")
    logged_in = time.monotonic()
    time.sleep(1.1)
    resp, _ = gw.keepalive(cookie)
    assert resp.status == 204
    sleep_until(logged_in + 2.3)
    age = time.monotonic() - logged_in
    resp, rid = gw.request("GET", "/api/rounding", cookie=cookie)
    record = gw.wait_log_record(rid)
    assert age < 2.6
    assert resp.status == 200, (f"the session ended {age:.2f} s after login, absolute_timeout is 3 s: "
                                f"{record.get('reason')}")


# ---------------------------------------------------------------------------------------------
# Users file schemes and reloads

def test_users_file_written_by_htpasswd_and_sha512_crypt(session_gateways, echo, gatehouse_bin):
    """SPEC §2: htpasswd as `htpasswd -B` writes it ($2y$), bcrypt $2b$, SHA-512 crypt ($6$)."""
    if not (shutil.which("htpasswd") and shutil.which("mkpasswd")):
        pytest.skip("htpasswd / mkpasswd not installed")
    def run(*args):
        return subprocess.run(args, capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    lines = [
        run("htpasswd", "-nbB", "-C", "5", "alice", USERS["alice"]),
        "bob:" + run("mkpasswd", "-m", "sha-512", USERS["bob"]),
        "carol:" + run("mkpasswd", "-m", "sha-512", "-R", "6000", USERS["carol"]),
    ]
    assert lines[0].startswith("alice:$2y$") and "$6$" in lines[1] and "rounds=6000" in lines[2], lines
    (session_gateways.workdir / "users.htpasswd").write_text("\n".join(lines) + "\n")
    gw = session_gateways.start(upstream_url=echo.url)
    for user in ("alice", "bob", "carol"):
        cookie = gw.login_cookie(user)
        resp, rid = gw.request("GET", "/api/scheme", cookie=cookie)
        assert resp.status == 200
        assert received(upstream_record(echo, rid), "X-Auth-Subject") == [user]
        resp, _ = gw.login(user, USERS[user] + "x")
        assert resp.status == 401


def test_a_reload_keeps_memory_sessions(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    gw.send_signal(signal.SIGHUP)
    gw.wait_stderr("configuration reloaded", timeout=5)
    resp, rid = gw.request("GET", "/api/after-reload", cookie=cookie)
    assert resp.status == 200, (resp, gw.wait_log_record(rid).get("reason"))
    # A reload that changes only the cookie's SameSite keeps them too.
    before = gw.stderr().count("configuration reloaded")
    changed = dict(gw.config)
    changed["sessions"] = dict(changed["sessions"], cookie=dict(changed["sessions"]["cookie"], same_site="Strict"))
    gw.reload(changed)
    support.wait_until(lambda: gw.stderr().count("configuration reloaded") > before, 5, message="reload")
    resp, rid = gw.request("GET", "/api/after-reload", cookie=cookie)
    assert resp.status == 200, (resp, gw.wait_log_record(rid).get("reason"))


def test_a_reload_that_changes_the_idle_timeout_keeps_memory_sessions(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    changed = dict(gw.config)
    changed["sessions"] = dict(changed["sessions"], idle_timeout="29m")
    gw.reload(changed)
    gw.wait_stderr("configuration reloaded", timeout=5)
    resp, rid = gw.request("GET", "/api/after-reload", cookie=cookie)
    assert resp.status == 200, (resp, gw.wait_log_record(rid).get("reason"))


# ---------------------------------------------------------------------------------------------
# Logout, revocation, fixation

def test_logout_clears_the_cookie_and_revokes_the_session(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    resp, _ = gw.request("GET", "/api/before-logout", cookie=cookie)
    assert resp.status == 200

    resp, rid = gw.logout(cookie)
    assert resp.status == 204, resp
    assert resp.body == b""
    assert resp.header("X-Request-Id") == rid
    cleared = set_cookies(resp, COOKIE)
    assert len(cleared) == 1, resp.headers
    assert cleared[0].value == "", cleared
    assert cleared[0].attrs.get("max-age") == "0", cleared
    assert cleared[0].attrs.get("path") == "/", cleared
    assert cleared[0].attrs.get("httponly") is True, cleared

    resp, rid = gw.request("GET", "/api/after-logout", cookie=cookie)
    record = assert_refused(gw, echo, resp, rid, reason="session_revoked", challenge=CHALLENGE_PLAIN)
    assert record["auth"] == "session"
    resp, rid = gw.keepalive(cookie)
    assert_refused(gw, None, resp, rid, reason="session_revoked")
    resp, rid = gw.request("POST", "/api/after-logout", cookie=cookie)
    assert_refused(gw, echo, resp, rid, reason="session_revoked")
    # Other sessions of the same user are untouched.
    other = gw.login_cookie("alice")
    resp, _ = gw.request("GET", "/api/other", cookie=other)
    assert resp.status == 200


def test_login_with_a_forged_cookie_issues_a_fresh_id_and_never_adopts_it(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    forged = forged_session_id()
    resp, rid = gw.request("GET", "/api/forged", cookie=forged)
    record = assert_refused(gw, echo, resp, rid, reason="session_unknown", challenge=CHALLENGE_PLAIN)
    assert record["auth"] == "session"
    resp, rid = gw.keepalive(forged)
    assert_refused(gw, None, resp, rid, reason="session_unknown")

    fresh = gw.login_cookie("alice", cookie=forged)
    assert fresh != forged
    # The forged value is still unknown after a successful login that presented it.
    resp, rid = gw.request("GET", "/api/forged-after", cookie=forged)
    assert_refused(gw, echo, resp, rid, reason="session_unknown")
    resp, _ = gw.request("GET", "/api/fresh", cookie=fresh)
    assert resp.status == 200


def test_login_with_an_existing_session_cookie_issues_a_fresh_id(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    bobs = gw.login_cookie("bob")
    alices = gw.login_cookie("alice", cookie=bobs)
    assert alices != bobs
    resp, rid = gw.request("GET", "/api/who", cookie=alices)
    assert resp.status == 200
    assert received(upstream_record(echo, rid), "X-Auth-Subject") == ["alice"]
    resp, rid = gw.request("GET", "/api/who", cookie=bobs)
    assert resp.status == 200
    assert received(upstream_record(echo, rid), "X-Auth-Subject") == ["bob"]
    # Ten logins, ten distinct ids of at least 256 bits (43 base64url characters).
    ids = {gw.login_cookie("carol") for _ in range(10)}
    assert len(ids) == 10
    assert all(SESSION_ID.match(v) for v in ids), ids


@pytest.mark.parametrize("value", ["", "short", "x" * 43 + "y", "!" * 43, '"' + "A" * 41 + '"'])
def test_malformed_cookie_values_are_unknown_sessions(session_gateways, echo, value):
    gw = session_gateways.start(upstream_url=echo.url)
    resp, rid = gw.request("GET", "/api/malformed", headers=[("Cookie", f"{COOKIE}={value}")])
    assert_refused(gw, echo, resp, rid, challenge=CHALLENGE_PLAIN)


# ---------------------------------------------------------------------------------------------
# Throttling and bad credentials

def test_throttling_after_five_failures_even_with_the_right_password(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    for i in range(5):
        resp, rid = gw.login("alice", f"wrong-{i}")
        record = assert_refused(gw, None, resp, rid, error="invalid_credentials", reason="invalid_credentials")
    resp, rid = gw.login("alice", USERS["alice"])
    support.assert_uniform_raw(resp, 429, "too_many_requests")
    assert not set_cookies(resp), "a throttled login must not issue a cookie"
    retry_after = resp.header("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), resp.headers
    assert 1 <= int(retry_after) <= 15 * 60, retry_after
    record = gw.wait_log_record(rid)
    assert (record["status"], record["decision"], record["reason"]) == (429, "deny", "throttled"), record
    # JSON logins are the same key.
    resp, _ = gw.login("alice", USERS["alice"], as_json=True)
    assert resp.status == 429
    # Another user from the same client is not throttled.
    assert gw.login_cookie("bob")
    assert_no_secret_in_logs(gw, USERS["alice"], "wrong-0")


def test_throttling_lasts_until_the_failure_window_passes(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(max_failures=2, failure_window="2s"))
    for i in range(2):
        resp, _ = gw.login("alice", "nope")
        assert resp.status == 401
    resp, _ = gw.login("alice", USERS["alice"])
    assert resp.status == 429
    assert 1 <= int(resp.header("Retry-After")) <= 2, resp.headers
    time.sleep(2.3)
    assert gw.login_cookie("alice")


def test_throttling_is_per_client_and_x_forwarded_for_does_not_evade_it(session_gateways, echo):
    # Without trusted proxies, X-Forwarded-For is not the client: rotating it changes nothing.
    gw = session_gateways.start(upstream_url=echo.url, name="untrusted")
    for i in range(5):
        resp, _ = gw.login("alice", "nope", headers=[("X-Forwarded-For", f"198.51.100.{i + 1}")])
        assert resp.status == 401
    resp, rid = gw.login("alice", USERS["alice"], headers=[("X-Forwarded-For", "198.51.100.99")])
    assert resp.status == 429, resp
    assert gw.wait_log_record(rid)["client"] == "127.0.0.1"

    # Behind a trusted proxy the client is the X-Forwarded-For address: one client's lockout
    # is not another's.
    proxied = session_gateways.start(upstream_url=echo.url, name="proxied",
                                     server={"trusted_proxies": ["127.0.0.1/32"]})
    for i in range(5):
        resp, _ = proxied.login("alice", "nope", headers=[("X-Forwarded-For", "198.51.100.7")])
        assert resp.status == 401
    resp, rid = proxied.login("alice", USERS["alice"], headers=[("X-Forwarded-For", "198.51.100.7")])
    assert resp.status == 429
    assert proxied.wait_log_record(rid)["client"] == "198.51.100.7"
    resp, _ = proxied.login("alice", USERS["alice"], headers=[("X-Forwarded-For", "198.51.100.8")])
    assert resp.status == 200, resp


def _simultaneous_logins(gw, attempts: list[tuple[str, str]], timeout: float = 30):
    """Sends every (username, password) login at once, each on its own connection; returns
    [(status, Retry-After, request id)] in order."""
    barrier = threading.Barrier(len(attempts), timeout=10)

    def attempt(item):
        index, (username, password) = item
        rid = f"sim-{index}-{time.monotonic_ns()}"
        barrier.wait()
        resp, _ = gw.login(username, password, request_id=rid, timeout=timeout)
        return resp.status, resp.header("Retry-After"), rid

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(attempt, enumerate(attempts)))


def test_a_client_gets_at_most_two_password_checks_at_once_whatever_the_usernames(session_gateways, echo):
    """SPEC §3.2 Login admission: eight simultaneous logins from one client, each with another
    username (so that no per-username throttle trips), get at most 2 password checks; the rest
    are answered at once with 429 and `Retry-After: 1`, logged `concurrent_logins`, and count as
    no failure. The users file's bcrypt cost 14 (unknown users are checked against a dummy hash
    of that cost) keeps the first two checks running while the others arrive."""
    users = session_gateways.users({"dave": "dave-has-a-slow-hash"}, cost=14)
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(users, roles={}, max_failures=1))
    results = _simultaneous_logins(gw, [(f"guess{i}", "not-the-password") for i in range(8)])
    checked = [r for r in results if r[0] != 429]
    refused = [r for r in results if r[0] == 429]
    assert all(status == 401 for status, _, _ in checked), results
    assert checked and len(refused) >= 4, results      # (all 8 arrive within the first checks: 6)
    # At no moment were more than 2 checks running: from the access log's start and duration.
    spans = []
    for _, _, rid in checked:
        record = gw.wait_log_record(rid)
        start = datetime.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp() * 1000
        spans.append((start, start + record["duration_ms"]))
    for start, _ in spans:
        running = [s for s in spans if s[0] <= start < s[1] - 2]   # 2 ms: a place freed just before the reply
        assert len(running) <= 2, spans
    for _, retry_after, rid in refused:
        assert retry_after == "1", results
        record = gw.wait_log_record(rid)
        assert (record["status"], record["decision"], record["reason"]) == (429, "deny", "concurrent_logins"), record
    usernames = {rid: f"guess{i}" for i, (_, _, rid) in enumerate(results)}
    for _, _, rid in checked:
        assert gw.wait_log_record(rid)["reason"] == "invalid_credentials"
    # max_failures: 1. A checked guess locked its username; a refused one counted nothing, so
    # its username is checked (401), not throttled.
    resp, rid = gw.login(usernames[checked[0][2]], "again", timeout=30)
    assert resp.status == 429 and gw.wait_log_record(rid)["reason"] == "throttled", resp
    resp, rid = gw.login(usernames[refused[0][2]], "again", timeout=30)
    assert resp.status == 401, resp


def test_simultaneous_correct_logins_beyond_two_are_told_to_retry_and_then_succeed(session_gateways, echo):
    """Eight simultaneous logins with the right password (a script with parallel workers behind
    one address): each is answered 200, or 429 with `Retry-After: 1` — and a retry after that
    second succeeds. None counts as a failure (max_failures: 2 here)."""
    users = dict(USERS, dave="dave-has-a-slow-hash")
    session_gateways.users(users, cost={"alice": 5, "bob": 5, "carol": 5, "dave": 10})
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(max_failures=2))
    results = _simultaneous_logins(gw, [("dave", users["dave"])] * 8, timeout=15)
    assert all(status == 200 or (status == 429 and retry_after == "1") for status, retry_after, _ in results), results
    for status, _, rid in results:
        if status == 429:
            assert gw.wait_log_record(rid)["reason"] == "concurrent_logins"
    for _ in range(sum(1 for status, _, _ in results if status == 429)):
        for _attempt in range(10):   # bounded: a client that honours Retry-After gets in
            resp, _ = gw.login("dave", users["dave"], timeout=15)
            if resp.status != 429:
                break
            assert resp.header("Retry-After") == "1"
            time.sleep(1)
        assert resp.status == 200, resp
    assert gw.login_cookie("dave", users["dave"])


def _login_timed(gw, username, password, request_id):
    start = time.perf_counter()
    resp, _ = gw.login(username, password, request_id=request_id)
    return resp, time.perf_counter() - start


def test_unknown_user_and_wrong_password_answer_alike(session_gateways, echo):
    users = session_gateways.users(cost=10)  # bcrypt cost 10: ~50 ms a check, well above the noise
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(users, max_failures=100))
    unknown_times, wrong_times = [], []
    first = {}
    for i in range(5):
        for kind, user, times in (("unknown", f"nobody{i}", unknown_times), ("wrong", "alice", wrong_times)):
            rid = f"cred-{kind[:4]}-{i:04d}"  # same length for both, so Content-Length matches
            resp, elapsed = _login_timed(gw, user, "not-the-password", rid)
            times.append(elapsed)
            support.assert_uniform_raw(resp, 401, "invalid_credentials")
            assert not set_cookies(resp)
            first.setdefault(kind, resp)
            record = gw.wait_log_record(rid)
            assert (record["status"], record["decision"], record["reason"]) == \
                (401, "deny", "invalid_credentials"), record

    def shape(resp):
        body = resp.json()
        headers = sorted((k.lower(), v) for k, v in resp.headers if k.lower() not in ("x-request-id", "date"))
        return resp.status, sorted(body), body["error"], body["message"], headers

    assert shape(first["unknown"]) == shape(first["wrong"])
    # SPEC §3.1: every 401 carries the challenge.
    assert first["wrong"].header_all("WWW-Authenticate") == [CHALLENGE_PLAIN]
    m_unknown, m_wrong = statistics.median(unknown_times), statistics.median(wrong_times)
    assert m_unknown > 0.015 and m_wrong > 0.015, (unknown_times, wrong_times)
    assert 1 / 3 <= m_unknown / m_wrong <= 3, (unknown_times, wrong_times)


# ---------------------------------------------------------------------------------------------
# The cookie's attributes

@pytest.mark.parametrize("cookie_cfg,expect", [
    ({"name": "gh_sid", "secure": True, "same_site": "Strict", "domain": "example.test", "path": "/"},
     {"secure": True, "samesite": "Strict", "domain": "example.test", "path": "/"}),
    ({"name": "__Secure-gh", "secure": True, "same_site": "None", "path": "/"},
     {"secure": True, "samesite": "None", "domain": None, "path": "/"}),
    ({"name": "plain_sid", "secure": False, "same_site": "Lax", "path": "/api"},
     {"secure": False, "samesite": "Lax", "domain": None, "path": "/api"}),
], ids=["strict-domain", "samesite-none", "lax-path"])
def test_cookie_attributes_as_configured(session_gateways, echo, cookie_cfg, expect):
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(cookie=cookie_cfg))
    gw.cookie_name = cookie_cfg["name"]
    resp, _ = gw.login("alice", USERS["alice"])
    assert resp.status == 200, resp
    issued = set_cookies(resp)
    assert len(issued) == 1 and issued[0].name == cookie_cfg["name"], resp.headers
    c = issued[0]
    assert SESSION_ID.match(c.value), c
    assert c.attrs.get("httponly") is True, c
    assert ("secure" in c.attrs) is expect["secure"], c
    assert str(c.attrs.get("samesite")).lower() == expect["samesite"].lower(), c
    assert c.attrs.get("path") == expect["path"], c
    assert c.attrs.get("domain") == expect["domain"], c
    assert "expires" in c.attrs or "max-age" in c.attrs, c

    # The configured name authenticates; the default name does not.
    resp, _ = gw.request("GET", "/api/named", cookie=c.value)
    assert resp.status == 200, resp
    if cookie_cfg["name"] != COOKIE:
        resp, _ = gw.request("GET", "/api/named", headers=[("Cookie", f"{COOKIE}={c.value}")])
        assert resp.status == 401, resp
    # Logout clears it with the same name, Path and Domain.
    resp, _ = gw.logout(c.value)
    assert resp.status == 204
    cleared = set_cookies(resp)
    assert len(cleared) == 1 and cleared[0].name == cookie_cfg["name"], resp.headers
    assert cleared[0].value == "" and cleared[0].attrs.get("max-age") == "0", cleared
    assert cleared[0].attrs.get("path") == expect["path"]
    assert cleared[0].attrs.get("domain") == expect["domain"]


# ---------------------------------------------------------------------------------------------
# What the upstream sees

def test_the_gateway_cookie_never_reaches_the_upstream(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    resp, rid = gw.request("GET", "/api/cookies", headers=[("Cookie", f"a=1; {COOKIE}={cookie}; b=2")])
    assert resp.status == 200, resp
    rec = upstream_record(echo, rid)
    assert received(rec, "Cookie") == ["a=1; b=2"], rec["headers"]
    assert cookie not in json.dumps(rec)

    # Only the gateway's cookie: no Cookie header at all.
    resp, rid = gw.request("GET", "/api/cookies", cookie=cookie)
    assert resp.status == 200
    rec = upstream_record(echo, rid)
    assert received(rec, "Cookie") == [], rec["headers"]

    # Also on a route without authentication, and for a cookie the store does not know.
    forged = forged_session_id()
    resp, rid = gw.request("GET", "/public/page", headers=[("Cookie", f"{COOKIE}={forged}; theme=dark")])
    assert resp.status == 200
    rec = upstream_record(echo, rid)
    assert received(rec, "Cookie") == ["theme=dark"], rec["headers"]
    # A cookie that merely starts with the gateway's name is someone else's.
    resp, rid = gw.request("GET", "/api/cookies",
                           headers=[("Cookie", f"{COOKIE}_pref=x; {COOKIE}={cookie}; x{COOKIE}=y")])
    assert resp.status == 200
    assert received(upstream_record(echo, rid), "Cookie") == [f"{COOKIE}_pref=x; x{COOKIE}=y"]
    assert_no_secret_in_logs(gw, cookie, forged)


def test_a_session_cookie_in_a_second_cookie_line_still_authenticates(session_gateways, echo):
    """Two `Cookie` lines (what an HTTP/2 front end's split cookies become, RFC 9113 §8.2.3):
    they are one cookie list joined with `; `, not with `, `."""
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    resp, rid = gw.request("GET", "/api/two-lines", headers=[("Cookie", f"{COOKIE}={cookie}"), ("Cookie", "a=1")])
    assert resp.status == 200, (resp, gw.wait_log_record(rid).get("reason"))
    rec = upstream_record(echo, rid)
    assert "".join(received(rec, "Cookie")) == "a=1", rec["headers"]
    resp, rid = gw.request("GET", "/api/two-lines", headers=[("Cookie", "a=1"), ("Cookie", f"{COOKIE}={cookie}")])
    assert resp.status == 200, (resp, gw.wait_log_record(rid).get("reason"))


def test_logout_with_the_cookie_in_a_second_cookie_line_revokes_it(session_gateways, echo):
    """A logout that answers 204 and clears the cookie must have revoked the session."""
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    resp, _ = gw.request("POST", "/logout", headers=[("Cookie", "a=1"), ("Cookie", f"{COOKIE}={cookie}")])
    if resp.status == 204:
        resp, rid = gw.request("GET", "/api/after-logout", cookie=cookie)
        assert resp.status == 401, "logout answered 204 but the session still works"


def test_identity_headers_for_a_session(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    cookie = gw.login_cookie("alice")
    resp, rid = gw.request("GET", "/api/identity", cookie=cookie, headers=[
        ("X-Auth-Subject", "mallory"), ("X-Auth-Roles", "root"), ("X-Auth-Method", "jwt"), ("X-Auth-Other", "1")])
    assert resp.status == 200
    rec = upstream_record(echo, rid)
    assert received(rec, "X-Auth-Subject") == ["alice"]
    assert received(rec, "X-Auth-Roles") == ["admin,ops"]
    assert received(rec, "X-Auth-Method") == ["session"]
    assert received(rec, "X-Auth-Other") == []
    record = gw.wait_log_record(rid)
    assert (record["auth"], record["subject"], record["decision"], record["status"]) == \
        ("session", "alice", "allow", 200), record

    carol = gw.login_cookie("carol")  # no roles configured
    resp, rid = gw.request("GET", "/api/identity", cookie=carol)
    assert resp.status == 200
    rec = upstream_record(echo, rid)
    assert received(rec, "X-Auth-Subject") == ["carol"]
    assert received(rec, "X-Auth-Roles") in ([], [""]), rec["headers"]
    assert received(rec, "X-Auth-Method") == ["session"]


def test_require_roles_with_a_session(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    bob = gw.login_cookie("bob")
    resp, rid = gw.request("GET", "/admin/panel", cookie=bob)
    record = assert_refused(gw, echo, resp, rid, status=403, error="forbidden", reason="insufficient_role",
                            challenge=CHALLENGE_SCOPE)
    assert record["auth"] == "session", record
    alice = gw.login_cookie("alice")
    resp, rid = gw.request("GET", "/admin/panel", cookie=alice)
    assert resp.status == 200
    assert received(upstream_record(echo, rid), "X-Auth-Roles") == ["admin,ops"]


def test_an_invalid_bearer_token_is_401_even_with_a_valid_cookie(session_gateways, echo, tmp_path):
    secret = b"s" * 16 + b"0123456789abcdef0123456789abcdef"
    (tmp_path / "hs256.key").write_bytes(secret)
    jwt_cfg = {"issuers": [{"name": "local", "issuer": "https://issuer.test", "algorithms": ["HS256"],
                            "secret_file": "hs256.key"}]}
    gw = session_gateways.start(upstream_url=echo.url, jwt=jwt_cfg)
    cookie = gw.login_cookie("alice")
    now = int(time.time())
    claims = {"iss": "https://issuer.test", "sub": "svc", "exp": now + 600, "iat": now, "roles": ["reader"]}
    bad = pyjwt.encode(claims, b"another secret that is long enough!!", algorithm="HS256")
    resp, rid = gw.request("GET", "/api/both", cookie=cookie, token=bad)
    record = assert_refused(gw, echo, resp, rid, reason="bad_signature", challenge=CHALLENGE_INVALID)
    assert record["auth"] == "jwt", record
    expired = pyjwt.encode({**claims, "exp": now - 3600, "iat": now - 7200}, secret, algorithm="HS256")
    resp, rid = gw.request("GET", "/api/both", cookie=cookie, token=expired)
    assert_refused(gw, echo, resp, rid, reason="token_expired", challenge=CHALLENGE_INVALID)
    resp, rid = gw.request("GET", "/api/both", cookie=cookie, token="not-a-jwt")
    assert_refused(gw, echo, resp, rid, challenge=CHALLENGE_INVALID)

    # A valid token next to the cookie: the token decides (Bearer first).
    good = pyjwt.encode(claims, secret, algorithm="HS256")
    resp, rid = gw.request("GET", "/api/both", cookie=cookie, token=good)
    assert resp.status == 200
    rec = upstream_record(echo, rid)
    assert received(rec, "X-Auth-Subject") == ["svc"]
    assert received(rec, "X-Auth-Method") == ["jwt"]
    assert received(rec, "Cookie") == []
    # The cookie alone still works; a valid token next to an unknown cookie is the token's.
    resp, _ = gw.request("GET", "/api/both", cookie=cookie)
    assert resp.status == 200
    resp, rid = gw.request("GET", "/api/both", cookie=forged_session_id(), token=good)
    assert resp.status == 200, resp
    assert received(upstream_record(echo, rid), "X-Auth-Method") == ["jwt"]


def test_endpoints_answer_post_only_and_login_needs_credentials(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url)
    resp, rid = gw.request("POST", "/login", headers=[("Content-Type", "application/x-www-form-urlencoded")],
                           body=b"username=alice")
    assert resp.status in (400, 401), resp
    assert not set_cookies(resp)
    resp, rid = gw.request("POST", "/keepalive")
    assert_refused(gw, None, resp, rid, challenge=CHALLENGE_PLAIN)
    assert echo.request_count == 0, "a gateway endpoint reached the upstream"


# ---------------------------------------------------------------------------------------------
# explain

def test_explain_with_a_session_cookie_says_the_session_is_unknown(gatehouse_bin, tmp_path):
    write_users_file(gatehouse_bin, tmp_path / "users.htpasswd", USERS)
    config = session_config(support.free_port(), None, tmp_path / "access.log", upstream_url="http://127.0.0.1:9",
                            sessions=sessions_section())
    path = tmp_path / "explain.yaml"
    path.write_text(support.to_yaml(config) + "\n")
    forged = forged_session_id()
    out = subprocess.run([gatehouse_bin, "explain", "--config", str(path), "--json", "GET", "/api/x",
                          "--header", f"Cookie: a=1; {COOKIE}={forged}"], capture_output=True, text=True, timeout=20,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["route"] in ("api", {"name": "api"}) or (isinstance(doc["route"], dict) and doc["route"].get("name") == "api"), doc
    assert (doc["decision"], doc["status"], doc["reason"]) == ("deny", 401, "session_unknown"), doc
    assert forged not in out.stdout + out.stderr

    text = subprocess.run([gatehouse_bin, "explain", "--config", str(path), "POST", "/api/x",
                           "--header", f"Cookie: {COOKIE}={forged}"], capture_output=True, text=True, timeout=20,
                          cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "session_unknown" in text.stdout, text.stdout
    assert forged not in text.stdout + text.stderr


# ---------------------------------------------------------------------------------------------
# Sessions on other kinds of routes; endpoint paths

ROUTE_KINDS = [
    {"name": "opt", "match": {"path": "/opt/**"}, "upstream": "api", "auth": "optional"},
    {"name": "pages", "match": {"path": "/app/**", "methods": ["GET"]}, "upstream": "api",
     "login_redirect": "/login.html"},
    {"name": "adm401", "match": {"path": "/adm/**"}, "upstream": "api", "require": {"roles_any": ["admin"]},
     "deny_status": 401},
    {"name": "scopes", "match": {"path": "/sc/**"}, "upstream": "api", "require": {"scopes_all": ["read"]}},
]


def test_sessions_on_optional_redirect_and_deny_status_routes(session_gateways, echo):
    gw = session_gateways.start(upstream_url=echo.url, routes=ROUTE_KINDS)
    bob = gw.login_cookie("bob")
    forged = forged_session_id()
    # auth: optional — no cookie is anonymous, a valid one identifies, an unknown one is a 401.
    resp, rid = gw.request("GET", "/opt/x")
    assert resp.status == 200 and received(upstream_record(echo, rid), "X-Auth-Subject") == []
    resp, rid = gw.request("GET", "/opt/x", cookie=bob)
    assert resp.status == 200 and received(upstream_record(echo, rid), "X-Auth-Method") == ["session"]
    resp, rid = gw.request("GET", "/opt/x", cookie=forged)
    assert_refused(gw, echo, resp, rid, reason="session_unknown", challenge=CHALLENGE_PLAIN)
    # login_redirect — a browser with an unknown session goes to the login page.
    resp, rid = gw.request("GET", "/app/page?y=1", cookie=forged, headers=[("Accept", "text/html")])
    assert resp.status == 302 and resp.header("Location") == "/login.html?return_to=%2Fapp%2Fpage%3Fy%3D1"
    resp, rid = gw.request("GET", "/app/page", cookie=bob, headers=[("Accept", "text/html")])
    assert resp.status == 200
    # deny_status: 401 for a session without the role; scopes are never met by a session.
    resp, rid = gw.request("GET", "/adm/x", cookie=bob)
    assert_refused(gw, echo, resp, rid, status=401, error="forbidden", reason="insufficient_role",
                   challenge=CHALLENGE_SCOPE)
    resp, rid = gw.request("GET", "/sc/x", cookie=bob)
    assert_refused(gw, echo, resp, rid, status=403, error="forbidden", challenge=CHALLENGE_SCOPE)


@pytest.mark.parametrize("path,status", [("/login", 200), ("//login", 200), ("/%6Cogin", 200), ("/./login", 200),
                                         ("/login?next=/x", 200), ("/login/", 404), ("/LOGIN", 404)])
def test_endpoint_paths_are_matched_after_normalization(session_gateways, echo, path, status):
    gw = session_gateways.start(upstream_url=echo.url, routes=[])
    resp, _ = gw.request("POST", path, headers=[("Content-Type", "application/x-www-form-urlencoded")],
                         body=b"username=alice&password=correct+horse+battery")
    assert resp.status == status, resp
    assert echo.request_count == 0
