"""Route policies on Bearer JWTs end to end (SPEC §2 routes, §3.1, §7.1, §9): `require`
(roles_any, roles_all, scopes_all, claims), a dotted `jwt.roles_claim`, `deny_status`,
route `issuers`, `strip_authorization`, `login_redirect`, and the seed's admin panel with
tokens minted by a real Flask-JWT-Extended app.
"""

from __future__ import annotations

import time
import uuid

import pytest

import support
from jwt_support import (CHALLENGE_INVALID, CHALLENGE_PLAIN, CHALLENGE_SCOPE, Gateways, assert_forwarded,
                         assert_refused, claims_for, forge, mint_joserfc, mint_pyjwt, random_secret,
                         received_headers, token_parts, upstream_record)

ISS_A = "https://a.test"
ISS_B = "https://b.test"


@pytest.fixture(scope="module")
def secrets_ab():
    return {"a": random_secret(64), "b": random_secret(64)}


@pytest.fixture(scope="module")
def env(gatehouse_bin, tmp_path_factory, secrets_ab):
    workdir = tmp_path_factory.mktemp("jwt-policies")
    (workdir / "a.key").write_bytes(secrets_ab["a"])
    (workdir / "b.key").write_bytes(secrets_ab["b"])
    upstream = support.EchoUpstream(name="echo")
    jwt = {
        "roles_claim": "realm_access.roles",
        "issuers": [
            {"name": "a", "issuer": ISS_A, "algorithms": ["HS256"], "secret_file": "a.key"},
            {"name": "b", "issuer": ISS_B, "algorithms": ["HS256"], "secret_file": "b.key"},
        ],
    }

    def route(name, path, **kw):
        return {"name": name, "match": {"path": path}, "upstream": "api", **kw}

    routes = [
        route("roles-any", "/roles-any/**", require={"roles_any": ["admin", "ops"]}),
        route("roles-all", "/roles-all/**", require={"roles_all": ["reader", "writer"]}),
        route("scopes", "/scopes/**", require={"scopes_all": ["orders:read", "orders:write"]}),
        route("claims", "/claims/**", require={"claims": {"org.id": 7, "groups": "staff", "email_verified": True}}),
        route("dotted-name", "/dotted-name/**", require={"claims": {"https://example.com/tenant": "acme"}}),
        route("deny401", "/deny401/**", require={"roles_any": ["admin"]}, deny_status=401),
        route("only-a", "/only-a/**", issuers=["a"]),
        route("strip", "/strip/**", strip_authorization=True),
        route("app-admin", "/app/admin/**", require={"roles_any": ["admin"]}, login_redirect="/login.html"),
        route("app", "/app/**", login_redirect="/login.html"),
        route("appq", "/appq/**", login_redirect="/login.html?from=gw"),
        route("ext", "/ext/**", login_redirect="https://login.example.com/start"),
        route("plain", "/plain/**"),
    ]
    gateways = Gateways(gatehouse_bin, workdir)
    try:
        gw = gateways.start(upstream_url=upstream.url, jwt=jwt, routes=routes, name="policies")
        yield gw, upstream
    finally:
        gateways.close()
        upstream.stop()


@pytest.fixture
def gw(env):
    return env[0]


@pytest.fixture
def upstream(env):
    return env[1]


@pytest.fixture
def token(secrets_ab):
    """token(issuer='a', roles=..., extra={...}, **claims): an HS256 token of issuer a or b;
    `roles` goes to `realm_access.roles` (Keycloak's shape) unless None."""
    def make(issuer: str = "a", roles=("reader",), minter: str = "pyjwt", sub: str = "alice", extra=None,
             **claims_extra) -> str:
        claims = claims_for(ISS_A if issuer == "a" else ISS_B, sub=sub, **claims_extra)
        claims.update(extra or {})
        if roles is not None:
            claims["realm_access"] = {"roles": list(roles) if isinstance(roles, (list, tuple)) else roles}
        mint = mint_pyjwt if minter == "pyjwt" else mint_joserfc
        return mint(claims, secrets_ab[issuer], "HS256")
    return make


