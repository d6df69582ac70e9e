"""The Amazon Connect reference Lambda against a router-like server on loopback (and once
against the real router app).

The handler is blocking (it is what Lambda runs), so each test calls it in a worker thread
while the aiohttp server answers on the test's event loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router import load_rules
from router.http.app import create_app
from router.settings import load_settings
from tests.integrations.conftest import PLATFORM_FIXTURES, REPO, load_json

API_KEY = "connect-route-key-7f3a"
CALLER = "+1234567890"
EVENT: dict[str, Any] = load_json(PLATFORM_FIXTURES / "amazon-connect" / "contact-flow-event.json")

ROUTER_ANSWER = {
    "queue": "fraud-24x7",
    "queue_arn": "arn:aws:connect:eu-west-2:111122223333:instance/1b2c/queue/9f8e",
    "label": "URGENT · lost_card · gold",
    "priority": "100",
    "skills": "fraud,cards",
    "rule": "lost-stolen-card",
    "outcome": "matched",
    "degraded": "false",
    "decision_id": "5b0e6c1e-2d4f-4c71-9a39-0f1e2d3c4b5a",
    "ruleset": "default",
    "ruleset_version": "sha256:3f9a0c1d2e3f4a5b6c7d8e9f",
    "polyai_customer_id": "C-204871",
}
FALLBACK_KEYS = set(ROUTER_ANSWER) - {"polyai_customer_id"}
FALLBACK_ARN = "arn:aws:connect:eu-west-2:111122223333:instance/1b2c/queue/00"


@dataclass
class FakeContext:
    """The Lambda context object, with a fixed remaining time."""

    remaining_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class FakeRouter:
    """What the router-like server received, and how it should answer."""

    status: int = 200
    body: bytes = json.dumps(ROUTER_ANSWER).encode()
    content_type: str = "application/json"
    hang: bool = False
    redirect_to: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        if self.hang:
            await self.release.wait()
        if self.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@pytest.fixture
async def router() -> AsyncIterator[tuple[FakeRouter, TestServer]]:
    fake = FakeRouter()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, server
    fake.release.set()
    await server.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean Lambda environment: no router settings but the API key."""
    for name in (
        "ROUTER_URL",
        "ROUTER_RULESET",
        "FALLBACK_QUEUE",
        "FALLBACK_QUEUE_ARN",
        "ROUTER_TIMEOUT_MARGIN_MS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTER_API_KEY", API_KEY)
    return monkeypatch


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that is bound but not listening, so connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


async def invoke(lambda_mod: ModuleType, event: Any, remaining_ms: int = 3000) -> Any:
    return await asyncio.to_thread(lambda_mod.lambda_handler, event, FakeContext(remaining_ms))


def logged_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``reason`` of every line the Lambda logged."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "router_connect"]
    return [line["reason"] for line in lines]


def assert_fallback(answer: Any, queue: str = "fallback", queue_arn: str = "") -> None:
    assert answer == {
        **dict.fromkeys(FALLBACK_KEYS, ""),
        "queue": queue,
        "queue_arn": queue_arn,
        "outcome": "fallback",
        "degraded": "true",
    }


