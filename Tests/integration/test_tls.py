"""TLS on the public listeners (SPEC §2 `server.tls`): requests over https reach the upstream
with `X-Forwarded-Proto: https`, the gateway's own answers and streamed bodies go out over TLS,
plain HTTP on a TLS listener gets no HTTP answer, and SIGHUP swaps the certificate (a broken
new one keeps the old one serving)."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from jwt_support import ThrowawayCA
from support import LOOPBACK, BigBody, pairs_get, read_response, streaming_handler, wait_until

DOCS = {"name": "docs", "match": {"path": "/docs/**"}, "upstream": "api", "auth": "none"}
STREAM = {"name": "stream", "match": {"path": "/stream/**"}, "upstream": "api", "auth": "none"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-pki")
    ca, other = ThrowawayCA("gatehouse TLS test CA"), ThrowawayCA("another CA")
    return {
        "dir": d,
        "ca": ca.write_pem(d / "ca.pem"),
        "first": ca.issue_server(d, "first", ["localhost"], ["127.0.0.1"]),
        "second": ca.issue_server(d, "second", ["gatehouse.test"], ["127.0.0.1"]),
        "untrusted": other.issue_server(d, "untrusted", ["localhost"], ["127.0.0.1"]),
        "ca_object": ca,
    }


def tls_gateway(gateway_factory, upstream, pki, which="first", routes=None, server=None):
    cert, key = pki[which]
    return gateway_factory(upstreams={"api": upstream}, routes=routes or [DOCS],
                           server={"tls": {"cert": str(cert), "key": str(key)}, **(server or {})})


def https(gw, path):
    return f"https://{LOOPBACK}:{gw.port}{path}"


def served_certificate(port) -> str:
    """The subject common name of the certificate the listener presents now (new connection)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value



def test_https_request_reaches_the_upstream_with_forwarded_proto_https(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    r = requests.get(https(gw, "/docs/a?x=1"), verify=str(pki["ca"]), timeout=5)
    assert r.status_code == 200
    got = r.json()
    assert got["path"] == "/docs/a" and got["query"] == "x=1"
    assert pairs_get(got["headers"], "X-Forwarded-Proto") == "https"
    assert r.headers["X-Request-Id"]


def test_keep_alive_over_tls_serves_many_requests_on_one_connection(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        reader = tls.makefile("rb")
        for i in range(20):
            body = b"b" * i
            tls.sendall(f"POST /docs/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {i}\r\n\r\n".encode() + body)
            r = read_response(reader)
            assert r.status == 200 and json.loads(r.body)["path"] == f"/docs/{i}", r
            assert json.loads(r.body)["body_length"] == i


def test_gateway_refusals_go_out_over_tls_in_the_uniform_shape(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    r = requests.get(https(gw, "/nowhere"), verify=str(pki["ca"]), timeout=5)
    assert r.status_code == 404
    assert set(r.json()) == {"status", "error", "message", "request_id"} and r.json()["error"] == "not_found"


def test_refusal_before_the_body_goes_out_over_tls_and_the_client_reads_it_whole(gateway_factory, echo, pki):
    # SPEC §3.2: a request refused on its head is answered without its body being read, then
    # closed after a lingering read — over TLS too (the answer, then end of stream).
    gw = tls_gateway(gateway_factory, echo, pki, server={"max_body_bytes": "16MiB"})
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n" + b"b" * 65536)
            r = read_response(s.makefile("rb"))
            assert r.status == 404 and r.json()["error"] == "not_found"
    assert echo.request_count == 0


def test_large_body_over_tls_arrives_byte_exact(gateway_factory, upstreams, pki):
    body = BigBody(8 * 1024 * 1024)
    gw = tls_gateway(gateway_factory, upstreams.raw(streaming_handler(body)), pki, routes=[STREAM])
    r = requests.get(https(gw, "/stream/big"), verify=str(pki["ca"]), timeout=20)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == body.sha256


def test_a_client_that_does_not_trust_the_certificate_gets_no_answer(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki, which="untrusted")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(gw, "/docs/a"), verify=str(pki["ca"]), timeout=5)
    assert echo.request_count == 0


def test_plain_http_on_a_tls_listener_gets_no_http_answer(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"GET /docs/a HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")
    assert echo.request_count == 0
    assert requests.get(https(gw, "/docs/after"), verify=str(pki["ca"]), timeout=5).status_code == 200


def test_sighup_swaps_the_certificate_for_new_connections(gateway_factory, echo, pki, tmp_path):
    # The config names files in the gateway's folder; the reload replaces their contents.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(pki["first"][0].read_bytes())
    key.write_bytes(pki["first"][1].read_bytes())
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"tls": {"cert": "cert.pem", "key": "key.pem"}})
    assert served_certificate(gw.port) == "localhost"
    cert.write_bytes(pki["second"][0].read_bytes())
    key.write_bytes(pki["second"][1].read_bytes())
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: served_certificate(gw.port) == "gatehouse.test", 5, message="the new certificate")
    assert requests.get(https(gw, "/docs/a"), verify=str(pki["ca"]), timeout=5).status_code == 200


