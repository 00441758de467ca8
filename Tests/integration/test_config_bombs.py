"""Hostile config files (SPEC §3.2 Config files, issue 9 item 15): YAML aliases, anchors and merge
keys are refused before anything is composed, files over 4 MiB and files that are not regular
files are refused unread, a reload that does not finish within 30 s is abandoned (the old config
keeps serving), and a SIGHUP during a reload is not lost.

The bombs took minutes on the old build; here `check` and a reload refuse them at once. No test
asserts a speed: each waits for a positive outcome (an exit, a log line, a counter) within a
bound that the old build exceeded by minutes."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from support import wait_until

UPSTREAM_BLOCK = """\
upstreams:
  api:
    targets: ["http://127.0.0.1:9"]
"""

MAIN = UPSTREAM_BLOCK + """\
routes:
  - name: main
    match: { path: "/main/**" }
    upstream: api
    auth: none
policy_files: ["policies/*.yaml"]
"""


def alias_key_bomb() -> str:
    """~600 bytes: every level's keys are aliases of the level below, which Yams' duplicate-key
    check hashes again at every level (the old build ran for minutes)."""
    lines = ["k0: &k0 [a, b, c, d, e, f, g, h]"]
    for i in range(1, 12):
        lines.append(f"k{i}: &k{i} {{? *k{i - 1} : 1, ? [*k{i - 1}] : 2, ? [[*k{i - 1}]] : 3}}")
    return "\n".join(lines) + "\nroutes: []\n"


def merge_key_bomb() -> str:
    lines = ["a0: &a0 {k0: v}"]
    for i in range(1, 16):
        lines.append(f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: v}}")
    return "\n".join(lines) + "\nroutes: []\n"


def billion_laughs() -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nroutes: []\n"


def merge_without_anchor() -> str:
    return ('routes:\n  - name: p\n    <<: { upstream: api, auth: none }\n'
            '    match: { path: "/p/**" }\n')


BOMBS = [
    pytest.param(alias_key_bomb(), "YAML anchor \"&k0\"", 1, id="alias-keys"),
    pytest.param(merge_key_bomb(), "YAML anchor \"&a0\"", 1, id="merge-keys"),
    pytest.param(billion_laughs(), "YAML anchor \"&l0\"", 1, id="billion-laughs"),
    pytest.param(merge_without_anchor(), "YAML merge key \"<<\"", 3, id="merge-key-alone"),
]


def write_policy(tmp_path, text: str, name: str = "p.yaml"):
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    (directory / name).write_text(text)


# ---------------------------------------------------------------------------------------------
# gatehouse check

@pytest.mark.parametrize("bomb,message,line", BOMBS)
def test_check_refuses_a_yaml_bomb_in_a_policy_file_at_its_position(run_cli, tmp_path, bomb, message, line):
    (tmp_path / "gw.yaml").write_text(MAIN)
    write_policy(tmp_path, bomb)
    result = run_cli("check", "--config", "gw.yaml", timeout=20)  # the old build: minutes
    assert result.returncode == 1, result.stderr
    errors = [l for l in result.stderr.splitlines() if ": error: " in l]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"policies/p.yaml:{line}:"), errors
    assert message in errors[0], errors
    assert result.stdout.strip() == "configuration gw.yaml has 1 error"


def test_check_refuses_an_alias_in_the_main_config(run_cli, tmp_path):
    (tmp_path / "gw.yaml").write_text(UPSTREAM_BLOCK + 'routes:\n  - &r {name: a, match: {path: "/a/**"}, '
                                      'upstream: api, auth: none}\n  - *r\n')
    result = run_cli("check", "--config", "gw.yaml", timeout=20)
    assert result.returncode == 1
    assert 'gw.yaml:5:5: error: YAML anchor "&r" is not allowed' in result.stderr, result.stderr


@pytest.mark.parametrize("where", ["main", "policy"])
def test_check_refuses_a_file_over_4_mib_unread(run_cli, tmp_path, where):
    big = "# " + "x" * 1021 + "\n"
    text = big * (5 * 1024)                  # 5 MiB of comments: valid YAML, refused by its size
    (tmp_path / "gw.yaml").write_text(MAIN + (text if where == "main" else ""))
    write_policy(tmp_path, text if where == "policy" else "routes: []\n")
    result = run_cli("check", "--config", "gw.yaml", timeout=20)
    assert result.returncode == 1, result.stderr
    name = "gw.yaml" if where == "main" else "policies/p.yaml"
    assert f"{name}:0:0: error: cannot read: the file is" in result.stderr, result.stderr
    assert "more than the 4 MiB a config file may have" in result.stderr


def test_check_of_a_policy_file_with_30000_routes_ends_with_a_verdict(run_cli, tmp_path):
    """2 MiB of routes, within the size limit: the pairwise shadowing check (minutes for 30,000
    routes on the old build) is skipped beyond 1,000 routes, with a warning."""
    (tmp_path / "gw.yaml").write_text(MAIN)
    routes = "".join(f'  - {{name: r{i}, match: {{path: "/p{i}/**"}}, upstream: api, auth: none}}\n'
                     for i in range(30_000))
    write_policy(tmp_path, "routes:\n" + routes)
    result = run_cli("check", "--config", "gw.yaml", timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "30001 routes: more than 1000, so routes that can never match are not looked for" in result.stderr
    assert result.stdout.strip() == "configuration gw.yaml is valid"


def test_check_refuses_a_fifo_as_a_policy_file_without_waiting_for_a_writer(run_cli, tmp_path):
    (tmp_path / "gw.yaml").write_text(MAIN)
    (tmp_path / "policies").mkdir()
    os.mkfifo(tmp_path / "policies" / "p.yaml")
    try:
        result = run_cli("check", "--config", "gw.yaml", timeout=20)  # the old build: blocked in open(2)
    finally:
        unblock_fifo(tmp_path / "policies" / "p.yaml")
    assert result.returncode == 1, result.stderr
    assert "policies/p.yaml:0:0: error: cannot read: not a regular file" in result.stderr, result.stderr


def unblock_fifo(path, data: bytes = b""):
    """Opens `path` for writing (without blocking) so that a reader stuck in open(2) goes on."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader: nothing is stuck
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# SIGHUP