def assert_forbidden(gw, upstream, response, rid, reason, status=403):
    record = assert_refused(gw, upstream, response, rid, reason, status=status, error="forbidden",
                            challenge=CHALLENGE_SCOPE)
    return record


# ---------------------------------------------------------------------------------------------
# require: roles

@pytest.mark.parametrize("roles,expected_header", [
    (["ops"], "ops"),
    (["reader", "admin"], "reader,admin"),
    ("admin", "admin"),                      # a single string
    ("reader admin", "reader,admin"),        # a space-separated string
], ids=["array-one", "array-two", "string", "space-separated"])
def test_roles_any_from_a_dotted_roles_claim_lets_a_matching_token_through(gw, upstream, token, roles, expected_header):
    response, rid = gw.get("/roles-any/x", token(roles=roles, minter="joserfc"))
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Roles") == [expected_header]
    assert received_headers(record, "X-Auth-Subject") == ["alice"]
    assert received_headers(record, "X-Auth-Method") == ["jwt"]


@pytest.mark.parametrize("roles,extra", [
    (["reader"], {}),
    ("reader writer", {}),
    ("administrator", {}),                   # no prefix or substring matching
    ("ADMIN", {}),                           # roles are case-sensitive
    (None, {}),
    (None, {"roles": ["admin"]}),            # a top-level `roles` is not the configured realm_access.roles
    ([], {}),
], ids=["other-role", "space-separated-others", "longer-name", "upper-case", "no-claim", "top-level-roles", "empty"])
def test_roles_any_refuses_with_403_insufficient_scope(gw, upstream, token, roles, extra):
    response, rid = gw.get("/roles-any/x", token(roles=roles, extra=extra))
    assert_forbidden(gw, upstream, response, rid, "insufficient_role")


@pytest.mark.parametrize("roles,allowed", [
    (["reader", "writer"], True),
    (["writer", "x", "reader"], True),
    ("reader writer", True),
    (["reader"], False),
    ("writer", False),
], ids=["exact", "superset", "space-separated", "one-missing", "string-one"])
def test_roles_all(gw, upstream, token, roles, allowed):
    response, rid = gw.get("/roles-all/x", token(roles=roles))
    if allowed:
        assert_forwarded(gw, upstream, response, rid)
    else:
        assert_forbidden(gw, upstream, response, rid, "insufficient_role")


# ---------------------------------------------------------------------------------------------
# require: scopes and claims

@pytest.mark.parametrize("claims,allowed", [
    ({"scope": "orders:read orders:write profile"}, True),
    ({"scp": ["orders:write", "orders:read"]}, True),
    ({"scope": "orders:read"}, False),
    ({"scope": "orders:read,orders:write"}, False),     # scopes are space-separated, not comma-separated
    ({"scp": ["orders:read"]}, False),
    ({}, False),
], ids=["scope-string", "scp-array", "scope-missing-one", "scope-commas", "scp-missing-one", "none"])
def test_scopes_all(gw, upstream, token, claims, allowed):
    response, rid = gw.get("/scopes/x", token(**claims))
    if allowed:
        assert_forwarded(gw, upstream, response, rid)
    else:
        assert_forbidden(gw, upstream, response, rid, "insufficient_scope")


GOOD_CLAIMS = {"org": {"id": 7, "name": "acme"}, "groups": ["users", "staff"], "email_verified": True}


@pytest.mark.parametrize("change,allowed", [
    ({}, True),
    ({"groups": "staff"}, True),                               # equal to a string
    ({"org": {"id": 8}}, False),
    ({"org": {"id": "7"}}, False),                             # `7` in YAML is a number, not the string "7"
    ({"groups": ["users"]}, False),
    ({"groups": "staff-admins"}, False),
    ({"email_verified": False}, False),
    ({"email_verified": "true"}, False),
    ({"org": None}, False),
    ({"org": None, "org.id": 7}, True),                        # a claim literally named "org.id" (full name first)
    ({"org": None, "org.id": 8}, False),
], ids=["all-match", "groups-string", "org-id-other", "org-id-string", "groups-without", "groups-prefix",
        "email-unverified", "email-verified-string", "org-missing", "flat-org.id", "flat-org.id-other"])
