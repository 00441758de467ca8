"""Helpers for the end-to-end JWT tests (test_jwt_*.py): key material generated at test time,
tokens minted by PyJWT and by joserfc, hand-forged tokens for the attacks, a JWKS server
(HTTP or HTTPS, with a throwaway CA), and a gateway wrapper that adds the `jwt` and
`identity_headers` sections and an environment (SSL_CERT_FILE) to the shared harness.

Reuses support.py (GatewayProcess, EchoUpstream, raw_request, free_port, to_yaml,
assert_uniform_raw); everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt as pyjwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

import support
from support import LOOPBACK, GatewayProcess, assert_uniform_raw, raw_request, wait_until

AUDIENCE = "gatehouse-tests"
CHALLENGE_INVALID = 'Bearer realm="gatehouse", error="invalid_token"'
CHALLENGE_PLAIN = 'Bearer realm="gatehouse"'
CHALLENGE_SCOPE = 'Bearer realm="gatehouse", error="insufficient_scope"'

# The algorithm families of SPEC §5.1 and the key kind each one needs.
HMAC_ALGS = ["HS256", "HS384", "HS512"]
RSA_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
EC_ALGS = {"ES256": "P-256", "ES384": "P-384"}
ED_ALGS = ["EdDSA"]


# ---------------------------------------------------------------------------------------------
# base64url and hand-made tokens

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A compact JWS with exactly this header, these claims and this signature."""
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def hmac_sign(header: dict, claims: dict, secret: bytes) -> str:
    """HS256/384/512 by hand: for keys that PyJWT refuses (a PEM public key as HMAC secret)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def token_parts(token: str) -> tuple[dict, dict, bytes]:
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def claims_for(issuer: str | None, sub: str = "alice", lifetime: int = 600, **extra) -> dict:
    now = int(time.time())
    claims = {"sub": sub, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + lifetime,
              "jti": str(uuid.uuid4())}
    if issuer is not None:
        claims["iss"] = issuer
    claims.update(extra)
    return claims


# ---------------------------------------------------------------------------------------------
# Keys

class AsymmetricKey:
    """A private key made now, its public JWK (with `kid`) and its public PEM."""

    def __init__(self, kind: str, kid: str, curve: str | None = None, key_size: int = 2048):
        self.kind = kind
        self.kid = kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        elif kind == "EC":
            self.private = ec.generate_private_key({"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[curve])
        elif kind == "OKP":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)
        self.private_pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())
        self.public_pem = self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        importer = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[kind]
        self.jose = importer.import_key(self.private_pem, parameters={"kid": kid})
        jwk = dict(self.jose.as_dict(private=False))
        jwk["kid"] = kid
        jwk["use"] = "sig"
        self.public_jwk = jwk


def jwks(*keys: AsymmetricKey) -> dict:
    return {"keys": [k.public_jwk for k in keys]}


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def random_secret(length: int = 64) -> bytes:
    """ASCII (usable as a Flask config string too), `length` bytes: enough for HS512."""
    return secrets.token_urlsafe(length)[:length].encode()


# ---------------------------------------------------------------------------------------------
# Minting with the two libraries

def mint_pyjwt(claims: dict, key, alg: str, kid: str | None = None, headers: dict | None = None) -> str:
    """`key`: an AsymmetricKey or HMAC secret bytes."""
    h = dict(headers or {})
    if kid is not None:
        h["kid"] = kid
    signing_key = key.private if isinstance(key, AsymmetricKey) else key
    return pyjwt.encode(claims, signing_key, algorithm=alg, headers=h or None)


def mint_joserfc(claims: dict, key, alg: str, kid: str | None = None, headers: dict | None = None) -> str:
    h = {"alg": alg, "typ": "JWT"}
    h.update(headers or {})
    if kid is not None:
        h["kid"] = kid
    signing_key = key.jose if isinstance(key, AsymmetricKey) else OctKey.import_key(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated by RFC 9864
        return jose_jwt.encode(h, claims, signing_key, algorithms=[alg])


MINTERS = {"pyjwt": mint_pyjwt, "joserfc": mint_joserfc}


# ---------------------------------------------------------------------------------------------
# A JWKS server (HTTP or HTTPS) that counts what it serves

class JWKSServer:
    """Serves `document` at any path with `Cache-Control: max-age=60` (or `status`/`raw_body`
    when set). Binds `port` when given (so it can start after the gateway, or restart), counts
    TCP connections, TLS handshake failures and fetches (with their monotonic times)."""

    def __init__(self, document: dict | None = None, port: int | None = None, tls: ssl.SSLContext | None = None,
                 max_age: int | None = 60, start: bool = True):
        self.document = document if document is not None else {"keys": []}
        self.port = port if port is not None else support.free_port()
        self.tls = tls
        self.max_age = max_age
        self.status = 200
        self.raw_body: bytes | None = None
        self.delay = 0.0          # seconds to wait before answering a fetch
        self.respond = None       # when set: called with the handler to write a raw (hostile) answer
        self.chunked = False      # answer with Transfer-Encoding: chunked and keep the connection
        self.pending = 0          # fetches received and not yet answered
        self.lock = threading.Lock()
        self.fetch_times: list[float] = []
        self.requests: list[tuple[str, dict]] = []
        self.connections = 0
        self.handshake_failures: list[str] = []
        self.handshakes = 0                        # completed TLS handshakes
        self.sni_names: list[str | None] = []      # the SNI of each client hello that had one
        if tls is not None:
            def record_sni(sock, name, ctx):
                with self.lock:
                    self.sni_names.append(name)
            tls.sni_callback = record_sni
        self.server = None
        if start:
            self.start()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, host: str = LOOPBACK, path: str = "/.well-known/jwks.json") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def fetches(self) -> int:
        with self.lock:
            return len(self.fetch_times)

    def set_keys(self, *keys: AsymmetricKey):
        with self.lock:
            self.document = jwks(*keys)

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "jwks-test"
            sys_version = ""

            def log_message(self, *args):
                pass

            def do_GET(self):
                with owner.lock:
                    owner.fetch_times.append(time.monotonic())
                    owner.requests.append((self.path, dict(self.headers.items())))
                    owner.pending += 1
                    delay = owner.delay
                    respond = owner.respond
                if respond is not None:
                    try:
                        respond(self)
                    finally:
                        with owner.lock:
                            owner.pending -= 1
                        self.close_connection = True
                    return
                time.sleep(delay)
                with owner.lock:
                    owner.pending -= 1
                    status = owner.status
                    body = owner.raw_body if owner.raw_body is not None else json.dumps(owner.document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if owner.max_age is not None:
                    self.send_header("Cache-Control", f"public, max-age={owner.max_age}")
                if owner.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 100):
                        part = body[i:i + 100]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                sock, addr = self.socket.accept()
                with owner.lock:
                    owner.connections += 1
                sock.settimeout(5)
                if owner.tls is not None:
                    sock = owner.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                return sock, addr

            def finish_request(self, request, client_address):
                if owner.tls is not None:
                    try:
                        request.do_handshake()
                    except (ssl.SSLError, OSError) as e:
                        with owner.lock:
                            owner.handshake_failures.append(str(e))
                        return
                    with owner.lock:
                        owner.handshakes += 1
                super().finish_request(request, client_address)

            def handle_error(self, request, client_address):
                pass

        self.server = Server((LOOPBACK, self.port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# ---------------------------------------------------------------------------------------------
# A throwaway certificate authority (cryptography)

class ThrowawayCA:
    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3)).not_valid_after(now + datetime.timedelta(days=3))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def write_pem(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue_server(self, workdir: Path, name: str, dns: list[str], ips: list[str],
                     valid_days: tuple[float, float] = (-1, 1)) -> tuple[Path, Path]:
        """A server certificate and key (PEM files) for these names, signed by this CA, valid
        from now + valid_days[0] to now + valid_days[1] days."""
        import ipaddress
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = now + datetime.timedelta(days=valid_days[0])
        not_after = now + datetime.timedelta(days=valid_days[1])
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else name)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = workdir / f"{name}.crt"
        key_path = workdir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


# ---------------------------------------------------------------------------------------------
# The gateway

DEFAULT_IDENTITY_HEADERS = {
    "subject": "X-Auth-Subject",
    "roles": "X-Auth-Roles",
    "method": "X-Auth-Method",
    "claims": {"X-Auth-Email": "email", "X-Tenant-Id": "org.id"},
}


class JWTGateway(GatewayProcess):
    """GatewayProcess started with an explicit environment (SSL_CERT_FILE or its absence)."""

    def start(self, wait: bool = True, timeout: float = 15.0):
        # The machine's own trust-store settings never leak into a test: only what it gives.
        self.env = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None, **(self.env or {})}
        return super().start(wait=wait, timeout=timeout)

    # -- access log
    def log_lines(self, path: Path | None = None) -> list[str]:
        """Complete lines only: the gateway's writer thread may be in the middle of a write()
        when the file is read, and a torn last line is not a record yet."""
        path = path or self.access_log
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        complete, _, _torn = text.rpartition("\n")
        return [line for line in complete.split("\n") if line]

    # -- requests
    def get(self, path: str, token: str | None = None, headers: list[tuple[str, str]] | None = None,
            method: str = "GET", request_id: str | None = None, scheme: str = "Bearer", body: bytes = b""):
        """A raw request; returns (response, request_id). The request id lets a test find its
        access-log line and its upstream record."""
        request_id = request_id or f"jwt-{uuid.uuid4().hex}"
        hs = [("X-Request-Id", request_id)]
        if token is not None:
            hs.append(("Authorization", f"{scheme} {token}"))
        hs.extend(headers or [])
        return raw_request(self.port, method, path, hs, body=body), request_id

    def admin_get(self, path: str):
        return raw_request(self.admin_port, "GET", path)

    def ready(self) -> bool:
        return self.admin_get("/readyz").status == 200

    def metric(self, name: str) -> float:
        text = self.admin_get("/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not in /metrics:\n{text}")


def jwt_config(port: int, admin_port: int, access_log: Path, *, upstream_url: str, jwt: dict, routes: list,
               identity_headers: dict | None = None) -> dict:
    return {
        "server": {"listen": [f"{LOOPBACK}:{port}"], "workers": 2, "shutdown_grace": "2s"},
        "admin": {"listen": f"{LOOPBACK}:{admin_port}"},
        "upstreams": {"api": {"targets": [upstream_url]}},
        "jwt": jwt,
        "identity_headers": identity_headers or DEFAULT_IDENTITY_HEADERS,
        "routes": routes,
        "access_log": {"path": str(access_log), "format": "json"},
    }


def start_gateway(binary: str, workdir: Path, *, upstream_url: str, jwt: dict, routes: list,
                  identity_headers: dict | None = None, env: dict | None = None, name: str = "gw",
                  wait: bool = True) -> JWTGateway:
    """Writes the config to workdir/NAME.yaml and starts gatehouse there (relative key paths are
    relative to workdir). The caller kills it (see `gateways` below)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, admin_port = support.free_port(), support.free_port()
    log = workdir / f"{name}-access.log"
    config = jwt_config(port, admin_port, log, upstream_url=upstream_url, jwt=jwt, routes=routes,
                        identity_headers=identity_headers)
    gw = JWTGateway(binary, workdir, config, port, admin_port, log, name=name)
    gw.config = config
    gw.env = env
    gw.start(wait=wait)
    return gw


