"""WebSocket tunnels as a real browser opens them (SPEC §12): headless Chromium loads a page
whose script opens a WebSocket through the gateway with the session cookie, sends a message
and writes what it got back into the DOM (dumped with `--dump-dom`, as cors_browser.py does).

The pages are served on 127.0.0.1 from two ports: one origin the gateway's CORS policy allows,
one it does not. Both are the same site as the gateway (127.0.0.1), so the browser sends the
session cookie (`SameSite=Lax`, set by the page server's response: cookies ignore the port) with
either handshake: only the Origin rule tells them apart.

Setup: bash Tests/integration/install_browser.sh (Chromium).
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import support

from cors_browser import dump_dom, find_chromium
from session_support import session_gateways, sessions_section  # noqa: F401
from ws_support import WebSocketUpstream, start_gateway, tunnel_lines

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (install_browser.sh)")

PAGE = """<!doctype html>
<meta charset="utf-8"><title>ws</title>
<pre id="result">pending</pre>
<script>
const out = {origin: location.origin, events: []};
let settled = false;
const done = () => { settled = true; document.getElementById("result").textContent = JSON.stringify(out); };
// Headless Chromium's virtual time does not wait for a WebSocket: slow fetches to the page
// server keep the page busy (in real time) until the socket has settled, at most ~10 s.
(async () => { for (let i = 0; i < 100 && !settled; i++) await fetch("/tick", {cache: "no-store"}); })();
try {
  const ws = new WebSocket(%s);
  ws.onopen = () => { out.events.push("open"); ws.send("hello from the browser"); };
  ws.onmessage = (e) => { out.events.push("message"); out.echo = e.data; ws.close(1000, "done"); };
  ws.onerror = () => { out.events.push("error"); };
  ws.onclose = (e) => { out.events.push("close"); out.code = e.code; done(); };
} catch (e) { out.exception = e.name; done(); }
</script>
"""


class CookiePages:
    """Serves the page (once `show` set what it opens) with `Set-Cookie: gatehouse_session=VALUE; Path=/`,
    and `/tick`, a slow answer that keeps the page busy."""

    def __init__(self):
        self.body = b""
        self.cookie = ""
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/tick":
                    time.sleep(0.1)
                    self.send_response(204)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Set-Cookie", f"gatehouse_session={pages.cookie}; Path=/; HttpOnly; SameSite=Lax")
                self.send_header("Content-Length", str(len(pages.body)))
                self.end_headers()
                self.wfile.write(pages.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def show(self, target: str, cookie: str):
        self.body = (PAGE % json.dumps(target)).encode()
        self.cookie = cookie

    def outcome(self) -> dict:
        dom = dump_dom(self.origin + "/page")
        match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
        assert match, dom[:2000]
        text = html.unescape(match.group(1))
        assert text != "pending", "the WebSocket did not settle within the virtual time budget"
        return json.loads(text)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_browser_tunnels_with_its_session_cookie_and_a_foreign_origin_is_refused(session_gateways, tmp_path):
    upstream = WebSocketUpstream()
    allowed, foreign = CookiePages(), CookiePages()
    try:
        cors = {"allow_origins": [allowed.origin], "allow_methods": ["GET", "POST"], "allow_credentials": True}
        gw = start_gateway(session_gateways, tmp_path, upstream, cors=cors)
        cookie = gw.login_cookie("alice")
        target = f"ws://127.0.0.1:{gw.port}/live/browser"
        allowed.show(target, cookie)
        foreign.show(target, cookie)

        ok = allowed.outcome()
        assert ok["events"][:2] == ["open", "message"], ok
        assert ok["echo"] == "hello from the browser"
        refused = foreign.outcome()
        assert "open" not in refused["events"] and refused.get("code") == 1006, refused

        handshakes = upstream.handshakes
        assert len(handshakes) == 1, "the foreign origin's handshake reached the upstream"
        assert [v for k, v in handshakes[0] if k.lower() == "origin"] == [allowed.origin]
        lines = [json.loads(line) for line in gw.log_lines()]
        assert any(r.get("reason") == "csrf_rejected" and r["path"] == "/live/browser" for r in lines)
        support.wait_until(lambda: any(r["auth"] == "session" for r in tunnel_lines(gw)), 5, message="the tunnel's line")
    finally:
        allowed.stop()
        foreign.stop()
        upstream.stop()
