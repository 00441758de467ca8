"""OIDC discovery end to end (SPEC §14.1, §5.2, §3.2 Key fetches) against a real provider
(django-oidc-provider, oidc_support.py): ID tokens it signs validate through the keys its
discovery document points at; /readyz is 503 until the first document and key set arrive; key
rotation at the provider is picked up; a document naming another issuer (the mix-up attack) is
refused and logged; the provider stopped leaves the cached keys serving.
"""

from __future__ import annotations

import pytest

from jwt_support import (assert_forwarded, assert_refused, received_headers, upstream_record, wait_for)
from oidc_support import DoctoredDiscovery


def sso_issuer(issuer: str, **extra) -> dict:
    return {"name": "sso", "issuer": issuer, "audiences": ["api-client"], "algorithms": ["RS256"], "discovery": True,
            **extra}


def start_gateway(gateways, upstream, issuer: str, wait_ready: bool = True, **extra):
    gw = gateways.start(upstream_url=upstream.url, jwt={"issuers": [sso_issuer(issuer, **extra)]},
                        routes=[{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}])
    if wait_ready:
        wait_for(gw.ready, 15, "/readyz 200 (discovery and keys fetched)")
    return gw


def assert_passes(gw, upstream, token: str, sub: str = "alice", roles: str = "admin"):
    response, rid = gw.get("/api/x", token)
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == [sub]
    assert received_headers(record, "X-Auth-Roles") == [roles]
    assert received_headers(record, "X-Auth-Method") == ["jwt"]


def test_provider_tokens_validate_through_discovery(oidc_provider, gateways, upstream):
    gw = start_gateway(gateways, upstream, oidc_provider.issuer)
    assert_passes(gw, upstream, oidc_provider.password_grant("alice")["id_token"])
    assert_passes(gw, upstream, oidc_provider.password_grant("bob")["id_token"], sub="bob", roles="reader")
    assert "discovery: issuer sso: jwks_uri " + oidc_provider.endpoint("jwks") in gw.stderr()
    # the provider's opaque access token is no JWS: without introspection it is refused
    response, rid = gw.get("/api/x", oidc_provider.password_grant("alice")["access_token"])
    assert response.status == 401
    assert gw.metric("gatehouse_jwks_refreshes_total") >= 1


def test_not_ready_until_the_provider_answers(oidc_providers, gateways, upstream):
    provider = oidc_providers(start=False)
    gw = start_gateway(gateways, upstream, provider.issuer, wait_ready=False)
    assert gw.admin_get("/readyz").status == 503
    wait_for(lambda: "no keys yet" in gw.stderr(), 10, "a failed first discovery logged")
    provider.start()
    wait_for(gw.ready, 40, "/readyz 200 once the provider answers (backoff 1 s doubling)")
    assert_passes(gw, upstream, provider.password_grant("alice")["id_token"])


def test_key_rotation_at_the_provider_is_picked_up(oidc_provider, gateways, upstream):
    gw = start_gateway(gateways, upstream, oidc_provider.issuer)
    old_token = oidc_provider.password_grant("alice")["id_token"]
    unused_old = oidc_provider.password_grant("bob")["id_token"]
    assert_passes(gw, upstream, old_token)
    oidc_provider.rotate_key()
    # a token signed with the new key: an unknown kid, one on-demand refresh (discovery + JWKS)
    assert_passes(gw, upstream, oidc_provider.password_grant("alice")["id_token"])
    # the old key is gone from the provider's JWKS, so from the gateway's key set too
    response, rid = gw.get("/api/x", unused_old)
    assert_refused(gw, upstream, response, rid, "unknown_kid")


def test_a_document_naming_another_issuer_is_refused(oidc_provider, gateways, upstream):
    # The mix-up attack: the configured issuer's discovery URL serves the real provider's
    # document (another issuer, its jwks_uri). The gateway must not take those keys.
    doctored = DoctoredDiscovery(oidc_provider.discovery())
    try:
        gw = start_gateway(gateways, upstream, doctored.base, wait_ready=False)
        wait_for(lambda: "is not the configured issuer" in gw.stderr(), 10, "the refusal logged")
        assert doctored.requests and doctored.requests[0] == "/.well-known/openid-configuration"
        assert gw.admin_get("/readyz").status == 503
        assert gw.metric("gatehouse_oidc_discovery_refused_total") >= 1
        assert gw.metric("gatehouse_jwks_refreshes_total") == 0
        line = next(l for l in gw.stderr().splitlines() if "is not the configured issuer" in l)
        assert f'"{oidc_provider.issuer}"' in line and "no keys yet" in line
    finally:
        doctored.stop()


