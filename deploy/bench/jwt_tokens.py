#!/usr/bin/env python3
"""Keys and tokens for deploy/bench/jwt.sh (pyjwt + cryptography).

    jwt_tokens.py OUTDIR [HS_COUNT] [RS_COUNT] [ES_COUNT]

Writes into OUTDIR:
  hs.secret            48 random letters/digits (HS256 key; HAProxy takes it as a literal)
  rs.key.pem / es.key.pem   RSA-2048 and P-256 private keys (PKCS#8)
  rs.pub.pem / es.pub.pem   their public keys (SubjectPublicKeyInfo PEM, for HAProxy)
  jwks.json            both public keys, kid "bench-rs-1" / "bench-es-1", use sig, alg set
  {hs,rs,es}.token     one valid token: sub, iss bench-{alg}, roles ["admin"], exp in 10 years
  {hs,rs,es}.user      the same but roles ["user"] (the role check must refuse it)
  {hs,rs,es}.expired   the same as .token but expired an hour ago
  {hs,rs,es}.badsig    a valid token with one signature character changed
  {hs,rs,es}.tokens    COUNT distinct valid tokens (distinct jti), one per line

HS tokens carry no kid; RS and ES tokens carry their kid. RS signing is ~1 ms a token, so
the lists are signed on every CPU.
"""
import json
import os
import secrets
import string
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

NOW = int(time.time())
EXP = NOW + 10 * 365 * 86400
KIDS = {"rs": "bench-rs-1", "es": "bench-es-1"}
ALGS = {"hs": "HS256", "rs": "RS256", "es": "ES256"}


def claims(kind, jti, roles=("admin",), exp=EXP):
    return {"iss": f"bench-{kind}", "sub": f"user-{jti}", "roles": list(roles),
            "iat": NOW - 7200, "exp": exp, "jti": jti}


def sign(kind, key, payload):
    headers = {"kid": KIDS[kind]} if kind in KIDS else None
    return jwt.encode(payload, key, algorithm=ALGS[kind], headers=headers)


def sign_range(args):
    kind, key_bytes, start, stop = args
    key = key_bytes if kind == "hs" else serialization.load_pem_private_key(key_bytes, None)
    return [sign(kind, key, claims(kind, f"{kind}-{i:07d}")) for i in range(start, stop)]


def main():
    out = sys.argv[1]
    counts = {"hs": 200000, "rs": 20000, "es": 50000}
    for kind, arg in zip(("hs", "rs", "es"), sys.argv[2:5]):
        counts[kind] = int(arg)
    os.makedirs(out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(out, name), "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)

    alphabet = string.ascii_letters + string.digits
    secret = "".join(secrets.choice(alphabet) for _ in range(48))
    write("hs.secret", secret + "\n")
    rs_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    es_key = ec.generate_private_key(ec.SECP256R1())
    pems = {}
    for kind, key in (("rs", rs_key), ("es", es_key)):
        pems[kind] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        write(f"{kind}.key.pem", pems[kind])
        write(f"{kind}.pub.pem", key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    keys = []
    for kind, key in (("rs", rs_key), ("es", es_key)):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[ALGS[kind]].to_jwk(key.public_key()))
        jwk.pop("key_ops", None)
        jwk.update({"kid": KIDS[kind], "use": "sig", "alg": ALGS[kind]})
        keys.append(jwk)
    write("jwks.json", json.dumps({"keys": keys}, indent=1) + "\n")

    material = {"hs": secret.encode(), "rs": pems["rs"], "es": pems["es"]}
    signing = {"hs": secret.encode(), "rs": rs_key, "es": es_key}
    for kind in ("hs", "rs", "es"):
        good = sign(kind, signing[kind], claims(kind, f"{kind}-warm"))
        write(f"{kind}.token", good + "\n")
        write(f"{kind}.user", sign(kind, signing[kind], claims(kind, f"{kind}-user", ("user",))) + "\n")
        write(f"{kind}.expired", sign(kind, signing[kind], claims(kind, f"{kind}-expired", exp=NOW - 3600)) + "\n")
        c = good[-10]  # inside the signature, away from the last character's padding bits
        write(f"{kind}.badsig", good[:-10] + ("A" if c != "A" else "B") + good[-9:] + "\n")

    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        for kind in ("hs", "rs", "es"):
            n = counts[kind]
            step = (n + workers * 4 - 1) // (workers * 4) or 1
            jobs = [(kind, material[kind], a, min(a + step, n)) for a in range(0, n, step)]
            with open(os.path.join(out, f"{kind}.tokens"), "w") as f:
                for chunk in pool.map(sign_range, jobs):
                    f.write("\n".join(chunk) + "\n")


if __name__ == "__main__":
    main()
