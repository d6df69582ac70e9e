"""Reading a JSON request body: media type, size limit, syntax, then the pydantic model.

Each step has its own status (415, 413, 400, 422) so a caller learns exactly what to fix.
The raw bytes are returned too where a signature has to be checked over them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from router.http.errors import ApiError, body_too_large
from router.http.keys import ARRIVAL, SETTINGS

M = TypeVar("M", bound=BaseModel)

_ACCEPTED_CHARSETS = frozenset({"", "utf-8", "utf8"})


async def read_json_bytes(request: web.Request, max_bytes: int) -> bytes:
    """The raw body of a JSON request, after the media type and size checks.

    aiohttp's ``client_max_size`` stops reading past the limit even for chunked bodies
    (it raises a 413 the error middleware shapes); a declared ``Content-Length`` over the
    limit is refused before a byte is read. A body that has not all arrived within
    ``ROUTER_READ_TIMEOUT_S`` of the request's arrival is a 408 ``request_timeout`` (and
    the connection is closed), so a slow-dripping sender cannot hold a handler forever.
    """
    if request.content_type != "application/json" or (
        (request.charset or "").lower() not in _ACCEPTED_CHARSETS
    ):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json (UTF-8).",
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise body_too_large(max_bytes)
    settings = request.app.get(SETTINGS)
    if settings is None or _all_arrived(request):
        return await request.read()  # nothing to wait for: no timer to arm
    arrival = request.get(ARRIVAL, time.monotonic())
    left = arrival + settings.read_timeout_s - time.monotonic()
    try:
        async with asyncio.timeout(max(left, 0.0)):
            return await request.read()
    except TimeoutError:
        raise request_timeout(settings.read_timeout_s) from None


def _all_arrived(request: web.Request) -> bool:
    """True when the whole body is already buffered (the usual case for a small body sent
    with its head), so reading it cannot wait."""
    length = request.content_length
    return length is not None and request.content.total_bytes >= length


def request_timeout(read_timeout_s: float) -> ApiError:
    """The 408 for a body that did not arrive in time; the connection is closed after it."""
    return ApiError(
        408,
        "request_timeout",
        f"The request body did not arrive within {read_timeout_s:g} s (ROUTER_READ_TIMEOUT_S).",
        headers={"Connection": "close"},
    )


def parse_model(raw: bytes, model: type[M]) -> M:
    """Validate ``raw`` JSON as ``model``: 400 when it is not JSON, 422 when it is not valid."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise ApiError(
                400, "malformed_json", "The request body is not valid JSON (UTF-8)."
            ) from None
        raise ApiError(
            422,
            "validation_error",
            "The request body is not valid: see details for each field.",
            validation_details(errors),
        ) from None


def validation_details(errors: list[Any]) -> list[dict[str, str]]:
    """One ``{"path", "message", "type"}`` per pydantic error; never the offending value."""
    details: list[dict[str, str]] = []
    for err in errors:
        path = ".".join(str(part) for part in err["loc"]) or str(
            (err.get("ctx") or {}).get("field", "")
        )
        message = err["msg"]
        if err["type"] == "string_pattern_mismatch":
            message = "must be printable ASCII characters only"
        details.append({"path": path, "message": message, "type": err["type"]})
    return details