def metric(gw, name: str) -> float:
    text = requests.get(gw.admin_url("/metrics"), timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def status(gw, path: str) -> int:
    return requests.get(gw.url(path), timeout=5).status_code


def policy_route(path: str) -> str:
    return f'routes:\n  - name: p\n    match: {{ path: "{path}" }}\n    upstream: api\n    auth: none\n'


def start_with_policies(gateway_factory, echo, tmp_path):
    """A gateway whose routes come from policies/*.yaml (first /p1/**); its reload counter at 1."""
    write_policy(tmp_path, policy_route("/p1/**"))
    gw = gateway_factory(upstreams={"api": echo}, routes=[])
    gw.reload(gateway_config(gw))
    wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") == 1, 10, message="the policy files loaded")
    assert status(gw, "/p1/x") == 200
    return gw


def wait_blocked_on_fifo(pid: int):
    """Waits until a thread of `pid` sleeps in open(2) of a FIFO without a writer (Linux's
    wchan `wait_for_partner`). Where the kernel does not tell a thread's wait channel, waits 1 s."""
    def channels():
        names = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    names.append(f.read().strip())
            except OSError:
                pass
        return names
    if not any(name not in ("", "0") for name in channels()):
        time.sleep(1)
        return
    wait_until(lambda: "wait_for_partner" in channels(), 10, message="a reload thread blocked on the FIFO")


def gateway_config(gw, **extra):
    return gw.make_config(extra={"policy_files": ["policies/*.yaml"], **extra})


@pytest.mark.parametrize("bomb", [alias_key_bomb(), merge_key_bomb()], ids=["alias-keys", "merge-keys"])
def test_sighup_with_a_yaml_bomb_fails_cleanly_and_a_later_sighup_applies(gateway_factory, echo, tmp_path, bomb):
    gw = start_with_policies(gateway_factory, echo, tmp_path)
    reloads, failures = metric(gw, "gatehouse_config_reloads_total"), metric(gw, "gatehouse_config_reload_failures_total")
    before = len(gw.stderr())
    write_policy(tmp_path, bomb)
    gw.send_signal(signal.SIGHUP)
    gw.wait_stderr("reload rejected", timeout=15, start=before)   # the old build: minutes, then deaf
    assert 'YAML anchor' in gw.stderr()[before:]
    assert metric(gw, "gatehouse_config_reload_failures_total") == failures + 1
    assert status(gw, "/p1/x") == 200                               # the old config keeps serving

    write_policy(tmp_path, policy_route("/p2/**"))
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") == reloads + 1, 10,
               message="the good reload after the bomb")
    assert status(gw, "/p2/x") == 200 and status(gw, "/p1/x") == 404


@pytest.mark.slow
def test_a_stuck_reload_is_abandoned_after_30s_and_a_sighup_meanwhile_is_not_lost(gateway_factory, echo, tmp_path):
    """A reload stuck in open(2) on a FIFO named as a JWT secret file (as a key file on a hung
    network file system would be): a SIGHUP during it is queued, the stuck reload is abandoned
    after 30 s with the old config serving throughout, then the queued reload applies. When
    the stuck thread finally returns, its result is discarded."""
    gw = start_with_policies(gateway_factory, echo, tmp_path)
    reloads, failures = metric(gw, "gatehouse_config_reloads_total"), metric(gw, "gatehouse_config_reload_failures_total")
    fifo = tmp_path / "stuck.key"
    os.mkfifo(fifo)
    jwt = {"issuers": [{"name": "local", "algorithms": ["HS256"], "secret_file": str(fifo)}]}
    before = len(gw.stderr())
    gw.reload(gateway_config(gw, jwt=jwt))
    gw.wait_stderr("reloading", start=before)
    # "reloading" is written before the config file is read: the next config may only be
    # written once the reload holds this one, i.e. is blocked opening the FIFO.
    wait_blocked_on_fifo(gw.pid)
    try:
        # The next SIGHUP arrives while the first reload is stuck: it is queued, not dropped.
        write_policy(tmp_path, policy_route("/p3/**"))
        gw.reload(gateway_config(gw))
        gw.wait_stderr("reload requested while one is running: another reload follows it", timeout=5, start=before)
        assert status(gw, "/p1/x") == 200                           # the old config serves meanwhile

        gw.wait_stderr("reload abandoned: not finished after 30 s", timeout=45, start=before)
        wait_until(lambda: metric(gw, "gatehouse_config_reloads_total") == reloads + 1, 10,
                   message="the queued reload after the abandoned one")
        assert metric(gw, "gatehouse_config_reload_failures_total") == failures + 1
        assert status(gw, "/p3/x") == 200 and status(gw, "/p1/x") == 404
    finally:
        unblock_fifo(fifo, b"k" * 32)
    gw.wait_stderr("an abandoned reload finished late: its result is discarded", timeout=10, start=before)
    assert status(gw, "/p3/x") == 200
    assert metric(gw, "gatehouse_config_reloads_total") == reloads + 1
