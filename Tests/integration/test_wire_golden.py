"""The bytes a client receives, compared byte for byte with a recorded reference (issue 16: every
fast path on the reply side must write exactly what evhttp wrote before).

One kept-alive connection carries a pipelined sequence that mixes the answers whose framing
differs — 200 with a length, HEAD, 204, 304, a chunked body, a close-delimited body turned into
chunks, the gateway's own uniform errors (401, 404, 400), a 302 login redirect, a preflight —
sent all at once, the last with `Connection: close`. The upstream answers each path with fixed bytes and no Date, and every
request carries its own X-Request-Id, so that the only varying bytes are evhttp's `Date`
values, replaced by `Date: <date>` before comparing.

An HTTP/1.0 client's keep-alive sequence is compared the same way. The references in golden/ were recorded with the release build of main
before the reply-side fast paths (commit 147e82c): GOLDEN_RECORD=1 rewrites it.
"""
import os
import re
import socket
import time

import pytest
from pathlib import Path

from conftest import build_config
from support import GatewayProcess, RawUpstream, free_port, read_raw_request

GOLDEN_DIR = Path(__file__).parent / "golden"

ANSWERS = {
    "/docs/len": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nETag: \"e1\"\r\n\r\nhello",
    "/docs/none": b"HTTP/1.1 204 No Content\r\nX-Up: a\r\n\r\n",
    "/docs/same": b"HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\nCache-Control: max-age=5\r\n\r\n",
    "/docs/chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                                 for part in (b'{"a', b'":1,"b":"' + b"x" * 300 + b'"}', b"\n" * 17))
                      + b"0\r\n\r\n"),
    "/docs/created": b"HTTP/1.1 201 Created\r\nLocation: /docs/len\r\nContent-Length: 2\r\n\r\nok",
}


def upstream_handler(upstream, conn, reader, number):
    while True:
        req = read_raw_request(reader)
        if req is None:
            return
        line = req[0]
        path = line.split(" ")[1]
        upstream.record(line)
        if path == "/docs/closing":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil-eof")
            return
        conn.sendall(ANSWERS.get(path, b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"))


SEQUENCE = [
    ("GET", "/docs/len", []),
    ("HEAD", "/docs/len", []),
    ("GET", "/docs/none", []),
    ("GET", "/docs/same", [("If-None-Match", '"e1"')]),
    ("GET", "/docs/chunked", []),
    ("HEAD", "/docs/chunked", []),
    ("POST", "/docs/created", [("Content-Type", "text/plain"), ("Content-Length", "4")], b"body"),
    ("GET", "/api/x", []),
    ("GET", "/api/x", [("Authorization", "Bearer not.a.token")]),
    ("GET", "/app/page", [("Accept", "text/html")]),
    ("GET", "/nowhere", []),
    ("OPTIONS", "/docs/len", [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "GET")]),
    ("GET", "/docs/len", [("Origin", "https://app.example.com")]),
    ("GET", "/docs/%2e%2e/%2e%2e/etc", []),
    ("GET", "/docs/closing", []),
    ("GET", "/docs/len", [("Connection", "close")]),
]


# A 1.0 client cannot take chunks: the chunked answer goes back close-delimited, so it ends
# the sequence.
HTTP10_SEQUENCE = [
    ("GET", "/docs/len", [("Connection", "keep-alive")]),
    ("GET", "/api/x", [("Connection", "keep-alive")]),
    ("HEAD", "/docs/len", [("Connection", "keep-alive")]),
    ("GET", "/docs/chunked", [("Connection", "keep-alive")]),
]


def request_bytes(number, item, version="1.1"):
    method, target, headers = item[0], item[1], item[2]
    body = item[3] if len(item) > 3 else b""
    lines = [f"{method} {target} HTTP/{version}", "Host: wire.test", f"X-Request-Id: wire-{number:02d}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def received(port, sequence, version):
    data = b"".join(request_bytes(i, item, version) for i, item in enumerate(sequence))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return re.sub(rb"\r\nDate: [^\r\n]*", b"\r\nDate: <date>", b"".join(chunks))


@pytest.mark.parametrize("name, sequence, version", [
    ("pipelined-sequence", SEQUENCE, "1.1"),
    ("http10-sequence", HTTP10_SEQUENCE, "1.0"),
])
def test_a_pipelined_mix_of_answers_is_byte_for_byte_what_it_was(gatehouse_bin, tmp_path, name, sequence, version):
    upstream = RawUpstream(upstream_handler)
    (tmp_path / "hs.key").write_bytes(b"0123456789abcdef0123456789abcdef")
    config = build_config(
        free_port(), None, tmp_path / "access.log", upstreams={"api": upstream},
        server={"workers": 1},
        routes=[
            {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"},
            {"name": "app", "match": {"path": "/app/**"}, "upstream": "api", "login_redirect": "/login.html"},
            {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
        ],
        extra={
            "jwt": {"issuers": [{"name": "local", "algorithms": ["HS256"], "secret_file": "hs.key"}]},
            "cors": {"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "POST"],
                     "expose_headers": ["X-Request-Id"], "max_age": "10m"},
        })
    gw = GatewayProcess(gatehouse_bin, tmp_path, config, int(config["server"]["listen"][0].rsplit(":", 1)[1]),
                        None, tmp_path / "access.log", name="wire")
    try:
        gw.start()
        got = received(gw.port, sequence, version)
    finally:
        gw.kill()
        upstream.stop()
    golden = GOLDEN_DIR / f"{name}.txt"
    if os.environ.get("GOLDEN_RECORD") == "1":
        golden.write_bytes(got)
    expected = golden.read_bytes()
    assert got == expected, _first_difference(got, expected)
    assert got.count(f"HTTP/{version} ".encode()) == len(sequence), "one answer per request"


def _first_difference(got, expected):
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"first difference at byte {i}: got {got[max(0, i - 80):i + 80]!r}, expected {expected[max(0, i - 80):i + 80]!r}"
    return f"lengths differ: got {len(got)}, expected {len(expected)}"
