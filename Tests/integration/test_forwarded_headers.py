"""Headers upstreams trust (SPEC §7.1, §3.2, issue 9 item 6): URL overrides and method
overrides never reach an upstream, front-proxy headers only from a trusted proxy, the client
address in `X-Real-IP` is the gateway's own, and every removed name is removed in any letter
case and in its `_` spelling (CGI, WSGI, PHP read `X_Real_IP` as `X-Real-IP`)."""

from __future__ import annotations

import pytest

from support import pairs_all, raw_request

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}

ALWAYS_REMOVED = ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI",
                  "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]
FRONT_PROXY = ["Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server"]
# Set by the gateway itself: the client's copies in other spellings must not stand beside it.
GATEWAY_SET = ["X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id"]


def spellings(name: str) -> list[str]:
    underscored = name.replace("-", "_")
    alternating = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))
    return [name, name.lower(), name.upper(), underscored, underscored.lower(), alternating,
            alternating.replace("-", "_", 1)]


def folded(name: str) -> str:
    return name.lower().replace("_", "-")


def received(response, name: str) -> list[str]:
    """Values of every header the upstream got whose name folds to `name`."""
    return [v for k, v in response.json()["headers"] if folded(k) == folded(name)]


def send_spellings(gw, name: str, headers: list[tuple[str, str]] | None = None):
    sent = [(spelling, f"spoofed {i}") for i, spelling in enumerate(spellings(name))]
    r = raw_request(gw.port, "GET", "/docs/h", headers=sent + (headers or []))
    assert r.status == 200, r
    return r


@pytest.mark.parametrize("name", ALWAYS_REMOVED + FRONT_PROXY)
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted-peer", "trusted-peer"])
def test_spoofable_headers_never_reach_the_upstream_in_any_spelling(gateway_factory, echo, name, trusted):
    server = {"trusted_proxies": ["127.0.0.1/32"]} if trusted else None
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS], server=server)
    r = send_spellings(gw, name)
    got = received(r, name)
    if trusted and name in FRONT_PROXY:
        # What the trusted front proxy says passes as it was sent.
        assert sorted(got) == sorted(f"spoofed {i}" for i in range(len(spellings(name))))
    else:
        assert got == [], f"{name} reached the upstream: {r.json()['headers']}"


@pytest.mark.parametrize("name", GATEWAY_SET)
def test_headers_the_gateway_sets_are_its_own_in_every_spelling(gateway_factory, echo, name):
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS])
    r = send_spellings(gw, name)
    got = received(r, name)
    assert len(got) == 1 and not got[0].startswith("spoofed "), got
    assert [k for k, _ in r.json()["headers"] if folded(k) == folded(name)] == [name]


def test_x_real_ip_is_the_client_address(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/ip", headers=[("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "6.6.6.6")])
    assert pairs_all(r.json()["headers"], "X-Real-IP") == ["127.0.0.1"]


def test_x_real_ip_behind_a_trusted_proxy_is_the_client_it_forwarded_for(gateway_factory, echo):
    # One X-Real-IP, the gateway's: the client address derived from the trusted chain.
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS],
                         server={"trusted_proxies": ["127.0.0.1/32"]})
    r = raw_request(gw.port, "GET", "/docs/ip", headers=[("X-Real-IP", "10.9.9.9"),
                                                         ("X-Forwarded-For", "203.0.113.7")])
    assert pairs_all(r.json()["headers"], "X-Real-IP") == ["203.0.113.7"]


def test_method_override_cannot_reach_a_route_limited_to_get(gateway_factory, echo):
    # A GET-only route: the upstream must not be told to treat the request as a DELETE.
    route = {"name": "ro", "match": {"path": "/docs/**", "methods": ["GET"]}, "upstream": "api", "auth": "none"}
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[route])
    r = raw_request(gw.port, "GET", "/docs/item/1", headers=[
        ("X-HTTP-Method-Override", "DELETE"), ("X_HTTP_Method", "DELETE"), ("x-method-override", "DELETE")])
    assert r.status == 200
    got = r.json()
    assert got["method"] == "GET"
    assert [k for k, _ in got["headers"] if "method" in k.lower()] == []


def test_identity_and_x_auth_headers_in_underscore_spellings_are_removed(gateway_factory, echo):
    gw = gateway_factory(upstreams={"api": {"targets": [echo.url]}}, routes=[DOCS])
    r = raw_request(gw.port, "GET", "/docs/me", headers=[
        ("X_Auth_Subject", "admin"), ("x_auth_roles", "admin"), ("X_AUTH_ANYTHING", "x"), ("X-Auth_Email", "e")])
    assert r.status == 200
    assert [k for k, _ in r.json()["headers"] if folded(k).startswith("x-auth-")] == []