def test_sighup_with_a_key_that_does_not_fit_keeps_the_old_certificate(gateway_factory, echo, pki, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(pki["first"][0].read_bytes())
    key.write_bytes(pki["first"][1].read_bytes())
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"tls": {"cert": "cert.pem", "key": "key.pem"}})
    start = len(gw.stderr())
    cert.write_bytes(pki["second"][0].read_bytes())  # the key stays the first one's
    gw.send_signal(signal.SIGHUP)
    gw.wait_stderr("the private key does not belong to the certificate", start=start)
    gw.wait_stderr("reload rejected", start=start)  # the reload's outcome, not a pause
    assert served_certificate(gw.port) == "localhost"
    assert requests.get(https(gw, "/docs/a"), verify=str(pki["ca"]), timeout=5).status_code == 200


def test_reload_turns_tls_on_for_new_connections(gateway_factory, echo, pki):
    gw = gateway_factory(upstreams={"api": echo}, routes=[DOCS])
    assert requests.get(f"http://{LOOPBACK}:{gw.port}/docs/a", timeout=5).status_code == 200
    cert, key = pki["first"]
    gw.reload(gw.make_config(server={"tls": {"cert": str(cert), "key": str(key)}}))
    wait_until(lambda: served_certificate(gw.port) == "localhost", 5, message="TLS after the reload")
    r = requests.get(https(gw, "/docs/b"), verify=str(pki["ca"]), timeout=5)
    assert r.status_code == 200 and pairs_get(r.json()["headers"], "X-Forwarded-Proto") == "https"


def test_a_client_that_never_finishes_the_handshake_is_dropped_after_read_timeout(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki, server={"read_timeout": "500ms"})
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
        started = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 3
    assert requests.get(https(gw, "/docs/after"), verify=str(pki["ca"]), timeout=5).status_code == 200


# ---------------------------------------------------------------------------------------------
# https:// upstream targets

class TLSUpstream:
    """An HTTP/1.1 upstream over TLS (Python's http.server): answers every path with a JSON echo
    of the request, `/big` with 4 MiB of BigBody, `/close…` with `Connection: close`; counts the
    TLS connections it accepted."""

    def __init__(self, cert: Path, key: Path, body: BigBody):
        import http.server
        import threading
        outer = self
        self.connections = 0
        self.body = body

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                outer.connections += 1

            def do_GET(self):
                self.answer()

            def do_POST(self):
                self.answer()

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                received = self.rfile.read(length) if length else b""
                if self.path == "/big":
                    data, kind = outer.body.data, "application/octet-stream"
                else:
                    data = json.dumps({"path": self.path, "body_length": len(received),
                                       "headers": list(self.headers.items())}).encode()
                    kind = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                if self.path.startswith("/close"):
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str = LOOPBACK) -> str:
        return f"https://{host}:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_upstreams(pki):
    started: list[TLSUpstream] = []

    def make(which: str = "first") -> TLSUpstream:
        cert, key = pki[which]
        up = TLSUpstream(cert, key, BigBody(4 * 1024 * 1024))
        started.append(up)
        return up
    yield make
    for up in started:
        up.stop()