def test_claims_requirement_with_dotted_paths_and_array_contains(gw, upstream, token, change, allowed):
    claims = {**GOOD_CLAIMS, **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    response, rid = gw.get("/claims/x", token(**claims))
    if allowed:
        assert_forwarded(gw, upstream, response, rid)
    else:
        assert_forbidden(gw, upstream, response, rid, "claim_mismatch")


@pytest.mark.parametrize("claims,allowed", [
    ({"https://example.com/tenant": "acme"}, True),
    ({"https://example.com/tenant": "other"}, False),
    ({}, False),
], ids=["full-name", "other-value", "absent"])
def test_claim_whose_name_contains_dots_is_matched_by_its_full_name(gw, upstream, token, claims, allowed):
    response, rid = gw.get("/dotted-name/x", token(**claims))
    if allowed:
        assert_forwarded(gw, upstream, response, rid)
    else:
        assert_forbidden(gw, upstream, response, rid, "claim_mismatch")


# ---------------------------------------------------------------------------------------------
# deny_status, issuers, strip_authorization

def test_deny_status_401_gives_the_forbidden_body_with_status_401(gw, upstream, token):
    response, rid = gw.get("/deny401/x", token(roles=["reader"]))
    assert_forbidden(gw, upstream, response, rid, "insufficient_role", status=401)
    assert response.json()["error"] == "forbidden" and response.json()["status"] == 401
    ok, rid2 = gw.get("/deny401/x", token(roles=["admin"]))
    assert_forwarded(gw, upstream, ok, rid2)


def test_deny_status_401_still_says_invalid_token_for_a_bad_token(gw, upstream, token):
    bad = token(roles=["admin"])[:-3] + "AAA"
    response, rid = gw.get("/deny401/x", bad)
    assert_refused(gw, upstream, response, rid, "bad_signature")


def test_route_issuers_restriction(gw, upstream, token):
    # The b token first passes (and is cached) where any issuer counts...
    b = token("b", sub="bob")
    for _ in range(3):
        response, rid = gw.get("/plain/x", b)
        assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == ["bob"]
    # ...and is still an invalid credential where only issuer a counts.
    for _ in range(3):
        response, rid = gw.get("/only-a/x", b)
        assert_refused(gw, upstream, response, rid, "issuer_not_allowed")
    response, rid = gw.get("/only-a/x", token("a", sub="alice"))
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == ["alice"]


def test_a_token_signed_with_the_other_issuers_secret_is_a_bad_signature(gw, upstream, secrets_ab):
    """iss says a, the signature is b's: the issuer's own key must verify it."""
    forged = mint_pyjwt(claims_for(ISS_A), secrets_ab["b"], "HS256")
    response, rid = gw.get("/plain/x", forged)
    assert_refused(gw, upstream, response, rid, "bad_signature")


def test_strip_authorization_removes_the_header_in_any_case(gw, upstream, token):
    t = token(roles=["reader"])
    response, rid = gw.get("/strip/x", headers=[("authorization", f"Bearer {t}")])
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "Authorization") == [], record["headers"]
    assert received_headers(record, "X-Auth-Subject") == ["alice"]
    assert t not in str(record["headers"])
    # Without strip_authorization the token goes on.
    response, rid = gw.get("/plain/x", t)
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "Authorization") == [f"Bearer {t}"]


# ---------------------------------------------------------------------------------------------
# login_redirect

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def assert_login_redirect(gw, upstream, response, rid, location, tried="none"):
    assert response.status == 302, response
    assert response.header("Location") == location
    assert response.header("X-Request-Id") == rid
    assert upstream_record(upstream, rid) is None
    log = gw.wait_log_record(rid)
    route = ("appq" if location.startswith("/login.html?from=gw") else
             "ext" if location.startswith("https://") else "app")
    assert (log["status"], log["decision"], log["reason"], log["route"]) == (302, "deny", "login_redirect", route)
    assert log["auth"] == tried, log
    return log


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT, "application/json;q=0.4, text/html",
                                    "TEXT/HTML; charset=utf-8"],
                         ids=["text-html", "browser", "json-lower-q", "upper-case"])
