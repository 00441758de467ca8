"""Hostile bytes in paths and logs (SPEC §3.2 Path bytes and Logs, issue 9 items 11 and 18):
overlong and other invalid UTF-8 escapes are refused by `strict`; a path-rejected line shows the
path as received (escaped, cut at 1 KiB); the combined format escapes every byte a client can
influence, so no line can be forged; a client address taken from `X-Forwarded-For` is an IP
literal or the peer's; `user_agent` and `referer` are cut at 1 KiB."""

from __future__ import annotations

import re

import pytest

from support import raw_exchange, raw_request, wait_until

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}
COMBINED_RE = re.compile(r'(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\S+)')


def combined_line(gw, rid: str) -> str:
    return wait_until(lambda: next((l for l in gw.log_lines() if l.endswith(" " + rid)), None), 3,
                      message=f"the combined line of {rid}")


# ---------------------------------------------------------------------------------------------
# Path bytes (item 11)

@pytest.mark.parametrize("target", [
    pytest.param("/docs/%C0%AE%C0%AE/etc/passwd", id="overlong-dot-dot"),
    pytest.param("/docs/a%C0%AFb", id="overlong-slash"),
    pytest.param("/docs/%E0%80%AE%E0%80%AE/x", id="3-byte-overlong-dots"),
    pytest.param("/docs/%F0%80%80%AF", id="4-byte-overlong-slash"),
    pytest.param("/docs/%ED%A0%80", id="surrogate"),
    pytest.param("/docs/%F4%90%80%80", id="above-U+10FFFF"),
    pytest.param("/docs/a%C3/b", id="truncated"),
    pytest.param("/docs/%80", id="stray-continuation"),
])
def test_strict_refuses_escapes_that_are_not_utf8_and_logs_the_path_as_received(gateway_factory, echo, target):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    r = raw_request(gw.port, "GET", target + "?q=1")
    assert r.status == 400 and r.json()["error"] == "bad_request", r
    assert echo.request_count == 0
    rec = gw.wait_log_record(r.header("X-Request-Id"))
    assert rec["reason"] == "path_rejected"
    assert rec["path"] == target                   # as received, without the query


def test_valid_utf8_escapes_are_forwarded(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/caf%c3%a9/%F0%9F%98%80")
    assert r.status == 200, r
    assert r.json()["path"] == "/docs/caf%C3%A9/%F0%9F%98%80"


def test_lenient_forwards_latin1_escapes_as_they_came(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"path_policy": "lenient"})
    r = raw_request(gw.port, "GET", "/docs/caf%E9")
    assert r.status == 200 and r.json()["path"] == "/docs/caf%E9"


def test_a_refused_path_is_logged_json_escaped_and_cut_at_1_kib(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    target = '/docs/"\\%2F' + "a" * 3000
    r = raw_request(gw.port, "GET", target)
    assert r.status == 400
    rec = gw.wait_log_record(r.header("X-Request-Id"))
    assert rec["reason"] == "path_rejected"
    assert rec["path"] == target[:1024]


def test_a_refused_path_in_the_combined_format_cannot_forge_a_line(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format="combined")
    forged = '/docs/%2F" 200 1 "-" "-" x\x0b\x1b[2J'
    data = f"GET {forged} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1")
    r = raw_exchange(gw.port, data)
    assert r.status == 400
    line = combined_line(gw, r.header("X-Request-Id"))
    m = COMBINED_RE.fullmatch(line)
    assert m, line
    assert m.group(4) == r'GET /docs/%2F\x22 200 1 \x22-\x22 \x22-\x22 x\x0B\x1B[2J HTTP/1.1', line
    assert all(0x20 <= ord(c) < 0x7F for c in line), line


