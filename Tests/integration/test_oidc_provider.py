"""The OIDC test harness itself (oidc_support.py): the real provider serves what the gateway's
OIDC tests rely on — discovery, JWKS, the password grant, the authorization code flow with
PKCE S256 through its login form, a replayed code refused, RFC 7662 introspection of active,
expired and revoked tokens, key rotation, end_session. If this file fails, the gateway's OIDC
tests say nothing."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import urllib.parse

import jwt as pyjwt
import requests

from oidc_support import WEB_SECRET


def test_discovery_document_names_every_endpoint(oidc_provider):
    doc = oidc_provider.discovery()
    assert doc["issuer"] == oidc_provider.issuer
    for key in ("jwks_uri", "authorization_endpoint", "token_endpoint", "introspection_endpoint",
                "end_session_endpoint"):
        assert doc[key].startswith(oidc_provider.site_url + "/openid/"), key


def test_password_grant_id_token_verifies_with_the_jwks(oidc_provider):
    tokens = oidc_provider.password_grant("alice")
    jwks = requests.get(oidc_provider.discovery()["jwks_uri"], timeout=5).json()
    header = pyjwt.get_unverified_header(tokens["id_token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = pyjwt.decode(tokens["id_token"], pyjwt.PyJWK(key).key, algorithms=["RS256"], audience="api-client",
                          issuer=oidc_provider.issuer)
    assert claims["sub"] == "alice" and claims["roles"] == ["admin"]
    assert re.fullmatch(r"[0-9a-f]{32}", tokens["access_token"]), "access tokens are opaque"


def test_introspection_active_expired_revoked(oidc_provider):
    alice = oidc_provider.password_grant("alice")["access_token"]
    answer = oidc_provider.introspect(alice)
    assert answer["active"] is True and answer["sub"] == "alice" and answer["aud"] == "api-client"
    assert answer["roles"] == ["admin"] and "openid" in answer["scope"].split()
    assert oidc_provider.introspect(alice, client=("gatehouse", "wrong")) == {"active": False}
    oidc_provider.expire(alice)
    assert oidc_provider.introspect(alice) == {"active": False}
    bob = oidc_provider.password_grant("bob")["access_token"]
    assert oidc_provider.introspect(bob)["active"] is True
    oidc_provider.revoke(bob)
    assert oidc_provider.introspect(bob) == {"active": False}


def test_key_rotation_changes_the_served_keys_and_the_signing_key(oidc_provider):
    before = oidc_provider.kids()
    new_kid = oidc_provider.rotate_key()
    assert oidc_provider.kids() == [new_kid] and new_kid not in before
    jwks = requests.get(oidc_provider.discovery()["jwks_uri"], timeout=5).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid]
    assert pyjwt.get_unverified_header(oidc_provider.password_grant()["id_token"])["kid"] == new_kid


def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _log_in(session: requests.Session, login_page: requests.Response, user: str, password: str) -> requests.Response:
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    return session.post(login_page.url, data={"csrfmiddlewaretoken": csrf, "username": user, "password": password},
                        headers={"Referer": login_page.url}, allow_redirects=False)


def test_code_flow_with_pkce_and_replayed_code(oidc_provider):
    redirect = "http://127.0.0.1:9/callback"
    oidc_provider.set_redirect_uris("gatehouse-web", redirect)
    verifier, challenge = _pkce()
    browser = requests.Session()
    page = browser.get(oidc_provider.endpoint("authorize"), timeout=10, params={
        "client_id": "gatehouse-web", "response_type": "code", "redirect_uri": redirect, "scope": "openid",
        "state": "s-1", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert "/accounts/login/" in page.url
    after_login = _log_in(browser, page, "alice", "wonderland")
    assert after_login.status_code == 302
    back = browser.get(urllib.parse.urljoin(page.url, after_login.headers["Location"]), allow_redirects=False, timeout=10)
    location = urllib.parse.urlparse(back.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.path == "/callback" and query["state"] == ["s-1"]
    exchange = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect}
    wrong = requests.post(oidc_provider.endpoint("token"), auth=("gatehouse-web", WEB_SECRET), timeout=10,
                          data={**exchange, "code_verifier": "x" * 50})
    assert wrong.status_code == 400, "a wrong PKCE verifier is refused"
    # the refused attempt did not consume the code (the provider checks PKCE before deleting it)
    good = requests.post(oidc_provider.endpoint("token"), auth=("gatehouse-web", WEB_SECRET), timeout=10,
                         data={**exchange, "code_verifier": verifier})
    assert good.status_code == 200, good.text
    claims = pyjwt.decode(good.json()["id_token"], options={"verify_signature": False})
    assert claims["aud"] == "gatehouse-web" and claims["nonce"] == "n-1" and claims["sub"] == "alice"
    replay = requests.post(oidc_provider.endpoint("token"), auth=("gatehouse-web", WEB_SECRET), timeout=10,
                           data={**exchange, "code_verifier": verifier})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_end_session_endpoint_answers(oidc_provider):
    r = requests.get(oidc_provider.discovery()["end_session_endpoint"], allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "end-session-prompt" in r.headers["Location"]


def test_stopped_provider_refuses_connections(oidc_provider):
    url = oidc_provider.endpoint(".well-known/openid-configuration")
    oidc_provider.stop()
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return
    raise AssertionError("the stopped provider still answered")
