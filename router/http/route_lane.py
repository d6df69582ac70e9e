"""The express lane: a well-formed call to ``POST /v1/route`` or a platform endpoint
answered straight from its connection, without aiohttp's per-request machinery.

For each request aiohttp builds a request object, a header multidict, a task step, the
middleware chain, a response object and a writer: ~30 µs of CPU, three times what the
socket and the event loop cost, and as much again as the router's own work on a call with
inline facts. The lane skips that for the calls the router exists for, and only for them
(the endpoints and how each reads its call: :mod:`router.http.lane_endpoints`):

- one chunk read from the socket holds exactly one complete ``POST`` HTTP/1.1 request to
  one of those endpoints, kept alive, with a ``Content-Length`` body of the endpoint's
  media type — parsed by httptools (llhttp, Node's parser, which aiohttp's own C parser is
  also built on);
- nothing in it needs aiohttp: no ``Transfer-Encoding``, ``Expect`` or ``Upgrade``, no
  header given twice, a head within aiohttp's line limit, no query string but plain
  ``name=value`` pairs (and none at all on ``/v1/route``);
- its API key may route (role and ruleset, as the middleware checks them; a Twilio
  request relying on its signature instead goes to the handler, which checks it), and the
  endpoint reads a call from its body (``/v1/route``: a valid route request whose
  ruleset serves).

Anything else goes to aiohttp exactly as it arrived, which answers it as it always has (a
401, a 422 naming the field, a 413 …): the lane decides nothing it has not fully checked,
so handing a request back never decides it twice. A connection handed back once stays
with aiohttp. The lane's answer has the same status, headers and body as the handler's,
and the same ``decision`` log line (``tests/http/test_route_lane.py`` and
``tests/platforms/test_lane.py`` compare the two).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Coroutine
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

import httptools
import structlog
from aiohttp import web
from pydantic import ValidationError

from router.http.errors import ApiError, error_body, from_status
from router.http.keys import API_KEYS, SERVICE, SETTINGS
from router.http.lane_endpoints import JSON_ANSWER, LaneEndpoint, lane_endpoints
from router.http.middlewares import (
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    SERVER_NAME,
    WORKER_HEADER,
    arrival_of,
    find_key,
    key_presented,
    request_id_for,
    service_refusal,
)
from router.observe import bind_request_id, unbind_request_id
from router.service import DecisionRequest, ServiceError
from router.settings import ApiKey

if TYPE_CHECKING:
    from router.service import DecisionService

log = structlog.get_logger("router.http")

ROLE = "route"

_REFUSED_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
"""Headers whose handling is aiohttp's (a chunked body, ``100-continue``, a protocol
switch): a request carrying one is handed back."""

_MAX_HEADERS = 64
_MAX_HEAD_BYTES = 8190
"""aiohttp's own limit on a request line and on each header: a head longer than this goes to
aiohttp, which answers as it always has (a 400 for a line too long)."""


class ParsedRequest:
    """What httptools reports of one chunk (its callbacks write here)."""

    __slots__ = ("begun", "body", "complete", "headers", "twice", "url")

    def __init__(self) -> None:
        self.begun = 0
        self.complete = False
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.twice = False
        self.body = b""

    def reset(self) -> None:
        self.begun = 0
        self.complete = False
        self.url = b""
        self.headers = {}
        self.twice = False
        self.body = b""

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key in self.headers:
            self.twice = True
        self.headers[key] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class LaneParser:
    """One connection's parser; its state carries over between the requests of a kept-alive
    connection, so it serves only while every chunk so far held whole requests."""

    __slots__ = ("parsed", "parser")

    def __init__(self) -> None:
        self.parsed = ParsedRequest()
        self.parser = httptools.HttpRequestParser(self.parsed)

    def feed(self, data: bytes) -> ParsedRequest | None:
        """The one complete request in ``data``, or ``None`` (a part of one, several, or
        bytes httptools refuses)."""
        parsed = self.parsed
        parsed.reset()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            return None
        if parsed.begun != 1 or not parsed.complete:
            return None
        return parsed

    def keep_alive(self) -> bool:
        parser = self.parser
        return bool(
            parser.should_keep_alive()
            and parser.get_http_version() == "1.1"
            and parser.get_method() == b"POST"
        )


class LaneClient(Protocol):
    """The connection a lane call came on (:class:`router.http.protocol.RouterProtocol`)."""

    def lane_send(self, response: bytes) -> None:
        """Send the whole answer to the call and read on."""

    def lane_waits(self, task: asyncio.Task[None]) -> None:
        """The answer is being made by ``task`` (to wait for before closing)."""


class RouteCall:
    """A call the lane has checked and will answer."""

    __slots__ = ("endpoint", "request", "request_id")

    def __init__(self, endpoint: LaneEndpoint, request: DecisionRequest, request_id: str) -> None:
        self.endpoint = endpoint
        self.request = request
        self.request_id = request_id


class RouteLane:
    """The lane of one application (shared by all its connections)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        settings = app[SETTINGS]
        self._max_body = settings.max_body_bytes
        self._keys: tuple[ApiKey, ...] = app[API_KEYS]
        self._signatures = bool(settings.twilio_auth_token)
        self._endpoints = lane_endpoints(settings, settings.default_ruleset)
        after_id = dict(SECURITY_HEADERS)
        if settings.workers > 1:
            after_id[WORKER_HEADER] = str(os.getpid())
        self._after_id = b"\r\n" + b"".join(
            f"{name}: {value}\r\n".encode() for name, value in after_id.items()
        )
        self._date_second = -1
        self._outbox: list[tuple[LaneClient, bytes]] = []
        self._queued: list[tuple[LaneClient, RouteCall]] = []
        self._date_line = b""

    def call(self, lane_parser: LaneParser, data: bytes, arrived_at: float) -> RouteCall | None:
        """The call ``data`` holds when the lane can answer it, else ``None``."""
        parsed = lane_parser.feed(data)
        if parsed is None or parsed.twice:
            return None
        path, _, raw_query = parsed.url.partition(b"?")
        endpoint = self._endpoints.get(path)
        if endpoint is None or (raw_query and not endpoint.query):
            return None
        if len(data) - len(parsed.body) > _MAX_HEAD_BYTES:
            return None
        headers = parsed.headers
        if len(headers) > _MAX_HEADERS or not _REFUSED_HEADERS.isdisjoint(headers):
            return None
        if not lane_parser.keep_alive() or len(parsed.body) > self._max_body:
            return None
        content_type = headers.get(b"content-type", b"").replace(b" ", b"").lower()
        exact = endpoint.exact_content_types
        media = content_type.partition(b";")[0]
        if media not in endpoint.content_types or (exact is not None and content_type not in exact):
            return None
        query = _plain_query(raw_query)
        service: DecisionService | None = self._app.get(SERVICE)
        if service is None or query is None:
            return None
        may_route, key = self._key(headers)
        if not may_route or (key is None and endpoint.signed and self._signatures):
            return None
        arrival = arrival_of(_text(headers.get(b"x-request-start")), arrived_at)
        try:
            request = endpoint.read(parsed.body, media, query, arrival)
        except (ApiError, ValidationError):
            return None
        ruleset = request.ruleset or service.default_ruleset
        if key is not None and not key.allows(ruleset):
            return None
        if endpoint.checks_ruleset:
            try:
                service.ruleset(ruleset)
            except ServiceError:
                return None
        return RouteCall(endpoint, request, request_id_for(_text(headers.get(b"x-request-id"))))

    def _key(self, headers: dict[bytes, bytes]) -> tuple[bool, ApiKey | None]:
        """Whether the caller may route here, and its key (``None`` when auth is off). A
        missing or unknown key, or one without the role, may not: the middleware answers."""
        if not self._keys:
            return True, None
        offered = key_presented(
            _text(headers.get(b"authorization")), _text(headers.get(b"x-api-key"))
        )
        key = None if offered is None else find_key(self._keys, offered)
        return key is not None and key.has(ROLE), key

    def start(self, client: LaneClient, call: RouteCall) -> None:
        """Answer ``call`` to ``client`` (:meth:`LaneClient.lane_send`), after every
        request read in this turn of the loop was (see :meth:`_decide_all`)."""
        self._queued.append((client, call))
        if len(self._queued) == 1:
            asyncio.get_running_loop().call_soon(self._decide_all)

    def _decide_all(self) -> None:
        """Decide the calls read in the last turn of the loop one after the other, each at
        once when the decision service can decide it without waiting (facts inline, the
        memory store: no task, no further turn of the loop), else in a task.

        Reading all, then deciding all, then sending all (:meth:`_deliver`) keeps each
        step's code and data warm in the CPU's caches across a burst of calls: measured
        under load, ~10 % less CPU per call than deciding each call where it is read."""
        queued, self._queued = self._queued, []
        service = self._app[SERVICE]
        loop = asyncio.get_running_loop()
        for client, call in queued:
            responding = self._respond(client, call, service)
            token = bind_request_id(call.request_id)  # a task made here keeps it
            try:
                if not service.answers_without_waiting(call.request):
                    client.lane_waits(loop.create_task(responding))
                    continue
                try:
                    waiting = responding.send(None)
                except StopIteration:
                    continue
                # It waited after all: a task carries it on from where it stopped.
                client.lane_waits(loop.create_task(_carry_on(responding, waiting)))
            finally:
                unbind_request_id(token)

    async def _respond(self, client: LaneClient, call: RouteCall, service: DecisionService) -> None:
        endpoint = call.endpoint
        try:
            body = await endpoint.answer(service, call.request)
        except ServiceError as exc:  # the ruleset went away since it was checked
            self._deliver(client, self._error(call, service_refusal(exc)))
        except Exception:
            log.error("unhandled_error", route=endpoint.path, exc_info=True)
            self._deliver(client, self._error(call, from_status(500)))
        else:
            response = self.response(200, body, call.request_id, endpoint.answer_type)
            self._deliver(client, response)

    def _deliver(self, client: LaneClient, response: bytes) -> None:
        """Send ``response`` at the end of this turn of the loop, with the other answers
        made in it: the callers' next requests then come back together too, and the loop
        turns (each a system call, and a flush of the log) serve many calls, not one."""
        self._outbox.append((client, response))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._send_all)

    def _send_all(self) -> None:
        outbox, self._outbox = self._outbox, []
        for client, response in outbox:
            client.lane_send(response)

    def _error(self, call: RouteCall, error: ApiError) -> bytes:
        log.info(
            "request",
            method="POST",
            route=call.endpoint.path,
            status=error.status,
            duration_ms=round((time.monotonic() - call.request.arrival) * 1000, 3),
            code=error.code,
        )
        body = error_body(error.code, error.message, error.details)
        extra = "".join(f"{name}: {value}\r\n" for name, value in error.headers.items())
        return self.response(error.status, body, call.request_id, JSON_ANSWER, extra.encode())

    def response(
        self,
        status: int,
        body: bytes,
        request_id: str,
        content_type: bytes = JSON_ANSWER,
        extra: bytes = b"",
    ) -> bytes:
        """The bytes of an answer with the headers aiohttp and the middleware would send
        (``extra``: more header lines, each ending in CRLF)."""
        return b"".join(
            (
                _status_line(status),
                b"Content-Type: ",
                content_type,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                self._date(),
                extra,
                b"Server: " + SERVER_NAME.encode() + b"\r\n",
                REQUEST_ID_HEADER.encode() + b": " + request_id.encode(),
                self._after_id,
                b"\r\n",
                body,
            )
        )

    def _date(self) -> bytes:
        """The ``Date`` header line, formatted once a second."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date_line = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._date_line


_OK = b"HTTP/1.1 200 OK\r\n"


def _status_line(status: int) -> bytes:
    if status == 200:
        return _OK
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()


_QUERY_TEXT = re.compile(rb"[A-Za-z0-9_.~-]*")


def _plain_query(raw: bytes) -> dict[str, str] | None:
    """The parameters of a query string of plain ``name=value`` pairs, each name once;
    ``None`` for anything else (escapes, ``+``, a repeated name …: aiohttp's reading of
    those is the one that counts, so such a request goes to it)."""
    if not raw:
        return {}
    query: dict[str, str] = {}
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not name or not _QUERY_TEXT.fullmatch(name) or not _QUERY_TEXT.fullmatch(value):
            return None
        key = name.decode()
        if key in query:
            return None
        query[key] = value.decode()
    return query


def _text(value: bytes | None) -> str | None:
    """A header's value as aiohttp gives it to handlers (UTF-8, undecodable bytes kept)."""
    return None if value is None else value.decode("utf-8", "surrogateescape")


async def _carry_on(started: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Run the rest of a coroutine that was started by hand and stopped at ``waiting`` (a
    future, or ``None`` for a bare yield), as a task would have."""
    while True:
        if waiting is None:
            await asyncio.sleep(0)
        else:
            # Taken, as a task takes a future yielded to it (else awaiting it again raises).
            waiting._asyncio_future_blocking = False
            # The coroutine reads the outcome itself (the future's result or error) when
            # it resumes; here it only has to be done.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await waiting
        try:
            waiting = started.send(None)
        except StopIteration:
            return