ALL = {"name": "all", "match": {"path": "/**"}, "upstream": "api", "auth": "none"}


def https_upstream_gateway(gateway_factory, pki, url, trust=True):
    return gateway_factory(upstreams={"api": {"targets": [url], "preserve_host": False}}, routes=[ALL],
                           env={"SSL_CERT_FILE": str(pki["ca"] if trust else pki["dir"] / "nothing.pem")})


def test_https_upstream_gets_the_request_over_tls_and_connections_are_reused(gateway_factory, pki, tls_upstreams):
    up = tls_upstreams()
    gw = https_upstream_gateway(gateway_factory, pki, up.url())
    with requests.Session() as s:
        for i in range(10):
            r = s.post(f"http://{LOOPBACK}:{gw.port}/items/{i}", data=b"x" * i, timeout=5)
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["path"] == f"/items/{i}" and got["body_length"] == i
            assert dict(got["headers"])["Host"] == f"{LOOPBACK}:{up.port}"
    assert up.connections == 1, "one kept-alive TLS connection for ten sequential requests"


def test_https_upstream_streams_a_large_body_byte_exact(gateway_factory, pki, tls_upstreams):
    up = tls_upstreams()
    gw = https_upstream_gateway(gateway_factory, pki, up.url())
    r = requests.get(f"http://{LOOPBACK}:{gw.port}/big", timeout=20)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == up.body.sha256


def test_https_upstream_by_host_name_is_verified_against_that_name(gateway_factory, pki, tls_upstreams):
    up = tls_upstreams()  # its certificate names localhost and 127.0.0.1
    gw = https_upstream_gateway(gateway_factory, pki, up.url(host="localhost"))
    assert requests.get(f"http://{LOOPBACK}:{gw.port}/named", timeout=5).status_code == 200


@pytest.mark.parametrize("case", ["untrusted CA", "name not in the certificate", "no trust store entry"])
def test_https_upstream_whose_certificate_does_not_verify_is_a_502(gateway_factory, pki, tls_upstreams, case):
    if case == "untrusted CA":
        up, url, trust = (u := tls_upstreams("untrusted")), u.url(), True
    elif case == "name not in the certificate":
        up, url, trust = (u := tls_upstreams("second")), u.url(host="localhost"), True  # it names gatehouse.test
    else:
        up, url, trust = (u := tls_upstreams()), u.url(), False
    gw = https_upstream_gateway(gateway_factory, pki, url, trust=trust)
    r = requests.get(f"http://{LOOPBACK}:{gw.port}/secret", timeout=10)
    assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    rid = r.headers["X-Request-Id"]
    assert gw.wait_log_record(rid)["reason"] == "upstream_connect_failed"
    # The operator learns why, in the gateway's own log.
    gw.wait_stderr(f"upstream {url}: TLS handshake failed: certificate:")


def test_https_upstream_that_closes_after_each_response_gets_a_new_connection_each_time(gateway_factory, pki,
                                                                                          tls_upstreams):
    up = tls_upstreams()
    gw = https_upstream_gateway(gateway_factory, pki, up.url())
    with requests.Session() as s:
        for i in range(5):
            r = s.get(f"http://{LOOPBACK}:{gw.port}/close/{i}", timeout=5)
            assert r.status_code == 200 and r.json()["path"] == f"/close/{i}"
    assert up.connections == 5
    assert requests.get(f"http://{LOOPBACK}:{gw.port}/after", timeout=5).status_code == 200


