"""The server's own connection handling, for what happens before a handler runs.

aiohttp answers some requests itself, before any middleware sees them: a head it cannot
parse (a 9,000-character header, a bad method) gets a ``text/plain`` 400 that skips the
contract's error shape, the request id and the security headers, and aiohttp logs the
parser's message, which can hold the start of the offending header (a presented key).
And it waits for a request's head as long as the connection lives, so a thousand
slow-dripping connections stay open. :class:`RouterProtocol` changes exactly that:
its errors are the contract's JSON with the standard headers, logged without the text
that caused them, and a connection whose request head has not arrived within
``ROUTER_READ_TIMEOUT_S`` is closed (the body's own time limit is checked where it is
read, :func:`router.http.body.read_json_bytes`).

:func:`install` puts it under an :class:`aiohttp.web.AppRunner` once it is set up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from router.http.errors import JSON_CONTENT_TYPE, STATUS_CODES, error_body
from router.http.middlewares import REQUEST_ID_HEADER, SECURITY_HEADERS, SERVER_NAME
from router.http.route_lane import LaneParser, RouteLane
from router.ids import new_id

log = structlog.get_logger("router.http")

_LANE_TURNS = 3
"""Loop turns from reading a lane call to sending its answer when it waits on nothing (read;
decide; send)."""
_HELD_MAX_BYTES = 1 << 20
"""Most bytes kept from a client that sends on while its route call is being answered."""


class RouterProtocol(RequestHandler):
    """aiohttp's request handler, with contract-shaped errors, a head read timeout, the
    time each request's head came in, and the express lane for route calls."""

    _head_timer: asyncio.TimerHandle | None = None
    head_received_at: float | None = None
    """``time.monotonic()`` when the latest request head on this connection came in."""
    _lane: RouteLane | None = None
    _lane_parser: LaneParser | None = None
    """Set while every request of this connection went by the lane; ``None`` once one was
    handed to aiohttp (the connection then stays with it)."""
    _lane_busy = False
    """An answer of the lane is being made for this connection."""
    _lane_task: asyncio.Task[None] | None = None
    """The task making it, when it waits (a lookup, a shared store)."""
    _held: list[bytes] | None = None
    """Bytes that came in while the lane was answering (a pipelining client), read after."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        lane = self._lane
        if lane is not None and self._lane_parser is not None:
            if self._lane_busy:
                self._hold(data)
                return
            if not (self._force_close or self._close):
                call = lane.call(self._lane_parser, data, now)
                if call is not None:
                    self._stop_head_timer()
                    self._lane_busy = True
                    lane.start(self, call)
                    return
            self._lane_parser = None
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:  # a whole head arrived
            self.head_received_at = now
            self._stop_head_timer()
        elif data and self._head_timer is None and self._waiter is not None:
            self._start_head_timer()  # the first bytes of the next head on a kept-alive link

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        self._held = None
        super().connection_lost(exc)

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 (aiohttp's)
        """aiohttp's graceful close, after the lane's answer in flight (if any) is sent."""
        task = self._lane_task
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)
        for _ in range(_LANE_TURNS):
            if not self._lane_busy:
                break
            # Decided, or read and about to be: the lane sends it at the end of a turn.
            await asyncio.sleep(0)
        await super().shutdown(timeout)

    # The express lane (router/http/route_lane.py) ------------------------------------

    def lane_send(self, response: bytes) -> None:
        """The lane's whole answer to this connection's call: send it, read on."""
        self._lane_busy = False
        self._lane_task = None
        transport = self.transport
        if transport is None or transport.is_closing():
            self._held = None
            return  # the caller hung up: the decision stands, nobody to tell
        transport.write(response)
        self._keep_alive_from_now()
        held, self._held = self._held, None
        if held:
            self.data_received(b"".join(held))

    def lane_waits(self, task: asyncio.Task[None]) -> None:
        """The lane's answer is being made by ``task``: a graceful close waits for it."""
        self._lane_task = task
        task.add_done_callback(self._lane_task_done)

    def _lane_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is not None:  # it sent nothing: close
            failure = None if task.cancelled() else task.exception()
            log.error("route_lane_failed", exc_info=failure)
            self._lane_busy = False
            self._lane_task = None
            self.force_close()

    def _hold(self, data: bytes) -> None:
        held = self._held = self._held or []
        held.append(data)
        if sum(map(len, held)) > _HELD_MAX_BYTES:
            log.debug("connection_closed", reason="too much sent before an answer")
            self._held = None
            self.force_close()

    def _keep_alive_from_now(self) -> None:
        """aiohttp's keep-alive timer, as it sets it after each answer it sends."""
        timeout = self._keepalive_timeout
        if timeout <= 0:
            return
        loop = self._loop
        self._next_keepalive_close_time = loop.time() + timeout
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(
                self._next_keepalive_close_time, self._process_keepalive
            )

    def _start_head_timer(self) -> None:
        manager = self._manager
        timeout = getattr(manager, "read_timeout_s", None)
        if timeout is None:
            return
        self._head_timer = self._loop.call_later(timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._messages:
            return
        log.debug("connection_closed", reason="request head not received in time")
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The contract's error answer for a request aiohttp could not read; the log line
        names the kind of problem, never the text that caused it."""
        log.info(
            "request_rejected",
            status=status,
            reason=type(exc).__name__ if exc is not None else None,
        )
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already being sent")
        code, text = STATUS_CODES.get(status, (f"http_{status}", "The request failed."))
        response = web.Response(
            status=status,
            body=error_body(code, text),
            content_type=JSON_CONTENT_TYPE,
            charset="utf-8",
            headers={**SECURITY_HEADERS, REQUEST_ID_HEADER: new_id(), "Server": SERVER_NAME},
        )
        response.force_close()
        return response


class _RouterServer(web.Server):
    """aiohttp's connection factory, making :class:`RouterProtocol` connections."""

    read_timeout_s: float | None = None
    route_lane: RouteLane | None = None

    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = self._kwargs
        protocol = RouterProtocol(self, loop=self._loop, **kwargs)
        if self.route_lane is not None:
            protocol._lane = self.route_lane
            protocol._lane_parser = LaneParser()
        return protocol


def install(runner: web.AppRunner, *, read_timeout_s: float, route_lane: bool = True) -> None:
    """Serve ``runner``'s connections with :class:`RouterProtocol` (after ``setup()``),
    with the express lane for route calls unless ``route_lane`` is false."""
    server = runner.server
    if server is None:
        raise RuntimeError("set the runner up first")
    server.__class__ = _RouterServer
    assert isinstance(server, _RouterServer)
    server.read_timeout_s = read_timeout_s
    server.route_lane = RouteLane(runner.app) if route_lane else None
