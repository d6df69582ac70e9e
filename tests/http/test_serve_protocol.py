"""What a real ``router serve`` answers at the protocol's edges (issue 14, 8): a caller
that hangs up mid-body, aiohttp's own 400s, heads that never finish arriving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from router.http.middlewares import SECURITY_HEADERS
from tests.serving import ServeProcess
from tests.waiting import eventually

KEY = "serve-protocol-key"
PRESENTED = "presented-secret-" + "k" * 9_000


@pytest.fixture
async def served(rules_dir: Path) -> AsyncIterator[ServeProcess]:
    process = await ServeProcess.start(
        rules_dir, ROUTER_API_KEYS=KEY, ROUTER_LOG_LEVEL="debug", ROUTER_READ_TIMEOUT_S="1"
    )
    yield process
    await process.kill()


async def exchange(served: ServeProcess, raw: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send ``raw``; the status line, headers and body the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=20)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status.encode(), headers, body


def assert_contract_error(headers: dict[str, str], body: bytes, code: str) -> None:
    assert headers["content-type"].startswith("application/json")
    assert headers["server"] == "router"
    assert headers["x-request-id"]
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value
    error = orjson.loads(body)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["details"] == []


async def test_a_caller_hanging_up_mid_body_is_a_debug_line_and_no_500(
    served: ServeProcess,
) -> None:
    after = len(served.events)
    _reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        b"POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n" + b'{"convers_'
    )
    await writer.drain()
    writer.close()
    line = await served.wait_for("request", 20, after=after)
    assert (line["status"], line["code"]) == (499, "client_disconnected")
    events = served.events[after:]
    assert any(e["event"] == "client_disconnected" and e["level"] == "debug" for e in events)
    assert not [e for e in events if e["level"] == "error" or e["event"] == "unhandled_error"]
    assert not [e for e in events if int(e.get("status", 0)) >= 500]


async def test_an_oversized_header_gets_the_contract_error_without_echoing_it(
    served: ServeProcess,
) -> None:
    after = len(served.events)
    status, headers, body = await exchange(
        served,
        b"GET /v1/rulesets HTTP/1.1\r\nHost: x\r\nX-API-Key: " + PRESENTED.encode() + b"\r\n\r\n",
    )
    assert status.split()[1] == b"400"
    assert_contract_error(headers, body, "bad_request")
    await served.wait_for("request_rejected", 10, after=after)
    assert b"presented-secret" not in body
    assert not [raw for raw in served.raw_lines if b"presented-secret" in raw]


async def test_a_garbage_request_line_gets_the_contract_error(served: ServeProcess) -> None:
    status, headers, body = await exchange(served, b"\x16\x03\x01 NOT-HTTP at all\r\n\r\n")
    assert status.split()[1] == b"400"
    assert_contract_error(headers, body, "bad_request")


async def test_normal_answers_name_no_framework_or_version(served: ServeProcess) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{served.url}/healthz") as resp:
        assert resp.headers["Server"] == "router"


async def test_a_head_that_does_not_arrive_in_time_is_closed_while_others_are_served(
    served: ServeProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.monotonic()
    closed = asyncio.Event()
    served_meanwhile: list[int] = []

    async def drip() -> None:
        with_data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        for byte in with_data:
            if reader.at_eof():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.2)

    async def watch() -> None:
        await reader.read()  # returns at EOF: the server closed the connection
        closed.set()

    dripping = asyncio.create_task(drip())
    watching = asyncio.create_task(watch())
    async with aiohttp.ClientSession() as session:
        # other requests are served while the slow head waits (at least three, however
        # slowly a loaded machine gets to them)
        while (not closed.is_set() or len(served_meanwhile) < 3) and (
            time.monotonic() - started < 15
        ):
            async with session.get(f"{served.url}/healthz") as resp:
                served_meanwhile.append(resp.status)
            await asyncio.sleep(0.05)
    await eventually(closed.is_set, within=1)
    elapsed = time.monotonic() - started
    dripping.cancel()
    watching.cancel()
    writer.close()
    assert elapsed < 15
    assert len(served_meanwhile) >= 3
    assert set(served_meanwhile) == {200}