def test_browser_without_token_is_redirected_to_the_login_page(gw, upstream, accept):
    response, rid = gw.get("/app/x?y=1", headers=[("Accept", accept)])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?return_to=%2Fapp%2Fx%3Fy%3D1")


def test_browser_with_an_invalid_token_is_redirected_too(gw, upstream, token):
    now = int(time.time())
    expired = token(exp=now - 3600, iat=now - 7200, nbf=now - 7200)
    response, rid = gw.get("/app/x?y=1", expired, headers=[("Accept", "text/html")])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?return_to=%2Fapp%2Fx%3Fy%3D1", tried="jwt")


def test_head_is_redirected(gw, upstream):
    rid = f"jwt-head-{uuid.uuid4().hex}"
    response = support.raw_request(gw.port, "HEAD", "/app/x?y=1", [("Accept", "text/html"), ("X-Request-Id", rid)])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?return_to=%2Fapp%2Fx%3Fy%3D1")


def test_return_to_is_the_normalized_path_and_the_query_unchanged(gw, upstream):
    response, rid = gw.get("/app/a/../b//c?q=%2F&r=a+b", headers=[("Accept", "text/html")])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?return_to=%2Fapp%2Fb%2Fc%3Fq%3D%252F%26r%3Da%2Bb")


def test_login_location_with_a_query_joins_return_to_with_an_ampersand(gw, upstream):
    response, rid = gw.get("/appq/page", headers=[("Accept", "text/html")])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?from=gw&return_to=%2Fappq%2Fpage")


def test_absolute_login_location(gw, upstream):
    response, rid = gw.get("/ext/a?b=c", headers=[("Accept", "text/html")])
    assert_login_redirect(gw, upstream, response, rid, "https://login.example.com/start?return_to=%2Fext%2Fa%3Fb%3Dc")


def test_return_to_never_echoes_the_host_of_an_absolute_form_target(gw, upstream):
    rid = f"jwt-abs-{uuid.uuid4().hex}"
    response = support.raw_request(gw.port, "GET", "http://evil.example/app/x?y=1",
                                   [("Accept", "text/html"), ("X-Request-Id", rid)])
    assert_login_redirect(gw, upstream, response, rid, "/login.html?return_to=%2Fapp%2Fx%3Fy%3D1")


@pytest.mark.parametrize("method,accept", [
    ("GET", "application/json"),
    ("GET", "text/html;q=0.5, application/json"),
    ("GET", "text/html, application/json"),        # equal q: JSON wins
    ("GET", "*/*"),
    ("GET", "text/html;q=0"),
    ("GET", None),
    ("POST", "text/html"),
    ("DELETE", "text/html"),
], ids=["json", "json-preferred", "equal-q", "any", "html-q0", "no-accept", "post", "delete"])
def test_api_clients_and_unsafe_methods_still_get_401(gw, upstream, method, accept):
    headers = [("Accept", accept)] if accept else []
    response, rid = gw.get("/app/x?y=1", headers=headers, method=method)
    assert_refused(gw, upstream, response, rid, "missing_credentials", challenge=CHALLENGE_PLAIN, auth="none")
    assert response.header("Location") is None


def test_api_client_with_an_invalid_token_gets_401_invalid_token(gw, upstream):
    response, rid = gw.get("/app/x", "garbage", headers=[("Accept", "application/json")])
    assert_refused(gw, upstream, response, rid, "malformed_token", challenge=CHALLENGE_INVALID)


def test_browser_with_a_valid_token_is_forwarded(gw, upstream, token):
    response, rid = gw.get("/app/x?y=1", token(), headers=[("Accept", "text/html")])
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == ["alice"]


