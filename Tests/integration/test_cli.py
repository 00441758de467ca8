"""The command line (SPEC §1, §10): check, explain, run on a bad config, echo, --version/--help."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from support import free_port, port_accepts, raw_request, wait_until

PROBLEM_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): (?P<message>.+)$")

VALID = """\
server:
  listen: ["127.0.0.1:18080"]
  workers: 1
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
routes:
  - name: docs
    match: { path: "/docs/**", methods: [GET, HEAD] }
    upstream: api
    auth: none
  - name: api
    match: { path: "/api/**" }
    upstream: api
  - name: hosted
    match: { path: "/h/**", host: "api.example.com" }
    upstream: api
    auth: none
access_log:
  path: stdout
  format: json
"""

# Three errors at known places: a bad duration (value at 3:17), an unknown key (key at 4:3),
# an unknown upstream (value at 11:15).
INVALID = """\
server:
  listen: ["127.0.0.1:18080"]
  read_timeout: 30 sec
  workerz: 2
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
routes:
  - name: api
    match: { path: "/api/**" }
    upstream: apii
"""

SHADOWED = """\
upstreams:
  api:
    targets: ["http://127.0.0.1:19000"]
routes:
  - name: everything
    match: { path: "/api/**" }
    upstream: api
  - name: users
    match: { path: "/api/users/*", methods: [GET] }
    upstream: api
"""


def problems(stderr: str, level: str | None = None):
    """Every stderr line parsed as FILE:LINE:COL: level: message (all lines must parse);
    only those of `level` when given."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    parsed = [PROBLEM_RE.match(l) for l in lines]
    assert all(parsed), f"every stderr line is FILE:LINE:COL: level: message, got:\n{stderr}"
    found = [m.groupdict() for m in parsed]
    return [f for f in found if level is None or f["level"] == level]


def errors(stderr: str):
    return problems(stderr, "error")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# check

def test_check_valid_config_prints_the_verdict_and_exits_0(run_cli, tmp_path):
    write(tmp_path, "good.yaml", VALID)
    p = run_cli("check", "--config", "good.yaml")
    assert p.returncode == 0
    assert p.stdout == "configuration good.yaml is valid\n"
    assert errors(p.stderr) == []  # warnings allowed (e.g. a required-auth route without authenticator)


def test_check_config_without_anything_to_warn_about_prints_nothing_on_stderr(run_cli, tmp_path):
    text = VALID.replace("    upstream: api\n  - name: hosted", "    upstream: api\n    auth: none\n  - name: hosted")
    write(tmp_path, "clean.yaml", text)
    p = run_cli("check", "--config", "clean.yaml")
    assert (p.returncode, p.stdout, p.stderr) == (0, "configuration clean.yaml is valid\n", "")


