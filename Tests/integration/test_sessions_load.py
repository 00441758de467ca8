"""A bounded load test of session authentication (SPEC §5.3 "Password checks never block an
event loop"): 200 concurrent clients, each with its own session and its own kept-alive
connection, make 20 cookie-authenticated requests each while two parallel loops log in 20 times
with a bcrypt cost-10 password. Memory store, 2 workers. Every response must be a 200 from the
upstream with the right identity and without the gateway's cookie; the whole run is bounded.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import support
from session_support import COOKIE, USERS, KeepAliveClient, session_gateways, sessions_section, set_cookies

CLIENTS = 200
REQUESTS_EACH = 20
HEAVY_LOGINS = 20
HEAVY_THREADS = 2   # one client: at most 2 password checks at once (SPEC §3.2 Login admission)
WALL_LIMIT = 60.0


def test_200_session_clients_while_logins_are_hashed(session_gateways, echo):
    users = dict(USERS, dave="dave-has-a-slow-hash")
    session_gateways.users(users, cost={"alice": 5, "bob": 5, "carol": 5, "dave": 10})
    gw = session_gateways.start(upstream_url=echo.url, sessions=sessions_section(idle="10m", absolute="1h"))
    echo.brief = True

    # One session per client (cost-5 hashes: quick), made before the clock starts.
    def login(_):
        return gw.login_cookie("alice")
    # At most 2 at once: one client gets 2 password checks at once (SPEC §3.2, test_sessions.py).
    with ThreadPoolExecutor(max_workers=2) as pool:
        cookies = list(pool.map(login, range(CLIENTS)))
    assert len(set(cookies)) == CLIENTS

    barrier = threading.Barrier(CLIENTS + HEAVY_THREADS + 1, timeout=30)
    results: list[list] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    latencies: list[float] = []
    login_results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def client(n: int):
        conn = KeepAliveClient(gw.port, timeout=20)
        mine = []
        try:
            barrier.wait()
            for j in range(REQUESTS_EACH):
                start = time.perf_counter()
                resp = conn.request("GET", f"/api/load/{n}/{j}",
                                    [("Cookie", f"pref=dark; {COOKIE}={cookies[n]}"), ("X-Request-Id", f"load-{n}-{j}")])
                took = time.perf_counter() - start
                ok = resp.status == 200
                if ok:
                    doc = json.loads(resp.body)
                    ok = (support.pairs_get(doc["headers"], "X-Auth-Subject") == "alice"
                          and support.pairs_get(doc["headers"], "Cookie") == "pref=dark"
                          and doc["path"] == f"/api/load/{n}/{j}")
                mine.append((resp.status, ok, took))
        except Exception as e:  # recorded, asserted below
            with lock:
                errors.append(f"client {n}: {type(e).__name__}: {e}")
        finally:
            conn.close()
        results[n] = mine

    def heavy(k: int):
        try:
            barrier.wait()
            for _ in range(HEAVY_LOGINS // HEAVY_THREADS):
                start = time.perf_counter()
                resp, _ = gw.login("dave", users["dave"], timeout=20)
                took = time.perf_counter() - start
                with lock:
                    login_results.append((resp.status, took))
                assert len(set_cookies(resp, COOKIE)) == (1 if resp.status == 200 else 0)
        except Exception as e:
            with lock:
                errors.append(f"login loop {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    threads += [threading.Thread(target=heavy, args=(k,), daemon=True) for k in range(HEAVY_THREADS)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join(timeout=max(1.0, WALL_LIMIT - (time.monotonic() - started)))
    wall = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"load did not finish within {WALL_LIMIT}s"

    assert errors == [], errors[:10]
    flat = [r for rs in results for r in rs]
    assert len(flat) == CLIENTS * REQUESTS_EACH, len(flat)
    bad = [r for r in flat if r[0] != 200 or not r[1]]
    assert bad == [], f"{len(bad)} bad responses, e.g. {bad[:5]}"
    assert sorted(s for s, _ in login_results) == [200] * HEAVY_LOGINS, login_results
    latencies = sorted(t for _, _, t in flat)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\n{CLIENTS}x{REQUESTS_EACH} requests in {wall:.2f}s ({len(flat) / wall:.0f}/s), "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
          f"{HEAVY_LOGINS} cost-10 logins, median {statistics.median(t for _, t in login_results) * 1000:.0f} ms")
    assert wall < WALL_LIMIT
    # No request waited behind the password checks for long (they run off the event loops).
    assert latencies[-1] < 10.0, latencies[-5:]
