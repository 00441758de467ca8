"""`gatehouse explain` and `gatehouse check` on JWT configurations (SPEC §1, §5.1, §10):
the decision, status and reason for a valid, expired, forged… token without a server, and
`check` refusing `alg: none` in any letter case at its FILE:LINE:COL.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from jwt_support import (AsymmetricKey, b64url_json, claims_for, forge, hmac_sign, jwks, mint_joserfc,
                         mint_pyjwt, random_secret, write_json)

ISS_HS = "https://hs.test"
ISS_RS = "https://rs.test"

CONFIG = """\
server:
  listen: ["127.0.0.1:18080"]
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
jwt:
  roles_claim: realm_access.roles
  issuers:
    - name: hs
      issuer: "https://hs.test"
      audiences: ["gatehouse-tests"]
      algorithms: [HS256]
      secret_file: keys/hs.key
    - name: rs
      issuer: "https://rs.test"
      audiences: ["gatehouse-tests"]
      algorithms: [RS256, PS256]
      jwks_file: keys/rs.jwks.json
routes:
  - name: public
    match: { path: "/pub/**" }
    upstream: api
    auth: none
  - name: admin
    match: { path: "/admin/**" }
    upstream: api
    require: { roles_any: [admin] }
  - name: only-rs
    match: { path: "/rs/**" }
    upstream: api
    issuers: [rs]
  - name: app
    match: { path: "/app/**", methods: [GET, HEAD] }
    upstream: api
    login_redirect: "/login.html"
  - name: api
    match: { path: "/api/**" }
    upstream: api