def test_a_document_with_the_issuer_spelled_with_a_slash_is_refused(oidc_provider, gateways, upstream):
    document = oidc_provider.discovery()
    doctored = DoctoredDiscovery(document)
    try:
        document["issuer"] = doctored.base + "/"
        gw = start_gateway(gateways, upstream, doctored.base, wait_ready=False)
        wait_for(lambda: "is not the configured issuer" in gw.stderr(), 10, "the refusal logged")
        assert gw.admin_get("/readyz").status == 503
    finally:
        doctored.stop()


def test_provider_stopped_cached_keys_keep_serving(oidc_provider, gateways, upstream):
    gw = start_gateway(gateways, upstream, oidc_provider.issuer)
    first = oidc_provider.password_grant("alice")["id_token"]
    later = oidc_provider.password_grant("bob")["id_token"]   # never presented before the stop
    assert_passes(gw, upstream, first)
    oidc_provider.stop()
    assert_passes(gw, upstream, later, sub="bob", roles="reader")
    # an unknown kid now triggers a refresh that fails; the last good keys stay
    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    stranger = pyjwt.encode({"iss": oidc_provider.issuer, "aud": "api-client", "sub": "eve", "exp": 4102444800},
                            rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                            headers={"kid": "not-at-the-provider"})
    response, rid = gw.get("/api/x", stranger)
    assert_refused(gw, upstream, response, rid, "unknown_kid")
    wait_for(lambda: "keeping the last good key set" in gw.stderr(), 15, "the failed refresh logged")
    assert_passes(gw, upstream, first)
    assert gw.ready()


def test_check_and_explain_describe_discovery(run_cli, tmp_path, yaml_dump):
    base = {"upstreams": {"api": {"targets": ["http://127.0.0.1:9"]}},
            "routes": [{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}]}
    good = tmp_path / "good.yaml"
    good.write_text(yaml_dump({"jwt": {"issuers": [sso_issuer("https://sso.example.com/realms/main")]}, **base}) + "\n")
    done = run_cli("check", "--config", str(good))
    assert done.returncode == 0, done.stderr
    explained = run_cli("explain", "--config", str(good), "GET", "/api/x")
    assert explained.returncode == 0, explained.stderr
    assert ("keys:            issuer sso: discovery https://sso.example.com/realms/main/.well-known/openid-configuration"
            in explained.stdout), explained.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_dump({"jwt": {"issuers": [
        {"name": "sso", "algorithms": ["RS256"], "discovery": True},
        {"name": "b", "issuer": "https://b.example", "algorithms": ["RS256"], "discovery": True,
         "jwks_url": "https://b.example/jwks"}]}, **base}) + "\n")
    done = run_cli("check", "--config", str(bad))
    assert done.returncode == 1
    assert "discovery needs issuer" in done.stderr
    assert "cannot be combined with discovery: true" in done.stderr
    assert "has 3 errors" in done.stdout or "has 2 errors" in done.stdout, done.stdout + done.stderr


def test_an_oversized_discovery_document_is_refused(oidc_provider, gateways, upstream):
    # SPEC §3.2 Key fetches: the discovery fetch has the JWKS fetch's 1 MiB body cap
    document = oidc_provider.discovery()
    doctored = DoctoredDiscovery(document)
    try:
        document["issuer"] = doctored.base
        document["padding"] = "x" * (2 << 20)
        gw = start_gateway(gateways, upstream, doctored.base, wait_ready=False)
        wait_for(lambda: "response body over 1 MiB" in gw.stderr(), 15, "the refusal logged")
        assert gw.admin_get("/readyz").status == 503
        del document["padding"]   # the next retry (backoff) gets a proper document and the keys
        wait_for(gw.ready, 20, "/readyz 200 after the retry (the document's jwks_uri is the provider's)")
    finally:
        doctored.stop()