def test_check_quickstart_example_is_valid(run_cli):
    repo = Path(__file__).resolve().parents[2]
    p = run_cli("check", "--config", "deploy/examples/quickstart.yaml", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "configuration deploy/examples/quickstart.yaml is valid\n"


def test_check_invalid_config_lists_every_problem_with_file_line_column(run_cli, tmp_path):
    write(tmp_path, "bad.yaml", INVALID)
    p = run_cli("check", "--config", "bad.yaml")
    assert p.returncode == 1
    assert p.stdout == "configuration bad.yaml has 3 errors\n"
    found = errors(p.stderr)  # warnings may come too
    assert len(found) == 3
    assert all(f["file"] == "bad.yaml" for f in found)
    by_line = {int(f["line"]): f for f in found}
    assert set(by_line) == {3, 4, 11}
    assert "read_timeout" in by_line[3]["message"] and by_line[3]["col"] == "17"
    assert "workerz" in by_line[4]["message"] and by_line[4]["col"] == "3"
    assert "valid keys" in by_line[4]["message"] and "workers" in by_line[4]["message"]
    assert "apii" in by_line[11]["message"] and by_line[11]["col"] == "15"
    assert "api" in by_line[11]["message"].replace("apii", "")  # lists the defined upstreams


def test_check_counts_a_single_error_in_the_singular(run_cli, tmp_path):
    write(tmp_path, "one.yaml", VALID.replace("workers: 1", "workers: many"))
    p = run_cli("check", "--config", "one.yaml")
    assert p.returncode == 1
    assert p.stdout == "configuration one.yaml has 1 error\n"
    [f] = errors(p.stderr)
    assert (f["file"], f["line"], f["level"]) == ("one.yaml", "3", "error")


@pytest.mark.parametrize("how", ["absolute", "subdir"])
def test_check_names_the_file_as_written_on_the_command_line(run_cli, tmp_path, how):
    path = write(tmp_path, "conf/bad.yaml", INVALID)
    arg = str(path) if how == "absolute" else "conf/bad.yaml"
    p = run_cli("check", "--config", arg)
    assert p.returncode == 1
    assert p.stdout == f"configuration {arg} has 3 errors\n"
    assert {f["file"] for f in errors(p.stderr)} == {arg}


def test_check_warns_about_a_shadowed_route_and_still_exits_0(run_cli, tmp_path):
    write(tmp_path, "shadow.yaml", SHADOWED)
    p = run_cli("check", "--config", "shadow.yaml")
    assert p.returncode == 0
    assert p.stdout == "configuration shadow.yaml is valid\n"
    assert errors(p.stderr) == []
    [f] = [w for w in problems(p.stderr, "warning") if "never match" in w["message"] or "shadow" in w["message"]]
    assert f["file"] == "shadow.yaml" and f["line"] == "8"
    assert "users" in f["message"] and "everything" in f["message"]


def test_check_missing_file_is_an_error(run_cli, tmp_path):
    p = run_cli("check", "--config", "missing.yaml")
    assert p.returncode == 1
    assert p.stdout == "configuration missing.yaml has 1 error\n"
    assert p.stderr.startswith("missing.yaml:")


def test_check_reports_problems_in_policy_files_relative_to_the_config_folder(run_cli, tmp_path):
    write(tmp_path, "conf/gw.yaml", VALID + 'policy_files: ["policies/*.yaml"]\n')
    write(tmp_path, "conf/policies/extra.yaml",
          "routes:\n  - name: extra\n    match: { path: \"/extra/**\" }\n    upstream: nowhere\n")
    p = run_cli("check", "--config", "conf/gw.yaml")
    assert p.returncode == 1
    [f] = errors(p.stderr)
    assert f["file"] == "policies/extra.yaml" and f["line"] == "4" and "nowhere" in f["message"]


def test_run_with_an_invalid_config_exits_1_without_listening(run_cli, tmp_path):
    port = free_port()
    write(tmp_path, "bad.yaml", INVALID.replace("18080", str(port)))
    p = run_cli("run", "--config", "bad.yaml", timeout=10)
    assert p.returncode == 1
    assert "workerz" in p.stderr
    assert not port_accepts(port)


# ---------------------------------------------------------------------------------------------
# explain

def explain_json(run_cli, *args):
    p = run_cli("explain", "--config", "c.yaml", "--json", *args)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {"route", "normalized_path", "decision", "status", "reason"} <= set(doc), doc
    return doc


@pytest.mark.parametrize("args,expected", [
    (["GET", "/docs/a/../b//c?x=1"], {"route": "docs", "normalized_path": "/docs/b/c", "decision": "allow",
                                      "status": None, "reason": None}),
    (["GET", "/nothing"], {"route": None, "normalized_path": "/nothing", "decision": "deny", "status": 404,
                           "reason": "no_route"}),
    (["POST", "/docs/x"], {"route": None, "decision": "deny", "status": 404, "reason": "no_route"}),
    (["GET", "/api/users"], {"route": "api", "normalized_path": "/api/users", "decision": "deny", "status": 401,
                             "reason": "missing_credentials"}),
    (["GET", "/docs/a%2Fb"], {"route": None, "decision": "deny", "status": 400, "reason": "path_rejected"}),
    (["GET", "/docs/%2e%2e/%2e%2e/etc"], {"route": None, "decision": "deny", "status": 400, "reason": "path_rejected"}),
    (["GET", "/h/x", "--header", "Host: API.example.com:8443"], {"route": "hosted", "decision": "allow"}),
    (["GET", "/h/x", "--header", "Host: other.example"], {"route": None, "status": 404, "reason": "no_route"}),
    (["GET", "http://api.example.com/h/x"], {"route": "hosted", "normalized_path": "/h/x", "decision": "allow"}),
], ids=["allow-normalized", "no-route", "method-not-matched", "missing-credentials", "path-refused",
        "encoded-climb-refused", "host-header", "other-host", "absolute-form"])
def test_explain_json_reports_route_path_decision_status_reason(run_cli, tmp_path, args, expected):
    write(tmp_path, "c.yaml", VALID)
    doc = explain_json(run_cli, *args)
    for key, value in expected.items():
        assert doc[key] == value, (key, doc)


def test_explain_text_report_names_route_path_and_decision(run_cli, tmp_path):
    write(tmp_path, "c.yaml", VALID)
    p = run_cli("explain", "--config", "c.yaml", "GET", "/docs/a/./b")
    assert p.returncode == 0
    assert "docs" in p.stdout and "/docs/a/b" in p.stdout and "allow" in p.stdout
    p = run_cli("explain", "--config", "c.yaml", "GET", "/zzz")
    assert p.returncode == 0
    assert "no_route" in p.stdout and "404" in p.stdout


def test_explain_with_an_invalid_config_exits_1(run_cli, tmp_path):
    write(tmp_path, "c.yaml", INVALID)
    p = run_cli("explain", "--config", "c.yaml", "--json", "GET", "/api/x")
    assert p.returncode == 1


def test_explain_agrees_with_the_running_gateway(run_cli, tmp_path, gateway_factory, echo):
    routes = [
        {"name": "docs", "match": {"path": "/docs/**", "methods": ["GET"]}, "upstream": "api", "auth": "none"},
        {"name": "api", "match": {"path": "/api/**"}, "upstream": "api"},
        {"name": "opt", "match": {"path": "/opt/**"}, "upstream": "api", "auth": "optional"},
    ]
    gw = gateway_factory(upstreams={"api": echo}, routes=routes)
    (tmp_path / "c.yaml").write_text(gw.config_path.read_text())
    cases = [("GET", "/docs/x"), ("POST", "/docs/x"), ("GET", "/api/x"), ("GET", "/opt/x"), ("GET", "/nope"),
             ("GET", "/docs/a;b"), ("GET", "/docs/../x"), ("DELETE", "/api/x/../y")]
    for method, target in cases:
        doc = explain_json(run_cli, method, target)
        live = raw_request(gw.port, method, target)
        assert (doc["status"] or 200) == live.status, (method, target, doc, live.status)


# ---------------------------------------------------------------------------------------------
# --version, --help, echo

def test_version_prints_name_and_version(run_cli):
    p = run_cli("--version")
    assert p.returncode == 0
    assert re.search(r"\d+\.\d+\.\d+", p.stdout), p.stdout


def test_help_lists_the_commands(run_cli):
    p = run_cli("--help")
    assert p.returncode == 0
    for command in ["run", "check", "explain", "test", "echo"]:
        assert command in p.stdout


def test_echo_command_answers_with_json_of_the_request(gatehouse_bin, tmp_path):
    port = free_port()
    proc = subprocess.Popen([gatehouse_bin, "echo", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_until(lambda: port_accepts(port), 10, message="gatehouse echo listening")
        r = requests.post(f"http://127.0.0.1:{port}/some/path?a=1", data=b"abc", headers={"X-Test": "yes"}, timeout=5)
        assert r.status_code == 200
        doc = r.json()
        assert doc["method"] == "POST" and doc["path"] == "/some/path" and doc["query"] == "a=1"
        assert doc["body_length"] == 3
        assert "yes" in json.dumps(doc["headers"])
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
