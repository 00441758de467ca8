"""The deployment artefacts, tested without a container engine (issue: "a deployment that
deploys"): the Dockerfile's stages against the release binary's libraries and
deploy/install-deps.sh, the Debian package built by deploy/package-deb.sh installed and run for
real, and the scale-out recipe of docs/operations.md (two instances on one Redis behind HAProxy).

The release binary (Swift runtime linked statically, as the image and the .deb ship it) comes
from GATEHOUSE_RELEASE_BIN, which deploy/test.sh builds.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import support
from session_support import RedisServer, session_gateways, sessions_section  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@pytest.fixture(scope="module")
def release_bin() -> str:
    path = os.environ.get("GATEHOUSE_RELEASE_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("GATEHOUSE_RELEASE_BIN is not set (deploy/test.sh builds the release binary)")
    return path


def linked_libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def package_of(path: str) -> str | None:
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.split(":")[0].strip()
    return None


def dockerfile_stage_packages(stage: int) -> set[str]:
    """The packages of the apt-get install lines in stage `stage` (0: build, 1: runtime)."""
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    packages: set[str] = set()
    joined = stages[stage].replace("\\\n", " ")
    for line in joined.splitlines():
        if line.startswith("RUN ") and "apt-get install" in line:
            after = line.split("apt-get install", 1)[1].split("&&")[0]
            packages |= {w for w in after.split() if not w.startswith("-")}
    return packages


def test_the_runtime_stage_installs_a_package_for_every_library_the_binary_links(release_bin):
    runtime = dockerfile_stage_packages(1)
    declared = set(re.search(r"# RUNTIME-PACKAGES: (.*)", DOCKERFILE.read_text()).group(1).split())
    assert declared == runtime, "the RUNTIME-PACKAGES comment and the install line disagree"
    missing = {}
    for lib in linked_libraries(release_bin):
        assert not lib.startswith("/opt/") and "swift" not in lib, f"{lib}: build with --static-swift-stdlib"
        pkg = package_of(lib)
        assert pkg is not None, f"no Debian package provides {lib}"
        if pkg not in runtime:
            missing[lib] = pkg
    assert not missing, f"the runtime stage lacks {missing}"


def test_the_build_stage_installs_every_dev_package_install_deps_does():
    script = (ROOT / "deploy" / "install-deps.sh").read_text()
    dev = set(re.findall(r"\b([a-z0-9.+-]+-dev)\b", script))
    assert {"libevent-dev", "libhiredis-dev", "libssl-dev", "libcrypt-dev"} <= dev
    build = dockerfile_stage_packages(0)
    assert dev <= build, f"the build stage lacks {dev - build}"
    assert re.search(r"^FROM swift:6\.3-bookworm AS build", DOCKERFILE.read_text(), re.M)
    assert "--static-swift-stdlib" in DOCKERFILE.read_text()


def test_the_container_config_is_valid_and_listens_on_every_interface(gatehouse_bin, tmp_path):
    src = ROOT / "deploy" / "examples" / "container" / "gatehouse.yaml"
    # As the image lays it out: the config beside the users file and the secret.
    etc = tmp_path / "etc"
    (etc / "secrets").mkdir(parents=True)
    shutil.copy(src, etc / "gatehouse.yaml")
    shutil.copy(ROOT / "deploy" / "examples" / "users.htpasswd", etc / "users.htpasswd")
    shutil.copy(ROOT / "deploy" / "examples" / "secrets" / "demo-hs256.key", etc / "secrets" / "demo-hs256.key")
    r = subprocess.run([gatehouse_bin, "check", "--config", str(etc / "gatehouse.yaml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    text = src.read_text()
    assert '"0.0.0.0:8080"' in text
    for copied in ("users.htpasswd", "secrets/demo-hs256.key", "container/gatehouse.yaml"):
        assert copied in DOCKERFILE.read_text(), f"the Dockerfile does not copy {copied}"


# ---------------------------------------------------------------------------------------------
# The Debian package

def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


@pytest.fixture
def deb(release_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root (CI runs as root)")
    if run("dpkg", "-s", "gatehouse").returncode == 0:
        pytest.skip("a gatehouse package is installed on this machine already; not touching it")
    r = run(str(ROOT / "deploy" / "package-deb.sh"), release_bin, str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip().splitlines()[-1]
    yield path
    run("dpkg", "--purge", "gatehouse")


def test_the_deb_installs_checks_runs_as_its_user_and_removes_cleanly(deb, tmp_path, echo):
    info = run("dpkg-deb", "-f", deb, "Package", "Version", "Depends").stdout
    assert "Package: gatehouse" in info
    depends = re.search(r"Depends: (.*)", info).group(1)
    for pkg in ("libevent-2.1-7", "libevent-openssl-2.1-7", "libhiredis0.14", "libc6"):
        assert pkg in depends, depends
    r = run("dpkg", "-i", deb)
    assert r.returncode == 0, r.stdout + r.stderr
    assert run("id", "-u", "gatehouse").returncode == 0, "postinst made no gatehouse user"
    for path in ("/usr/bin/gatehouse", "/lib/systemd/system/gatehouse.service", "/etc/logrotate.d/gatehouse",
                 "/etc/gatehouse/gatehouse.yaml", "/etc/gatehouse/users.htpasswd", "/var/log/gatehouse"):
        assert os.path.exists(path), path
    assert "ExecStart=/usr/bin/gatehouse run" in Path("/lib/systemd/system/gatehouse.service").read_text()
    conffiles = run("dpkg-query", "--showformat=${Conffiles}", "--show", "gatehouse").stdout
    assert "/etc/gatehouse/gatehouse.yaml" in conffiles

    r = run("runuser", "-u", "gatehouse", "--", "/usr/bin/gatehouse", "check", "--config", "/etc/gatehouse/gatehouse.yaml")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "is valid" in r.stdout

    # The installed binary, as the gatehouse user, on the installed config with the test's
    # ports (the shipped one uses 8080/9901/9000, which the test must not assume free).
    port, admin = support.free_port(), support.free_port()
    # A folder the gatehouse user can reach (pytest's own temp folders are private to root).
    scratch = Path(tempfile.mkdtemp(prefix="gatehouse-deb-"))
    os.chmod(scratch, 0o755)
    conf = scratch / "etc-gatehouse"
    shutil.copytree("/etc/gatehouse", conf)
    text = (conf / "gatehouse.yaml").read_text()
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:9901", f"127.0.0.1:{admin}")
    text = text.replace("http://127.0.0.1:9000", echo.url)
    (conf / "gatehouse.yaml").write_text(text)
    run("chown", "-R", "gatehouse:gatehouse", str(conf))
    proc = subprocess.Popen(["runuser", "-u", "gatehouse", "--", "/usr/bin/gatehouse", "run", "--config",
                             str(conf / "gatehouse.yaml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            support.wait_until(lambda: support.port_accepts(port), 10, message="the installed gatehouse listening")
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.stderr.read().decode(errors="replace")[-3000:])
        out = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/docs/hello")
        assert out.stdout == "200", out
        out = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/api/x")
        assert out.stdout == "401", out
        owner = run("ps", "-o", "user=", "--ppid", str(proc.pid)).stdout.split()
        assert owner == ["gatehouse"], owner
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(scratch, ignore_errors=True)

    r = run("dpkg", "-r", "gatehouse")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/usr/bin/gatehouse")
    assert not os.path.exists("/lib/systemd/system/gatehouse.service")
    r = run("dpkg", "--purge", "gatehouse")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/etc/gatehouse/gatehouse.yaml")
    assert not os.path.exists("/var/log/gatehouse")


# ---------------------------------------------------------------------------------------------
# Scale-out: two instances, one Redis, HAProxy in front (docs/operations.md)

HAPROXY_CFG = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend api
    bind 127.0.0.1:{front}
    default_backend gatehouse
backend gatehouse
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
    server a 127.0.0.1:{a_port} check port {a_admin}
    server b 127.0.0.1:{b_port} check port {b_admin}
"""


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_two_instances_on_one_redis_behind_haproxy_survive_losing_one(session_gateways, echo, redis, tmp_path):
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is a test dependency (deploy/install-deps.sh installs it)"
    sessions = sessions_section(store=redis.url)
    a = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwA")
    b = session_gateways.start(upstream_url=echo.url, sessions=sessions, name="gwB")
    front = support.free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(front=front, a_port=a.port, a_admin=a.admin_port, b_port=b.port,
                                      b_admin=b.admin_port))
    assert run(haproxy, "-c", "-f", str(cfg)).returncode == 0
    proxy = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        support.wait_until(lambda: support.port_accepts(front), 10, message="haproxy listening")
        from session_support import SessionGateway  # the same requests, through the proxy's port
        via = SessionGateway.__new__(SessionGateway)
        via.port = front
        cookie = via.login_cookie("alice")
        ids = []
        for i in range(6):
            resp, rid = via.request("GET", f"/api/before-{i}", cookie=cookie)
            assert resp.status == 200, resp
            ids.append(rid)

        def served_by(gw):
            lines = gw.log_lines()
            return [rid for rid in ids if any(rid in line for line in lines)]
        support.wait_until(lambda: len(served_by(a)) + len(served_by(b)) == len(ids), 3, message="log lines")
        assert served_by(a) and served_by(b), "HAProxy did not spread the session's requests over both"
        a.kill()
        # Every request after the loss is answered by B with the same session (HAProxy retries a
        # refused connection on the other server and its health check marks A down).
        for i in range(10):
            resp, rid = via.request("GET", f"/api/after-{i}", cookie=cookie)
            assert resp.status == 200, (i, resp)
        support.wait_until(lambda: any(rid in l for l in b.log_lines()), 3, message="B served the last request")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