async def test_router_answer_is_returned_as_is(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
) -> None:
    fake, server = router
    env.setenv("ROUTER_URL", str(server.make_url("/")))
    env.setenv("ROUTER_RULESET", "power-outages")
    event = copy.deepcopy(EVENT)

    answer = await invoke(connect_lambda, event)

    assert answer == ROUTER_ANSWER
    [seen] = fake.requests
    assert seen["path"] == "/v1/platforms/amazon-connect"
    assert seen["query"] == {"ruleset": "power-outages"}
    assert seen["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen["body"]) == EVENT
    assert event == EVENT


async def test_without_a_ruleset_no_query_is_sent(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
) -> None:
    fake, server = router
    env.setenv("ROUTER_URL", str(server.make_url("/")).rstrip("/"))

    assert await invoke(connect_lambda, EVENT) == ROUTER_ANSWER
    assert fake.requests[0]["query"] == {}


async def test_refused_connection_answers_fallback(
    connect_lambda: ModuleType,
    env: pytest.MonkeyPatch,
    dead_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.setenv("ROUTER_URL", f"http://127.0.0.1:{dead_port}")
    caplog.set_level(logging.INFO, logger="router_connect")

    assert_fallback(await invoke(connect_lambda, EVENT))
    assert logged_reasons(caplog) == ["refused"]


async def test_router_hanging_past_the_remaining_time_answers_fallback_in_time(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, server = router
    fake.hang = True
    caplog.set_level(logging.INFO, logger="router_connect")
    env.setenv("ROUTER_URL", str(server.make_url("/")))
    env.setenv("ROUTER_TIMEOUT_MARGIN_MS", "1500")
    remaining_ms = 2500  # the router call may take 1 s; the margin leaves 1.5 s of slack

    started = time.monotonic()
    answer = await invoke(connect_lambda, EVENT, remaining_ms=remaining_ms)
    elapsed = time.monotonic() - started

    assert_fallback(answer)
    assert len(fake.requests) == 1
    assert elapsed < remaining_ms / 1000
    assert logged_reasons(caplog) == ["timeout"]


@pytest.mark.parametrize("status", [500, 503, 401, 404])
async def test_error_status_answers_fallback(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
    status: int,
) -> None:
    fake, server = router
    fake.status = status
    env.setenv("ROUTER_URL", str(server.make_url("/")))
    env.setenv("FALLBACK_QUEUE", "general")
    env.setenv("FALLBACK_QUEUE_ARN", FALLBACK_ARN)

    answer = await invoke(connect_lambda, EVENT)

    assert_fallback(answer, queue="general", queue_arn=FALLBACK_ARN)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",
        b"",
        b'["fraud-24x7"]',
        json.dumps({**ROUTER_ANSWER, "degraded": False}).encode(),
        json.dumps({**ROUTER_ANSWER, "skills": ["fraud"]}).encode(),
        json.dumps({**ROUTER_ANSWER, "rule": None}).encode(),
        json.dumps({k: v for k, v in ROUTER_ANSWER.items() if k != "queue"}).encode(),
        json.dumps({**ROUTER_ANSWER, "label": "x" * 40_000}).encode(),
    ],
    ids=["html", "empty", "list", "bool", "nested", "null", "no-queue", "over-32k"],
)
async def test_unusable_body_answers_fallback(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
    body: bytes,
) -> None:
    fake, server = router
    fake.body = body
    env.setenv("ROUTER_URL", str(server.make_url("/")))

    assert_fallback(await invoke(connect_lambda, EVENT))


async def test_redirect_is_not_followed(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
) -> None:
    fake, server = router
    fake.redirect_to = "/elsewhere"
    env.setenv("ROUTER_URL", str(server.make_url("/")))

    assert_fallback(await invoke(connect_lambda, EVENT))
    assert [seen["path"] for seen in fake.requests] == ["/v1/platforms/amazon-connect"]


@pytest.mark.parametrize("url", ["", "router.example.com", "ftp://router.example.com"])
async def test_missing_or_odd_router_url_answers_fallback(
    connect_lambda: ModuleType, env: pytest.MonkeyPatch, url: str
) -> None:
    env.setenv("ROUTER_URL", url)

    assert_fallback(await invoke(connect_lambda, EVENT))


def test_a_broken_event_still_answers(connect_lambda: ModuleType, env: pytest.MonkeyPatch) -> None:
    env.setenv("ROUTER_URL", "http://127.0.0.1:9")
    unserialisable = {"Details": {"ContactData": {"ContactId": object()}}}

    assert_fallback(connect_lambda.lambda_handler(unserialisable, FakeContext(1000)))


class RecordingOpener:
    """Stands in for the module's URL opener and records the timeout it was given."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def open(self, request: Any, timeout: float) -> Any:
        self.timeouts.append(timeout)
        raise TimeoutError


@pytest.mark.parametrize(
    ("remaining_ms", "margin", "expected_s"),
    [
        (3000, None, 2.7),
        (3000, "1000", 2.0),
        (350, None, 0.1),
        (0, None, 0.1),
        (-20, None, 0.1),
        (3000, "-5", 2.7),
        (3000, "soon", 2.7),
    ],
)
def test_timeout_is_the_remaining_time_less_the_margin_with_a_floor(
    connect_lambda: ModuleType,
    env: pytest.MonkeyPatch,
    remaining_ms: int,
    margin: str | None,
    expected_s: float,
) -> None:
    env.setenv("ROUTER_URL", "https://router.example.com")
    if margin is not None:
        env.setenv("ROUTER_TIMEOUT_MARGIN_MS", margin)
    opener = RecordingOpener()
    env.setattr(connect_lambda, "_opener", opener)

    assert_fallback(connect_lambda.lambda_handler(EVENT, FakeContext(remaining_ms)))
    assert opener.timeouts == [pytest.approx(expected_s)]


async def test_one_log_line_without_secrets_or_caller_numbers(
    connect_lambda: ModuleType,
    router: tuple[FakeRouter, TestServer],
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, server = router
    env.setenv("ROUTER_URL", str(server.make_url("/")))
    caplog.set_level(logging.INFO, logger="router_connect")

    await invoke(connect_lambda, EVENT)
    fake.status = 500
    await invoke(connect_lambda, EVENT)

    records = [r for r in caplog.records if r.name == "router_connect"]
    assert len(records) == 2
    ok, failed = (json.loads(r.getMessage()) for r in records)
    assert ok["result"] == "routed"
    assert ok["queue"] == "fraud-24x7"
    assert failed["result"] == "fallback"
    assert failed["reason"] == "status_500"
    assert ok["contact_id"] == EVENT["Details"]["ContactData"]["ContactId"]
    text = caplog.text
    assert API_KEY not in text
    assert CALLER not in text
    assert "127.0.0.1" not in text


async def test_against_the_real_router_on_loopback(
    connect_lambda: ModuleType, env: pytest.MonkeyPatch
) -> None:
    """The Lambda, the router app with the bundled rules, and the documented event: the
    flow gets the router's flat answer with the queue ARN the rule file maps."""
    rules = REPO / "rules"
    app = create_app(load_settings(ROUTER_RULES=str(rules), ROUTER_API_KEYS=API_KEY))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        env.setenv("ROUTER_URL", str(server.make_url("/")))
        env.setenv("ROUTER_RULESET", "default")
        event = load_json(
            PLATFORM_FIXTURES / "amazon-connect" / "contact-flow-event-parameter-ids.json"
        )

        answer = await invoke(connect_lambda, event)

        assert all(isinstance(value, str) for value in answer.values())
        assert set(FALLBACK_KEYS) <= set(answer)
        mapped = load_rules(rules)["default"].platforms
        assert answer["queue_arn"] == mapped.queue_id("amazon-connect", answer["queue"]) != ""
        assert answer["ruleset"] == "default"
        assert answer["degraded"] == "false"
        shared_id = event["Details"]["Parameters"]["shared_id"]
        async with aiohttp.ClientSession() as http:
            stored = await (
                await http.get(
                    server.make_url("/v1/decisions"),
                    params={"shared_id": shared_id},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
            ).json()
        assert stored["decision_id"] == answer["decision_id"]
    finally:
        await server.close()