class Gateways:
    """Starts gateways and kills every one of them at close()."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.started: list[JWTGateway] = []

    def start(self, **kw) -> JWTGateway:
        kw.setdefault("name", f"gw{len(self.started)}")
        gw = start_gateway(self.binary, self.workdir, **kw)
        self.started.append(gw)
        return gw

    def close(self, dump: bool = False):
        for gw in self.started:
            gw.kill()
            if dump:
                print(f"---- {gw.config_path.name} ----\n{gw.config_path.read_text()}")
                print(f"---- stderr of {gw.config_path.name} ----\n{gw.stderr()[-4000:]}")


# ---------------------------------------------------------------------------------------------
# Assertions

def upstream_record(upstream, request_id: str) -> dict | None:
    """The echo upstream's record of the request carrying this X-Request-Id, or None."""
    with upstream.lock:
        records = list(upstream.requests)
    for rec in records:
        if support.pairs_get(rec["headers"], "X-Request-Id") == request_id:
            return rec
    return None


def received_headers(record: dict, name: str) -> list[str]:
    """Every value the upstream got under `name`, compared case-insensitively, ignoring
    whitespace around the name (a smuggled `X-Auth-Subject `) and reading `_` as `-`, as CGI,
    WSGI and PHP upstreams do (`X_Auth_Subject`)."""
    def norm(n: str) -> str:
        return n.strip().lower().replace("_", "-")
    return [v for k, v in record["headers"] if norm(k) == norm(name)]