"""


class Setup:
    def __init__(self, root: Path):
        self.root = root
        self.secret = random_secret(64)
        self.rsa = AsymmetricKey("RSA", "rs-1")
        (root / "keys").mkdir()
        (root / "keys" / "hs.key").write_bytes(self.secret + b"\n")
        write_json(root / "keys" / "rs.jwks.json", jwks(self.rsa))
        self.config = root / "gatehouse.yaml"
        self.config.write_text(CONFIG)

    def hs(self, roles=("reader",), **extra) -> str:
        claims = claims_for(ISS_HS, realm_access={"roles": list(roles)}, **extra)
        return mint_pyjwt(claims, self.secret, "HS256")

    def rs(self, alg="RS256", **extra) -> str:
        return mint_joserfc(claims_for(ISS_RS, **extra), self.rsa, alg, kid="rs-1")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(tmp_path_factory.mktemp("jwt-explain"))


def run(binary: str, *args, cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def explain_json(binary: str, setup: Setup, method: str, path: str, *headers: str) -> dict:
    args = ["explain", "--config", str(setup.config), "--json", method, path]
    for h in headers:
        args += ["--header", h]
    result = run(binary, *args, cwd=setup.root)
    assert result.returncode == 0, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert set(doc) >= {"route", "normalized_path", "decision", "status", "reason"}, doc
    return doc


def bearer(token: str) -> str:
    return f"Authorization: Bearer {token}"


def _expired(s: Setup) -> str:
    now = int(time.time())
    return s.hs(exp=now - 3600, iat=now - 7200, nbf=now - 7200)


def _forged(s: Setup) -> str:
    h, _, sig = s.hs().split(".")
    return f"{h}.{b64url_json(claims_for(ISS_HS, realm_access={'roles': ['admin']}))}.{sig}"


CASES = [
    # id, method, path, token maker, extra headers, (route, normalized path, decision, status, reason)
    ("valid-hs256", "GET", "/api/x", lambda s: s.hs(), [], ("api", "/api/x", "allow", None, None)),
    ("valid-rs256", "GET", "/api/x", lambda s: s.rs(), [], ("api", "/api/x", "allow", None, None)),
    ("valid-ps256", "GET", "/api/x", lambda s: s.rs("PS256"), [], ("api", "/api/x", "allow", None, None)),
    ("expired", "GET", "/api/x", _expired, [], ("api", "/api/x", "deny", 401, "token_expired")),
    ("forged", "GET", "/api/x", _forged, [], ("api", "/api/x", "deny", 401, "bad_signature")),
    ("wrong-secret", "GET", "/api/x", lambda s: mint_pyjwt(claims_for(ISS_HS), random_secret(), "HS256"), [],
     ("api", "/api/x", "deny", 401, "bad_signature")),
    ("alg-none", "GET", "/api/x", lambda s: forge({"alg": "none"}, claims_for(ISS_HS)), [],
     ("api", "/api/x", "deny", 401, "alg_not_allowed")),
    ("hs256-with-rsa-pem", "GET", "/api/x",
     lambda s: hmac_sign({"alg": "HS256", "kid": "rs-1"}, claims_for(ISS_RS), s.rsa.public_pem), [],
     ("api", "/api/x", "deny", 401, "alg_not_allowed")),
    ("wrong-aud", "GET", "/api/x", lambda s: s.rs(aud="other"), [], ("api", "/api/x", "deny", 401, "wrong_audience")),
    ("unknown-iss", "GET", "/api/x", lambda s: mint_pyjwt(claims_for("https://evil.test"), s.secret, "HS256"), [],
     ("api", "/api/x", "deny", 401, "unknown_issuer")),
    ("garbage", "GET", "/api/x", lambda s: "garbage", [], ("api", "/api/x", "deny", 401, "malformed_token")),
    ("no-token", "GET", "/api/x", None, [], ("api", "/api/x", "deny", 401, "missing_credentials")),
    ("normalized", "GET", "/api/a/..//x", lambda s: s.hs(), [], ("api", "/api/x", "allow", None, None)),
    ("insufficient-role", "GET", "/admin/users", lambda s: s.hs(), [],
     ("admin", "/admin/users", "deny", 403, "insufficient_role")),
    ("admin-role", "GET", "/admin/users", lambda s: s.hs(roles=["admin"]), [],
     ("admin", "/admin/users", "allow", None, None)),
    ("other-issuer", "GET", "/rs/x", lambda s: s.hs(), [], ("only-rs", "/rs/x", "deny", 401, "issuer_not_allowed")),
    ("route-issuer", "GET", "/rs/x", lambda s: s.rs(), [], ("only-rs", "/rs/x", "allow", None, None)),
    ("public", "GET", "/pub/x", lambda s: "garbage", [], ("public", "/pub/x", "allow", None, None)),
    ("browser-redirect", "GET", "/app/x", None, ["Accept: text/html"],
     ("app", "/app/x", "deny", 302, "login_redirect")),
    ("api-client-no-redirect", "GET", "/app/x", None, ["Accept: application/json"],
     ("app", "/app/x", "deny", 401, "missing_credentials")),
    ("no-route", "GET", "/nowhere", lambda s: s.hs(), [], (None, "/nowhere", "deny", 404, "no_route")),
]


@pytest.mark.parametrize("method,path,make,headers,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_explain_json_decision(gatehouse_bin, setup, method, path, make, headers, expected):
    all_headers = list(headers)
    if make is not None:
        all_headers.append(bearer(make(setup)))
    doc = explain_json(gatehouse_bin, setup, method, path, *all_headers)
    assert (doc["route"], doc["normalized_path"], doc["decision"], doc["status"], doc["reason"]) == expected, doc


def test_explain_header_names_are_case_insensitive(gatehouse_bin, setup):
    doc = explain_json(gatehouse_bin, setup, "GET", "/admin/x", f"authorization: bearer {setup.hs(roles=['admin'])}")
    assert (doc["decision"], doc["status"], doc["reason"]) == ("allow", None, None), doc


def test_explain_text_report_names_the_reason_and_never_prints_the_token(gatehouse_bin, setup):
    token = _expired(setup)
    result = run(gatehouse_bin, "explain", "--config", str(setup.config), "GET", "/api/x", "--header", bearer(token),
                 cwd=setup.root)
    assert result.returncode == 0, result.stderr
    assert "token_expired" in result.stdout and "api" in result.stdout, result.stdout
    assert "deny" in result.stdout
    for part in token.split("."):
        assert part not in result.stdout + result.stderr


def test_explain_exits_1_on_an_invalid_config(gatehouse_bin, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("algorithms: [HS256]", "algorithms: [none]"))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hs.key").write_bytes(random_secret())
    write_json(tmp_path / "keys" / "rs.jwks.json", jwks(AsymmetricKey("RSA", "rs-1")))
    result = run(gatehouse_bin, "explain", "--config", str(bad), "--json", "GET", "/api/x", cwd=tmp_path)
    assert result.returncode == 1


# ---------------------------------------------------------------------------------------------
# check: `none` is a config error at its FILE:LINE:COL

def _position(text: str, needle_line: str, value: str) -> tuple[int, int]:
    """1-based line and column of `value` on the first line containing `needle_line`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle_line in line:
            return number, line.index(value, line.index(needle_line) if value in needle_line else 0) + 1
    raise AssertionError(f"{needle_line!r} not in the config")


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("style", ["flow", "block"])
def test_check_refuses_alg_none_with_file_line_col(gatehouse_bin, tmp_path, spelling, style):
    (tmp_path / "hs.key").write_bytes(random_secret(64))
    algorithms = (f"      algorithms: [HS256, {spelling}]\n" if style == "flow"
                  else f"      algorithms:\n        - HS256\n        - {spelling}\n")
    text = ("server:\n  listen: [\"127.0.0.1:18080\"]\nupstreams:\n  api:\n    targets: [\"http://127.0.0.1:19000\"]\n"
            "jwt:\n  issuers:\n    - name: local\n" + algorithms + "      secret_file: hs.key\n"
            "routes:\n  - name: api\n    match: { path: \"/api/**\" }\n    upstream: api\n")
    config = tmp_path / "none.yaml"
    config.write_text(text)
    result = run(gatehouse_bin, "check", "--config", "none.yaml", cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.strip() == "configuration none.yaml has 1 error", result.stdout
    errors = [l for l in result.stderr.splitlines() if ": error: " in l]
    assert len(errors) == 1, result.stderr
    line = f"[HS256, {spelling}]" if style == "flow" else f"- {spelling}"
    number, column = _position(text, line, spelling)
    match = re.match(r"^none\.yaml:(\d+):(\d+): error: (.*)$", errors[0])
    assert match, errors[0]
    assert (int(match.group(1)), int(match.group(2))) == (number, column), (errors[0], number, column)
    assert spelling in match.group(3) and "algorithms" in match.group(3), errors[0]


def test_check_accepts_the_explain_config_and_warns_about_a_short_secret(gatehouse_bin, setup, tmp_path):
    result = run(gatehouse_bin, "check", "--config", str(setup.config), cwd=setup.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"configuration {setup.config} is valid"
    assert ": error: " not in result.stderr

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hs.key").write_bytes(b"short-secret\n")
    write_json(tmp_path / "keys" / "rs.jwks.json", jwks(setup.rsa))
    short = tmp_path / "short.yaml"
    short.write_text(CONFIG)
    result = run(gatehouse_bin, "check", "--config", "short.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [l for l in result.stderr.splitlines() if ": warning: " in l and "HS256" in l]
    assert warnings, result.stderr
    assert "short-secret" not in result.stderr, "a secret appeared in check's output"
    line = next(i for i, l in enumerate(CONFIG.splitlines(), start=1) if "secret_file: keys/hs.key" in l)
    assert any(w.startswith(f"short.yaml:{line}:") for w in warnings), warnings


@pytest.mark.parametrize("edit,needle", [
    (("algorithms: [RS256, PS256]", "algorithms: [rs256, PS256]"), "RS256"),      # a "did you mean" hint
    (("secret_file: keys/hs.key", "secret_file: keys/missing.key"), "missing.key"),
    (("algorithms: [HS256]", "algorithms: [HS256, ES256]"), "ES256"),            # no key can verify it
], ids=["wrong-case", "missing-secret-file", "alg-without-key"])
def test_check_reports_jwt_key_problems_at_their_line(gatehouse_bin, setup, tmp_path, edit, needle):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hs.key").write_bytes(random_secret(64))
    write_json(tmp_path / "keys" / "rs.jwks.json", jwks(setup.rsa))
    text = CONFIG.replace(*edit)
    assert text != CONFIG
    (tmp_path / "c.yaml").write_text(text)
    result = run(gatehouse_bin, "check", "--config", "c.yaml", cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [l for l in result.stderr.splitlines() if ": error: " in l]
    line = next(i for i, l in enumerate(text.splitlines(), start=1) if edit[1] in l)
    assert any(e.startswith(f"c.yaml:{line}:") and needle in e for e in errors), (line, result.stderr)
