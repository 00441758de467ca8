"""WebSocket tunnels through authentication (SPEC §12), with the `websockets` library as the
client and as the upstream server: messages of every kind byte-exact, refusals, the ends of a
tunnel (either side, idle, token expiry, logout, reload, stop), bounded memory and the log line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed

import support
from session_support import FOREIGN_ORIGIN, PUBLIC_ORIGIN, session_gateways, sessions_section  # noqa: F401
from ws_support import (WebSocketUpstream, refused_status, start_gateway, token, tunnel_lines, wait_closed,
                        ws_connect)


@pytest.fixture
def upstream():
    server = WebSocketUpstream()
    yield server
    server.stop()


@pytest.fixture
def gw(session_gateways, tmp_path, upstream):
    return start_gateway(session_gateways, tmp_path, upstream)


def header(pairs, name):
    values = [v for k, v in pairs if k.lower() == name.lower()]
    return values[0] if values else None


# ---------------------------------------------------------------------------------------------
# Messages

def test_text_binary_fragmented_and_large_messages_are_byte_exact(gw):
    big = os.urandom(16 << 20)
    with ws_connect(gw, "/live/feed", token=token()) as ws:
        ws.send("héllo ✓")
        assert ws.recv(timeout=5) == "héllo ✓"
        ws.send(b"\x00\xff" * 1000)
        assert ws.recv(timeout=5) == b"\x00\xff" * 1000
        ws.send(["frag", "men", "ted"])          # one text message in three frames
        assert ws.recv(timeout=5) == "fragmented"
        ws.send([b"a" * 70000, b"b" * 3, b"c"])  # binary, fragmented
        assert ws.recv(timeout=5) == b"a" * 70000 + b"bbbc"
        ws.send(big)
        assert ws.recv(timeout=60) == big


def test_ping_pong_and_close_codes_pass_through(gw):
    with ws_connect(gw, "/live/feed", token=token()) as ws:
        pong = ws.ping(b"are-you-there")
        assert pong.wait(5)
        ws.send("close:4321")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4321
        assert closed.value.rcvd.reason == "bye"


def test_the_upstream_gets_exactly_the_upgrade_headers_and_the_identity(gw, upstream):
    headers = [("Connection-Extra", "x"), ("X-Auth-Subject", "forged"), ("Keep-Alive", "timeout=5")]
    with ws_connect(gw, "/live/feed", token=token(roles=["reader"]), headers=headers) as ws:
        ws.send("x")
        ws.recv(timeout=5)
    seen = upstream.last_handshake()
    assert [v for k, v in seen if k.lower() == "connection"] == ["Upgrade"]
    assert [v for k, v in seen if k.lower() == "upgrade"] == ["websocket"]
    assert header(seen, "Sec-WebSocket-Key") and header(seen, "Sec-WebSocket-Version") == "13"
    assert header(seen, "X-Auth-Subject") == "alice"
    assert header(seen, "X-Auth-Method") == "jwt"
    assert header(seen, "Keep-Alive") is None


def test_other_connection_tokens_and_what_they_name_are_removed(gw, upstream):
    # A raw handshake: `Connection: keep-alive, Upgrade, X-Secret` names X-Secret hop-by-hop.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with socket.create_connection((support.LOOPBACK, gw.port), timeout=5) as s:
        s.sendall((f"GET /open/x HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade, X-Secret\r\n"
                   f"X-Secret: hidden\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 101 "), head
    lines = head.split("\r\n")
    assert "Connection: Upgrade" in lines and "Upgrade: websocket" in lines
    assert any(line.lower().startswith("sec-websocket-accept: ") for line in lines)
    assert any(line.lower().startswith("x-request-id: ") for line in lines)
    seen = upstream.last_handshake()
    assert header(seen, "X-Secret") is None
    assert [v for k, v in seen if k.lower() == "connection"] == ["Upgrade"]


# ---------------------------------------------------------------------------------------------
# Refusals

def test_refused_handshakes_get_the_uniform_error(gw, upstream):
    status, headers, body = refused_status(gw, "/live/feed")
    assert status == 401 and b'"unauthorized"' in body
    assert headers["www-authenticate"] == 'Bearer realm="gatehouse"'
    status, _, body = refused_status(gw, "/admin-live/feed", token=token(roles=["reader"]))
    assert status == 403 and b'"forbidden"' in body
    status, _, _ = refused_status(gw, "/live/feed", token=token(lifetime=-60))
    assert status == 401
    assert upstream.handshakes == []


def test_cookie_handshake_needs_a_trusted_origin(gw, upstream):
    cookie = gw.login_cookie("alice")
    status, _, body = refused_status(gw, "/live/feed", cookie=cookie, origin=FOREIGN_ORIGIN)
    assert status == 403 and b'"csrf_rejected"' in body
    status, _, body = refused_status(gw, "/live/feed", cookie=cookie)  # no Origin at all
    assert status == 403 and b'"csrf_rejected"' in body
    assert upstream.handshakes == []
    with ws_connect(gw, "/live/feed", cookie=cookie, origin=PUBLIC_ORIGIN) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    assert header(upstream.last_handshake(), "X-Auth-Method") == "session"
    assert "gatehouse_session" not in (header(upstream.last_handshake(), "Cookie") or "")


def test_an_upstream_refusing_the_upgrade_is_passed_through(session_gateways, tmp_path):
    refusing = WebSocketUpstream(refuse=403)
    try:
        gw = start_gateway(session_gateways, tmp_path, refusing)
        status, _, body = refused_status(gw, "/live/feed", token=token())
        assert status == 403
        assert body == b"refused by the upstream\n"
    finally:
        refusing.stop()


def test_upgrade_on_a_route_without_websocket_is_not_tunnelled(session_gateways, tmp_path, echo):
    gw = start_gateway(session_gateways, tmp_path, echo)
    resp = support.raw_request(gw.port, "GET", "/plain/x", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                             ("Sec-WebSocket-Version", "13")])
    assert resp.status == 200
    seen = resp.json()["headers"]
    names = {k.lower() for k, _ in (seen.items() if isinstance(seen, dict) else seen)}
    assert "upgrade" not in names and "connection" not in names


def test_an_upgrade_with_a_body_is_400(gw, upstream):
    for extra in ([("Content-Length", "5")], [("Transfer-Encoding", "chunked")]):
        body = b"hello" if extra[0][0] == "Content-Length" else b"5\r\nhello\r\n0\r\n\r\n"
        resp = support.raw_request(gw.port, "GET", "/open/x", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                                ("Sec-WebSocket-Version", "13")] + extra, body=body)
        support.assert_uniform_raw(resp, 400, "bad_request")
    assert upstream.handshakes == []


def test_a_101_to_a_request_without_upgrade_is_502(session_gateways, tmp_path):
    def handler(up, conn, reader, number):
        support.read_raw_request(reader)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nsurprise")
        time.sleep(0.5)
    raw = support.RawUpstream(handler)
    try:
        gw = start_gateway(session_gateways, tmp_path, raw)
        resp = support.raw_request(gw.port, "GET", "/plain/x", [])
        support.assert_uniform_raw(resp, 502, "bad_gateway")
    finally:
        raw.stop()


def test_a_101_without_upgrade_websocket_to_a_handshake_is_502(session_gateways, tmp_path):
    def handler(up, conn, reader, number):
        support.read_raw_request(reader)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        time.sleep(0.5)
    raw = support.RawUpstream(handler)
    try:
        gw = start_gateway(session_gateways, tmp_path, raw)
        status, _, body = refused_status(gw, "/open/x")
        assert status == 502 and b'"bad_gateway"' in body
    finally:
        raw.stop()


# ---------------------------------------------------------------------------------------------
# Ends

def test_the_upstream_dying_mid_tunnel_closes_the_client(gw, upstream):
    with ws_connect(gw, "/live/feed", token=token()) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        upstream.kill_connections()
        wait_closed(ws, 5)
    rec = support.wait_until(lambda: tunnel_lines(gw), 5, message="tunnel log line")[-1]
    assert rec["reason"] == "tunnel_closed"


def test_the_tunnel_closes_at_token_expiry(gw):
    with ws_connect(gw, "/live/feed", token=token(lifetime=2)) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        elapsed = wait_closed(ws, 6)
    assert elapsed < 4
    rec = support.wait_until(lambda: tunnel_lines(gw), 5, message="tunnel log line")[-1]
    assert rec["reason"] == "token_expired"


def test_the_idle_timeout_closes_a_silent_tunnel(session_gateways, tmp_path, upstream):
    gw = start_gateway(session_gateways, tmp_path, upstream, server={"tunnel_idle_timeout": "1500ms"})
    with ws_connect(gw, "/live/feed", token=token()) as ws:
        for _ in range(4):   # traffic keeps it open past the timeout
            time.sleep(0.6)
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
        elapsed = wait_closed(ws, 5)   # from the last byte
    assert 1.3 < elapsed < 3.5
    assert support.wait_until(lambda: tunnel_lines(gw), 3)[-1]["reason"] == "tunnel_idle"


def test_logout_closes_the_sessions_tunnels_at_once(gw):
    cookie = gw.login_cookie("alice")
    other = gw.login_cookie("bob")
    with ws_connect(gw, "/live/a", cookie=cookie, origin=PUBLIC_ORIGIN) as ws, \
            ws_connect(gw, "/live/b", cookie=other, origin=PUBLIC_ORIGIN) as keep:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        resp, _ = gw.logout(cookie, headers=[("Origin", PUBLIC_ORIGIN)])
        assert resp.status == 204
        assert wait_closed(ws, 3) < 1.5
        keep.send("still here")
        assert keep.recv(timeout=5) == "still here"
    reasons = [r["reason"] for r in support.wait_until(lambda: len(tunnel_lines(gw)) >= 2 and tunnel_lines(gw), 5)]
    assert "session_expired" in reasons


def test_client_bytes_keep_the_session_alive_and_it_expires_on_time(session_gateways, tmp_path, upstream):
    gw = start_gateway(session_gateways, tmp_path, upstream, sessions=sessions_section(idle="4s"))
    cookie = gw.login_cookie("alice")
    with ws_connect(gw, "/live/a", cookie=cookie, origin=PUBLIC_ORIGIN) as ws:
        for _ in range(14):   # 7 s of traffic: past the 4 s idle timeout
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            time.sleep(0.5)
        resp, _ = gw.request("GET", "/live/x", cookie=cookie)
        assert resp.status != 401, "the tunnel's traffic did not count as session activity"
        elapsed = wait_closed(ws, 10)   # silent now: the session ends 4 s after its last activity
    assert elapsed < 8
    assert support.wait_until(lambda: tunnel_lines(gw), 3)[-1]["reason"] == "session_expired"


def test_a_reload_closes_the_tunnels_it_would_refuse(gw):
    with ws_connect(gw, "/live/a", token=token(roles=["reader"])) as reader, \
            ws_connect(gw, "/live/b", token=token(roles=["admin"])) as admin:
        config = dict(gw.config)
        routes = [dict(r) for r in config["routes"]]
        routes[0]["require"] = {"roles_any": ["admin"]}
        config["routes"] = routes
        gw.reload(config)
        wait_closed(reader, 5)
        admin.send("x")
        assert admin.recv(timeout=5) == "x"
    recs = support.wait_until(lambda: len(tunnel_lines(gw)) >= 2 and tunnel_lines(gw), 5)
    assert recs[0]["reason"] == "insufficient_role"


def test_sigterm_closes_tunnels_after_the_grace(session_gateways, tmp_path, upstream):
    gw = start_gateway(session_gateways, tmp_path, upstream, server={"shutdown_grace": "1500ms"})
    with ws_connect(gw, "/live/a", token=token()) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        started = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ws.send("during the grace")
        assert ws.recv(timeout=5) == "during the grace"
        wait_closed(ws, 5)
        assert gw.wait_exit(5) == 0
        assert 1.0 < time.monotonic() - started < 4
    assert tunnel_lines(gw)[-1]["reason"] == "tunnel_closed"


# ---------------------------------------------------------------------------------------------
# The log line and metrics

def test_the_tunnel_log_line(gw):
    payload = os.urandom(5000)
    with ws_connect(gw, "/live/feed", token=token(), headers=[("X-Request-Id", "ws-log-1")]) as ws:
        ws.send(payload)
        assert ws.recv(timeout=5) == payload
    rec = support.wait_until(lambda: [r for r in tunnel_lines(gw) if r["request_id"] == "ws-log-1"], 5)[0]
    assert rec["status"] == 101 and rec["upstream_status"] == 101
    assert rec["route"] == "live" and rec["auth"] == "jwt" and rec["subject"] == "alice"
    assert rec["decision"] == "allow" and rec["reason"] == "tunnel_closed"
    # frames of 5000 bytes each way plus their headers and the close frames
    assert 5000 < rec["bytes_sent"] < 5100 and 5000 < rec["bytes_received"] < 5100
    assert rec["duration_ms"] > 0
    assert set(support.ACCESS_LOG_FIELDS) <= set(rec)
    others = [r for r in map(json.loads, gw.log_lines()) if r["status"] != 101]
    assert all("bytes_received" not in r for r in others)


def test_metrics_count_open_tunnels_and_bytes(gw):
    import requests
    with ws_connect(gw, "/live/feed", token=token()) as ws:
        ws.send(b"x" * 1000)
        ws.recv(timeout=5)
        text = requests.get(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=5).text
        assert "gatehouse_open_tunnels 1" in text
    text = support.wait_until(lambda: (t := requests.get(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=5).text)
                              and "gatehouse_open_tunnels 0" in t and t, 5)
    lines = {l.split(" ")[0]: int(l.split(" ")[1]) for l in text.splitlines() if l.startswith("gatehouse_tunnel_bytes_total")}
    assert lines['gatehouse_tunnel_bytes_total{direction="to_client"}'] > 1000
    assert lines['gatehouse_tunnel_bytes_total{direction="from_client"}'] > 1000


# ---------------------------------------------------------------------------------------------
# Memory

def test_a_slow_reader_keeps_the_gateway_bounded(gw):
    """The upstream sends 64 MiB while the client reads slowly: the gateway stops reading the
    upstream (backpressure) instead of buffering; its RSS grows < 16 MiB."""
    total = 64 << 20
    with ws_connect(gw, "/live/feed", token=token(), max_queue=2) as ws:
        ws.send("warm-up")
        assert ws.recv(timeout=5) == "warm-up"
        before = gw.rss_kib()
        ws.send(f"flood:{total}")
        peak = before
        received = 0
        deadline = time.monotonic() + 120
        while received < total:
            assert time.monotonic() < deadline, f"only {received} of {total} bytes in 120 s"
            message = ws.recv(timeout=30)
            received += len(message)
            if received % (4 << 20) < 65536:
                time.sleep(0.3)   # a slow reader: pauses while the upstream keeps sending
                peak = max(peak, gw.rss_kib())
        assert ws.recv(timeout=10) == "flood done"
    growth_mib = (peak - before) / 1024
    print(f"\nslow reader, 64 MiB through one tunnel: gateway RSS {before} KiB -> peak {peak} KiB "
          f"(+{growth_mib:.1f} MiB)")
    assert growth_mib < 16


def test_a_thousand_idle_tunnels_on_one_worker(session_gateways, tmp_path):
    from ws_support import IdleHandshakeUpstream, raw_handshake
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip("needs 4096 open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    idle = IdleHandshakeUpstream()
    sockets = []
    try:
        gw = start_gateway(session_gateways, tmp_path, idle)
        bearer = token()
        sockets.append(raw_handshake(gw.port, "/live/warm", bearer))   # the first tunnel's one-time costs
        time.sleep(0.2)
        before = gw.rss_kib()
        for i in range(1000):
            sockets.append(raw_handshake(gw.port, f"/live/{i}", bearer))
        support.wait_until(lambda: idle.upgraded >= 1001, 10, message="1001 upgrades")
        time.sleep(0.5)
        after = gw.rss_kib()
        growth_mib = (after - before) / 1024
        print(f"\n1,000 idle tunnels on one worker: gateway RSS {before} KiB -> {after} KiB (+{growth_mib:.1f} MiB, "
              f"{(after - before) / 1000:.1f} KiB per tunnel)")
        assert growth_mib < 64
        # They all still work.
        for s in sockets[::250]:
            s.sendall(b"\x81\x80abcd")   # a masked empty text frame: relayed to the silent upstream
    finally:
        for s in sockets:
            s.close()
        idle.stop()


# ---------------------------------------------------------------------------------------------
# Two instances sharing a real Redis

def test_logout_on_another_instance_closes_the_tunnel_within_5s(session_gateways, tmp_path, upstream):
    from session_support import RedisServer
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        sessions = sessions_section(store=redis.url, idle="10m", absolute="1h")
        a = start_gateway(session_gateways, tmp_path, upstream, sessions=sessions, name="gwA")
        b = start_gateway(session_gateways, tmp_path, upstream, sessions=sessions, name="gwB")
        cookie = b.login_cookie("alice")
        with ws_connect(a, "/live/a", cookie=cookie, origin=PUBLIC_ORIGIN) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            resp, _ = b.logout(cookie, headers=[("Origin", PUBLIC_ORIGIN)])
            assert resp.status == 204
            elapsed = wait_closed(ws, 8)
        print(f"\nlogout on B closed the tunnel on A after {elapsed:.2f} s")
        assert elapsed < 5
        assert support.wait_until(lambda: tunnel_lines(a), 3)[-1]["reason"] == "session_expired"
    finally:
        redis.stop()


# ---------------------------------------------------------------------------------------------
# `gatehouse echo` (the quick start's upstream)

def test_gatehouse_echo_answers_websocket_through_the_gateway(session_gateways, tmp_path, gatehouse_bin):
    import subprocess
    port = support.free_port()
    echo_proc = subprocess.Popen([gatehouse_bin, "echo", "--listen", f"127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        support.wait_until(lambda: support.port_accepts(port), 10, message="gatehouse echo")

        class Echo:
            url = f"http://127.0.0.1:{port}"
        gw = start_gateway(session_gateways, tmp_path, Echo)
        big = os.urandom(16 << 20)
        with ws_connect(gw, "/live/feed", token=token()) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            ws.send(["frag", "ments"])
            assert ws.recv(timeout=5) == "fragments"
            ws.send(big)
            assert ws.recv(timeout=30) == big
            assert ws.ping(b"p").wait(5)
        # The plain JSON echo still answers other requests.
        assert support.raw_request(gw.port, "GET", "/plain/x", []).json()["path"] == "/plain/x"
    finally:
        echo_proc.terminate()
        echo_proc.wait(timeout=5)


# ---------------------------------------------------------------------------------------------
# TLS on either side

def test_wss_client_to_an_https_upstream(gateway_factory, tmp_path):
    import ssl
    from jwt_support import ThrowawayCA, server_tls_context
    from websockets.sync.client import connect
    ca = ThrowawayCA("websocket test CA")
    ca_file = ca.write_pem(tmp_path / "ca.pem")
    gw_cert, gw_key = ca.issue_server(tmp_path, "gateway", ["localhost"], ["127.0.0.1"])
    up_cert, up_key = ca.issue_server(tmp_path, "upstream", ["localhost"], ["127.0.0.1"])
    upstream = WebSocketUpstream(tls=server_tls_context(up_cert, up_key))
    try:
        gw = gateway_factory(upstreams={"api": upstream.url},
                             routes=[{"name": "live", "match": {"path": "/**"}, "upstream": "api", "auth": "none",
                                      "websocket": True}],
                             server={"tls": {"cert": str(gw_cert), "key": str(gw_key)}, "workers": 1},
                             env={"SSL_CERT_FILE": str(ca_file)})
        client_tls = ssl.create_default_context(cafile=str(ca_file))
        big = os.urandom(2 << 20)
        with connect(f"wss://127.0.0.1:{gw.port}/feed", ssl=client_tls, max_size=None, compression=None,
                     open_timeout=30, ping_interval=None) as ws:
            for message in ("over TLS twice", b"\x00" * 100, big):
                ws.send(message)
                assert ws.recv(timeout=30) == message
        seen = upstream.last_handshake()
        assert header(seen, "X-Forwarded-Proto") == "https"
    finally:
        upstream.stop()


def test_bytes_right_behind_either_head_are_relayed(session_gateways, tmp_path):
    """The upstream's first frame in the same write as its 101, and the client's first frame in
    the same write as its handshake (before the 101), both arrive."""
    from ws_support import accept_key
    seen = {}

    def handler(up, conn, reader, number):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        head, _, early = head.partition(b"\r\n\r\n")
        key = next(l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:"))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode() + b"\x81\x05early")
        while len(early) < 11:
            early += conn.recv(4096)
        seen["client_frame"] = early
        time.sleep(0.5)
    raw = support.RawUpstream(handler)
    try:
        gw = start_gateway(session_gateways, tmp_path, raw)
        with socket.create_connection((support.LOOPBACK, gw.port), timeout=5) as s:
            s.sendall(b"GET /open/x HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                      b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")   # RFC 6455 §5.7 masked "Hello"
            data = b""
            while not data.endswith(b"\x81\x05early"):
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
        assert data.startswith(b"HTTP/1.1 101 ")
        support.wait_until(lambda: "client_frame" in seen, 5)
        assert seen["client_frame"] == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    finally:
        raw.stop()


def test_the_101_passes_by_the_header_rules(session_gateways, tmp_path):
    """What an upstream's 101 may not pass on: hop-by-hop headers, what its Connection names,
    framing headers, the gateway's own session cookie."""
    from ws_support import accept_key

    def handler(up, conn, reader, number):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        key = next(l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:"))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Secret\r\n"
                     b"X-Secret: hidden\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                     b"Set-Cookie: gatehouse_session=planted; Path=/\r\nSet-Cookie: theme=dark\r\n"
                     b"Sec-WebSocket-Protocol: chat\r\n"
                     + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode())
        time.sleep(1)
    raw = support.RawUpstream(handler)
    try:
        gw = start_gateway(session_gateways, tmp_path, raw)
        with socket.create_connection((support.LOOPBACK, gw.port), timeout=5) as s:
            s.sendall(b"GET /open/x HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Protocol: chat, superchat\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, head
                head += chunk
        lines = head.decode().split("\r\n\r\n")[0].split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        names = [l.split(":", 1)[0].lower() for l in lines[1:]]
        for gone in ("x-secret", "keep-alive", "content-length", "transfer-encoding"):
            assert gone not in names, lines
        assert names.count("connection") == 1 and "Connection: Upgrade" in lines
        assert names.count("upgrade") == 1 and "Upgrade: websocket" in lines
        assert "Set-Cookie: theme=dark" in lines and not any("planted" in l for l in lines)
        assert "Sec-WebSocket-Protocol: chat" in lines
        assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    finally:
        raw.stop()


def test_a_client_flooding_an_upstream_that_never_reads_keeps_the_gateway_bounded(session_gateways, tmp_path):
    from ws_support import accept_key
    release = threading.Event()

    def handler(up, conn, reader, number):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        key = next(l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:"))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode())
        release.wait(30)   # never reads
    raw = support.RawUpstream(handler)
    try:
        gw = start_gateway(session_gateways, tmp_path, raw)
        from ws_support import raw_handshake
        s = raw_handshake(gw.port, "/live/flood", token())
        before = gw.rss_kib()
        s.setblocking(False)
        frame = b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"abcd" + bytes(1 << 20)   # 1 MiB masked binary frames
        sent, deadline = 0, time.monotonic() + 10
        while sent < (64 << 20) and time.monotonic() < deadline:
            try:
                sent += s.send(frame[sent % len(frame):])
            except BlockingIOError:
                time.sleep(0.05)
        growth_mib = (gw.rss_kib() - before) / 1024
        print(f"\na client pushing into an upstream that never reads: {sent >> 20} MiB accepted by the kernel "
              f"before it blocked, gateway RSS +{growth_mib:.1f} MiB")
        assert sent < (64 << 20), "the gateway kept reading although the upstream read nothing"
        assert growth_mib < 16
        s.close()
    finally:
        release.set()
        raw.stop()


# ---------------------------------------------------------------------------------------------
# explain

def test_explain_says_whether_a_route_tunnels(run_cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        'upstreams: { api: { targets: ["http://127.0.0.1:9"] } }\n'
        "routes:\n"
        '  - { name: live, match: { path: "/live/**" }, upstream: api, auth: none, websocket: true }\n'
        '  - { name: plain, match: { path: "/**" }, upstream: api, auth: none }\n')
    handshake = ["--header", "Upgrade: websocket", "--header", "Connection: Upgrade",
                 "--header", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "--header", "Sec-WebSocket-Version: 13"]
    live = run_cli("explain", "--config", "c.yaml", "GET", "/live/x", *handshake)
    assert live.returncode == 0, live.stderr
    assert "websocket:       yes" in live.stdout
    assert "tunnelled on the upstream's 101" in live.stdout
    plain = run_cli("explain", "--config", "c.yaml", "GET", "/other", *handshake)
    assert "websocket:       no" in plain.stdout
    assert "tunnelled on the upstream's 101" not in plain.stdout
    body = run_cli("explain", "--config", "c.yaml", "--json", "GET", "/live/x", *handshake, "--header", "Content-Length: 4")
    assert json.loads(body.stdout)["status"] == 400


def test_a_rate_limited_route_counts_handshakes(session_gateways, tmp_path, upstream):
    routes = [{"name": "limited", "match": {"path": "/limited/**"}, "upstream": "api", "websocket": True, "auth": "none",
               "rate_limit": {"rate": "1/m", "burst": 1, "key": "client"}}]
    gw = start_gateway(session_gateways, tmp_path, upstream, routes=routes)
    with ws_connect(gw, "/limited/a") as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        status, headers, body = refused_status(gw, "/limited/b")
        assert status == 429 and b'"too_many_requests"' in body and "retry-after" in headers
        ws.send("the open tunnel is not limited")
        assert ws.recv(timeout=5) == "the open tunnel is not limited"


def test_a_shadow_route_tunnels_what_it_would_refuse_and_logs_it(session_gateways, tmp_path, upstream):
    routes = [{"name": "shadowed", "match": {"path": "/shadow/**"}, "upstream": "api", "websocket": True,
               "mode": "shadow", "require": {"roles_any": ["admin"]}}]
    gw = start_gateway(session_gateways, tmp_path, upstream, routes=routes)
    with ws_connect(gw, "/shadow/x", token=token(roles=["reader"]), headers=[("X-Request-Id", "ws-shadow-1")]) as ws:
        ws.send("let through")
        assert ws.recv(timeout=5) == "let through"
    rec = support.wait_until(lambda: [r for r in tunnel_lines(gw) if r["request_id"] == "ws-shadow-1"], 5)[0]
    assert rec["shadow"] is True and rec["reason"] == "insufficient_role" and rec["decision"] == "deny"
    assert rec["bytes_received"] > 0 and rec["trace_id"]
    # The Origin rule is never shadowed.
    cookie = gw.login_cookie("alice")
    status, _, _ = refused_status(gw, "/shadow/x", cookie=cookie, origin=FOREIGN_ORIGIN)
    assert status == 403
