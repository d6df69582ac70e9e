"""The express lane for ``POST /v1/route`` (router/http/route_lane.py): the same answer as
aiohttp's handler, and every request it does not take answered by aiohttp as before.

The servers here are real loopback servers on the router's own connections (the HTTP tests'
``make_client``); requests go over raw sockets so that what arrives in one chunk, two
chunks, or two requests in one chunk is the test's choice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.http import route_lane
from router.http.middlewares import SECURITY_HEADERS
from router.http.protocol import RouterProtocol
from tests.fakes.polyai import FakePolyAI, Reply
from tests.http.conftest import API_KEY, MakeClient
from tests.http.raw_http import BODY, Answer, exchange, read_answer, route_request
from tests.waiting import eventually


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[route_lane.RouteCall]:
    """The calls the lane took."""
    taken: list[route_lane.RouteCall] = []
    real = route_lane.RouteLane.start

    def start(self: route_lane.RouteLane, client: Any, call: route_lane.RouteCall) -> None:
        taken.append(call)
        real(self, client, call)

    monkeypatch.setattr(route_lane.RouteLane, "start", start)
    return taken


async def test_the_lane_answers_as_the_handler_does(
    make_client: MakeClient, lane_calls: list[route_lane.RouteCall]
) -> None:
    lane = await make_client()
    handler = await make_client(ROUTER_ROUTE_LANE="false")
    request = route_request(extra=b"X-Request-ID: same-id-for-both\r\n")
    [by_lane] = await exchange(lane, request)
    assert len(lane_calls) == 1
    [by_handler] = await exchange(handler, request)
    assert len(lane_calls) == 1  # the second server has no lane
    assert by_lane.status == by_handler.status == 200
    varying = {"date", "content-length"}
    assert [(k, v) for k, v in by_lane.headers if k.lower() not in varying] == [
        (k, v) for k, v in by_handler.headers if k.lower() not in varying
    ]
    assert by_lane.header("X-Request-ID") == "same-id-for-both"
    for name, value in SECURITY_HEADERS.items():
        assert by_lane.header(name) == value
    assert by_lane.header("Server") == "router"
    mine, theirs = by_lane.json(), by_handler.json()
    assert list(mine) == list(theirs)  # the same fields in the same order
    for varies in ("decision_id", "elapsed_ms"):
        mine.pop(varies), theirs.pop(varies)
    assert mine == theirs


async def test_a_kept_alive_connection_stays_on_the_lane(
    client: TestClient[Any, Any], lane_calls: list[route_lane.RouteCall]
) -> None:
    bodies = [BODY.replace(b"lane-1", f"lane-{n}".encode()) for n in range(3)]
    answers: list[Answer] = []
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        for body in bodies:
            writer.write(route_request(body))
            answers.append(await read_answer(reader))
    finally:
        writer.close()
    assert [a.json()["conversation_id"] for a in answers] == ["lane-0", "lane-1", "lane-2"]
    assert len(lane_calls) == 3
    assert len({a.header("X-Request-ID") for a in answers}) == 3
    kept = await client.get("/v1/decisions/lane-2", headers={"X-API-Key": API_KEY})
    assert (await kept.json())["decision_id"] == answers[2].json()["decision_id"]


HEAD, _, TAIL = route_request().partition(b"\r\n\r\n")
CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        pytest.param(
            (
                b"POST /v1/route HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer "
                + API_KEY.encode()
                + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + CHUNKED_BODY,
            ),
            200,
            id="chunked",
        ),
        pytest.param((route_request(extra=b"Expect: 100-continue\r\n"),), 200, id="expect"),
        pytest.param((route_request(path=b"/v1/route?trace=1"),), 200, id="query-string"),
        pytest.param((route_request(extra=b"Content-Type: text/plain\r\n"),), 400, id="type-twice"),
        pytest.param((route_request(extra=b"Content-Length: 3\r\n"),), 400, id="length-twice"),
        pytest.param((route_request(key="wrong"),), 401, id="wrong-key"),
        pytest.param(
            (route_request(extra=b"X-Junk: " + b"j" * 9_000 + b"\r\n"),), 400, id="huge-header"
        ),
        pytest.param((route_request(b'{"conversation_id": 7}'),), 422, id="invalid-body"),
        pytest.param((route_request(b"{nope"),), 400, id="not-json"),
        pytest.param((route_request(b'{"ruleset": "nope", "shared_id": "s"}'),), 404, id="ruleset"),
    ],
)
async def test_what_the_lane_does_not_take_aiohttp_answers(
    client: TestClient[Any, Any],
    lane_calls: list[route_lane.RouteCall],
    chunks: tuple[bytes, ...],
    status: int,
) -> None:
    [answer] = await exchange(client, *chunks)
    assert answer.status == status, answer.body
    assert not lane_calls
    assert answer.header("Server") == "router"
    if status == 200:
        assert answer.json()["conversation_id"] == "lane-1"
    else:
        assert "error" in answer.json()


async def test_a_request_arriving_in_two_chunks_is_answered_by_aiohttp(
    client: TestClient[Any, Any],
    lane_calls: list[route_lane.RouteCall],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head alone, then (once the server has read it) the body: the lane takes only a
    whole request in one chunk, so aiohttp answers, and the connection stays with it."""
    chunks_read = asyncio.Queue[bytes]()
    real = RouterProtocol.data_received

    def data_received(self: RouterProtocol, data: bytes) -> None:
        chunks_read.put_nowait(data)
        real(self, data)

    monkeypatch.setattr(RouterProtocol, "data_received", data_received)
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(HEAD + b"\r\n\r\n")
        await writer.drain()
        read = b""
        while read != HEAD + b"\r\n\r\n":  # all of the head read, and nothing else
            read += await asyncio.wait_for(chunks_read.get(), timeout=20)
        writer.write(TAIL)
        await writer.drain()
        first = await read_answer(reader)
        writer.write(route_request(BODY.replace(b"lane-1", b"lane-2")))  # whole, in one chunk
        second = await read_answer(reader)
    finally:
        writer.close()
    assert [first.json()["conversation_id"], second.json()["conversation_id"]] == [
        "lane-1",
        "lane-2",
    ]
    assert not lane_calls