def test_browser_with_a_valid_token_but_without_the_role_gets_403_not_a_redirect(gw, upstream, token):
    response, rid = gw.get("/app/admin/x", token(roles=["reader"]), headers=[("Accept", "text/html")])
    assert_forbidden(gw, upstream, response, rid, "insufficient_role")


# ---------------------------------------------------------------------------------------------
# The seed's admin panel, with tokens from a real Flask-JWT-Extended app

FLASK_SECRET = "flask-jwt-extended-shared-secret-0123456789abcdef"   # 49 bytes >= 32 for HS256


@pytest.fixture(scope="module")
def flask_env(gatehouse_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("jwt-flask")
    (workdir / "flask.key").write_text(FLASK_SECRET + "\n")   # the trailing newline is not part of the key
    upstream = support.EchoUpstream(name="admin-panel")
    jwt = {"roles_claim": "type",
           "issuers": [{"name": "flask", "algorithms": ["HS256"], "secret_file": "flask.key"}]}
    routes = [
        {"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api", "require": {"roles_any": ["admin"]}},
        {"name": "panel", "match": {"path": "/panel/**"}, "upstream": "api"},
    ]
    gateways = Gateways(gatehouse_bin, workdir)
    try:
        gw = gateways.start(upstream_url=upstream.url, jwt=jwt, routes=routes, name="flask")
        yield gw, upstream
    finally:
        gateways.close()
        upstream.stop()


@pytest.fixture(scope="module")
def flask_app():
    flask = pytest.importorskip("flask")
    pytest.importorskip("flask_jwt_extended")
    from flask_jwt_extended import JWTManager
    app = flask.Flask("seed-admin-panel")
    app.config["JWT_SECRET_KEY"] = FLASK_SECRET    # default JWT_ALGORITHM is HS256
    JWTManager(app)
    return app


def flask_token(app, *, refresh: bool = False, **kw) -> str:
    from flask_jwt_extended import create_access_token, create_refresh_token
    with app.app_context():
        return (create_refresh_token if refresh else create_access_token)(**kw)


def test_flask_jwt_extended_admin_panel(flask_env, flask_app):
    """The seed's admin panel: a Flask app mints `create_access_token(identity="alice",
    additional_claims={"type": "admin"})`; gatehouse, configured with `roles_claim: type` and
    `require: {roles_any: [admin]}`, lets it through and refuses `{"type": "user"}` with 403.

    What Flask-JWT-Extended 4.7 actually puts in an access token (checked below): `sub` (the
    identity, a string), `iat`, `nbf` (JWT_ENCODE_NBF defaults to true), `exp` (15 minutes),
    `jti`, `fresh: false`, `type: "access"` and `csrf` (a UUID: added whenever
    JWT_COOKIE_CSRF_PROTECT is true, its default, even with the default header-only
    JWT_TOKEN_LOCATION; gatehouse ignores it); no `iss`/`aud` unless
    JWT_ENCODE_ISSUER/JWT_ENCODE_AUDIENCE are set — hence an issuer entry without `issuer` and
    `audiences`. Header: `{"alg": "HS256", "typ": "JWT"}`.

    The conflict: Flask-JWT-Extended uses `type` for its own token type and has no setting to
    rename that claim (there is JWT_IDENTITY_CLAIM for `sub`, nothing for `type`).
    `additional_claims` are applied last (`token_data.update(claim_overrides)`), so
    `{"type": "admin"}` REPLACES `"access"`: the admin token carries `type: admin` and no longer
    says it is an access token. Consequences, all checked below: a plain access token has roles
    `["access"]` and is refused (403); a default refresh token has roles `["refresh"]` and is
    refused; but a REFRESH token minted with `additional_claims={"type": "admin"}` is
    indistinguishable from the admin access token and passes — gatehouse cannot know the
    app's token types. Deployments should put the role in a claim of its own (e.g.
    `additional_claims={"role": "admin"}` with `roles_claim: role`, also checked) rather than in
    `type`; the seed's scheme works only as long as refresh tokens are never given a `type`.
    """
    gw, upstream = flask_env
    admin = flask_token(flask_app, identity="alice", additional_claims={"type": "admin"})
    header, claims, _ = token_parts(admin)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) == {"sub", "iat", "nbf", "exp", "jti", "fresh", "type", "csrf"}, claims
    assert claims["sub"] == "alice" and claims["type"] == "admin" and claims["fresh"] is False
    assert 14 * 60 <= claims["exp"] - claims["iat"] <= 15 * 60

    response, rid = gw.get("/admin/users", admin)
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == ["alice"]
    assert received_headers(record, "X-Auth-Roles") == ["admin"]
    assert received_headers(record, "X-Auth-Method") == ["jwt"]

    user = flask_token(flask_app, identity="bob", additional_claims={"type": "user"})
    response, rid = gw.get("/admin/users", user)
    assert_forbidden(gw, upstream, response, rid, "insufficient_role")

    plain_access = flask_token(flask_app, identity="carol")
    assert token_parts(plain_access)[1]["type"] == "access"
    response, rid = gw.get("/admin/users", plain_access)
    assert_forbidden(gw, upstream, response, rid, "insufficient_role")
    response, rid = gw.get("/panel/home", plain_access)        # a route without `require`
    assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Roles") == ["access"]

    refresh = flask_token(flask_app, identity="dave", refresh=True)
    response, rid = gw.get("/admin/users", refresh)
    assert_forbidden(gw, upstream, response, rid, "insufficient_role")

    # The pitfall of the seed's scheme, documented above: gatehouse cannot tell this one apart.
    refresh_admin = flask_token(flask_app, identity="eve", refresh=True, additional_claims={"type": "admin"})
    response, rid = gw.get("/admin/users", refresh_admin)
    assert_forwarded(gw, upstream, response, rid)

    # A token of another secret, and an unsigned copy of the admin claims, are 401.
    import flask
    from flask_jwt_extended import JWTManager
    other = flask.Flask("other")
    other.config["JWT_SECRET_KEY"] = "another-secret-another-secret-another-secret"
    JWTManager(other)
    forged = flask_token(other, identity="mallory", additional_claims={"type": "admin"})
    response, rid = gw.get("/admin/users", forged)
    assert_refused(gw, upstream, response, rid, "bad_signature")
    unsigned = forge({"alg": "none", "typ": "JWT"}, claims)
    response, rid = gw.get("/admin/users", unsigned)
    assert_refused(gw, upstream, response, rid, "alg_not_allowed")


