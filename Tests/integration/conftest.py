"""Fixtures for the black-box integration tests: the gatehouse binary, free loopback ports,
generated configs, gateway processes (always killed at teardown, stdout/stderr kept in files)
and real Python upstreams on 127.0.0.1.

Run:  GATEHOUSE_BIN=.build-it/debug/gatehouse python3 -m pytest Tests/integration -q -x
(GATEHOUSE_BIN defaults to .build/debug/gatehouse, relative to the repository root.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import support
from support import (BlackholeUpstream, EchoUpstream, GatewayProcess, RawUpstream, free_port, to_yaml)

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the long-running streaming/memory test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def gatehouse_bin() -> str:
    """The binary under test: $GATEHOUSE_BIN (relative to the repo root unless absolute)."""
    value = os.environ.get("GATEHOUSE_BIN", ".build/debug/gatehouse")
    path = Path(value)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"gatehouse binary not found or not executable at {path} "
                    f"(set GATEHOUSE_BIN, e.g. GATEHOUSE_BIN=.build-it/debug/gatehouse, after "
                    f"`swift build --scratch-path .build-it --product gatehouse`)", pytrace=False)
    return str(path)


@pytest.fixture
def port_factory():
    """Hands out free loopback ports."""
    return free_port


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Upstreams

@pytest.fixture
def upstreams():
    """A registry that stops every upstream a test started."""
    started = []

    class Registry:
        def echo(self, name: str = "echo", **kw) -> EchoUpstream:
            u = EchoUpstream(name=name, **kw)
            started.append(u)
            return u

        def raw(self, handler, name: str = "raw", **kw) -> RawUpstream:
            u = RawUpstream(handler, name=name, **kw)
            started.append(u)
            return u

        def blackhole(self) -> BlackholeUpstream:
            u = BlackholeUpstream()
            started.append(u)
            return u

    yield Registry()
    for u in started:
        try:
            u.stop()
        except Exception:
            pass


@pytest.fixture
def echo(upstreams) -> EchoUpstream:
    """The echo upstream: answers JSON of what it received, counts connections."""
    return upstreams.echo("echo")


@pytest.fixture
def slow_echo(upstreams) -> EchoUpstream:
    """An echo upstream that sleeps 2 s before every answer."""
    return upstreams.echo("slow", delay=2.0)


# ---------------------------------------------------------------------------------------------
# Gateway

def _targets(value):
    if isinstance(value, dict):
        return value
    items = value if isinstance(value, (list, tuple)) else [value]
    return {"targets": [getattr(v, "url", v) for v in items]}


def build_config(port: int, admin_port: int | None, access_log: Path | None, *, upstreams: dict,
                 routes: list, server: dict | None = None, access_log_format: str = "json",
                 extra: dict | None = None) -> dict:
    """A full config dict. `upstreams` maps a name to an upstream object, a URL, a list of
    those, or a full upstream dict."""
    srv = {"listen": [f"127.0.0.1:{port}"], "workers": 2, "shutdown_grace": "5s"}
    srv.update(server or {})
    config = {"server": srv}
    if admin_port is not None:
        config["admin"] = {"listen": f"127.0.0.1:{admin_port}"}
    config["upstreams"] = {name: _targets(v) for name, v in upstreams.items()}
    config["routes"] = routes
    config["access_log"] = {"path": str(access_log) if access_log else "stdout", "format": access_log_format}
    config.update(extra or {})
    return config


@pytest.fixture
def gateway_factory(gatehouse_bin, tmp_path, request):
    """Starts gatehouse processes; each is killed at teardown. On failure, their stderr is printed.

    start(upstreams=..., routes=..., server=..., access_log_format=..., admin=True, wait=True, env=None)
    returns a started GatewayProcess with `.config` (the dict) and `.make_config(**changes)`.
    """
    started: list[GatewayProcess] = []

    def start(*, upstreams: dict, routes: list, server: dict | None = None, access_log_format: str = "json",
              admin: bool = True, wait: bool = True, access_log_to_stdout: bool = False,
              name: str | None = None, env: dict | None = None) -> GatewayProcess:
        name = name or f"gateway{len(started)}"
        port = free_port()
        admin_port = free_port() if admin else None
        log_path = None if access_log_to_stdout else tmp_path / f"{name}-access.log"

        def make_config(**changes):
            args = dict(upstreams=upstreams, routes=routes, server=server, access_log_format=access_log_format)
            args.update(changes)
            return build_config(port, admin_port, log_path, **args)

        config = make_config()
        gw = GatewayProcess(gatehouse_bin, tmp_path, config, port, admin_port, log_path, name=name)
        gw.config = config
        gw.make_config = make_config
        gw.env = env
        started.append(gw)
        gw.start(wait=wait)
        return gw

    yield start
    failed = support.call_failed(request)
    for gw in started:
        gw.kill()
        if failed:
            print(f"---- {gw.config_path.name} ----\n{gw.config_path.read_text()}")
            print(f"---- stderr of {gw.config_path.name} ----\n{gw.stderr()[-4000:]}")


@pytest.fixture
def run_cli(gatehouse_bin, tmp_path):
    """Runs `gatehouse ARGS...` in tmp_path; returns the CompletedProcess (text)."""
    import subprocess

    def run(*args, cwd: Path | None = None, timeout: float = 20, input: str | None = None):
        return subprocess.run([gatehouse_bin, *args], cwd=cwd or tmp_path, capture_output=True, text=True,
                              timeout=timeout, input=input)
    return run


@pytest.fixture
def yaml_dump():
    return to_yaml


@pytest.fixture
def helpers():
    return support


# ---------------------------------------------------------------------------------------------
# A real OpenID provider (django-oidc-provider; see oidc_support.py)

@pytest.fixture(scope="session")
def oidc_template(tmp_path_factory):
    """The provider's migrated and set-up database, made once per session."""
    import oidc_support
    return oidc_support.template_database(tmp_path_factory.mktemp("oidc-template"))


@pytest.fixture
def oidc_providers(oidc_template, tmp_path, request):
    """Starts OIDC providers, each with its own copy of the database; all stopped at teardown.
    start(name="idp", start=True, id_token_expire=600, token_expire=3600) -> an OIDCProvider,
    started unless start=False."""
    import oidc_support
    started: list = []

    def start(name: str | None = None, start: bool = True, **kw):
        provider = oidc_support.OIDCProvider(tmp_path, oidc_template, name=name or f"idp{len(started)}", **kw)
        started.append(provider)
        return provider.start() if start else provider

    yield start
    failed = support.call_failed(request)
    for provider in started:
        provider.stop()
        if failed:
            print(f"---- log of provider {provider.name} ----\n{provider.log()[-4000:]}")


@pytest.fixture
def oidc_provider(oidc_providers):
    """One started provider for this test."""
    return oidc_providers()


# JWT and OIDC tests: an echo upstream and jwt_support's Gateways (closed at teardown, their
# stderr shown when the test failed). A module's own `upstream` or `gateways` fixture overrides these.
@pytest.fixture
def upstream():
    u = support.EchoUpstream(name="echo")
    yield u
    u.stop()


@pytest.fixture
def gateways(gatehouse_bin, tmp_path, request):
    from jwt_support import Gateways
    yield from support.closed_after(Gateways(gatehouse_bin, tmp_path), request)
