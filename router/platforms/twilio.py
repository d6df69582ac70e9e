"""The Twilio endpoints (contract §7.2): a Voice webhook answered with TwiML, and Studio's
*Make HTTP Request* widget answered with flat JSON.

``POST /v1/platforms/twilio/voice`` takes Twilio's form-encoded call parameters (``CallSid``,
``From``, ``To`` …, and each ``X-`` header of a SIP INVITE as ``SipHeader_X-…``) and answers
TwiML that enqueues the call: ``<Enqueue workflowSid="WW…"><Task priority="…">{task
attributes}</Task></Enqueue>`` when the ruleset maps a TaskRouter workflow, else
``<Enqueue>queue-name</Enqueue>``. With no ruleset loaded it still answers 200, enqueueing
to ``ROUTER_EMERGENCY_QUEUE``: Twilio runs TwiML only from a 2xx.

``POST /v1/platforms/twilio/studio`` takes the widget's parameters, form-encoded by default
or JSON (ids from the fields, else from the query string like the voice endpoint), and
answers every value as a string, ``task_attributes`` included as JSON text for the
*Enqueue Call* widget.

Both accept an API key (Studio can send one only as Basic auth in the URL) or, with
``ROUTER_TWILIO_AUTH_TOKEN`` set, Twilio's ``X-Twilio-Signature`` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from router.http.errors import ApiError
from router.http.keys import API_KEY, API_KEYS, ARRIVAL, SETTINGS
from router.http.middlewares import presented_key, unauthorized
from router.platforms.flat import studio_answer, task_attributes
from router.platforms.front import (
    decide,
    fields_context,
    form_fields,
    form_text,
    json_answer,
    json_object,
    put_number,
    read_body,
    requested_ruleset,
    text,
    valid_id,
)
from router.platforms.twilio_signature import SIGNATURE_HEADER, signature_matches, signed_url
from router.service import DecisionRequest, PlatformAnswer
from router.service.platforms import TWILIO
from router.settings import Settings

TWIML = "text/xml"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>'
_SILENT = _XML_HEAD + b"<Response/>"
_RESPONSE = _XML_HEAD + b"<Response>"
_END_ENQUEUE = b"</Enqueue></Response>"
_CALL_PARAMETERS = ((b"&CallSid=", "CallSid"), (b"&From=", "From"), (b"&To=", "To"))
_SIP_PARAMETER = b"&SipHeader_"
_STUDIO_FIELDS = frozenset({"conversation_id", "shared_id", "call_sid", "from", "to"})


async def voice(request: web.Request) -> web.Response:
    """Decide the call's queue; answer TwiML that enqueues it (errors: TwiML saying nothing)."""
    try:
        raw = await read_body(request)
        _authorise(request, raw)
        ruleset = requested_ruleset(request)
    except ApiError as error:
        return _twiml(_SILENT, error.status, error.headers)
    call = voice_call(raw, request.query, request.app[SETTINGS], ruleset, request[ARRIVAL])
    return _twiml(enqueue_twiml(await decide(request, call)))


def voice_call(
    raw: bytes,
    query: Mapping[str, str],
    settings: Settings,
    ruleset: str | None,
    arrival: float,
) -> DecisionRequest:
    """The call in a Voice webhook's form body (and the URL's query string)."""
    call, sip_headers = _voice_parameters(raw)
    call_sid = text(call.get("CallSid"))
    context: dict[str, Any] = {"platform": TWILIO}
    put_number(context, "ani", "sip_from", call.get("From"))
    put_number(context, "dnis", "sip_to", call.get("To"))
    if call_sid is not None:
        context["call_id"] = call_sid
    context["sip"] = {
        name[2:] if name.startswith("x-") else name: value for name, value in sip_headers.items()
    }
    conversation_id = valid_id(query.get("conversation_id")) or valid_id(
        sip_headers.get(settings.sip_conversation_header.lower())
    )
    shared_id = valid_id(query.get("shared_id")) or valid_id(
        sip_headers.get(settings.sip_shared_header.lower())
    )
    if conversation_id is None and shared_id is None:
        shared_id = valid_id(call_sid)  # no id given: the call's own (contract §7.2)
    # Positional, in field order (DecisionRequest): a webhook is the hot path of a Twilio
    # deployment, and keywords cost a microsecond.
    return DecisionRequest(
        conversation_id, shared_id, ruleset, context, None, None, None, arrival, None, TWILIO
    )


