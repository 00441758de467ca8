"""CORS as a real browser enforces it (SPEC §3, §3.1, §6): headless Chromium on one origin
fetches another, and the test reads what the page's script could see.

The same scenarios run twice: against a Flask-CORS reference (which proves that the harness
tells an allowed fetch from a blocked one), and against gatehouse with the equivalent `cors:`
block — the latter only once `gatehouse check` accepts a `cors:` block.

Setup:  bash Tests/integration/install_browser.sh
Run:    python3 -m pytest Tests/integration/test_cors_browser.py -v
        (GATEHOUSE_BIN=... for another binary than .build/debug/gatehouse)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from cors_browser import (FetchSpec, blocked, cors_gateway, flask_reference,  # noqa: F401 (fixtures)
                          gatehouse_supports_cors, page_server)


@dataclass(frozen=True)
class Scenario:
    """One cross-origin fetch. `origin` is "allowed" (http://localhost:PA) or "other"
    (http://127.0.0.1:PA); `status` the status the script must read, or None when the browser
    must block the response (TypeError)."""
    description: str
    origin: str
    path: str
    status: int | None
    method: str = "GET"
    headers: dict = field(default_factory=dict)
    credentials: str = "include"
    body: str | None = None
    read_headers: tuple = ()
    preflighted: bool = False

    def spec(self, target_url: str) -> FetchSpec:
        return FetchSpec(url=target_url + self.path, method=self.method, headers=dict(self.headers),
                         credentials=self.credentials, body=self.body, read_headers=self.read_headers)


SCENARIOS = [
    Scenario("allowed origin reads a 200 body with credentials", "allowed", "/open/data", 200,
             read_headers=("X-Request-Id",)),
    Scenario("allowed origin reads the status of a 401", "allowed", "/private/data", 401,
             read_headers=("X-Request-Id",)),
    Scenario("preflighted PUT with a custom header passes", "allowed", "/open/item", 200, method="PUT",
             headers={"X-Custom": "yes", "Content-Type": "application/json"}, body='{"n": 1}', preflighted=True),
    Scenario("other origin's fetch is blocked", "other", "/open/data", None, credentials="omit"),
    # Controls: each must fail for one reason only.
    Scenario("other origin's preflighted PUT is blocked", "other", "/open/item", None, method="PUT",
             headers={"X-Custom": "yes"}, body="{}", preflighted=True),
    Scenario("an unlisted request header fails the preflight", "allowed", "/open/item", None, method="PUT",
             headers={"X-Other": "yes"}, body="{}", preflighted=True),
    Scenario("an unlisted method fails the preflight", "allowed", "/open/item", None, method="DELETE",
             preflighted=True),
    Scenario("a credentialed fetch without Allow-Credentials is blocked", "allowed", "/nocred/data", None),
    Scenario("the same fetch without credentials passes", "allowed", "/nocred/data", 200, credentials="omit"),
    Scenario("a path without CORS is blocked", "allowed", "/nocors/data", None),
]

IDS = [s.description.replace(" ", "-") for s in SCENARIOS]


def run(page_server, target_url: str, scenario: Scenario) -> dict:
    origin = page_server.allowed_origin if scenario.origin == "allowed" else page_server.other_origin
    return page_server.fetch_from(origin, scenario.spec(target_url))


def check(outcome: dict, scenario: Scenario):
    if scenario.status is None:
        assert blocked(outcome), f"{scenario.description}: the browser let the script see {outcome}"
        return
    assert not blocked(outcome), f"{scenario.description}: blocked by the browser: {outcome}"
    assert outcome["status"] == scenario.status, outcome
    assert outcome["type"] == "cors", outcome
    assert outcome["bodyRead"] is True, outcome
    assert json.loads(outcome["body"]), outcome
    for name in scenario.read_headers:
        assert outcome["headers"][name], f"{name} not exposed to the script: {outcome}"


# ---------------------------------------------------------------------------------------------
# The reference: proves the harness

@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_flask_cors_reference(page_server, flask_reference, scenario):
    outcome = run(page_server, flask_reference.url, scenario)
    check(outcome, scenario)
    if scenario.status == 200 and scenario.method == "GET":
        assert json.loads(outcome["body"])["path"] == scenario.path


def test_reference_saw_the_preflight_and_the_put(page_server, flask_reference):
    scenario = SCENARIOS[2]
    before = len(flask_reference.requests)
    check(run(page_server, flask_reference.url, scenario), scenario)
    seen = flask_reference.requests[before:]
    assert [r["method"] for r in seen] == ["OPTIONS", "PUT"], seen
    preflight, put = seen
    assert preflight["headers"]["access-control-request-method"] == "PUT"
    assert set(preflight["headers"]["access-control-request-headers"].split(",")) == {"content-type", "x-custom"}
    assert put["headers"]["x-custom"] == "yes"


# ---------------------------------------------------------------------------------------------
# gatehouse

needs_gateway_cors = pytest.mark.skipif(not gatehouse_supports_cors(),
                                        reason="gatehouse check does not accept a cors: block yet")


@needs_gateway_cors
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_gatehouse(page_server, cors_gateway, scenario):
    outcome = run(page_server, cors_gateway.url, scenario)
    check(outcome, scenario)
    if scenario.status == 401:
        body = json.loads(outcome["body"])
        assert (body["status"], body["error"]) == (401, "unauthorized"), body
    elif scenario.status == 200 and scenario.method == "GET":
        assert json.loads(outcome["body"])["path"] == scenario.path


@needs_gateway_cors
def test_gatehouse_answers_preflights_itself(page_server, cors_gateway):
    """SPEC §3 step 6: the preflight is answered by the gateway, never forwarded; the PUT is."""
    upstream = cors_gateway.upstream
    scenario = SCENARIOS[2]
    before = upstream.request_count
    check(run(page_server, cors_gateway.url, scenario), scenario)
    with upstream.lock:
        seen = upstream.requests[before:]
    assert [r["method"] for r in seen] == ["PUT"], seen
    assert ["X-Custom", "yes"] in [[k.title(), v] for k, v in seen[0]["headers"]], seen[0]["headers"]
    with upstream.lock:
        assert all(r["method"] != "OPTIONS" for r in upstream.requests)
