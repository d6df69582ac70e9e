"""Raw HTTP/1.1 over a socket, for tests that choose how a request's bytes arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from tests.http.conftest import API_KEY

BODY = orjson.dumps(
    {
        "conversation_id": "lane-1",
        "context": {"dnis": "+442071234567"},
        "handoff": {"handoff_reason": "refund"},
        "state": {"customer_tier": "gold"},
    }
)


def route_request(
    body: bytes = BODY,
    *,
    key: str = API_KEY,
    extra: bytes = b"",
    version: bytes = b"HTTP/1.1",
    path: bytes = b"/v1/route",
    content_type: bytes = b"application/json",
) -> bytes:
    """One whole ``POST`` request's bytes (``extra``: more header lines, CRLF-ended)."""
    return (
        b"POST " + path + b" " + version + b"\r\nHost: router\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: "
        + content_type
        + b"\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str:
        return next(value for key, value in self.headers if key.lower() == name.lower())

    def json(self) -> Any:
        return orjson.loads(self.body)


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer with a Content-Length body (skipping interim 1xx answers)."""
    while True:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=20)
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        status = int(status_line.split()[1])
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        if status >= 200:
            break
    length = int(next(v for k, v in headers if k.lower() == "content-length"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout=20)
    return Answer(status, headers, body)


async def exchange(client: TestClient[Any, Any], *chunks: bytes, answers: int = 1) -> list[Answer]:
    """Send ``chunks`` on one connection (each its own write, drained before the next), then
    read ``answers`` answers."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)
        return [await read_answer(reader) for _ in range(answers)]
    finally:
        writer.close()
