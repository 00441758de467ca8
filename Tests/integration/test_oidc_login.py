"""Browser login through a real OpenID provider (SPEC §14.2), with Python requests as the
browser: login_redirect -> /oidc/login -> the provider's authorize endpoint (PKCE S256, state,
nonce) -> its login form -> back to the callback -> code exchange -> gateway session -> the
protected page -> logout. Tampering refused: a wrong state, no or a forged attempt cookie, a
replayed code, an open-redirect return_to.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
import requests

import support
from jwt_support import JWTGateway, received_headers, upstream_record, wait_for
from oidc_support import WEB_SECRET


@pytest.fixture
def login_gateway(gatehouse_bin, tmp_path, oidc_provider, upstream, request):
    started = []

    def start(**oidc_extra):
        port, admin_port = support.free_port(), support.free_port()
        (tmp_path / "web.secret").write_text(WEB_SECRET + "\n")
        config = {
            "server": {"listen": [f"127.0.0.1:{port}"], "workers": 2, "shutdown_grace": "2s",
                       "public_origin": f"http://127.0.0.1:{port}"},
            "admin": {"listen": f"127.0.0.1:{admin_port}"},
            "upstreams": {"api": {"targets": [upstream.url]}},
            "jwt": {"issuers": [{"name": "sso", "issuer": oidc_provider.issuer, "audiences": ["api-client"],
                                 "algorithms": ["RS256"], "discovery": True}]},
            "sessions": {"cookie": {"name": "gh_session", "secure": False},
                         "oidc": {"issuer": "sso", "client_id": "gatehouse-web", "client_secret_file": "web.secret",
                                  "scopes": ["openid", "profile"], **oidc_extra}},
            "identity_headers": {"subject": "X-Auth-Subject", "roles": "X-Auth-Roles", "method": "X-Auth-Method"},
            "routes": [{"name": "app", "match": {"path": "/app/**", "methods": ["GET"]}, "upstream": "api",
                        "login_redirect": "/oidc/login"},
                       {"name": "admin", "match": {"path": "/admin/**"}, "upstream": "api",
                        "require": {"roles_any": ["admin"]}}],
            "access_log": {"path": str(tmp_path / f"gw{len(started)}-access.log"), "format": "json"},
        }
        gw = JWTGateway(gatehouse_bin, tmp_path, config, port, admin_port, tmp_path / f"gw{len(started)}-access.log",
                        name=f"gw{len(started)}")
        gw.config = config
        started.append(gw)
        gw.start()
        wait_for(gw.ready, 15, "/readyz 200")
        oidc_provider.set_redirect_uris("gatehouse-web", f"http://127.0.0.1:{port}/oidc/callback")
        return gw

    yield start
    failed = support.call_failed(request)
    for gw in started:
        gw.kill()
        if failed:
            print(f"---- stderr of {gw.config_path.name} ----\n{gw.stderr()[-4000:]}")


def log_in_at_provider(browser: requests.Session, authorize_url: str, user: str = "alice", password: str = "wonderland"):
    """Follows the provider's redirects to its login form, posts it, and returns the redirect
    back to the gateway's callback (not followed)."""
    page = browser.get(authorize_url, timeout=10)
    assert "/accounts/login/" in page.url, page.url
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    posted = browser.post(page.url, data={"csrfmiddlewaretoken": csrf, "username": user, "password": password},
                          headers={"Referer": page.url}, allow_redirects=False, timeout=10)
    assert posted.status_code == 302, posted.text[:500]
    back = browser.get(urllib.parse.urljoin(page.url, posted.headers["Location"]), allow_redirects=False, timeout=10)
    assert back.status_code == 302
    return back.headers["Location"]


