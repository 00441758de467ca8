#!/usr/bin/env python3
"""Mints the JWT fixtures of GatehouseAuthTests with real libraries (PyJWT and joserfc).

    pip install pyjwt joserfc cryptography
    python3 Tests/GatehouseAuthTests/Fixtures/mint.py   # rewrites tokens.json beside this file

The Swift tests read only tokens.json; they never run Python. Keys are generated afresh on
every run, so a rerun changes every token: commit the new tokens.json with whatever changed here.

Verifier set-up the cases assume (see JWTFixtureTests.swift), with now = NOW and leeway 30 s:
  idp    iss https://idp.test/     aud gatehouse  RS*, PS*, ES256, ES384, EdDSA   keys: jwks
  local  iss https://local.test    aud gatehouse  HS256, HS384, HS512            keys: hmac_secret
  mixed  iss https://mixed.test    (no aud)       HS256, RS256                   keys: mixed_jwks (RSA only)
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt as pyjwt
import joserfc
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

NOW = 1_750_000_000
FAR = 4_102_444_800  # 2100-01-01
IDP, LOCAL, MIXED = "https://idp.test/", "https://local.test", "https://mixed.test"
AUD = "gatehouse"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj) -> str:
    """A base64url JSON segment, compact, as libraries write it."""
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(iss=IDP, **extra):
    base = {"iss": iss, "aud": AUD, "sub": "alice", "iat": NOW - 60, "nbf": NOW - 60, "exp": FAR,
            "roles": ["reader"], "scope": "read:docs write:docs"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


# --- keys -------------------------------------------------------------------------------------
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_pss_only = rsa.generate_private_key(public_exponent=65537, key_size=3072)
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
attacker_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec256 = ec.generate_private_key(ec.SECP256R1())
ec384 = ec.generate_private_key(ec.SECP384R1())
ec521 = ec.generate_private_key(ec.SECP521R1())
ed = ed25519.Ed25519PrivateKey.generate()
hmac_secret = os.urandom(64)


def public_jwk(private_key, kid, **extra):
    jwk = json.loads(pyjwt.algorithms.get_default_algorithms()[
        "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else
        "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "EdDSA"
    ].to_jwk(private_key.public_key()))
    jwk["kid"] = kid
    jwk.update(extra)
    return jwk


jwks = {"keys": [
    public_jwk(rsa_key, "rsa-1", use="sig"),
    public_jwk(rsa_pss_only, "rsa-pss", alg="PS256"),
    public_jwk(ec256, "ec-256", use="sig"),
    public_jwk(ec384, "ec-384"),
    public_jwk(ed, "ed-1"),
    # Unusable on purpose: each must be skipped with a warning, not break the set.
    public_jwk(rsa_small, "rsa-1024"),
    public_jwk(rsa_key, "rsa-enc", use="enc"),
    public_jwk(ec521, "ec-521"),
    {"kty": "RSA", "kid": "rsa-oaep", "alg": "RSA-OAEP", "n": public_jwk(rsa_key, "x")["n"], "e": "AQAB"},
]}
mixed_jwks = {"keys": [public_jwk(rsa_key, "rsa-1")]}

rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
rsa_public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)

PYJWT_KEYS = {
    "HS": hmac_secret, "RS": rsa_key, "PS": rsa_key, "ES256": ec256, "ES384": ec384, "EdDSA": ed,
}
KIDS = {"RS": "rsa-1", "PS": "rsa-1", "ES256": "ec-256", "ES384": "ec-384", "EdDSA": "ed-1"}


def pyjwt_key(alg):
    return PYJWT_KEYS.get(alg, PYJWT_KEYS.get(alg[:2]))


def kid_for(alg):
    return KIDS.get(alg, KIDS.get(alg[:2]))


def jose_key(alg):
    if alg.startswith("HS"):
        return OctKey.import_key(hmac_secret)
    if alg[:2] in ("RS", "PS"):
        return RSAKey.import_key(rsa_pem)
    if alg == "ES256":
        return ECKey.import_key(ec256.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    if alg == "ES384":
        return ECKey.import_key(ec384.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return OKPKey.import_key(ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))


def sign_raw(header, payload, alg_key, alg):
    """Signs header.payload segments by hand (for shapes no library will produce)."""
    signing_input = (header + "." + payload).encode()
    if alg == "HS256":
        return signing_input.decode() + "." + b64(hmac.new(alg_key, signing_input, hashlib.sha256).digest())
    raise ValueError(alg)


cases = []


def case(name, token, expect, note, **extra):
    entry = {"name": name, "token": token, "expect": expect, "note": note}
    entry.update(extra)
    cases.append(entry)


# --- every algorithm, both libraries ------------------------------------------------------------
ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
for alg in ["HS256", "HS384", "HS512"] + ASYMMETRIC:
    iss = LOCAL if alg.startswith("HS") else IDP
    headers = {} if alg.startswith("HS") else {"kid": kid_for(alg)}
    token = pyjwt.encode(claims(iss), pyjwt_key(alg), algorithm=alg, headers=headers)
    case(f"pyjwt {alg}", token, "ok", "PyJWT-minted, every check passes",
         issuer="local" if iss == LOCAL else "idp", subject="alice", roles=["reader"])
    jose_header = {"alg": alg, **headers}
    token = jose_jwt.encode(jose_header, claims(iss), jose_key(alg), algorithms=[alg])
    case(f"joserfc {alg}", token, "ok", "joserfc-minted, every check passes",
         issuer="local" if iss == LOCAL else "idp", subject="alice", roles=["reader"])

token = jose_jwt.encode({"alg": "Ed25519", "kid": "ed-1"}, claims(), jose_key("EdDSA"), algorithms=["Ed25519"])
case("joserfc Ed25519 (RFC 9864 name)", token, "ok", "alg Ed25519 is admitted by an allow-list naming EdDSA",
     issuer="idp", subject="alice", roles=["reader"])
token = pyjwt.encode(claims(), rsa_key, algorithm="RS256")
case("RS256 without kid tries every RSA key", token, "ok", "no kid: every key of the right type is tried",
     issuer="idp", subject="alice", roles=["reader"])
token = pyjwt.encode(claims(aud=["other", AUD]), ec256, algorithm="ES256", headers={"kid": "ec-256"})
case("aud array containing the audience", token, "ok", "aud may be an array", issuer="idp", subject="alice",
     roles=["reader"])
token = pyjwt.encode(claims(exp=NOW - 10), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
case("expired within leeway", token, "ok", "exp 10 s ago, leeway 30 s", issuer="idp", subject="alice",
     roles=["reader"])
token = pyjwt.encode(claims(iss=MIXED, aud=None), rsa_key, algorithm="RS256")
case("mixed issuer RS256", token, "ok", "the mixed issuer's own RSA token passes", issuer="mixed",
     subject="alice", roles=["reader"])

# --- claims failures ------------------------------------------------------------------------------
def rs(payload, headers=None):
    return pyjwt.encode(payload, rsa_key, algorithm="RS256", headers=headers or {"kid": "rsa-1"})


case("expired", rs(claims(exp=NOW - 3600)), "token_expired", "exp an hour ago")
case("expired exactly at leeway", rs(claims(exp=NOW - 30)), "token_expired", "exp + leeway == now is expired")
case("not yet valid (nbf)", rs(claims(nbf=NOW + 3600)), "token_not_yet_valid", "nbf an hour ahead")
case("issued in the future (iat)", rs(claims(iat=NOW + 3600, nbf=None)), "token_not_yet_valid", "iat an hour ahead")
case("missing exp", rs(claims(exp=None)), "malformed_token", "exp is required")
case("exp not a number", rs(claims(exp=str(FAR))), "malformed_token", "exp must be a NumericDate")
case("wrong audience", rs(claims(aud="someone-else")), "wrong_audience", "aud names another service")
case("missing audience", rs(claims(aud=None)), "wrong_audience", "aud required when audiences are configured")
case("unknown issuer", rs(claims(iss="https://evil.test/")), "unknown_issuer", "iss matches no issuer")
case("missing issuer", rs(claims(iss=None)), "unknown_issuer", "several issuers: iss is required")
case("unknown kid", rs(claims(), {"kid": "nobody"}), "unknown_kid", "kid names no key of the issuer")
case("RS256 with a PS256-only key", rs(claims(), {"kid": "rsa-pss"}) , "bad_signature",
     "the JWK's own alg (PS256) refuses RS256, and the signature is by another key anyway")
token = pyjwt.encode(claims(), rsa_pss_only, algorithm="RS256", headers={"kid": "rsa-pss"})
case("RS256 signed by the PS256-only key", token, "bad_signature", "right key, but its JWK alg says PS256 only")
token = pyjwt.encode(claims(), rsa_pss_only, algorithm="PS256", headers={"kid": "rsa-pss"})
case("PS256 signed by the PS256-only key", token, "ok", "the JWK's alg admits PS256", issuer="idp",
     subject="alice", roles=["reader"])
token = pyjwt.encode(claims(), rsa_small, algorithm="RS256", headers={"kid": "rsa-1024"})
case("RS256 by the skipped 1024-bit key", token, "unknown_kid", "keys under 2048 bits are not loaded")
token = pyjwt.encode(claims(), ec521, algorithm="ES512", headers={"kid": "ec-521"})
case("ES512 is not supported", token, "alg_not_allowed", "ES512 (P-521) is not a supported algorithm")
token = pyjwt.encode(claims(), hmac_secret, algorithm="HS256")
case("HS256 to an RS-only issuer", token, "alg_not_allowed", "idp's allow-list has no HS256")
token = pyjwt.encode(claims(iss=LOCAL), rsa_key, algorithm="RS256")
case("RS256 to an HS-only issuer", token, "alg_not_allowed", "local's allow-list has no RS256")
token = pyjwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["exp"]})
case("crit header", token, "unsupported_crit", "crit names an extension we do not understand")

# --- attacks --------------------------------------------------------------------------------------
good = rs(claims())
h, p, s = good.split(".")
for variant in ["none", "None", "NONE", "nOnE"]:
    header = seg({"alg": variant, "typ": "JWT"})
    case(f"alg {variant} unsigned", f"{header}.{p}.", "alg_not_allowed", "unsigned token, alg none in any case")
    case(f"alg {variant} with the original signature", f"{header}.{p}.{s}", "alg_not_allowed",
         "alg none keeping a signature")
case("alg none from PyJWT", pyjwt.encode(claims(), None, algorithm="none"), "alg_not_allowed",
     "PyJWT's own unsigned token")
case("alg missing", f"{seg({'typ': 'JWT'})}.{p}.{s}", "alg_not_allowed", "no alg in the header")

for iss_name, iss in [("mixed", MIXED), ("idp", IDP)]:
    for with_kid in [False, True]:
        header = {"alg": "HS256", "typ": "JWT"}
        if with_kid:
            header["kid"] = "rsa-1"
        token = sign_raw(seg(header), seg(claims(iss=iss, aud=None if iss == MIXED else AUD)), rsa_public_pem, "HS256")
        expect = "bad_signature" if iss == MIXED else "alg_not_allowed"
        case(f"HS256 keyed with the RSA public key PEM ({iss_name}{', kid' if with_kid else ''})", token, expect,
             "key confusion: an RSA public key is never an HMAC secret")
        # The same with the PEM minus its trailing newline, as some attacks try.
        token = sign_raw(seg(header), seg(claims(iss=iss, aud=None if iss == MIXED else AUD)), rsa_public_pem.strip(),
                         "HS256")
        case(f"HS256 keyed with the stripped RSA PEM ({iss_name}{', kid' if with_kid else ''})", token, expect,
             "key confusion with the PEM's trailing newline removed")

case("stripped signature", f"{h}.{p}.", "bad_signature", "valid header and claims, empty signature")
case("two parts", f"{h}.{p}", "malformed_token", "the signature part is missing altogether")
case("four parts", f"{h}.{p}.{s}.{s}", "malformed_token", "an extra part")
tampered = seg({**claims(), "roles": ["admin"]})
case("tampered payload", f"{h}.{tampered}.{s}", "bad_signature", "roles changed after signing")
sig = bytearray(base64.urlsafe_b64decode(s + "=="))
sig[len(sig) // 2] ^= 0x01
case("flipped signature bit", f"{h}.{p}.{b64(bytes(sig))}", "bad_signature", "one bit of the signature flipped")
case("padded base64", f"{h}.{p}.{s}==" if len(s) % 4 else f"{h}=.{p}.{s}", "malformed_token",
     "padding is not base64url as JWS uses it")
case("standard base64 alphabet", f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}"
     if ("-" in s or "_" in s) else f"{h}.{p}.+{s[1:]}", "malformed_token", "+ and / are not base64url")

attacker_jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(attacker_rsa.public_key()))
token = pyjwt.encode(claims(), attacker_rsa, algorithm="RS256", headers={"jwk": attacker_jwk})
case("attacker key in jwk header", token, "bad_signature", "an embedded jwk is never trusted")
token = pyjwt.encode(claims(), attacker_rsa, algorithm="RS256", headers={"jwk": {**attacker_jwk, "kid": "rsa-1"},
                                                                          "kid": "rsa-1"})
case("attacker key in jwk header with a known kid", token, "bad_signature", "kid picks our key, not the embedded one")
token = pyjwt.encode(claims(), attacker_rsa, algorithm="RS256",
                     headers={"jku": "https://attacker.test/jwks.json", "kid": "attacker"})
case("attacker jku header", token, "unknown_kid", "jku is never fetched; the kid is unknown")
token = pyjwt.encode(claims(), attacker_rsa, algorithm="RS256",
                     headers={"jku": "https://attacker.test/jwks.json", "kid": "rsa-1"})
case("attacker jku header with a known kid", token, "bad_signature", "jku is never fetched")
token = pyjwt.encode(claims(), attacker_rsa, algorithm="RS256", headers={"x5u": "https://attacker.test/cert.pem"})
case("attacker x5u header", token, "bad_signature", "x5u is never fetched")

big = pyjwt.encode(claims(padding="x" * 8000), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
assert len(big) > 8192
case("oversized token", big, "token_too_large", "over 8 KiB, validly signed")
case("large but allowed token", pyjwt.encode(claims(iss=LOCAL, padding="x" * (5700)), hmac_secret, algorithm="HS256"),
     "ok", "under 8 KiB passes", issuer="local", subject="alice", roles=["reader"])
for name, token in [("empty", ""), ("garbage words", "not.a.jwt"), ("dots only", ".."),
                    ("random bytes", b64(os.urandom(48))), ("header only", h),
                    ("json header not base64", '{"alg":"HS256"}.' + p + "." + s),
                    ("header not an object", f"{seg([1, 2])}.{p}.{s}"),
                    ("claims not an object", f"{h}.{seg('just a string')}.{s}"),
                    ("bearer prefix left on", "Bearer " + good)]:
    case(f"garbage: {name}", token, "malformed_token", "not a JWS compact token")

dup_payload = b64(b'{"iss":"https://local.test","aud":"gatehouse","sub":"alice","exp":%d,"sub":"admin"}' % FAR)
token = sign_raw(seg({"alg": "HS256", "typ": "JWT"}), dup_payload, hmac_secret, "HS256")
case("duplicate claim names", token, "malformed_token", "a validly signed claims set with sub twice")
dup_header = b64(b'{"alg":"HS256","alg":"none"}')
token = sign_raw(dup_header, seg(claims(iss=LOCAL)), hmac_secret, "HS256")
case("duplicate header names", token, "malformed_token", "a validly signed header with alg twice")

priv_ec = ec256
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402
header, payload = seg({"alg": "ES256", "kid": "ec-256"}), seg(claims())
der = priv_ec.sign((header + "." + payload).encode(), ec.ECDSA(hashes.SHA256()))
case("ES256 with a DER signature", f"{header}.{payload}.{b64(der)}", "bad_signature",
     "JWS ECDSA signatures are raw r||s, never DER")
r, s_ = decode_dss_signature(der)
raw = r.to_bytes(32, "big") + s_.to_bytes(32, "big")
case("ES256 with a raw signature made by hand", f"{header}.{payload}.{b64(raw)}", "ok",
     "the same signature as raw r||s passes", issuer="idp", subject="alice", roles=["reader"])
case("ES256 signature one byte short", f"{header}.{payload}.{b64(raw[:-1])}", "bad_signature",
     "raw r||s must be exactly 64 bytes")

# Claim shapes for roles / scopes (checked in Swift with the matching roles_claim).
shapes = {
    "keycloak": pyjwt.encode(claims(roles=None, realm_access={"roles": ["admin", "user"]}, scope=None,
                                    scp=["a", "b"]), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}),
    "flask": pyjwt.encode(claims(iss=LOCAL, roles=None, type="admin", scope=None), hmac_secret, algorithm="HS256"),
    "dotted_name": pyjwt.encode(claims(roles=None, **{"realm_access.roles": "literal spaced roles",
                                                     "realm_access": {"roles": ["nested"]}}),
                                rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}),
}

out = {
    "generated_by": f"mint.py with PyJWT {pyjwt.__version__}, joserfc {joserfc.__version__}",
    "now": NOW,
    "leeway": 30,
    "audience": AUD,
    "issuers": {"idp": IDP, "local": LOCAL, "mixed": MIXED},
    "hmac_secret": b64(hmac_secret),
    "rsa_public_pem": rsa_public_pem.decode(),
    "jwks": jwks,
    "mixed_jwks": mixed_jwks,
    "shapes": shapes,
    "cases": cases,
}
names = [c["name"] for c in cases]
assert len(names) == len(set(names)), "case names must be unique"
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokens.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {path}", file=sys.stderr)
