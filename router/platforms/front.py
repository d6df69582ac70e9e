"""What every platform front shares: the body, the ruleset from the query string, ids and
phone numbers read leniently, and deciding with an emergency answer when no ruleset can.

A platform endpoint never answers an error for a call that can still be routed (contract
§7): a missing or malformed id is no id (the lookups are ``skipped``), an unknown field is
context, an odd shape is read as far as it goes. Only auth (401/403), a body over the size
limit (413) and a body that cannot be parsed at all (400) are errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import orjson
import structlog
from aiohttp import web

from router.http.errors import ApiError, body_too_large
from router.http.keys import LOGGED, SERVICE, SETTINGS
from router.http.middlewares import require_ruleset_access
from router.metrics import PLATFORM_EMERGENCY_ANSWERS
from router.platforms.flat import emergency_answer
from router.service import (
    DecisionRequest,
    DecisionService,
    NotReady,
    PlatformAnswer,
    RulesetNotFound,
    ServiceError,
)
from router.settings import Settings

log = structlog.get_logger("router.platforms")

JSON = "application/json"
_ID = re.compile(r"[ -~]{1,256}")
_SIP_NUMBER = re.compile(r"sips?:(\+?[0-9]{3,20})(?:;[^@]*)?@", re.IGNORECASE)
_LOGGED_NAME_LIMIT = 128
_EMPTY: Mapping[str, Any] = {}


async def read_body(request: web.Request) -> bytes:
    """The raw body; 413 past ``ROUTER_MAX_BODY_BYTES`` (declared, or found while reading)."""
    max_bytes = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise body_too_large(max_bytes)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:  # a chunked body that ran past the limit
        raise body_too_large(max_bytes) from None


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON body as an object: ``{}`` for an empty body or a JSON value that is not an
    object (an odd shape still gets a decision); 400 when it is not JSON at all."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = _json_the_slow_way(raw)  # orjson refuses integers past 64 bits, deep nesting
    return value if type(value) is dict else {}


def _json_the_slow_way(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(
            400, "malformed_json", "The request body is not valid JSON (UTF-8)."
        ) from None


def form_fields(raw: bytes) -> list[tuple[str, str]]:
    """A form-encoded body's fields, in order, blanks kept: what
    ``urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)`` reads from UTF-8 text.
    Never fails: bytes that are not UTF-8 become U+FFFD (every body reads as some form)."""
    fields: list[tuple[str, str]] = []
    for part in raw.decode("utf-8", "replace").split("&"):
        if part:
            name, _, value = part.partition("=")
            if "%" in part or "+" in part:
                name, value = _unescaped(name), _unescaped(value)
            fields.append((name, value))
    return fields


def _unescaped(text: str) -> str:
    """A form name or value as ``parse_qsl`` reads it (``+`` a space, ``%XX`` UTF-8)."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    common = text.replace("%3A", ":").replace("%2B", "+").replace("%40", "@")
    return common if "%" not in common else unquote(text, errors="replace")


def form_text(raw: bytes) -> str:
    """One form-encoded name or value as text (``+`` is a space, ``%XX`` a byte, UTF-8)."""
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        # The escapes of SIP URIs and phone numbers (":", "+", "@") at C speed; anything
        # else left, the whole value the general way.
        common = raw.replace(b"%3A", b":").replace(b"%2B", b"+").replace(b"%40", b"@")
        raw = common if b"%" not in common else unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (for walking odd shapes)."""
    return value if type(value) is dict else _EMPTY


def valid_id(value: Any) -> str | None:
    """A conversation or shared id: text of 1–256 printable ASCII characters, surrounding
    spaces removed. Anything else (an empty Studio field, a number, junk) is no id."""
    if type(value) is not str:
        return None
    value = value.strip()
    return value if value and _ID.fullmatch(value) else None


def text(value: Any) -> str | None:
    """``value`` when it is non-empty text, else ``None`` (context keeps only what was given)."""
    return value if type(value) is str and value else None


def fields_context(
    body: Mapping[str, Any],
    known: frozenset[str],
    platform: str,
    *,
    ani: Any,
    dnis: Any,
    call_id: Any,
) -> dict[str, Any]:
    """The ``context`` of a request whose body is flat fields (Studio, a Genesys data
    action): every field the front does not read itself, then ``platform``, the caller's
    and dialled numbers and the platform's call id when given."""
    context: dict[str, Any] = {k: v for k, v in body.items() if k not in known}
    context["platform"] = platform
    put_number(context, "ani", "sip_from", ani)
    put_number(context, "dnis", "sip_to", dnis)
    call = text(call_id)
    if call is not None:
        context["call_id"] = call
    return context


def put_number(context: dict[str, Any], key: str, raw_key: str, value: Any) -> None:
    """Put a caller or dialled number in ``context[key]``.

    A SIP URI (``sip:+14158675310@host``, as Twilio sends ``From``/``To`` on a SIP call)
    gives its user part when that is a phone number, and is kept whole in
    ``context[raw_key]``; a ``tel:`` URI gives its number.
    """
    if type(value) is not str or not value:
        return
    if value[0] == "+":  # E.164, as most platforms send it
        context[key] = value
        return
    sip = _SIP_NUMBER.match(value)
    if sip is not None:  # sip:+14158675310@host (its user part a phone number)
        context[raw_key] = value
        context[key] = sip.group(1)
        return
    scheme, colon, rest = value.partition(":")
    scheme = scheme.lower()
    if colon and scheme in ("sip", "sips"):  # a SIP URI whose user is not a number
        context[raw_key] = value
        context[key] = value
    elif colon and scheme == "tel":
        context[key] = rest.partition(";")[0]
    else:
        context[key] = value


def requested_ruleset(request: web.Request) -> str | None:
    """The ruleset of ``?ruleset=NAME`` (``None``: the default), once the key may use it."""
    name = request.query.get("ruleset") or None
    require_ruleset_access(
        request, name if name is not None else request.app[SERVICE].default_ruleset
    )
    return name


async def decide(request: web.Request, decision: DecisionRequest) -> PlatformAnswer:
    """:func:`decide_call` for a request's call (its decision line stands for the request
    line)."""
    decided = await decide_call(request.app[SERVICE], request.app[SETTINGS], decision)
    request[LOGGED] = True
    return decided


async def decide_call(
    service: DecisionService, settings: Settings, decision: DecisionRequest
) -> PlatformAnswer:
    """The service's decision for the call, or the emergency answer when no ruleset can
    decide it (none loaded, the ruleset named is not served, or a fault): a platform
    endpoint never answers 503 for a call, since the platform's flow must get a queue."""
    try:
        return await service.decide_for_platform(decision)
    except NotReady:
        reason = "not_ready"
    except RulesetNotFound:
        reason = "ruleset_not_found"
    except ServiceError:
        reason = "unavailable"
    except Exception:
        log.exception("platform_decision_failed", platform=decision.platform)
        reason = "error"
    ruleset = decision.ruleset if decision.ruleset is not None else service.default_ruleset
    queue = settings.emergency_queue
    PLATFORM_EMERGENCY_ANSWERS.labels(platform=decision.platform, reason=reason).inc()
    log.warning(
        "platform_emergency_answer",
        platform=decision.platform,
        ruleset=ruleset[:_LOGGED_NAME_LIMIT],
        reason=reason,
        queue=queue,
    )
    return emergency_answer(queue, ruleset if _ID.fullmatch(ruleset) else "")


def json_answer(body: bytes, status: int = 200) -> web.Response:
    """A JSON answer from ready-made bytes."""
    return web.Response(status=status, body=body, content_type=JSON, charset="utf-8")