def assert_forwarded(gw: JWTGateway, upstream, response, request_id: str) -> dict:
    assert response.status == 200, f"expected the upstream's 200, got {response!r}\n{gw.stderr()[-2000:]}"
    record = upstream_record(upstream, request_id)
    assert record is not None, "the upstream never saw the request"
    return record


def assert_refused(gw: JWTGateway, upstream, response, request_id: str, reason: str, *, status: int = 401,
                   error: str = "unauthorized", challenge: str | None = CHALLENGE_INVALID, auth: str = "jwt") -> dict:
    """The uniform refusal (SPEC §3.1), its challenge, nothing forwarded, and the precise reason in
    the access log (SPEC §9). Returns the log record."""
    assert_uniform_raw(response, status, error)
    assert response.header("X-Request-Id") == request_id
    if challenge is not None:
        assert response.header_all("WWW-Authenticate") == [challenge], response.headers
    record = gw.wait_log_record(request_id)
    assert upstream_record(upstream, request_id) is None, "a refused request reached the upstream"
    assert record["status"] == status, record
    assert record["decision"] == "deny", record
    assert record["reason"] == reason, record
    assert record["auth"] == auth, record
    return record


def wait_for(predicate, timeout: float, message: str, interval: float = 0.05):
    return wait_until(predicate, timeout, interval=interval, message=message)
