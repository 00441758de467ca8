"""Connections and listeners under hostile clients (SPEC §3.2): descriptor exhaustion pauses
accepting instead of spinning, `server.max_connections` caps each worker (the rest wait in the
backlog), the admin listener has the public listeners' head limit, header timeout and connection
cap, and `Connection` headers cost linear time with at most 64 tokens."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import requests

from conftest import build_config
from support import (LOOPBACK, GatewayProcess, free_port, read_raw_request, read_response, simple_response,
                     wait_until)

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}
MiB = 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pause_lines(gw) -> list[str]:
    return [line for line in gw.stderr().splitlines() if "accept" in line.lower()]


def get(port: int, path: str, timeout: float = 5.0):
    return requests.get(f"http://{LOOPBACK}:{port}{path}", timeout=timeout)


def served(port: int) -> bool:
    try:
        return get(port, "/docs/after", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def open_connections(gw) -> int:
    """`gatehouse_open_connections` (every worker's client connections) from /metrics."""
    for line in get(gw.admin_port, "/metrics").text.splitlines():
        if line.startswith("gatehouse_open_connections "):
            return int(float(line.split()[1]))
    raise AssertionError("no gatehouse_open_connections")


def idle_connections(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection((LOOPBACK, port), timeout=5) for _ in range(count)]


# ---------------------------------------------------------------------------------------------
# Descriptor exhaustion and max_connections (issue 9 item 4)

def test_descriptor_exhaustion_pauses_accepting_without_spinning(gatehouse_bin, tmp_path, echo):
    # `ulimit -n 64` sets the hard limit too, so the gateway cannot raise it: accept(2) fails
    # with EMFILE long before max_connections (1000) is reached.
    wrapper = tmp_path / "limited.sh"
    wrapper.write_text(f'#!/bin/sh\nulimit -n 64\nexec "{gatehouse_bin}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    port = free_port()
    config = build_config(port, None, tmp_path / "access.log", upstreams={"api": echo}, routes=[DOCS],
                          server={"max_connections": 1000})
    gw = GatewayProcess(str(wrapper), tmp_path, config, port, None, tmp_path / "access.log", name="limited")
    gw.start()
    idle = []
    try:
        idle = idle_connections(port, 100)
        # The positive signal: a worker said something about accepting (the fixed gateway that
        # it pauses; the old one began its flood of accept() warnings).
        wait_until(lambda: pause_lines(gw), 10, message="a line about accepting")
        before = cpu_seconds(gw.pid)
        time.sleep(3)  # a measuring window, after the positive signal above
        spent = cpu_seconds(gw.pid) - before
        assert spent < 0.5, f"{spent:.2f} s of CPU in 3 s while out of descriptors"
        lines = pause_lines(gw)
        assert len(lines) <= 4, lines  # at most one per worker per 10 s
        assert len(gw.stderr()) < 20_000
        for s in idle:
            s.close()
        idle = []
        wait_until(lambda: served(port), 15, interval=0.2, message="a request served after the idle connections closed")
    finally:
        for s in idle:
            s.close()
        gw.kill()


def test_connections_beyond_max_connections_wait_in_the_backlog(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"max_connections": 3, "workers": 2})
    clients = idle_connections(gw.port, 8)
    try:
        for i, s in enumerate(clients):
            s.sendall(f"GET /docs/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # 8 connections over 2 workers: at least one worker reaches its 3.
        wait_until(lambda: any("server.max_connections" in line for line in pause_lines(gw)), 10,
                   message="a worker to reach max_connections")
        # Everything accepted is answered (one access-log line each) before the count is read:
        # the connections still unanswered then are the ones waiting in a backlog.
        def settled():
            accepted = open_connections(gw)
            return accepted if 3 <= accepted == len(gw.log_lines()) else None
        accepted = wait_until(settled, 10, message="every accepted connection answered")
        assert accepted <= 6
        answered, waiting = [], []
        for s in clients:
            s.settimeout(1)
            try:
                assert read_response(s.makefile("rb")).status == 200
                answered.append(s)
            except (socket.timeout, TimeoutError):
                waiting.append(s)
        assert len(answered) == accepted and len(waiting) == 8 - accepted, (accepted, len(answered))
        for s in answered:
            s.close()
        for s in waiting:
            s.settimeout(10)
            assert read_response(s.makefile("rb")).status == 200  # accepted once others closed
    finally:
        for s in clients:
            s.close()


def test_a_reload_that_raises_max_connections_resumes_accepting(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"max_connections": 1, "workers": 1})
    first, second = idle_connections(gw.port, 2)
    try:
        wait_until(lambda: any("server.max_connections" in line for line in pause_lines(gw)), 10,
                   message="the worker to reach max_connections")
        second.sendall(b"GET /docs/second HTTP/1.1\r\nHost: x\r\n\r\n")
        gw.reload(gw.make_config(server={"max_connections": 5, "workers": 1}))
        wait_until(lambda: "configuration reloaded" in gw.stderr(), 10, message="the reload")
        second.settimeout(10)
        assert read_response(second.makefile("rb")).status == 200
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------------------------------------
# The admin listener (issue 9 item 17)

def test_admin_listener_refuses_a_huge_head_early(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    rss_before = gw.rss_kib()
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    chunk = line * 1024
    sent, refused = 0, False
    with socket.create_connection((LOOPBACK, gw.admin_port), timeout=10) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            while sent < 150 * MiB:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            refused = True
    assert refused and sent < 16 * MiB, f"{sent / MiB:.1f} MiB of headers taken"
    assert gw.rss_kib() - rss_before < 30_000
    assert get(gw.admin_port, "/healthz").status_code == 200


def test_admin_listener_closes_an_idle_partial_request_after_header_timeout(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"header_timeout": "1s"})
    with socket.create_connection((LOOPBACK, gw.admin_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        s.settimeout(6)
        try:
            assert s.recv(1024) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 1 + 2


def test_admin_listener_closes_a_dripping_request_after_header_timeout(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"header_timeout": "1s"})
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Drip: " + b"d" * 200
    closed = False
    with socket.create_connection((LOOPBACK, gw.admin_port), timeout=10) as s:
        started = time.monotonic()
        try:
            for byte in head:
                s.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - started > 6:
                    break
            s.settimeout(6)
            closed = s.recv(1024) == b""
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        assert closed and time.monotonic() - started < 1 + 2


def test_admin_listener_has_the_connection_limit(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"max_connections": 2, "workers": 1})
    idle = idle_connections(gw.admin_port, 2)
    try:
        wait_until(lambda: any(line.split(" ", 1)[1].startswith("admin:") and "server.max_connections" in line
                               for line in pause_lines(gw)), 10, message="the admin listener to reach its limit")
        with socket.create_connection((LOOPBACK, gw.admin_port), timeout=10) as waiting:
            waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            idle[0].close()
            assert read_response(waiting.makefile("rb")).status == 200
    finally:
        for s in idle:
            s.close()


def test_admin_listener_still_answers_kept_alive_requests(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    with socket.create_connection((LOOPBACK, gw.admin_port), timeout=5) as s:
        reader = s.makefile("rb")
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(reader).status == 200


# ---------------------------------------------------------------------------------------------
# Connection tokens (issue 9 item 5)

def raw_get(port: int, headers: list[tuple[str, str]], timeout: float = 10):
    head = "GET /docs/c HTTP/1.1\r\nHost: x\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(head.encode())
        return read_response(s.makefile("rb"))


def test_sixty_five_connection_tokens_are_a_bad_request(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    tokens = [f"x-t{i}" for i in range(65)]
    r = raw_get(gw.port, [("Connection", ", ".join(tokens[:40])), ("Connection", ", ".join(tokens[40:]))])
    assert r.status == 400
    assert r.json()["error"] == "bad_request"
    assert echo.request_count == 0


def header_names_handler(upstream, conn, reader, number):
    """Answers each request with the names of the headers it received, one per line."""
    while True:
        request = read_raw_request(reader)
        if request is None:
            return
        body = "\n".join(name for name, _ in request[1]).encode()
        conn.sendall(simple_response(body))


def test_sixty_four_tokens_with_thousands_of_headers_are_answered_without_the_named_ones(gateway_factory, upstreams):
    names = upstreams.raw(header_names_handler)
    gw = gateway_factory(upstreams={"api": names}, routes=[DOCS], server={"max_header_bytes": "1MiB"})
    tokens = [f"x-t{i}" for i in range(63)] + ["keep-alive"]
    headers = [(f"X-T{i}", "named") for i in range(63)] + [(f"x-h{i}", "v") for i in range(4000)]
    r = raw_get(gw.port, [("Connection", ",".join(tokens))] + headers)
    assert r.status == 200
    received = {name.lower() for name in r.body.decode().split("\n")}
    assert not any(name.startswith("x-t") for name in received)
    assert {"x-h0", "x-h3999"} <= received and len([n for n in received if n.startswith("x-h")]) == 4000


def test_an_upstream_response_with_sixty_five_connection_tokens_is_a_bad_gateway(gateway_factory, upstreams):
    tokens = ",".join(f"x-t{i}" for i in range(65))

    def handler(upstream, conn, reader, number):
        if read_raw_request(reader) is not None:
            conn.sendall(simple_response(b"ok", extra=f"Connection: {tokens}\r\nX-T1: leaked\r\n"))

    gw = gateway_factory(upstreams={"api": upstreams.raw(handler)}, routes=[DOCS])
    assert get(gw.port, "/docs/r").status_code == 502
