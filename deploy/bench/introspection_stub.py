#!/usr/bin/env python3
"""A minimal OpenID provider stand-in for jwt.sh's gh-intro row (deploy/bench only; the
integration tests use a real provider): discovery, the bench JWKS, and RFC 7662 answers for a
few fixed opaque tokens. With a warm cache gatehouse asks it once per token, so its speed does
not matter. Usage: introspection_stub.py PORT KEYS_DIR  (writes KEYS_DIR/intro.* token files)."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

port, keys = int(sys.argv[1]), Path(sys.argv[2])
issuer = f"http://127.0.0.1:{port}"
tokens = {"token": "bench-opaque-admin-0123456789abcdef", "user": "bench-opaque-user-0123456789abcdef",
          "expired": "bench-opaque-expired-0123456789abc", "badsig": "bench-opaque-unknown-0123456789abc"}
for name, value in tokens.items():
    (keys / f"intro.{name}").write_text(value + "\n")


def answer(token: str) -> dict:
    now = int(time.time())
    base = {"active": True, "sub": "bench-user", "aud": "bench-api", "scope": "read", "exp": now + 3600}
    if token == tokens["token"]:
        return {**base, "roles": ["admin"]}
    if token == tokens["user"]:
        return {**base, "roles": ["user"]}
    if token == tokens["expired"]:
        return {**base, "roles": ["admin"], "exp": now - 3600}
    return {"active": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/.well-known/openid-configuration"):
            return self.reply({"issuer": issuer, "jwks_uri": issuer + "/jwks", "introspection_endpoint": issuer + "/introspect"})
        return self.reply(json.loads((keys / "jwks.json").read_text()))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        self.reply(answer(form.get("token", [""])[0]))


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
