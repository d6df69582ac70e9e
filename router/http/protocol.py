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
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from router.http.errors import JSON_CONTENT_TYPE, STATUS_CODES, error_body
from router.http.middlewares import REQUEST_ID_HEADER, SECURITY_HEADERS, SERVER_NAME
from router.ids import new_id

log = structlog.get_logger("router.http")


class RouterProtocol(RequestHandler):
    """aiohttp's request handler, with contract-shaped errors and a head read timeout."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:  # a whole head arrived
            self._stop_head_timer()
        elif data and self._head_timer is None and self._waiter is not None:
            self._start_head_timer()  # the first bytes of the next head on a kept-alive link

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

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

    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = self._kwargs
        return RouterProtocol(self, loop=self._loop, **kwargs)


def install(runner: web.AppRunner, *, read_timeout_s: float) -> None:
    """Serve ``runner``'s connections with :class:`RouterProtocol` (after ``setup()``)."""
    server = runner.server
    if server is None:
        raise RuntimeError("set the runner up first")
    server.__class__ = _RouterServer
    assert isinstance(server, _RouterServer)
    server.read_timeout_s = read_timeout_s
