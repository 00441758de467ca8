"""Bearer JWTs end to end (SPEC §5.1, §3.1, §7.1, §9): one gateway with an issuer for every
algorithm family — HS256/384/512 from a secret_file; RS256/384/512, PS256/384/512, ES256, ES384
and EdDSA from jwks_files — and a real echo upstream that records what it received.

Valid tokens, minted now by PyJWT and by joserfc, reach the upstream with the identity headers
of SPEC §2 and without any client copy of them (any letter case, `Connection:` tricks). Every
attack is its own case: a 401 with `WWW-Authenticate: Bearer realm="gatehouse",
error="invalid_token"`, the uniform body, nothing forwarded, and the precise `reason` in the
JSON access log.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time

import pytest

import support
from jwt_support import (AUDIENCE, CHALLENGE_PLAIN, EC_ALGS, HMAC_ALGS, MINTERS, RSA_ALGS, AsymmetricKey, Gateways,
                         JWKSServer, assert_forwarded, assert_refused, b64url, b64url_decode, b64url_json, claims_for,
                         forge, hmac_sign, jwks, mint_pyjwt, random_secret, received_headers, token_parts,
                         upstream_record, write_json)

ISS = {
    "hmac": "https://hmac.test",
    "rsa": "https://rsa.test",
    "ec": "https://ec.test",
    "ed": "https://ed.test",
    "rs256only": "https://rs256only.test",
    "mixed": "https://mixed.test",
}


class Kit:
    """The key material of the module's gateway and a minter for every algorithm."""

    def __init__(self):
        self.hmac_secret = random_secret(64)
        self.mixed_secret = random_secret(64)
        self.rsa = AsymmetricKey("RSA", "rsa-1")
        self.ec256 = AsymmetricKey("EC", "ec-256", "P-256")
        self.ec384 = AsymmetricKey("EC", "ec-384", "P-384")
        self.ed = AsymmetricKey("OKP", "ed-1")
        self.attacker = AsymmetricKey("RSA", "attacker-1")

    def key_for(self, alg: str):
        """(issuer key in ISS, signing key, kid) for a valid token of `alg`."""
        if alg in HMAC_ALGS:
            return "hmac", self.hmac_secret, None
        if alg in RSA_ALGS:
            return "rsa", self.rsa, self.rsa.kid
        if alg == "ES256":
            return "ec", self.ec256, self.ec256.kid
        if alg == "ES384":
            return "ec", self.ec384, self.ec384.kid
        if alg in ("EdDSA", "Ed25519"):
            return "ed", self.ed, self.ed.kid
        raise ValueError(alg)

    def claims(self, issuer: str = "rsa", **extra) -> dict:
        base = {"roles": ["reader", "writer"], "email": "alice@example.com", "org": {"id": 42}}
        base.update(extra)
        return claims_for(ISS.get(issuer, issuer), **base)

    def valid(self, alg: str = "RS256", minter: str = "pyjwt", **extra) -> str:
        issuer, key, kid = self.key_for(alg)
        return MINTERS[minter](self.claims(issuer, **extra), key, alg, kid=kid)


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit()


