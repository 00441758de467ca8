"""`gatehouse test` (SPEC §1, §15.1): policy test cases run through the decision pipeline of
`run`, without a server. A passing and a failing file, every kind of bad cases file with its
FILE:LINE:COL, JUnit XML read back with xml.etree, tokens minted with RSA, EC and Ed25519 keys
whose public half stands in for the issuer's keys, session cases, the headers the upstream
would receive — and, for the shipped example, the same answers from the real gateway.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from jwt_support import AsymmetricKey
from session_support import write_users_file

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
server:
  listen: ["127.0.0.1:18080"]
  public_origin: "https://app.test"
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
jwt:
  issuers:
    - name: hs
      issuer: "https://hs.test"
      audiences: ["tests", "other"]
      algorithms: [HS256]
      secret_file: keys/hs.key
    - name: idp
      issuer: "https://idp.test"
      audiences: ["tests"]
      algorithms: [RS256, ES256, EdDSA]
      jwks_url: "http://127.0.0.1:9/never-fetched.json"
sessions:
  cookie: { secure: false }
  login:
    users_file: users.htpasswd
    roles: { alice: [admin], bob: [reader] }
routes:
  - name: public
    match: { path: "/public/**" }
    upstream: api
    auth: none
  - name: admin
    match: { path: "/admin/**" }
    upstream: api
    require: { roles_any: [admin] }
  - name: stripped
    match: { path: "/stripped/**" }
    upstream: api
    strip_authorization: true
  - name: idp-only
    match: { path: "/idp/**" }
    upstream: api
    issuers: [idp]
  - name: api
    match: { path: "/api/**" }
    upstream: api
"""


@pytest.fixture
def project(tmp_path, gatehouse_bin) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hs.key").write_bytes(b"0123456789abcdef0123456789abcdef-policy-tests\n")
    write_users_file(gatehouse_bin, tmp_path / "users.htpasswd", {"alice": "pw-alice", "bob": "pw-bob"})
    (tmp_path / "gatehouse.yaml").write_text(CONFIG)
    return tmp_path


def run_test(run_cli, project: Path, *files: str, junit: str | None = None):
    args = ["test", "--config", "gatehouse.yaml", *files]
    if junit:
        args += ["--junit", junit]
    return run_cli(*args, cwd=project)


def write(project: Path, name: str, text: str) -> str:
    (project / name).write_text(text)
    return name


def summary(stdout: str) -> tuple[int, int]:
    m = re.search(r"^(\d+) passed, (\d+) failed$", stdout, re.M)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------------------------------------
# The shipped example