def test_flask_jwt_extended_role_in_its_own_claim(gatehouse_bin, tmp_path, flask_app):
    """The safer variant: the role in a claim of its own (`role`), so `type` stays Flask's."""
    (tmp_path / "flask.key").write_text(FLASK_SECRET)
    upstream = support.EchoUpstream(name="admin-panel")
    gateways = Gateways(gatehouse_bin, tmp_path)
    try:
        gw = gateways.start(upstream_url=upstream.url, name="flask-role",
                            jwt={"roles_claim": "role",
                                 "issuers": [{"name": "flask", "algorithms": ["HS256"], "secret_file": "flask.key"}]},
                            routes=[{"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api",
                                     "require": {"roles_any": ["admin"], "claims": {"type": "access"}}}])
        admin = flask_token(flask_app, identity="alice", additional_claims={"role": "admin"})
        response, rid = gw.get("/admin/users", admin)
        record = assert_forwarded(gw, upstream, response, rid)
        assert received_headers(record, "X-Auth-Roles") == ["admin"]
        refresh_admin = flask_token(flask_app, identity="eve", refresh=True, additional_claims={"role": "admin"})
        response, rid = gw.get("/admin/users", refresh_admin)
        assert_forbidden(gw, upstream, response, rid, "claim_mismatch")
        user = flask_token(flask_app, identity="bob", additional_claims={"role": "user"})
        response, rid = gw.get("/admin/users", user)
        assert_forbidden(gw, upstream, response, rid, "insufficient_role")
    finally:
        gateways.close()
        upstream.stop()
