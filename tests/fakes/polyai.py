"""A fake PolyAI (Handoff API + conversation data API) on a real loopback socket.

Usage::

    fake = FakePolyAI()
    await fake.start()                    # fake.url -> "http://127.0.0.1:<port>"
    fake.set_handoff(Reply.with_status(429, retry_after="0"), Reply.ok())
    ...
    fake.handoff_calls, fake.conversation_calls, fake.seen[-1].query
    await fake.close()

``set_handoff`` / ``set_conversation`` take one or more :class:`Reply`; each
request takes the next one and the last one repeats. By default both
endpoints answer like the samples in ``/work/shared/samples`` (the handoff
answer echoes the id asked for; the record's ``conversationId`` is the path's).
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

SAMPLE_HANDOFF: dict[str, Any] = {
    "id": "0bba04d7-38b3-4fd3-a1a8-329c34517fc1",
    "shared_id": "CA5f1e6c2d0b8a4f3e9d7c6b5a4f3e2d1c",
    "data": {
        "handoff_reason": "refund",
        "customer_id": "C-204871",
        "identified": "true",
        "intent": "billing.refund_status",
        "language": "en-GB",
    },
}

SAMPLE_CONVERSATION: dict[str, Any] = {
    "conversationId": "0bba04d7-38b3-4fd3-a1a8-329c34517fc1",
    "accountId": "ACCOUNT-acme",
    "projectId": "PROJECT-support",
    "createdAt": "2026-11-23T10:02:11Z",
    "startedAt": "2026-11-23T10:02:12Z",
    "channel": "voice",
    "fromNumber": "+447700900123",
    "toNumber": "+442071234567",
    "language": "en-GB",
    "variantId": "main",
    "clientEnv": "live",
    "inProgress": True,
    "handoff": True,
    "handoffDestination": "billing",
    "handoffReason": "refund",
    "direction": "inbound",
    "tags": ["identified"],
    "state": {
        "customer_tier": "gold",
        "balance": "1500",
        "sentiment": "upset",
        "verified": "true",
        "account_type": "business",
    },
    "turns": [],
    "metrics": {},
}

Kind = Literal["normal", "json", "raw", "status", "streamed", "hang", "stall_body", "reset", "huge"]


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request."""

    kind: Kind = "normal"
    status: int = 200
    body: bytes = b""
    json_body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    size: int = 0
    chunked: bool = True
    gate: asyncio.Event | None = None
    """Set: the answer waits until the test sets this event (see :meth:`held`)."""

    @classmethod
    def ok(cls, delay: float = 0.0) -> Reply:
        """The sample-shaped answer (after ``delay`` seconds)."""
        return cls("normal", delay=delay)

    @classmethod
    def slow(cls, delay: float) -> Reply:
        return cls("normal", delay=delay)

    @classmethod
    def held(cls, gate: asyncio.Event) -> Reply:
        """The sample-shaped answer, once the test sets ``gate``: a request that is still
        pending for as long as the test needs, however slow the machine (no delay to guess).
        """
        return cls("normal", gate=gate)

    @classmethod
    def json(cls, body: Any, status: int = 200, delay: float = 0.0) -> Reply:
        """This JSON body instead of the sample."""
        return cls("json", status=status, json_body=body, delay=delay)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls("raw", status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def not_found(cls) -> Reply:
        return cls("status", status=404, body=b'{"error": "not found"}')

    @classmethod
    def with_status(cls, status: int, retry_after: str | None = None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls("status", status=status, body=b'{"error": "upstream"}', headers=headers)

    @classmethod
    def streamed(cls, status: int, body: bytes = b'{"error": "not found"}') -> Reply:
        """Headers first, the body a moment later (in its own packet)."""
        return cls("streamed", status=status, body=body)

    @classmethod
    def malformed(cls) -> Reply:
        return cls.raw(b'{"id": "x", "data": {', headers={"Content-Type": "application/json"})

    @classmethod
    def wrong_shape(cls) -> Reply:
        """Valid JSON, but a list where an object is expected."""
        return cls.json(["not", "an", "object"])

    @classmethod
    def hang(cls) -> Reply:
        """Never answers (until the fake is closed)."""
        return cls("hang")

    @classmethod
    def stall_body(cls) -> Reply:
        """Sends the headers and part of the body, then never the rest."""
        return cls("stall_body")

    @classmethod
    def reset(cls) -> Reply:
        """Drops the connection without answering."""
        return cls("reset")

    @classmethod
    def huge(cls, size: int = 10 * 1024 * 1024, *, chunked: bool = True) -> Reply:
        """A ``size``-byte JSON-ish body, chunked (no Content-Length) or declared."""
        return cls("huge", size=size, chunked=chunked)

    @classmethod
    def gzip_json(cls, body: Any) -> Reply:
        return cls.raw(
            gzip.compress(orjson.dumps(body)),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    endpoint: Literal["handoff", "conversation", "other"]
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    peer: tuple[str, int] | None
    """The client's address: the same one twice means a reused keep-alive connection."""


class FakePolyAI:
    """Both PolyAI endpoints on ``127.0.0.1:<free port>``."""

    def __init__(
        self,
        *,
        account_id: str = "ACCOUNT-acme",
        project_id: str = "PROJECT-support",
        agent_id: str = "agent-1",
        api_key: str = "test-polyai-key",
    ) -> None:
        self.account_id = account_id
        self.project_id = project_id
        self.agent_id = agent_id
        self.api_key = api_key
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent = 0
        self._handoff: list[Reply] = [Reply.ok()]
        self._conversation: list[Reply] = [Reply.ok()]
        self._release = asyncio.Event()
        self._gates: set[asyncio.Event] = set()
        self._url = ""
        app = web.Application()
        app.router.add_get("/v1/agents/{agent}/conversations/{cid}", self._on_conversation)
        app.router.add_get("/v1/{account}/{project}/handoff_state", self._on_handoff)
        app.router.add_route("*", "/{tail:.*}", self._on_other)
        self._server = TestServer(app, host="127.0.0.1", port=0)

    # Control -----------------------------------------------------------------

    async def start(self) -> FakePolyAI:
        await self._server.start_server()
        self._url = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        """Release hanging requests and stop listening (idempotent)."""
        self._release.set()
        for gate in self._gates:  # a test that failed before opening its gate
            gate.set()
        if not self._server.closed:
            await self._server.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (still known after :meth:`close`)."""
        return self._url

    def set_handoff(self, *replies: Reply) -> None:
        self._handoff = list(replies) or [Reply.ok()]
        self._gates.update(r.gate for r in replies if r.gate is not None)

    def set_conversation(self, *replies: Reply) -> None:
        self._conversation = list(replies) or [Reply.ok()]
        self._gates.update(r.gate for r in replies if r.gate is not None)

    @property
    def handoff_calls(self) -> int:
        return sum(1 for s in self.seen if s.endpoint == "handoff")

    @property
    def conversation_calls(self) -> int:
        return sum(1 for s in self.seen if s.endpoint == "conversation")

    def calls(self, endpoint: str) -> list[Seen]:
        return [s for s in self.seen if s.endpoint == endpoint]

    # Handlers ----------------------------------------------------------------

    def _record(
        self, endpoint: Literal["handoff", "conversation", "other"], request: web.Request
    ) -> None:
        self.seen.append(
            Seen(
                endpoint=endpoint,
                path=request.raw_path.split("?", 1)[0],
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                at=time.monotonic(),
                peer=request.transport.get_extra_info("peername") if request.transport else None,
            )
        )

    @staticmethod
    def _next(queue: list[Reply]) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def _on_other(self, request: web.Request) -> web.StreamResponse:
        self._record("other", request)
        return web.json_response({"error": "no such endpoint"}, status=400)

    async def _on_handoff(self, request: web.Request) -> web.StreamResponse:
        self._record("handoff", request)
        if (request.match_info["account"], request.match_info["project"]) != (
            self.account_id,
            self.project_id,
        ):
            return web.json_response({"error": "wrong account or project"}, status=400)
        body = copy.deepcopy(SAMPLE_HANDOFF)
        if "id" in request.query:
            body["id"] = request.query["id"]
        if "shared_id" in request.query:
            body["shared_id"] = request.query["shared_id"]
        return await self._answer(request, self._next(self._handoff), body)

    async def _on_conversation(self, request: web.Request) -> web.StreamResponse:
        self._record("conversation", request)
        if request.match_info["agent"] != self.agent_id:
            return web.json_response({"error": "wrong agent"}, status=400)
        body = copy.deepcopy(SAMPLE_CONVERSATION)
        body["conversationId"] = request.match_info["cid"]
        return await self._answer(request, self._next(self._conversation), body)

    async def _answer(
        self, request: web.Request, reply: Reply, normal: dict[str, Any]
    ) -> web.StreamResponse:
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"error": "bad api key"}, status=401)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.gate is not None:
                await reply.gate.wait()
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return await self._reply(request, reply, normal)
        finally:
            self.in_flight -= 1

    async def _reply(
        self, request: web.Request, reply: Reply, normal: dict[str, Any]
    ) -> web.StreamResponse:
        if reply.kind == "normal":
            return web.json_response(normal, dumps=lambda o: orjson.dumps(o).decode())
        if reply.kind == "json":
            return web.Response(
                status=reply.status,
                body=orjson.dumps(reply.json_body),
                content_type="application/json",
            )
        if reply.kind in ("raw", "status"):
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        if reply.kind == "streamed":
            resp = web.StreamResponse(status=reply.status)
            resp.content_length = len(reply.body)
            await resp.prepare(request)
            await asyncio.sleep(0.02)
            await resp.write(reply.body)
            await resp.write_eof()
            return resp
        if reply.kind == "hang":
            await self._release.wait()
            return web.Response(status=503)
        if reply.kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0)
            return web.Response(status=500)
        if reply.kind == "stall_body":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = 1000
            await resp.prepare(request)
            await resp.write(b'{"id": "partial", "data": {')
            await self._release.wait()
            return resp
        if reply.kind == "huge":
            return await self._huge(request, reply)
        raise AssertionError(f"unknown reply kind {reply.kind}")

    async def _huge(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        if reply.chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = reply.size
        await resp.prepare(request)
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < reply.size:
                piece = chunk[: reply.size - sent]
                await resp.write(piece)
                sent += len(piece)
                self.bytes_sent += len(piece)
        except ConnectionError:
            return resp  # the client stopped reading, as it should
        await resp.write_eof()
        return resp
