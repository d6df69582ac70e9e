"""Protocol edges (issue 14, 8): a body that never ends, the error codes on failed
requests' log lines. A caller hanging up, aiohttp's own 400s and the head timeout need
the real server (``router serve``: aiohttp's test server cancels handlers on hang-up):
tests/http/test_serve_protocol.py."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import orjson

from router.http.keys import SETTINGS
from router.observe import configure_logging, flush_logs
from tests.http.conftest import AUTH, MakeClient

HEAD = (
    b"POST /v1/route HTTP/1.1\r\n"
    b"Host: test\r\n"
    b"Authorization: Bearer test-key-all\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 1000\r\n"
    b"\r\n"
)


def logged(out: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()
    return [orjson.loads(line) for line in out.getvalue().split("\n") if line.strip()]


async def _logging_client(make_client: MakeClient, **settings: Any) -> tuple[Any, io.StringIO]:
    client = await make_client(ROUTER_LOG_LEVEL="debug", **settings)
    out = io.StringIO()
    configure_logging(client.app[SETTINGS], stream=out)
    return client, out


async def test_a_body_that_does_not_arrive_in_time_is_a_408_and_the_connection_closes(
    make_client: MakeClient,
) -> None:
    client, out = await _logging_client(make_client, ROUTER_READ_TIMEOUT_S="1")
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    started = time.monotonic()
    writer.write(HEAD + b'{"convers')
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)  # to EOF: the server closes
    assert time.monotonic() - started < 10
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in head.lower()
    error = orjson.loads(body)["error"]
    assert error["code"] == "request_timeout"
    [line] = [e for e in logged(out) if e["event"] == "request"]
    assert (line["status"], line["code"]) == (408, "request_timeout")


async def test_a_body_in_time_is_read_as_before(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_READ_TIMEOUT_S="1")
    resp = await client.post(
        "/v1/route", json={"conversation_id": "c-1", "state": {}, "handoff": {}}, headers=AUTH
    )
    assert resp.status == 200


async def test_failed_requests_log_their_error_code(make_client: MakeClient) -> None:
    client, out = await _logging_client(make_client, ROUTER_WEBHOOK_SECRET="s3cret")
    await client.post("/v1/route", json={"conversation_id": "c"})
    await client.post("/v1/route", json={"conversation_id": "c"}, headers={"X-API-Key": "nope"})
    await client.post(
        "/v1/events/polyai",
        data=b'{"id": "c"}',
        headers={"Content-Type": "application/json", "X-Router-Signature": "t=1,sha256=00"},
    )
    await client.post("/v1/route", data=b"{", headers={**AUTH, "Content-Type": "application/json"})
    lines = [e for e in logged(out) if e["event"] == "request"]
    assert [(e["status"], e.get("code")) for e in lines] == [
        (401, "missing_api_key"),
        (401, "invalid_api_key"),
        (401, "invalid_signature"),
        (400, "malformed_json"),
    ]
    assert "nope" not in out.getvalue()