def test_the_combined_format_writes_the_bytes_received_not_their_utf8_repair(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format="combined")
    r = raw_exchange(gw.port, b"GET /docs/\xe9\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status == 400                          # raw bytes above 0x7F: refused by the path policy
    line = combined_line(gw, r.header("X-Request-Id"))
    assert '"GET /docs/\\xE9\\xFF HTTP/1.1" 400 ' in line, line


# ---------------------------------------------------------------------------------------------
# X-Forwarded-For and header fields in the log (item 18)

FORGED_LINE = '6.6.6.6 - root [01/Jan/2026:00:00:00 +0000] "GET /admin/delete-all HTTP/1.1" 200 0 "-" "-" x'


@pytest.mark.parametrize("entry", [
    pytest.param(FORGED_LINE, id="forged-combined-line"),
    pytest.param("client.example.com", id="host-name"),
    pytest.param("198.51.100.7:4711", id="address-with-port"),
    pytest.param("unknown", id="unknown"),
])
def test_a_forwarded_for_entry_that_is_not_an_ip_literal_is_never_the_client(gateway_factory, echo, entry):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format="combined",
                         server={"trusted_proxies": ["127.0.0.1/32"]})
    data = (f"GET /docs/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {entry}\r\nConnection: close\r\n\r\n"
            .encode("latin-1"))
    r = raw_exchange(gw.port, data)
    assert r.status == 200
    line = combined_line(gw, r.header("X-Request-Id"))
    assert line.startswith("127.0.0.1 - - ["), line     # the peer, the trusted proxy itself
    assert COMBINED_RE.fullmatch(line), line
    assert all(0x20 <= ord(c) < 0x7F for c in line), line


def test_a_forwarded_for_entry_with_a_terminal_escape_is_refused_and_logged_as_the_peer(gateway_factory, echo):
    # Control bytes in a header value: 400 before anything else (SPEC §3.2 Request heads).
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format="combined",
                         server={"trusted_proxies": ["127.0.0.1/32"]})
    data = (b"GET /docs/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \x1b]0;owned\x07198.51.100.7\r\n"
            b"Connection: close\r\n\r\n")
    r = raw_exchange(gw.port, data)
    assert r.status == 400 and echo.request_count == 0
    line = combined_line(gw, r.header("X-Request-Id"))
    assert line.startswith("127.0.0.1 - - ["), line
    assert COMBINED_RE.fullmatch(line), line
    assert all(0x20 <= ord(c) < 0x7F for c in line), line


def test_an_ip_literal_from_a_trusted_proxy_is_still_the_client(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"trusted_proxies": ["127.0.0.1/32"]})
    r = raw_request(gw.port, "GET", "/docs/x", headers=[("X-Forwarded-For", "6.6.6.6, [2001:DB8::7]")])
    assert r.status == 200
    assert gw.wait_log_record(r.header("X-Request-Id"))["client"] == "2001:db8::7"


@pytest.mark.parametrize("fmt", ["json", "combined"])
def test_user_agent_and_referer_are_logged_cut_at_1_kib(gateway_factory, echo, fmt):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], access_log_format=fmt,
                         server={"max_header_bytes": "64KiB"})
    agent, referer = "A" * 30 * 1024, "https://r.example/" + "R" * 30 * 1024
    r = raw_request(gw.port, "GET", "/docs/x", headers=[("User-Agent", agent), ("Referer", referer)])
    assert r.status == 200
    rid = r.header("X-Request-Id")
    if fmt == "json":
        rec = gw.wait_log_record(rid)
        assert rec["user_agent"] == agent[:1024]
        line = next(l for l in gw.log_lines() if rid in l)
    else:
        line = combined_line(gw, rid)
        m = COMBINED_RE.fullmatch(line)
        assert m and m.group(7) == referer[:1024] and m.group(8) == agent[:1024], line[:300]
    assert len(line) < 3 * 1024, len(line)


@pytest.mark.parametrize("byte,status", [
    pytest.param('"', 431, id="quotes-431"),
    pytest.param("\x01", 400, id="control-bytes-400"),   # refused as a control byte (SPEC §3.2)
])
def test_a_huge_user_agent_on_a_refused_head_writes_a_short_line(gateway_factory, echo, byte, status):
    # 16 KiB: evhttp's own limit is twice that plus 8 KiB, so the gateway itself answers the 431
    # after reading the head (the path that logged the whole agent). The old build wrote 180 KB
    # for 30 KiB of \x01 (every byte as \\u0001).
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"max_header_bytes": "16KiB"})
    r = raw_request(gw.port, "GET", "/docs/x", headers=[("User-Agent", byte * 30 * 1024)])
    assert r.status == status
    rid = r.header("X-Request-Id")
    rec = gw.wait_log_record(rid)
    line = next(l for l in gw.log_lines() if rid in l)
    assert len(line) < 8 * 1024, len(line)
    if status == 431:
        assert rec["user_agent"] == byte * 1024
    else:                                       # refused while evhttp read the head: no fields kept
        assert rec.get("user_agent") in (None, "", "-")