@pytest.fixture(scope="module")
def env(gatehouse_bin, tmp_path_factory, kit):
    """(gateway, echo upstream) shared by the module; both stopped at the end."""
    workdir = tmp_path_factory.mktemp("jwt-tokens")
    (workdir / "hmac.key").write_bytes(kit.hmac_secret + b"\n")   # one trailing newline is dropped
    (workdir / "mixed.key").write_bytes(kit.mixed_secret)
    write_json(workdir / "rsa.jwks.json", jwks(kit.rsa))
    write_json(workdir / "ec.jwks.json", jwks(kit.ec256, kit.ec384))
    write_json(workdir / "ed.jwks.json", jwks(kit.ed))
    upstream = support.EchoUpstream(name="echo")
    issuers = [
        {"name": "hmac", "issuer": ISS["hmac"], "audiences": [AUDIENCE], "algorithms": HMAC_ALGS,
         "secret_file": "hmac.key"},
        {"name": "rsa", "issuer": ISS["rsa"], "audiences": [AUDIENCE], "algorithms": RSA_ALGS,
         "jwks_file": "rsa.jwks.json"},
        {"name": "ec", "issuer": ISS["ec"], "audiences": [AUDIENCE], "algorithms": list(EC_ALGS),
         "jwks_file": "ec.jwks.json"},
        {"name": "ed", "issuer": ISS["ed"], "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
         "jwks_file": "ed.jwks.json"},
        {"name": "rs256only", "issuer": ISS["rs256only"], "audiences": [AUDIENCE], "algorithms": ["RS256"],
         "jwks_file": "rsa.jwks.json"},
        # HMAC and RSA under one issuer: the classic key-confusion target.
        {"name": "mixed", "issuer": ISS["mixed"], "audiences": [AUDIENCE], "algorithms": ["HS256", "RS256"],
         "secret_file": "mixed.key", "jwks_file": "rsa.jwks.json"},
    ]
    routes = [
        {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
        {"name": "opt", "match": {"path": "/opt/**"}, "upstream": "api", "auth": "optional"},
        {"name": "pub", "match": {"path": "/pub/**"}, "upstream": "api", "auth": "none"},
    ]
    gateways = Gateways(gatehouse_bin, workdir)
    try:
        gw = gateways.start(upstream_url=upstream.url, jwt={"leeway": "30s", "issuers": issuers}, routes=routes,
                            name="tokens")
        yield gw, upstream
    finally:
        gateways.close()
        upstream.stop()


@pytest.fixture
def gw(env, request):
    gateway, _ = env
    yield gateway
    if support.call_failed(request):
        print(f"---- stderr of the gateway ----\n{gateway.stderr()[-3000:]}")


@pytest.fixture
def upstream(env):
    return env[1]


# ---------------------------------------------------------------------------------------------
# Valid tokens of every family, by both libraries

SPOOFED = [
    ("x-auth-subject", "mallory"),
    ("X-AUTH-ROLES", "admin"),
    ("X-Auth-Method", "session"),
    ("x-AuTh-EmAiL", "mallory@evil.example"),
    ("x-tenant-id", "666"),          # an identity header that is not X-Auth-*
    ("X-TENANT-ID", "667"),
    ("X-Auth-Something-Else", "1"),  # any X-Auth-* header is dropped
    ("X_Auth_Subject", "mallory"),   # CGI/WSGI/PHP upstreams read `_` as `-` (docs/deviations.md)
    ("x_tenant_id", "668"),
    ("X_AUTH_ROLES", "admin"),
    ("Connection", "X-Auth-Subject, X-Auth-Roles, X-Tenant-Id"),
]

VALID_CASES = [(alg, minter) for alg in HMAC_ALGS + RSA_ALGS + list(EC_ALGS) + ["EdDSA"] for minter in MINTERS]
VALID_CASES.append(("Ed25519", "joserfc"))  # RFC 9864's name, admitted by an `EdDSA` allow-list (SPEC §5.1)


def assert_identity(record: dict, subject: str, roles: str = "reader,writer", email: str = "alice@example.com",
                    tenant: str = "42"):
    assert received_headers(record, "X-Auth-Subject") == [subject], record["headers"]
    assert received_headers(record, "X-Auth-Roles") == [roles], record["headers"]
    assert received_headers(record, "X-Auth-Method") == ["jwt"], record["headers"]
    assert received_headers(record, "X-Auth-Email") == [email], record["headers"]
    assert received_headers(record, "X-Tenant-Id") == [tenant], record["headers"]
    assert received_headers(record, "X-Auth-Something-Else") == [], record["headers"]


@pytest.mark.parametrize("alg,minter", VALID_CASES, ids=[f"{a}-{m}" for a, m in VALID_CASES])
def test_valid_token_reaches_the_upstream_with_identity_headers_and_no_spoofed_copies(gw, upstream, kit, alg, minter):
    subject = f"alice-{alg.lower()}-{minter}"
    issuer, key, kid = kit.key_for(alg)
    token = MINTERS[minter](kit.claims(issuer, sub=subject), key, alg, kid=kid)
    assert token_parts(token)[0]["alg"] == alg
    response, rid = gw.get("/api/orders?x=1", token, headers=SPOOFED)
    record = assert_forwarded(gw, upstream, response, rid)
    assert_identity(record, subject)
    assert record["path"] == "/api/orders" and record["query"] == "x=1"
    # strip_authorization is false here: the upstream may verify the token itself.
    assert received_headers(record, "Authorization") == [f"Bearer {token}"]
    log = gw.wait_log_record(rid)
    assert (log["status"], log["decision"], log["auth"], log["subject"], log["route"]) == \
        (200, "allow", "jwt", subject, "api")
    assert token not in "\n".join(gw.log_lines()), "a token was written to the access log"


def _variant(kit, alg, *, drop=(), kid="default", headers=None, **extra):
    issuer, key, default_kid = kit.key_for(alg)
    claims = kit.claims(issuer, sub="variant", **extra)
    for name in drop:
        del claims[name]
    return mint_pyjwt(claims, key, alg, kid=default_kid if kid == "default" else kid, headers=headers)


ACCEPTED_VARIANTS = [
    ("aud-array-containing-ours", lambda k: _variant(k, "RS256", aud=["other", AUDIENCE])),
    ("nbf-within-leeway", lambda k: _variant(k, "ES256", nbf=int(time.time()) + 15)),
    ("iat-within-leeway", lambda k: _variant(k, "HS256", iat=int(time.time()) + 15)),
    ("exp-within-leeway", lambda k: _variant(k, "PS512", exp=int(time.time()) - 15)),
    ("fractional-exp", lambda k: _variant(k, "HS384", exp=time.time() + 300.25)),
    ("no-iat-no-nbf-no-jti", lambda k: _variant(k, "EdDSA", drop=("iat", "nbf", "jti"))),
    ("typ-at+jwt", lambda k: _variant(k, "RS384", headers={"typ": "at+jwt"})),
    ("no-kid-rsa", lambda k: _variant(k, "RS512", kid=None)),
    ("no-kid-es384-tries-every-ec-key", lambda k: _variant(k, "ES384", kid=None)),
]


@pytest.mark.parametrize("make", [m for _, m in ACCEPTED_VARIANTS], ids=[i for i, _ in ACCEPTED_VARIANTS])
def test_valid_token_variants_are_accepted(gw, upstream, kit, make):
    response, rid = gw.get("/api/variant", make(kit))
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == ["variant"]


def test_secret_env_and_the_rfc9864_ed25519_name_in_an_allow_list(gatehouse_bin, tmp_path, kit):
    """`secret_env` instead of a file, and `algorithms: [Ed25519]` admitting `EdDSA` tokens too."""
    secret = random_secret(32)
    write_json(tmp_path / "ed.jwks.json", jwks(kit.ed))
    upstream = support.EchoUpstream(name="echo")
    gateways = Gateways(gatehouse_bin, tmp_path)
    try:
        issuers = [{"name": "env", "issuer": "https://env.test", "algorithms": ["HS256"],
                    "secret_env": "GATEHOUSE_TEST_HS_SECRET"},
                   {"name": "ed", "issuer": ISS["ed"], "algorithms": ["Ed25519"], "jwks_file": "ed.jwks.json"}]
        gw = gateways.start(upstream_url=upstream.url, jwt={"issuers": issuers}, name="env",
                            env={"GATEHOUSE_TEST_HS_SECRET": secret.decode()},
                            routes=[{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}])
        for token, sub in [
            (mint_pyjwt(claims_for("https://env.test", sub="env-user"), secret, "HS256"), "env-user"),
            (MINTERS["joserfc"](claims_for(ISS["ed"], sub="ed-new"), kit.ed, "Ed25519", kid="ed-1"), "ed-new"),
            (mint_pyjwt(claims_for(ISS["ed"], sub="ed-old"), kit.ed, "EdDSA", kid="ed-1"), "ed-old"),
        ]:
            response, rid = gw.get("/api/x", token)
            assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == [sub]
        wrong = mint_pyjwt(claims_for("https://env.test"), random_secret(32), "HS256")
        response, rid = gw.get("/api/x", wrong)
        assert_refused(gw, upstream, response, rid, "bad_signature")
    finally:
        gateways.close()
        upstream.stop()


@pytest.mark.parametrize("spoof", [
    [("X-Auth-Subject", "mallory")],
    [("x-auth-subject", "mallory"), ("X-Auth-Subject", "mallory2")],
    [("X-AUTH-SUBJECT", "mallory"), ("Connection", "X-Auth-Subject")],
    [("Connection", "keep-alive, x-auth-subject"), ("x-auth-subject", "mallory")],
    [("X-Auth-Subject", "mallory"), ("X-Auth-Subject", "alice-real"), ("Connection", "x-AUTH-subject, X-Tenant-Id")],
    [("Connection", "Authorization")],      # the credential is the gateway's to read, even when named hop-by-hop
    [("Connection", "X-Request-Id, X-Forwarded-For")],
], ids=["plain", "twice", "upper+connection", "connection-first", "connection-mixed-case", "connection-authorization",
        "connection-gateway-headers"])
def test_connection_tricks_never_remove_or_replace_the_gateway_identity_headers(gw, upstream, kit, spoof):
    token = kit.valid("ES256", sub="alice-real")
    response, rid = gw.get("/api/conn", token, headers=spoof)
    record = assert_forwarded(gw, upstream, response, rid)
    assert_identity(record, "alice-real")
    assert received_headers(record, "X-Request-Id") == [rid]
    assert len(received_headers(record, "X-Forwarded-For")) == 1


def test_space_before_colon_cannot_smuggle_an_identity_header(gw, upstream, kit):
    """`X-Auth-Subject : mallory` is invalid (RFC 9112 §5.1: 400); if accepted at all, the
    upstream must not see a second subject."""
    token = kit.valid("RS256", sub="alice-real")
    response, rid = gw.get("/api/ws", token, headers=[("X-Auth-Subject ", "mallory")])
    if response.status == 400:
        support.assert_uniform_raw(response, 400, "bad_request")
        return
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == ["alice-real"], record["headers"]


def test_bearer_scheme_is_case_insensitive(gw, upstream, kit):
    token = kit.valid("HS256", sub="lower-bearer")
    response, rid = gw.get("/api/x", token, scheme="bearer")
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Subject") == ["lower-bearer"]


def test_roles_claim_absent_gives_an_empty_roles_header_not_a_spoofed_one(gw, upstream, kit):
    issuer, key, kid = kit.key_for("RS256")
    claims = claims_for(ISS[issuer], sub="no-roles")
    token = mint_pyjwt(claims, key, "RS256", kid=kid)
    response, rid = gw.get("/api/x", token, headers=[("X-Auth-Roles", "admin")])
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Roles") in ([], [""]), record["headers"]
    assert received_headers(record, "X-Auth-Email") == [] and received_headers(record, "X-Tenant-Id") == []


# ---------------------------------------------------------------------------------------------
# Attacks: each refused with 401 invalid_token, never forwarded, the precise reason logged

def _none_token(kit, alg_value):
    return forge({"alg": alg_value, "typ": "JWT"}, kit.claims("rsa", roles=["admin"]))


def _stripped(kit):
    h, p, _ = kit.valid("RS256").split(".")
    return f"{h}.{p}."


def _tampered(kit, alg):
    h, _, s = kit.valid(alg).split(".")
    issuer, _, _ = kit.key_for(alg)
    return f"{h}.{b64url_json(kit.claims(issuer, sub='alice', roles=['admin']))}.{s}"


def _expired(kit):
    now = int(time.time())
    return kit.valid("RS256", iat=now - 7200, nbf=now - 7200, exp=now - 3600)


def _expired_just_past_leeway(kit):
    now = int(time.time())
    return kit.valid("ES384", iat=now - 600, nbf=now - 600, exp=now - 45)   # leeway is 30 s


def _not_yet_valid(kit):
    now = int(time.time())
    return kit.valid("PS256", nbf=now + 3600, exp=now + 7200)


def _iat_in_future(kit):
    now = int(time.time())
    return kit.valid("HS256", iat=now + 3600, exp=now + 7200)


def _wrong_aud(kit):
    return kit.valid("EdDSA", minter="joserfc", aud="someone-else")


def _no_aud(kit):
    issuer, key, kid = kit.key_for("RS256")
    claims = kit.claims(issuer)
    del claims["aud"]
    return mint_pyjwt(claims, key, "RS256", kid=kid)


def _unknown_iss(kit):
    return mint_pyjwt(kit.claims("https://evil.example"), kit.rsa, "RS256", kid="rsa-1")


def _no_iss(kit):
    claims = kit.claims("rsa")
    del claims["iss"]
    return mint_pyjwt(claims, kit.rsa, "RS256", kid="rsa-1")


def _unknown_kid(kit):
    return mint_pyjwt(kit.claims("rsa"), kit.attacker, "RS256", kid="no-such-kid")


def _kid_traversal(kit):
    return hmac_sign({"alg": "HS256", "typ": "JWT", "kid": "../../../../../../dev/null"}, kit.claims("hmac"), b"")


def _embedded_jwk(kit, kid):
    headers = {"jwk": kit.attacker.public_jwk}
    return mint_pyjwt(kit.claims("rsa", roles=["admin"]), kit.attacker, "RS256", kid=kid, headers=headers)


def _hs256_with_rsa_pem(kit, issuer, kid):
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    return hmac_sign(header, kit.claims(issuer, roles=["admin"]), kit.rsa.public_pem)


def _oversized(kit):
    token = kit.valid("RS256", pad="x" * 9000)
    assert len(token) > 8192
    return token


def _alg_not_in_allow_list(kit):
    # A genuine RS512 signature by the key the rs256only issuer trusts.
    return mint_pyjwt(kit.claims("rs256only"), kit.rsa, "RS512", kid="rsa-1")


def _es256_on_rsa_issuer(kit):
    return mint_pyjwt(kit.claims("rsa"), kit.ec256, "ES256", kid="ec-256")


def _crit(kit):
    return hmac_sign({"alg": "HS256", "typ": "JWT", "crit": ["urn:example:never"], "urn:example:never": True},
                     kit.claims("hmac"), kit.hmac_secret)


def _missing_exp(kit):
    claims = kit.claims("hmac")
    del claims["exp"]
    return hmac_sign({"alg": "HS256", "typ": "JWT"}, claims, kit.hmac_secret)


def _string_exp(kit):
    claims = kit.claims("hmac")
    claims["exp"] = str(claims["exp"])
    return hmac_sign({"alg": "HS256", "typ": "JWT"}, claims, kit.hmac_secret)


def _wrong_secret(kit):
    return mint_pyjwt(kit.claims("hmac"), random_secret(64), "HS256")


def _es256_der_signature(kit):
    """A DER-encoded ECDSA signature where RFC 7518 §3.4 requires the raw R||S pair."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    header = {"alg": "ES256", "typ": "JWT", "kid": "ec-256"}
    signing_input = f"{b64url_json(header)}.{b64url_json(kit.claims('ec'))}"
    der = kit.ec256.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64url(der)}"


def _sign_raw(header_json: str, claims_json: str, secret: bytes) -> str:
    signing_input = f"{b64url(header_json.encode())}.{b64url(claims_json.encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _duplicate_alg(kit):
    """Parsers disagree on duplicate members (first or last wins): strict JSON refuses them."""
    return _sign_raw('{"alg":"none","alg":"HS256"}', json.dumps(kit.claims("hmac")), kit.hmac_secret)


def _duplicate_sub(kit):
    claims = json.dumps(kit.claims("hmac", sub="alice"))
    return _sign_raw('{"alg":"HS256"}', claims[:-1] + ', "sub": "admin"}', kit.hmac_secret)


def _deeply_nested(kit):
    claims = json.dumps(kit.claims("hmac"))
    return _sign_raw('{"alg":"HS256"}', claims[:-1] + ', "x": ' + "[" * 2000 + "]" * 2000 + "}", kit.hmac_secret)


def _padded(kit):
    h, p, sig = kit.valid("HS256").split(".")
    return f"{h}==.{p}.{sig}" if len(h) % 4 == 2 else f"{h}=.{p}.{sig}"


def _signature_of_another_token(kit):
    a = kit.valid("RS256", sub="alice")
    b = kit.valid("RS256", sub="bob", roles=["admin"])
    return ".".join(b.split(".")[:2] + [a.split(".")[2]])


ATTACKS = [
    ("alg-none", lambda k: _none_token(k, "none"), "alg_not_allowed"),
    ("alg-None", lambda k: _none_token(k, "None"), "alg_not_allowed"),
    ("alg-NONE", lambda k: _none_token(k, "NONE"), "alg_not_allowed"),
    ("alg-nOnE", lambda k: _none_token(k, "nOnE"), "alg_not_allowed"),
    ("alg-none-with-signature", lambda k: forge({"alg": "none"}, k.claims("rsa"), b"sig"), "alg_not_allowed"),
    ("alg-missing", lambda k: forge({"typ": "JWT"}, k.claims("rsa"), b"sig"), "alg_not_allowed"),
    ("hs256-rsa-pem-secret-on-rs256-issuer", lambda k: _hs256_with_rsa_pem(k, "rsa", None), "alg_not_allowed"),
    ("hs256-rsa-pem-secret-with-kid", lambda k: _hs256_with_rsa_pem(k, "rsa", "rsa-1"), "alg_not_allowed"),
    ("hs256-rsa-pem-secret-on-hs+rs-issuer", lambda k: _hs256_with_rsa_pem(k, "mixed", None), "bad_signature"),
    ("hs256-rsa-pem-secret-on-hs+rs-issuer-kid", lambda k: _hs256_with_rsa_pem(k, "mixed", "rsa-1"), "bad_signature"),
    ("stripped-signature", _stripped, "bad_signature"),
    ("tampered-payload-RS256", lambda k: _tampered(k, "RS256"), "bad_signature"),
    ("tampered-payload-HS256", lambda k: _tampered(k, "HS256"), "bad_signature"),
    ("tampered-payload-ES256", lambda k: _tampered(k, "ES256"), "bad_signature"),
    ("tampered-payload-EdDSA", lambda k: _tampered(k, "EdDSA"), "bad_signature"),
    ("signature-of-another-token", _signature_of_another_token, "bad_signature"),
    ("wrong-hmac-secret", _wrong_secret, "bad_signature"),
    ("es256-der-signature", _es256_der_signature, "bad_signature"),
    ("expired", _expired, "token_expired"),
    ("expired-beyond-leeway", _expired_just_past_leeway, "token_expired"),
    ("not-yet-valid-nbf", _not_yet_valid, "token_not_yet_valid"),
    ("iat-in-the-future", _iat_in_future, "token_not_yet_valid"),
    ("wrong-aud", _wrong_aud, "wrong_audience"),
    ("no-aud", _no_aud, "wrong_audience"),
    ("unknown-iss", _unknown_iss, "unknown_issuer"),
    ("no-iss-with-several-issuers", _no_iss, "unknown_issuer"),
    ("unknown-kid", _unknown_kid, "unknown_kid"),
    ("kid-path-traversal", _kid_traversal, "unknown_kid"),
    ("embedded-jwk-attacker-key", lambda k: _embedded_jwk(k, None), "bad_signature"),
    ("embedded-jwk-with-real-kid", lambda k: _embedded_jwk(k, "rsa-1"), "bad_signature"),
    ("oversized", _oversized, "token_too_large"),
    ("garbage-word", lambda k: "garbage", "malformed_token"),
    ("garbage-two-parts", lambda k: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", "malformed_token"),
    ("garbage-four-parts", lambda k: k.valid("HS256") + ".x", "malformed_token"),
    ("garbage-bad-base64", lambda k: "!!!.###.$$$", "malformed_token"),
    ("garbage-header-not-json", lambda k: f"{b64url(b'not json')}.{b64url_json(k.claims('hmac'))}.", "malformed_token"),
    ("garbage-jwe-five-parts", lambda k: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "malformed_token"),
    ("alg-not-in-issuer-allow-list", _alg_not_in_allow_list, "alg_not_allowed"),
    ("es256-on-rsa-only-issuer", _es256_on_rsa_issuer, "alg_not_allowed"),
    ("unknown-crit-header", _crit, "unsupported_crit"),
    ("duplicate-alg-in-header", _duplicate_alg, "malformed_token"),
    ("duplicate-sub-in-signed-claims", _duplicate_sub, "malformed_token"),
    ("deeply-nested-claims", _deeply_nested, "malformed_token"),
    ("base64-with-padding", _padded, "malformed_token"),
    ("missing-exp", _missing_exp, "malformed_token"),
    ("exp-not-a-number", _string_exp, "malformed_token"),
]


@pytest.mark.parametrize("make,reason", [(m, r) for _, m, r in ATTACKS], ids=[i for i, _, _ in ATTACKS])
def test_attack_is_refused_with_401_invalid_token_and_logged(gw, upstream, kit, make, reason):
    token = make(kit)
    before = upstream.request_count
    response, rid = gw.get("/api/secret", token)
    record = assert_refused(gw, upstream, response, rid, reason)
    assert record["route"] == "api" and record["subject"] in (None, "", "-")
    assert upstream.request_count == before
    # The client learns nothing about which check failed: the same body for every attack.
    assert {k: v for k, v in response.json().items() if k != "request_id"} == \
        {"status": 401, "error": "unauthorized", "message": "Invalid or missing auth token"}
    assert token not in "\n".join(gw.log_lines()), "a token was written to the access log"


@pytest.mark.parametrize("header_name", ["jku", "x5u"])
@pytest.mark.parametrize("kid,reason", [("attacker-1", "unknown_kid"), ("rsa-1", "bad_signature")],
                         ids=["attacker-kid", "real-kid"])
def test_jku_and_x5u_headers_are_never_fetched(gw, upstream, kit, header_name, kid, reason):
    attacker_jwks = JWKSServer(jwks(kit.attacker))
    try:
        token = mint_pyjwt(kit.claims("rsa", roles=["admin"]), kit.attacker, "RS256", kid=kid,
                           headers={header_name: attacker_jwks.url()})
        response, rid = gw.get("/api/secret", token)
        assert_refused(gw, upstream, response, rid, reason)
        time.sleep(0.5)  # a fetch (even a late, asynchronous one) would have connected by now
        assert attacker_jwks.connections == 0 and attacker_jwks.fetches == 0, \
            f"the gateway contacted the {header_name} URL"
    finally:
        attacker_jwks.stop()


def test_missing_token_is_401_without_error_attribute(gw, upstream):
    response, rid = gw.get("/api/secret")
    assert_refused(gw, upstream, response, rid, "missing_credentials", challenge=CHALLENGE_PLAIN, auth="none")


def test_other_authorization_scheme_is_not_a_bearer_token(gw, upstream):
    response, rid = gw.get("/api/secret", "dXNlcjpwYXNz", scheme="Basic")
    assert_refused(gw, upstream, response, rid, "missing_credentials", challenge=CHALLENGE_PLAIN, auth="none")


def test_empty_bearer_token_is_refused(gw, upstream):
    response, rid = gw.get("/api/secret", headers=[("Authorization", "Bearer ")])
    assert response.status == 401
    support.assert_uniform_raw(response, 401, "unauthorized")
    assert upstream_record(upstream, rid) is None


# ---------------------------------------------------------------------------------------------
# auth: optional

def test_optional_route_without_token_is_forwarded_anonymous_and_spoofs_are_removed(gw, upstream):
    response, rid = gw.get("/opt/page", headers=SPOOFED)
    record = assert_forwarded(gw, upstream, response, rid)
    for name in ("X-Auth-Subject", "X-Auth-Roles", "X-Auth-Method", "X-Auth-Email", "X-Tenant-Id",
                 "X-Auth-Something-Else"):
        assert received_headers(record, name) == [], (name, record["headers"])
    log = gw.wait_log_record(rid)
    assert (log["decision"], log["auth"], log["route"]) == ("allow", "none", "opt")


@pytest.mark.parametrize("make,reason", [
    (lambda k: "garbage", "malformed_token"),
    (_expired, "token_expired"),
    (lambda k: _tampered(k, "RS256"), "bad_signature"),
    (lambda k: _none_token(k, "none"), "alg_not_allowed"),
], ids=["garbage", "expired", "tampered", "alg-none"])
def test_optional_route_with_an_invalid_token_is_401_never_anonymous(gw, upstream, kit, make, reason):
    response, rid = gw.get("/opt/page", make(kit))
    assert_refused(gw, upstream, response, rid, reason)


def test_optional_route_with_a_valid_token_forwards_the_identity(gw, upstream, kit):
    response, rid = gw.get("/opt/page", kit.valid("PS384", minter="joserfc", sub="opt-user"), headers=SPOOFED)
    record = assert_forwarded(gw, upstream, response, rid)
    assert_identity(record, "opt-user")


def test_auth_none_route_strips_spoofed_identity_headers_too(gw, upstream, kit):
    response, rid = gw.get("/pub/doc", "garbage", headers=SPOOFED)
    record = assert_forwarded(gw, upstream, response, rid)
    for name in ("X-Auth-Subject", "X-Auth-Roles", "X-Auth-Method", "X-Auth-Email", "X-Tenant-Id",
                 "X-Auth-Something-Else"):
        assert received_headers(record, name) == [], (name, record["headers"])


@pytest.mark.parametrize("subject", ["alice\r\nX-Auth-Roles: admin", "alice\nX-Auth-Roles: admin", "alice\x00admin",
                                     "alice\rX-Injected: 1"], ids=["crlf", "lf", "nul", "cr"])
def test_control_characters_in_a_claim_never_inject_headers(gw, upstream, kit, subject):
    token = kit.valid("HS256", sub=subject, email="e@example.com\r\nX-Injected: 1")
    response, rid = gw.get("/api/x", token, headers=[("X-Auth-Subject", "mallory")])
    if response.status == 401:                 # refusing such a token is fine too
        assert upstream_record(upstream, rid) is None
        return
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "X-Auth-Roles") == ["reader,writer"], record["headers"]
    assert received_headers(record, "X-Injected") == [], record["headers"]
    assert all(v not in ("mallory", "admin") for v in received_headers(record, "X-Auth-Subject"))
    for name, value in record["headers"]:
        assert not any(c in value for c in "\r\n\x00"), (name, value)


# ---------------------------------------------------------------------------------------------
# The verified-token cache must never accept what the full check refuses (SPEC §5.1)

def test_cached_token_stops_passing_when_it_expires(gw, upstream, kit):
    """exp 27 s ago with 30 s of leeway: valid for about 3 more seconds, then token_expired —
    also when the first request put it in the per-loop cache."""
    now = int(time.time())
    deadline = now + 3          # exp + leeway
    token = kit.valid("HS512", sub="short-lived", iat=now - 60, nbf=now - 60, exp=now - 27)
    for _ in range(4):          # 2 workers: make sure each loop's cache has seen it
        response, rid = gw.get("/api/cache", token)
        assert_forwarded(gw, upstream, response, rid)
    while time.time() < deadline + 0.3:
        time.sleep(0.1)
    for _ in range(4):
        response, rid = gw.get("/api/cache", token)
        assert_refused(gw, upstream, response, rid, "token_expired")


def test_cached_token_does_not_vouch_for_the_same_claims_with_another_signature(gw, upstream, kit):
    token = kit.valid("RS256", sub="cached")
    for _ in range(4):
        response, rid = gw.get("/api/cache", token)
        assert_forwarded(gw, upstream, response, rid)
    h, p, s = token.split(".")
    raw = bytearray(b64url_decode(s))
    raw[-1] ^= 0x01
    forged = f"{h}.{p}.{b64url(bytes(raw))}"
    for _ in range(4):
        response, rid = gw.get("/api/cache", forged)
        assert_refused(gw, upstream, response, rid, "bad_signature")


# ---------------------------------------------------------------------------------------------
# One credential per request

def test_a_second_authorization_header_is_never_forwarded_unverified(gw, upstream, kit):
    """Authorization is a singleton field: with two lines the gateway verifies one, and an
    upstream may read the other. Refused (nginx answers 400 too), or at most the verified one
    forwarded."""
    good = kit.valid("HS256", sub="alice", roles=["reader"])
    evil = forge({"alg": "none"}, kit.claims("hmac", sub="admin", roles=["admin"]))
    response, rid = gw.get("/api/x", headers=[("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {evil}")])
    if response.status in (400, 401):
        assert upstream_record(upstream, rid) is None
        return
    record = assert_forwarded(gw, upstream, response, rid)
    assert received_headers(record, "Authorization") == [f"Bearer {good}"], record["headers"]


def test_a_second_authorization_header_does_not_rescue_an_invalid_first_one(gw, upstream, kit):
    good = kit.valid("HS256", sub="alice")
    response, rid = gw.get("/api/x", headers=[("Authorization", "Bearer garbage"), ("authorization", f"Bearer {good}")])
    assert response.status in (400, 401), response
    assert upstream_record(upstream, rid) is None


# ---------------------------------------------------------------------------------------------
# Reload: new keys replace the old ones at once, cached verdicts included

def test_reload_with_a_new_secret_refuses_tokens_signed_with_the_old_one(gatehouse_bin, tmp_path):
    old_secret, new_secret = random_secret(64), random_secret(64)
    (tmp_path / "hs.key").write_bytes(old_secret)
    upstream = support.EchoUpstream(name="echo")
    gateways = Gateways(gatehouse_bin, tmp_path)
    try:
        issuers = [{"name": "hs", "issuer": ISS["hmac"], "algorithms": ["HS256"], "secret_file": "hs.key"},
                   {"name": "hs2", "issuer": "https://second.test", "algorithms": ["HS256"], "secret_file": "hs.key"}]
        gw = gateways.start(upstream_url=upstream.url, jwt={"issuers": issuers}, name="reload",
                            routes=[{"name": "api", "match": {"path": "/api/**"}, "upstream": "api"}])
        old = mint_pyjwt(claims_for(ISS["hmac"], sub="old"), old_secret, "HS256")
        second = mint_pyjwt(claims_for("https://second.test", sub="second"), old_secret, "HS256")
        for _ in range(4):                      # into both workers' caches
            response, rid = gw.get("/api/x", old)
            assert_forwarded(gw, upstream, response, rid)
            response, rid = gw.get("/api/x", second)
            assert_forwarded(gw, upstream, response, rid)

        (tmp_path / "hs.key").write_bytes(new_secret)
        config = dict(gw.config)
        config["jwt"] = {"issuers": issuers[:1]}   # and the second issuer is gone
        reloads = gw.metric("gatehouse_config_reloads_total")
        gw.reload(config)
        wait_until_metric = time.monotonic() + 5
        while gw.metric("gatehouse_config_reloads_total") <= reloads:
            assert time.monotonic() < wait_until_metric, f"no reload: {gw.stderr()[-1000:]}"
            time.sleep(0.05)

        for _ in range(4):
            response, rid = gw.get("/api/x", old)
            assert_refused(gw, upstream, response, rid, "bad_signature")
            response, rid = gw.get("/api/x", second)
            assert_refused(gw, upstream, response, rid, "unknown_issuer")
        new = mint_pyjwt(claims_for(ISS["hmac"], sub="new"), new_secret, "HS256")
        response, rid = gw.get("/api/x", new)
        assert received_headers(assert_forwarded(gw, upstream, response, rid), "X-Auth-Subject") == ["new"]
    finally:
        gateways.close()
        upstream.stop()


def test_one_keep_alive_connection_gets_each_tokens_own_answer(gw, upstream, kit):
    """A connection remembers the last `Authorization` value it sent (AuthorizationMemo): a
    client presenting one token again is not charged for its copy. Tokens of the same length
    that differ only in the signature's last byte, or only in the first byte of the header, and
    another subject's token of the same length, on one connection, each get their own answer;
    the remembered one is still answered as itself afterwards."""
    alice = kit.valid("RS256", sub="alice-memo")
    bob = kit.valid("RS256", sub="bobby-memo")
    assert len(alice) == len(bob) and alice != bob
    last = "A" if alice[-1] != "A" else "B"
    tail_changed = alice[:-1] + last
    head_changed = ("f" if alice[0] != "f" else "e") + alice[1:]
    steps = [(alice, 200, "alice-memo"), (alice, 200, "alice-memo"), (tail_changed, 401, None),
             (alice, 200, "alice-memo"), (head_changed, 401, None), (bob, 200, "bobby-memo"),
             (alice, 200, "alice-memo"), ("", 401, None), (alice, 200, "alice-memo")]
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        for i, (token, status, subject) in enumerate(steps):
            rid = f"memo-{i}-{time.time_ns()}"
            conn.request("GET", "/api/memo", headers={"X-Request-Id": rid, "Authorization": f"Bearer {token}".rstrip()})
            response = conn.getresponse()
            response.read()
            assert response.status == status, (i, response.status)
            assert response.getheader("Connection", "").lower() != "close", i
            record = upstream_record(upstream, rid)
            if subject is None:
                assert record is None, f"step {i}: a refused request reached the upstream"
            else:
                assert received_headers(record, "X-Auth-Subject") == [subject], (i, record["headers"])
    finally:
        conn.close()