def _voice_parameters(raw: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """The call parameters this endpoint reads (``CallSid``, ``From``, ``To``) and the
    custom SIP headers (``SipHeader_…``, by lower-cased header name), from the form body.
    Only those are found (by name, as Twilio writes them, unescaped) and decoded: a webhook
    carries a dozen more parameters, and reading each would cost more than the rest of the
    endpoint. The last of repeated names wins; a part with no ``=`` is no parameter.
    """
    body = b"&" + raw
    call: dict[str, str] = {}
    for key, name in _CALL_PARAMETERS:
        start = body.rfind(key)
        if start >= 0:
            start += len(key)
            end = body.find(b"&", start)
            call[name] = form_text(body[start:] if end < 0 else body[start:end])
    sip: dict[str, str] = {}
    at = body.find(_SIP_PARAMETER)
    while at >= 0:
        start = at + len(_SIP_PARAMETER)
        end = body.find(b"&", start)
        header, equals, value = (body[start:] if end < 0 else body[start:end]).partition(b"=")
        if equals:
            sip[form_text(header).lower()] = form_text(value)
        at = body.find(_SIP_PARAMETER, start)
    return call, sip


async def studio(request: web.Request) -> web.Response:
    """Decide the call's queue; answer flat JSON for the Studio flow's next widgets."""
    raw = await read_body(request)
    is_json = is_json_body(request.content_type, raw)
    _authorise(request, raw, is_json=is_json)
    body = json_object(raw) if is_json else dict(form_fields(raw))
    ruleset = requested_ruleset(request)
    call = studio_call(body, request.query, ruleset, request[ARRIVAL])
    return json_answer(studio_answer(await decide(request, call)))


def studio_call(
    body: Mapping[str, Any], query: Mapping[str, str], ruleset: str | None, arrival: float
) -> DecisionRequest:
    """The call in the Studio widget's parameters (parsed from JSON or the form)."""
    context = fields_context(
        body,
        _STUDIO_FIELDS,
        TWILIO,
        ani=body.get("from"),
        dnis=body.get("to"),
        call_id=body.get("call_sid"),
    )
    return DecisionRequest(
        conversation_id=valid_id(body.get("conversation_id"))
        or valid_id(query.get("conversation_id")),
        shared_id=valid_id(body.get("shared_id")) or valid_id(query.get("shared_id")),
        ruleset=ruleset,
        context=context,
        arrival=arrival,
        platform=TWILIO,
        split_key=context.get("call_id"),
    )


def enqueue_twiml(decided: PlatformAnswer) -> bytes:
    """TwiML enqueueing the call: into the mapped TaskRouter workflow with the task
    attributes, or, with no workflow mapped, into the Twilio queue of the queue's name."""
    answer = decided.answer
    if not decided.workflow:
        return b"".join((_RESPONSE, b"<Enqueue>", _xml(answer.queue.encode()), _END_ENQUEUE))
    priority = b"" if answer.priority is None else b' priority="%d"' % answer.priority
    return b"".join(
        (
            _enqueue_workflow(decided.workflow),
            priority,
            b">",
            _xml(task_attributes(decided)),
            b"</Task>",
            _END_ENQUEUE,
        )
    )


@functools.lru_cache(maxsize=64)
def _enqueue_workflow(workflow: str) -> bytes:
    """The TwiML up to the ``<Task`` of an enqueue into ``workflow`` (workflows come from
    rule files, so the cache stays small)."""
    return b"".join(
        (_RESPONSE, b'<Enqueue workflowSid="', _xml(workflow.encode(), quote=True), b'"><Task')
    )


def _xml(text: bytes, *, quote: bool = False) -> bytes:
    """UTF-8 text escaped for XML element content (``quote``: for a ``"``-quoted attribute)."""
    if b"&" in text:
        text = text.replace(b"&", b"&amp;")
    if b"<" in text:
        text = text.replace(b"<", b"&lt;")
    if b">" in text:
        text = text.replace(b">", b"&gt;")
    if quote and b'"' in text:
        text = text.replace(b'"', b"&quot;")
    return text


def _twiml(body: bytes, status: int = 200, headers: Any = None) -> web.Response:
    return web.Response(
        status=status, body=body, content_type=TWIML, charset="utf-8", headers=headers
    )


def is_json_body(content_type: str, raw: bytes) -> bool:
    """A JSON body: declared so (``content_type``: the media type alone, lower case), or
    undeclared and starting like a JSON object."""
    if content_type == "application/json":
        return True
    return content_type != "application/x-www-form-urlencoded" and raw.lstrip()[:1] == b"{"


def _authorise(request: web.Request, raw: bytes, *, is_json: bool = False) -> None:
    """An API key (already checked by the middleware), or Twilio's signature of this very
    request with ``ROUTER_TWILIO_AUTH_TOKEN``; with neither keys nor a token configured,
    auth is off. A wrong signature is 403, no credentials at all 401 (with a Basic
    challenge: Twilio sends a URL's credentials only after one)."""
    if request[API_KEY] is not None:
        return
    settings = request.app[SETTINGS]
    token = settings.twilio_auth_token
    offered = request.headers.get(SIGNATURE_HEADER)
    if token and offered is not None:
        url = signed_url(request, trust_proxy=settings.trust_proxy)
        matches = (
            signature_matches(token, url, (), offered, body=raw)
            if is_json
            else signature_matches(token, url, form_fields(raw), offered)
        )
        if matches:
            return
        raise ApiError(
            403,
            "invalid_signature",
            f"{SIGNATURE_HEADER} does not match this request: check ROUTER_TWILIO_AUTH_TOKEN, "
            "and ROUTER_TRUST_PROXY when a proxy in front of the router changes the URL.",
        )
    if not token and not request.app[API_KEYS]:
        return
    raise unauthorized(presented_key(request) is not None, basic=True)