def start_login(browser: requests.Session, gw, path: str = "/app/page?x=1"):
    """The protected page sends the browser to /oidc/login, which sends it to the provider."""
    first = browser.get(gw.url(path), headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/oidc/login?return_to=")
    login = browser.get(gw.url(first.headers["Location"]), allow_redirects=False, timeout=10)
    assert login.status_code == 302, login.text
    return login


def test_the_whole_login_then_logout(login_gateway, oidc_provider, upstream):
    gw = login_gateway()
    browser = requests.Session()
    login = start_login(browser, gw)
    authorize = urllib.parse.urlparse(login.headers["Location"])
    params = urllib.parse.parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == oidc_provider.endpoint("authorize")
    assert params["response_type"] == ["code"] and params["client_id"] == ["gatehouse-web"]
    assert params["code_challenge_method"] == ["S256"] and len(params["code_challenge"][0]) == 43
    assert params["redirect_uri"] == [gw.url("/oidc/callback")]
    assert params["scope"] == ["openid profile"] and params["state"] and params["nonce"]
    attempt_cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in attempt_cookie and "SameSite=Lax" in attempt_cookie and "Path=/oidc/callback" in attempt_cookie

    callback = log_in_at_provider(browser, login.headers["Location"])
    assert callback.startswith(gw.url("/oidc/callback?"))
    done = browser.get(callback, allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text
    assert done.headers["Location"] == "/app/page?x=1"
    set_cookies = done.raw.headers.getlist("Set-Cookie")
    assert any(c.startswith("gh_session=") and "HttpOnly" in c for c in set_cookies), set_cookies
    assert any(c.startswith("gatehouse_oidc_") and "Max-Age=0" in c for c in set_cookies), set_cookies
    log = gw.wait_log_record(done.headers["X-Request-Id"])
    assert log["status"] == 302 and log["subject"] == "alice" and log["auth"] == "session" and log["decision"] == "allow"

    page = browser.get(gw.url("/app/page?x=1"), headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text
    record = upstream_record(upstream, page.headers["X-Request-Id"])
    assert received_headers(record, "X-Auth-Subject") == ["alice"]
    assert received_headers(record, "X-Auth-Roles") == ["admin"]
    assert received_headers(record, "X-Auth-Method") == ["session"]
    admin = browser.get(gw.url("/admin/panel"), allow_redirects=False, timeout=10)
    assert admin.status_code == 200, "roles come from the ID token"

    out = browser.post(gw.url("/logout"), timeout=10)
    assert out.status_code == 204
    again = browser.get(gw.url("/app/page"), headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert again.status_code == 302 and again.headers["Location"].startswith("/oidc/login")


def test_bob_gets_his_own_roles(login_gateway, oidc_provider, upstream):
    gw = login_gateway()
    browser = requests.Session()
    login = start_login(browser, gw, "/app/")
    done = browser.get(log_in_at_provider(browser, login.headers["Location"], "bob", "builder"), allow_redirects=False,
                       timeout=10)
    assert done.status_code == 302
    admin = browser.get(gw.url("/admin/panel"), allow_redirects=False, timeout=10)
    assert admin.status_code == 403


def refused(gw, response, reason: str):
    support.assert_uniform_requests(response, 401, "unauthorized")
    record = gw.wait_log_record(response.headers["X-Request-Id"])
    assert record["reason"] == reason and record["decision"] == "deny", record
    return record


def test_tampering_is_refused(login_gateway, oidc_provider):
    gw = login_gateway()
    browser = requests.Session()
    login = start_login(browser, gw)
    callback = log_in_at_provider(browser, login.headers["Location"])
    parts = urllib.parse.urlparse(callback)
    query = urllib.parse.parse_qs(parts.query)
    state, code = query["state"][0], query["code"][0]
    base = gw.url("/oidc/callback")

    # another state (the attacker's own attempt): no cookie of this browser matches it
    other = ("A" if state[0] != "A" else "B") + state[1:]
    refused(gw, browser.get(base, params={"state": other, "code": code}, allow_redirects=False, timeout=10),
            "oidc_state_invalid")
    # the right state from a browser without the attempt cookie (login CSRF)
    refused(gw, requests.get(callback, allow_redirects=False, timeout=10), "oidc_state_invalid")
    # a forged attempt cookie (its verifier or return_to changed): the MAC fails
    name = next(c.name for c in browser.cookies if c.name.startswith("gatehouse_oidc_"))
    value = browser.cookies.get(name)
    forged = value[:5] + ("A" if value[5] != "A" else "B") + value[6:]
    refused(gw, requests.get(callback, cookies={name: forged}, allow_redirects=False, timeout=10), "oidc_state_invalid")
    # the provider's error answer
    refused(gw, browser.get(base, params={"state": state, "error": "access_denied"}, allow_redirects=False, timeout=10),
            "oidc_code_refused")
    # the genuine callback works once ...
    done = browser.get(callback, allow_redirects=False, timeout=10)
    assert done.status_code == 302 and done.headers["Location"] == "/app/page?x=1"
    # ... and a replay with the same attempt cookie is refused by the provider (code used up)
    refused(gw, requests.get(callback, cookies={name: value}, allow_redirects=False, timeout=10), "oidc_code_refused")


@pytest.mark.parametrize("return_to", ["//evil.example.com/x", "/\\evil.example.com", "https://evil.example.com/",
                                       "/ok\r\nSet-Cookie: x=1", "evil"])
def test_return_to_is_only_ever_a_local_path(login_gateway, oidc_provider, return_to):
    gw = login_gateway()
    browser = requests.Session()
    login = browser.get(gw.url("/oidc/login"), params={"return_to": return_to}, allow_redirects=False, timeout=10)
    assert login.status_code == 302
    done = browser.get(log_in_at_provider(browser, login.headers["Location"]), allow_redirects=False, timeout=10)
    assert done.status_code == 302 and done.headers["Location"] == "/"


def test_login_path_answers_get_only(login_gateway):
    gw = login_gateway()
    r = requests.post(gw.url("/oidc/login"), allow_redirects=False, timeout=10)
    assert r.status_code == 404


def test_check_refuses_an_issuer_whose_audiences_hold_the_login_client(run_cli, tmp_path, yaml_dump):
    (tmp_path / "web.secret").write_text("s\n")
    config = {
        "server": {"public_origin": "https://gw.example.com"},
        "jwt": {"issuers": [{"name": "sso", "issuer": "https://sso.example.com", "algorithms": ["RS256"],
                             "discovery": True, "audiences": ["gatehouse-web", "api"]},
                            {"name": "plain", "issuer": "https://plain.example.com", "algorithms": ["RS256"],
                             "jwks_url": "https://plain.example.com/jwks"}]},
        "sessions": {"oidc": {"issuer": "sso", "client_id": "gatehouse-web", "client_secret_file": "web.secret"}},
        "upstreams": {"api": {"targets": ["http://127.0.0.1:9"]}},
        "routes": [{"name": "api", "match": {"path": "/**"}, "upstream": "api"}],
    }
    path = tmp_path / "gatehouse.yaml"
    path.write_text(yaml_dump(config) + "\n")
    done = run_cli("check", "--config", str(path))
    assert done.returncode == 1
    assert "its ID tokens would pass as API tokens" in done.stderr, done.stderr
    config["sessions"]["oidc"]["issuer"] = "plain"
    path.write_text(yaml_dump(config) + "\n")
    done = run_cli("check", "--config", str(path))
    assert "needs discovery: true" in done.stderr and "must list audiences" in done.stderr, done.stderr
    del config["server"]
    config["sessions"]["oidc"]["issuer"] = "nope"
    path.write_text(yaml_dump(config) + "\n")
    done = run_cli("check", "--config", str(path))
    assert "needs server.public_origin" in done.stderr and 'unknown issuer "nope"' in done.stderr, done.stderr


# ---------------------------------------------------------------------------------------------
# The same login in a real browser: headless Chromium driven through chromedriver's W3C
# WebDriver HTTP API (plain requests; no Selenium). Installed by install_browser.sh.

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    def __init__(self, workdir):
        import shutil
        import subprocess
        chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
        if not chromium or not driver:
            pytest.skip("chromium/chromedriver not installed (Tests/integration/install_browser.sh)")
        self.port = support.free_port()
        self.proc = subprocess.Popen([driver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        support.wait_until(lambda: support.port_accepts(self.port), 15, message="chromedriver")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={workdir}/chromium-profile"]}}}}
        answer = requests.post(f"{self.base}/session", json=caps, timeout=60).json()["value"]
        self.session = f"{self.base}/session/{answer['sessionId']}"

    def call(self, method: str, path: str, body=None):
        r = requests.request(method, self.session + path, json=body, timeout=60)
        value = r.json()["value"]
        assert r.status_code == 200, value
        return value

    def element(self, css: str) -> str:
        return self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def quit(self):
        try:
            requests.delete(self.session, timeout=10)
        except Exception:
            pass
        import os
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def test_the_whole_login_in_headless_chromium(login_gateway, oidc_provider, upstream, tmp_path):
    gw = login_gateway()
    browser = WebDriver(tmp_path)
    try:
        browser.call("POST", "/url", {"url": gw.url("/app/page?from=chromium")})
        assert "/accounts/login/" in browser.call("GET", "/url"), "sent to the provider's login page"
        browser.call("POST", f"/element/{browser.element('#id_username')}/value", {"text": "alice"})
        browser.call("POST", f"/element/{browser.element('#id_password')}/value", {"text": "wonderland"})
        browser.call("POST", f"/element/{browser.element('#submit')}/click", {})
        wait_for(lambda: browser.call("GET", "/url") == gw.url("/app/page?from=chromium"), 20,
                 "back on the protected page")
        source = browser.call("GET", "/source")
        assert "alice" in source and "X-Auth-Method" in source, source[:2000]
        cookies = {c["name"]: c for c in browser.call("GET", "/cookie")}
        assert cookies["gh_session"]["httpOnly"] is True
        assert not any(name.startswith("gatehouse_oidc_") for name in cookies), "the attempt cookie was cleared"
        script = ("const done = arguments[0];"
                  "fetch('/logout', {method: 'POST'})"
                  ".then(r => fetch('/app/page', {redirect: 'manual', headers: {'Accept': 'text/html'}})"
                  ".then(p => done(r.status + ' ' + p.type)))"
                  ".catch(e => done('error ' + e));")
        assert browser.call("POST", "/execute/async", {"script": script, "args": []}) == "204 opaqueredirect"
    finally:
        browser.quit()
