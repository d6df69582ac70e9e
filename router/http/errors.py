"""The one error shape every failing answer has: ``{"error": {"code", "message", "details"}}``.

Handlers raise :class:`ApiError`; the error middleware turns it (and aiohttp's own
``HTTPException``s, and anything unexpected) into :func:`error_response`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/json"

# The code a bare status gets when nothing more specific was said.
STATUS_CODES: Mapping[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorized", "An API key is required."),
    403: ("forbidden", "This API key may not do that."),
    404: ("not_found", "There is nothing at this path."),
    405: ("method_not_allowed", "This path does not accept that method."),
    408: ("request_timeout", "The request did not arrive in time."),
    413: ("body_too_large", "The request body is larger than the server accepts."),
    415: ("unsupported_media_type", "The body must be JSON (Content-Type: application/json)."),
    422: ("validation_error", "The request body is not valid."),
    429: ("too_many_requests", "Too many requests; retry later."),
    500: ("internal_error", "The server failed to answer; the error has been logged."),
    503: ("unavailable", "The service cannot answer this yet; retry later."),
}


class ApiError(Exception):
    """An error answer: HTTP status, snake_case code, a sentence for humans, details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = [dict(d) for d in details]
        self.headers = dict(headers or {})


def error_body(code: str, message: str, details: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """The JSON bytes of an error answer."""
    return orjson.dumps({"error": {"code": code, "message": message, "details": list(details)}})


def error_response(error: ApiError) -> web.Response:
    """An :class:`ApiError` as an aiohttp response."""
    return web.Response(
        status=error.status,
        body=error_body(error.code, error.message, error.details),
        content_type=JSON_CONTENT_TYPE,
        charset="utf-8",
        headers=error.headers,
    )


def from_status(status: int, *, headers: Mapping[str, str] | None = None) -> ApiError:
    """The generic :class:`ApiError` for a bare HTTP status (aiohttp's 404, 405, 413 …)."""
    code, message = STATUS_CODES.get(status, (f"http_{status}", "The request failed."))
    return ApiError(status, code, message, headers=headers)


def body_too_large(max_bytes: int) -> ApiError:
    """The 413 for a body over ``max_bytes``."""
    return ApiError(
        413,
        "body_too_large",
        f"The request body is larger than {max_bytes} bytes (ROUTER_MAX_BODY_BYTES).",
        [{"message": "body too large", "max_bytes": max_bytes}],
    )