async def test_two_requests_in_one_chunk_are_both_answered_in_order(
    client: TestClient[Any, Any], lane_calls: list[route_lane.RouteCall]
) -> None:
    second = route_request(BODY.replace(b"lane-1", b"lane-2"))
    answers = await exchange(client, route_request() + second, answers=2)
    assert [a.json()["conversation_id"] for a in answers] == ["lane-1", "lane-2"]
    assert not lane_calls  # two at once: aiohttp's, from the first byte


async def test_http_1_0_is_answered_by_aiohttp(
    client: TestClient[Any, Any], lane_calls: list[route_lane.RouteCall]
) -> None:
    [answer] = await exchange(client, route_request(version=b"HTTP/1.0"))
    assert answer.status == 200
    assert not lane_calls


async def test_a_call_that_waits_on_lookups_is_answered_and_what_follows_waits_its_turn(
    client: TestClient[Any, Any], fake: FakePolyAI, lane_calls: list[route_lane.RouteCall]
) -> None:
    """A call with no inline facts looks up PolyAI in a task; the next request on the same
    connection, sent while the lookups are held, is answered after it, in order."""
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))
    waiting = route_request(b'{"conversation_id": "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"}')
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(waiting)
        await writer.drain()
        await eventually(lambda: fake.handoff_calls >= 1)  # the lookup is under way
        writer.write(route_request())
        await writer.drain()
        gate.set()
        first, second = await read_answer(reader), await read_answer(reader)
    finally:
        writer.close()
    assert first.json()["sources"]["handoff"] == "ok"
    assert second.json()["conversation_id"] == "lane-1"
    assert len(lane_calls) == 2


async def test_a_call_with_inline_facts_is_answered_without_a_task(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual call (facts inline, the memory store) is decided where it is read: no task
    is made for it (one is for a call that looks up, above)."""
    made: list[Any] = []
    loop = asyncio.get_running_loop()
    real = loop.create_task

    def create_task(coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(getattr(coro, "__qualname__", coro))
        return real(coro, **kwargs)

    monkeypatch.setattr(loop, "create_task", create_task)
    [answer] = await exchange(client, route_request())
    assert answer.status == 200
    assert not [name for name in made if "_respond" in str(name) or "_carry_on" in str(name)]


async def test_a_graceful_close_waits_for_the_answer_the_lane_is_making(
    make_client: MakeClient, fake: FakePolyAI, lane_calls: list[route_lane.RouteCall]
) -> None:
    """Shutting down (SIGTERM's drain) lets a lane call still waiting on PolyAI finish: it
    gets its degraded answer when its budget ends, not a closed connection."""
    fake.set_handoff(Reply.hang())
    fake.set_conversation(Reply.hang())
    client = await make_client()
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(route_request(b'{"conversation_id": "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"}'))
        await writer.drain()
        await eventually(lambda: fake.handoff_calls >= 1)
        closing = asyncio.create_task(client.server.close())
        answer = await read_answer(reader)
        await asyncio.wait_for(closing, timeout=20)
    finally:
        writer.close()
    assert answer.status == 200
    assert answer.json()["degraded"] is True
    assert len(lane_calls) == 1


async def test_a_call_started_by_hand_that_waits_is_carried_on_as_a_task_would() -> None:
    """``_carry_on`` finishes a coroutine the lane started by hand once it waits: on a
    future (its result, or its error, reaching the coroutine) and on a bare yield."""
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    seen: list[Any] = []

    async def call() -> None:
        seen.append(await first)
        await asyncio.sleep(0)
        try:
            await second
        except LookupError as exc:
            seen.append(repr(exc))

    started = call()
    waiting = started.send(None)
    assert waiting is first
    carrying = loop.create_task(route_lane._carry_on(started, waiting))
    first.set_result("answered")
    await eventually(lambda: seen == ["answered"])
    second.set_exception(LookupError("gone"))
    await asyncio.wait_for(carrying, timeout=20)
    assert seen == ["answered", "LookupError('gone')"]