def test_shipped_example_passes_against_the_quickstart_config(run_cli):
    out = run_cli("test", "--config", "deploy/examples/quickstart.yaml", "deploy/examples/policy-tests.yaml",
                  cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    passed, failed = summary(out.stdout)
    assert failed == 0 and passed >= 10
    assert all(line.startswith("ok ") for line in out.stdout.splitlines()[:-1])


# ---------------------------------------------------------------------------------------------
# Passing and failing files

PASSING = """\
cases:
  - name: public is open
    request: { path: /public/x }
    expect: { status: 200, route: public, reason: null }
  - name: no route
    request: { path: /elsewhere }
    expect: { status: 404, route: null, reason: no_route }
  - name: hs token on the api
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc, roles: [reader] } }
    expect: { status: 200, route: api }
  - name: hs token is not an idp token
    request: { path: /idp/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { status: 401, route: idp-only, reason: issuer_not_allowed }
  - name: a token without exp is refused
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc, exp: null } }
    expect: { status: 401, reason: malformed_token }
  - name: the second audience is not the default one but works when set
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc, aud: other } }
    expect: { status: 200 }
  - name: a browser without credentials
    request: { path: /api/x, headers: { Accept: text/html } }
    expect: { status: 401, reason: missing_credentials }
"""


def test_passing_file_prints_ok_lines_and_exits_0(run_cli, project):
    out = run_test(run_cli, project, write(project, "pass.yaml", PASSING))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[:7] == ["ok public is open", "ok no route", "ok hs token on the api",
                         "ok hs token is not an idp token", "ok a token without exp is refused",
                         "ok the second audience is not the default one but works when set",
                         "ok a browser without credentials"]
    assert lines[-1] == "7 passed, 0 failed"


FAILING = """\
cases:
  - name: wrong status
    request: { path: /public/x }
    expect: { status: 403 }
  - name: wrong route and reason
    request: { path: /admin/x }
    token: { issuer: hs, claims: { sub: bob, roles: [reader] } }
    expect: { route: api, reason: null }
  - name: right
    request: { path: /admin/x }
    token: { issuer: hs, claims: { sub: boss, roles: [admin] } }
    expect: { status: 200, route: admin }
"""


def test_failing_file_prints_expected_and_got_and_exits_1(run_cli, project):
    out = run_test(run_cli, project, write(project, "pass.yaml", PASSING), write(project, "fail.yaml", FAILING))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL wrong status: expected status 403, got 200" in out.stdout
    line = next(l for l in out.stdout.splitlines() if l.startswith("FAIL wrong route and reason:"))
    assert 'expected route "api", got "admin"' in line
    assert 'expected reason none, got "insufficient_role"' in line
    assert "ok right" in out.stdout.splitlines()
    assert out.stdout.splitlines()[-1] == "8 passed, 2 failed"


# ---------------------------------------------------------------------------------------------
# Bad cases files: every problem with FILE:LINE:COL, exit 2, nothing run

BAD = """\
cases:
  - name: unknown keys
    request: { path: /api/x, verb: GET }
    expect: { status: 200, body: hello }
    extra: 1
  - name: wrong types
    request: { path: [/api/x], headers: [a, b] }
    expect: { status: two-hundred, upstream_headers: [X-A] }
  - name: unknown issuer
    request: { path: /api/x }
    token: { issuer: nobody }
    expect: { status: 200 }
  - name: idp needs a key file
    request: { path: /api/x }
    token: { issuer: idp, claims: { sub: x } }
    expect: { status: 200 }
  - name: key file that is not there
    request: { path: /api/x }
    token: { issuer: idp, key_file: keys/missing.pem }
    expect: { status: 200 }
  - name: unknown reason and route
    request: { path: /api/x }
    expect: { reason: because, route: nowhere }
  - name: unknown user
    request: { path: /api/x }
    session: { user: mallory }
    expect: { status: 200 }
  - name: hostile header value
    request: { path: /api/x, headers: { X-Evil: "a\\r\\nX-Injected: 1" } }
    expect: { status: 200 }
  - name: no expectation
    request: { path: /api/x }
    expect: {}
  - name: unknown reason and route
    request: { path: /api/x }
    expect: { status: 200 }
"""


def test_bad_cases_file_reports_every_problem_at_its_place(run_cli, project):
    out = run_test(run_cli, project, write(project, "bad.yaml", BAD))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "passed" not in out.stdout and "nothing was run" in out.stdout
    err = out.stderr
    expected = [
        r"bad\.yaml:3:30: error: cases\[0\]\.request\.verb: unknown key",
        r"bad\.yaml:4:28: error: cases\[0\]\.expect\.body: unknown key",
        r"bad\.yaml:5:5: error: cases\[0\]\.extra: unknown key",
        r"bad\.yaml:7:22: error: cases\[1\]\.request\.path: expected a string, got a list",
        r"bad\.yaml:7:41: error: cases\[1\]\.request\.headers: expected a mapping, got a list",
        r"bad\.yaml:8:23: error: cases\[1\]\.expect\.status: expected an integer",
        r"bad\.yaml:8:54: error: cases\[1\]\.expect\.upstream_headers: expected a mapping",
        r'bad\.yaml:11:22: error: cases\[2\]\.token\.issuer: unknown issuer "nobody"; jwt\.issuers names: hs, idp',
        r"bad\.yaml:15:12: error: cases\[3\]\.token: key_file: required key is missing",
        r'bad\.yaml:19:37: error: cases\[4\]\.token\.key_file: cannot read "keys/missing\.pem"',
        r"bad\.yaml:23:23: error: cases\[5\]\.expect\.reason: expected one of .*no_route",
        r'bad\.yaml:23:39: error: cases\[5\]\.expect\.route: no route "nowhere"',
        r'bad\.yaml:26:22: error: cases\[6\]\.session\.user: no user "mallory"',
        r"bad\.yaml:29:49: error: cases\[7\]\.request\.headers\.X-Evil: a header value must not contain control",
        r"bad\.yaml:33:13: error: cases\[8\]\.expect: expected at least one of",
        r'bad\.yaml:34:5: error: cases\[9\]: name "unknown reason and route" is used twice \(first at bad\.yaml:21:5\)',
    ]
    for pattern in expected:
        assert re.search(pattern, err), f"{pattern!r} not in:\n{err}"


@pytest.mark.parametrize("text, pattern", [
    ("cases:\n  - &a { name: x, request: { path: /a }, expect: { status: 200 } }\n",
     r"anchor .*not allowed"),
    ("base: &b { path: /a }\ncases:\n  - { name: x, request: *b, expect: { status: 200 } }\n",
     r"anchor .*not allowed"),
    ("cases:\n  - name: x\n    request: { <<: {path: /a} }\n    expect: { status: 200 }\n", r"merge key"),
    ("cases: [\n", r"invalid YAML"),
    ("routes: []\n", r"unknown key; valid keys: cases"),
    ("cases: {a: 1}\n", r"cases: expected a list"),
    ("cases:\n  - name: x\n    name: y\n    request: { path: /a }\n    expect: { status: 200 }\n", r'duplicate key "name"'),
])
def test_hostile_cases_files_are_refused_like_config_files(run_cli, project, text, pattern):
    out = run_test(run_cli, project, write(project, "hostile.yaml", text))
    assert out.returncode == 2, out.stdout + out.stderr
    assert re.search(r"^hostile\.yaml:\d+:\d+: error: .*" + pattern, out.stderr, re.M), out.stderr


def test_invalid_config_exits_2_with_check_output(run_cli, project):
    (project / "gatehouse.yaml").write_text(CONFIG.replace("routes:", "routez:"))
    out = run_test(run_cli, project, write(project, "pass.yaml", PASSING))
    assert out.returncode == 2
    assert re.search(r"gatehouse\.yaml:\d+:1: error: routez: unknown key", out.stderr), out.stderr
    assert "has 1 error" in out.stdout


def test_missing_cases_file_is_an_error(run_cli, project):
    out = run_test(run_cli, project, "nope.yaml")
    assert out.returncode == 2
    assert re.search(r"^nope\.yaml:0:0: error: cannot read", out.stderr, re.M), out.stderr


# ---------------------------------------------------------------------------------------------
# JUnit XML

def test_junit_xml_is_parsed_back_with_every_case_and_failure(run_cli, project):
    hostile_name = "weird <name> & \"quotes\" 'too' ]]> end"
    text = FAILING + f"""\
  - name: "weird <name> & \\"quotes\\" 'too' ]]> end"
    request: {{ path: /public/x }}
    expect: {{ status: 500 }}
"""
    out = run_test(run_cli, project, write(project, "pass.yaml", PASSING), write(project, "fail.yaml", text),
                   junit="report.xml")
    assert out.returncode == 1
    root = ET.parse(project / "report.xml").getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "11" and root.get("failures") == "3"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["pass.yaml", "fail.yaml"]
    assert suites[0].get("failures") == "0" and len(suites[0].findall("testcase")) == 7
    cases = {c.get("name"): c for c in suites[1].findall("testcase")}
    assert set(cases) == {"wrong status", "wrong route and reason", "right", hostile_name}
    assert cases["right"].find("failure") is None
    failure = cases["wrong status"].find("failure")
    assert failure.get("message") == "expected status 403, got 200"
    assert failure.text.startswith("fail.yaml:2:")
    assert cases[hostile_name].find("failure").get("message") == "expected status 500, got 200"


# ---------------------------------------------------------------------------------------------
# Tokens signed with a private key file: its public half stands in for the issuer's keys

@pytest.fixture
def keys(project) -> dict[str, AsymmetricKey]:
    made = {"rsa": AsymmetricKey("RSA", "r1"), "ec": AsymmetricKey("EC", "e1", curve="P-256"),
            "ed": AsymmetricKey("OKP", "o1")}
    for name, key in made.items():
        (project / "keys" / f"{name}.pem").write_bytes(key.private_pem)
        (project / "keys" / f"{name}.pub.pem").write_bytes(key.public_pem)
    return made


KEYED = """\
cases:
  - name: rs256
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/rsa.pem, claims: { sub: r, roles: [admin] } }
    expect: { status: 200, route: idp-only, upstream_headers: { X-Auth-Subject: r, X-Auth-Roles: admin } }
  - name: es256
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/ec.pem, claims: { sub: e } }
    expect: { status: 200, upstream_headers: { X-Auth-Subject: e } }
  - name: eddsa
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/ed.pem, claims: { sub: o } }
    expect: { status: 200, upstream_headers: { X-Auth-Subject: o, X-Auth-Method: jwt } }
  - name: ps256 is not on the allow-list
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/rsa.pem, alg: PS256, claims: { sub: r } }
    expect: { status: 401, reason: alg_not_allowed }
  - name: idp token with the wrong issuer claim
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/ec.pem, claims: { sub: r, iss: "https://other.test" } }
    expect: { status: 401 }
  - name: idp token for admin with roles of a reader
    request: { path: /admin/x }
    token: { issuer: idp, key_file: keys/rsa.pem, claims: { sub: r, roles: reader } }
    expect: { status: 403, reason: insufficient_role }
"""


def test_rsa_ec_and_ed25519_key_files_sign_tokens_that_verify(run_cli, project, keys):
    out = run_test(run_cli, project, write(project, "keyed.yaml", KEYED))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "6 passed, 0 failed"


def test_bad_key_files_are_refused(run_cli, project, keys):
    (project / "keys" / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    text = """\
cases:
  - name: a public key cannot sign
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/rsa.pub.pem }
    expect: { status: 200 }
  - name: garbage
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/garbage.pem }
    expect: { status: 200 }
  - name: an rsa key for an hmac-only issuer
    request: { path: /idp/x }
    token: { issuer: hs, key_file: keys/rsa.pem }
    expect: { status: 200 }
  - name: an alg the key cannot make
    request: { path: /idp/x }
    token: { issuer: idp, key_file: keys/ec.pem, alg: RS256 }
    expect: { status: 200 }
"""
    out = run_test(run_cli, project, write(project, "badkeys.yaml", text))
    assert out.returncode == 2, out.stdout + out.stderr
    assert re.search(r"badkeys\.yaml:4:\d+: error: .*key_file: .*holds a public key", out.stderr), out.stderr
    assert re.search(r"badkeys\.yaml:8:\d+: error: .*not a PEM private key", out.stderr), out.stderr
    assert re.search(r'badkeys\.yaml:12:\d+: error: .*issuer "hs" allows HS256, none of which this key signs', out.stderr), out.stderr
    assert re.search(r"badkeys\.yaml:16:\d+: error: .*alg: this key signs ES256", out.stderr), out.stderr


# ---------------------------------------------------------------------------------------------
# Sessions

SESSIONS = """\
cases:
  - name: alice is an admin
    request: { path: /admin/x }
    session: { user: alice }
    expect: { status: 200, route: admin, upstream_headers: { X-Auth-Subject: alice, X-Auth-Roles: admin, X-Auth-Method: session } }
  - name: bob is a reader
    request: { path: /admin/x }
    session: { user: bob }
    expect: { status: 403, reason: insufficient_role }
  - name: a cookie nobody logged in with
    request: { path: /api/x, headers: { Cookie: "gatehouse_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }
    expect: { status: 401, reason: session_unknown }
  - name: a same-origin POST with the session passes CSRF
    request: { method: POST, path: /api/x, headers: { Origin: "https://app.test" } }
    session: { user: bob }
    expect: { status: 200, upstream_headers: { X-Auth-Subject: bob } }
  - name: a cross-site POST with the session is refused
    request: { method: POST, path: /api/x, headers: { Origin: "https://evil.test", Sec-Fetch-Site: cross-site } }
    session: { user: bob }
    expect: { status: 403, reason: csrf_rejected }
  - name: a Bearer token wins over the session
    request: { path: /admin/x }
    session: { user: alice }
    token: { issuer: hs, claims: { sub: t, roles: [reader] } }
    expect: { status: 403, reason: insufficient_role }
"""


def test_session_cases_stand_for_logged_in_users(run_cli, project):
    out = run_test(run_cli, project, write(project, "sessions.yaml", SESSIONS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "6 passed, 0 failed"


# ---------------------------------------------------------------------------------------------
# What the upstream would receive

HEADERS = """\
cases:
  - name: identity, forwarding and removed headers
    request:
      path: /api/x?q=1
      headers:
        Host: api.test
        X-Request-Id: rid-123
        X-Auth-Roles: forged
        X_Auth_Subject: forged
        Connection: X-Secret
        X-Secret: hop
        X-Original-URL: /admin
        Cookie: "a=1; gatehouse_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; b=2"
        X-Kept: yes
    token: { issuer: hs, claims: { sub: svc, roles: [r1, r2] } }
    expect:
      upstream_headers:
        Host: api.test
        X-Request-Id: rid-123
        X-Real-IP: 192.0.2.1
        X-Forwarded-For: 192.0.2.1
        X-Forwarded-Proto: http
        X-Forwarded-Host: api.test
        X-Auth-Subject: svc
        X-Auth-Roles: r1,r2
        X-Auth-Method: jwt
        X_Auth_Subject: null
        X-Secret: null
        Connection: null
        X-Original-URL: null
        Cookie: "a=1; b=2"
        x-kept: "yes"
  - name: the request id is left out unless given
    request: { path: /public/x }
    expect: { status: 200, upstream_headers: { X-Request-Id: null, X-Auth-Subject: null } }
  - name: authorization is forwarded by default
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { upstream_headers: { X-Auth-Subject: svc } }
  - name: authorization is stripped where configured
    request: { path: /stripped/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { status: 200, upstream_headers: { Authorization: null, X-Auth-Subject: svc } }
"""


def test_upstream_headers_are_what_the_proxy_would_send(run_cli, project):
    out = run_test(run_cli, project, write(project, "headers.yaml", HEADERS))
    assert out.returncode == 0, out.stdout + out.stderr


def test_upstream_header_mismatches_are_reported(run_cli, project):
    text = """\
cases:
  - name: authorization is forwarded
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { upstream_headers: { Authorization: null, X-Auth-Subject: someone } }
  - name: nothing is forwarded on a refusal
    request: { path: /api/x }
    expect: { upstream_headers: { X-Auth-Subject: null } }
"""
    out = run_test(run_cli, project, write(project, "h.yaml", text))
    assert out.returncode == 1
    line = next(l for l in out.stdout.splitlines() if l.startswith("FAIL authorization is forwarded:"))
    assert re.search(r'expected upstream header Authorization none, got "Bearer [A-Za-z0-9_.-]+"', line), line
    assert 'expected upstream header X-Auth-Subject "someone", got "svc"' in line
    assert "FAIL nothing is forwarded on a refusal: expected upstream headers, got no forwarded request (deny)" in out.stdout


def test_a_rate_limited_route_admits_the_case(run_cli, project):
    (project / "gatehouse.yaml").write_text(CONFIG.replace('''  - name: api
    match: { path: "/api/**" }
    upstream: api
''', '''  - name: api
    match: { path: "/api/**" }
    upstream: api
    rate_limit: { rate: 1/h, burst: 1, key: subject }
'''))
    text = """\
cases:
  - name: one request in a fresh bucket is admitted
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { status: 200, route: api, reason: null, upstream_headers: { X-Auth-Subject: svc } }
  - name: and so is the next case's
    request: { path: /api/x }
    token: { issuer: hs, claims: { sub: svc } }
    expect: { status: 200 }
"""
    out = run_test(run_cli, project, write(project, "rl.yaml", text))
    assert out.returncode == 0, out.stdout + out.stderr