@pytest.mark.slow
def test_large_body_to_a_slow_tls_client_is_streamed_with_bounded_memory(gateway_factory, upstreams, pki):
    # The backpressure of SPEC §7.1 through OpenSSL's bufferevent: the gateway pauses the
    # upstream instead of holding the body for a client that reads slowly.
    body = BigBody(32 * 1024 * 1024)
    gw = tls_gateway(gateway_factory, upstreams.raw(streaming_handler(body)), pki, routes=[STREAM],
                     server={"workers": 1})
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    for _ in range(3):
        assert requests.get(https(gw, "/stream/small"), verify=str(pki["ca"]), timeout=5).content == b"small"
    time.sleep(0.2)
    baseline, peak = gw.rss_kib(), 0
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    raw.settimeout(10)
    raw.connect((LOOPBACK, gw.port))
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /stream/big HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += tls.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"200", head
        digest, received, started = hashlib.sha256(rest), len(rest), time.monotonic()
        while received < body.size:
            chunk = tls.recv(65536)
            assert chunk, f"closed after {received} bytes"
            digest.update(chunk)
            received += len(chunk)
            ahead = received / (8 * 1024 * 1024) - (time.monotonic() - started)  # 8 MiB/s
            if ahead > 0:
                time.sleep(ahead)
            peak = max(peak, gw.rss_kib())
            assert time.monotonic() - started < 25
    assert digest.hexdigest() == body.sha256
    assert peak - baseline < 16 * 1024, f"RSS grew by {(peak - baseline) >> 10} MiB while streaming 32 MiB"


# ---------------------------------------------------------------------------------------------
# Cipher suites (SPEC §3.2 TLS, issue 9 item 19): TLS 1.2 only with ECDHE and an AEAD cipher.

@pytest.fixture(scope="module")
def rsa_server(pki):
    """An RSA server certificate (static-RSA suites need one) from the test CA, as (cert, key)."""
    import datetime
    import ipaddress
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    ca_cert = x509.load_pem_x509_certificate(pki["ca"].read_bytes())
    ca_key = pki["ca_object"].key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = pki["dir"] / "rsa.crt", pki["dir"] / "rsa.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def tls12_handshake(port, ca, ciphers: str):
    """The cipher the listener agrees to over TLS 1.2 when offered only `ciphers`, or None when
    it refuses the handshake."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


def rsa_gateway(gateway_factory, echo, rsa_server):
    cert, key = rsa_server
    return gateway_factory(upstreams={"api": echo}, routes=[DOCS], server={"tls": {"cert": str(cert), "key": str(key)}})


@pytest.mark.parametrize("suite", ["AES128-SHA", "AES256-GCM-SHA384", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA",
                                   "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"])
def test_tls12_refuses_static_rsa_cbc_and_dhe_suites(gateway_factory, echo, pki, rsa_server, suite):
    gw = rsa_gateway(gateway_factory, echo, rsa_server)
    assert tls12_handshake(gw.port, pki["ca"], suite) is None


def test_tls12_refuses_cbc_suites_with_an_ecdsa_certificate(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    assert tls12_handshake(gw.port, pki["ca"], "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384") is None
    assert tls12_handshake(gw.port, pki["ca"], "ECDHE-ECDSA-AES128-GCM-SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.mark.parametrize("suite", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                   "ECDHE-RSA-CHACHA20-POLY1305"])
def test_tls12_accepts_ecdhe_aead_suites(gateway_factory, echo, pki, rsa_server, suite):
    gw = rsa_gateway(gateway_factory, echo, rsa_server)
    assert tls12_handshake(gw.port, pki["ca"], suite) == suite


def test_tls13_is_accepted(gateway_factory, echo, pki):
    gw = tls_gateway(gateway_factory, echo, pki)
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((LOOPBACK, gw.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() == "TLSv1.3"
        tls.sendall(b"GET /docs/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(tls.makefile("rb")).status == 200
