"""One coroutine per endpoint of contract §2: parse, authorise, call the decision service,
render. Nothing else: cross-cutting concerns live in the middlewares, and the decision's
path (gather → rules → record) lives in :mod:`router.service`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from pydantic import TypeAdapter, ValidationError

from router import jsonsafe
from router.http import signature
from router.http.body import parse_model, read_json_bytes, validation_details
from router.http.errors import ApiError, body_too_large
from router.http.keys import API_KEY, API_KEYS, ARRIVAL, LOGGED, SERVICE, SETTINGS
from router.http.middlewares import presented_key, require_ruleset_access, unauthorized
from router.http.models import (
    ConversationId,
    ExplainRequest,
    PushEvent,
    ReplayRequest,
    RouteRequest,
)
from router.http.openapi import openapi_bytes
from router.service import CandidateInvalid, DecisionRequest, parse_duration

JSON = "application/json"
_ID = TypeAdapter(ConversationId)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer, serialised with orjson (dicts, lists and dataclasses alike); a value
    orjson cannot write (a fact's integer beyond 64 bits …) in its :mod:`router.jsonsafe`
    form rather than a 500."""
    return web.Response(
        status=status, body=jsonsafe.dumps(data), content_type=JSON, charset="utf-8"
    )


# Deciding ------------------------------------------------------------------------------


async def route(request: web.Request) -> web.Response:
    """``POST /v1/route``: the decision service's answer for this call."""
    answer = await request.app[SERVICE].decide(await _decision_request(request))
    request[LOGGED] = True  # the decision line stands for the request line
    return json_response(answer)


async def explain(request: web.Request) -> web.Response:
    """``POST /v1/explain``: the decision plus the per-rule trace; nothing is recorded."""
    decision_request = await _decision_request(request, ExplainRequest)
    explained = await request.app[SERVICE].explain(decision_request)
    return json_response(explained.to_dict())


async def _decision_request(
    request: web.Request, model: type[RouteRequest] = RouteRequest
) -> DecisionRequest:
    """Validate the body and check the key may use the ruleset it names."""
    raw = await read_json_bytes(request, request.app[SETTINGS].max_body_bytes)
    body = parse_model(raw, model)
    ruleset = body.ruleset or request.app[SERVICE].default_ruleset
    require_ruleset_access(request, ruleset)
    return decision_request(body, ruleset, request[ARRIVAL])


def decision_request(body: RouteRequest, ruleset: str, arrival: float) -> DecisionRequest:
    """What the decision service needs of a validated route (or explain) body."""
    return DecisionRequest(  # positional, in field order: this runs on every routed call
        body.conversation_id,
        body.shared_id,
        ruleset,
        body.context,
        body.handoff,
        body.state,
        body.budget_ms,
        arrival,
        body.at if isinstance(body, ExplainRequest) else None,
    )


# Reading decisions back -----------------------------------------------------------------


async def decision_by_conversation(request: web.Request) -> web.Response:
    """``GET /v1/decisions/{conversation_id}``: the latest decision of that conversation."""
    conversation_id = _valid_id(request.match_info["conversation_id"], "conversation_id")
    decision = await request.app[SERVICE].decision_for_conversation(conversation_id)
    return _stored_decision(request, decision)


async def decision_by_shared_id(request: web.Request) -> web.Response:
    """``GET /v1/decisions?shared_id=…``: the latest decision for that shared id."""
    if "shared_id" not in request.query:
        raise ApiError(
            422,
            "validation_error",
            "Give the shared_id query parameter.",
            [{"path": "shared_id", "message": "Field required", "type": "missing"}],
        )
    shared_id = _valid_id(request.query["shared_id"], "shared_id")
    decision = await request.app[SERVICE].decision_for_shared_id(shared_id)
    return _stored_decision(request, decision)


def _valid_id(value: str, name: str) -> str:
    try:
        return _ID.validate_python(value)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False, include_input=False))
        for detail in details:
            detail["path"] = name
        raise ApiError(422, "validation_error", f"{name} is not valid.", details) from None


def _stored_decision(request: web.Request, decision: dict[str, Any] | None) -> web.Response:
    """The stored decision, if the key may read it.

    A key limited to rulesets gets the same 403 for a decision of another ruleset and for
    no decision at all: a 404 would tell it that a conversation exists elsewhere."""
    key = request.get(API_KEY)
    if (
        key is not None
        and key.scoped
        and (decision is None or not key.allows(str(decision.get("ruleset", ""))))
    ):
        raise ApiError(
            403,
            "decision_forbidden",
            "No decision this API key may read is stored for that id.",
            [{"path": "ruleset", "message": "not allowed for this key, or no decision"}],
        )
    if decision is None:
        raise ApiError(404, "decision_not_found", "No decision is stored for that id.")
    return json_response(decision)


# Replay -----------------------------------------------------------------------------------

_YAML_TYPES = frozenset({"application/yaml", "text/yaml", "application/x-yaml"})
CANDIDATE_FILENAME = "candidate.yaml"
"""The name a candidate's problems are reported under (``candidate.yaml:3:5``)."""


async def replay(request: web.Request) -> web.Response:
    """``POST /v1/replay``: the store's records decided again with the candidate rule file
    in the body; what would change (contract §8)."""
    max_bytes = request.app[SETTINGS].max_body_bytes
    if request.content_type in _YAML_TYPES:
        if request.content_length is not None and request.content_length > max_bytes:
            raise body_too_large(max_bytes)
        rules = await request.read()
        ruleset, since = request.query.get("ruleset"), request.query.get("since")
    elif request.content_type == "application/json":
        body = parse_model(await read_json_bytes(request, max_bytes), ReplayRequest)
        rules, ruleset, since = body.rules.encode(), body.ruleset, body.since
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the candidate rule file as application/yaml (or text/yaml), or as JSON "
            '{"rules": "<the YAML text>"} with Content-Type: application/json.',
        )
    service = request.app[SERVICE]
    try:
        cutoff = None if since is None else datetime.now(UTC) - parse_duration(since)
    except ValueError as exc:
        raise ApiError(
            422, "validation_error", "since is not valid.", [{"path": "since", "message": str(exc)}]
        ) from None
    try:
        candidate = service.load_candidate(rules, filename=CANDIDATE_FILENAME, ruleset=ruleset)
    except CandidateInvalid as exc:
        raise ApiError(
            422,
            "invalid_rules",
            "The candidate rule file does not pass router check: see details.",
            [
                {
                    "path": f"{p.file}:{p.line}:{p.col}",
                    "message": p.message,
                    "severity": p.severity,
                }
                for p in exc.problems
            ],
        ) from None
    require_ruleset_access(request, candidate.name)
    report = await service.replay(candidate, since=cutoff)
    return json_response(report.to_dict())


# Rulesets ---------------------------------------------------------------------------------


async def rulesets(request: web.Request) -> web.Response:
    """``GET /v1/rulesets``: what is being served (that the key may use), and the last error."""
    service = request.app[SERVICE]
    key = request.get(API_KEY)
    scoped = key is not None and key.scoped
    listed = service.rulesets(visible=key.allows if key is not None else _everything)
    error = service.last_reload_problem(visible=key.allows if key is not None and scoped else None)
    return json_response(
        {
            "rulesets": [
                {
                    "name": r.name,
                    "version": r.version,
                    "rules": r.rules,
                    "loaded_at": r.loaded_at.isoformat(),
                    "source": r.source,
                }
                for r in listed
            ],
            "last_reload_error": None
            if error is None
            else {"file": error.file, "message": error.message, "at": error.at.isoformat()},
        }
    )


def _everything(name: str) -> bool:
    return True


# Push ------------------------------------------------------------------------------------


async def push_event(request: web.Request) -> web.Response:
    """``POST /v1/events/polyai``: keep pushed facts; 202 only once the store has them."""
    raw = await read_json_bytes(request, request.app[SETTINGS].max_body_bytes)
    _authenticate_push(request, raw)
    event = parse_model(raw, PushEvent)
    await request.app[SERVICE].push(
        event.id,
        event.shared_id,
        data=event.data,
        state=event.state,
        conversation=event.conversation,
    )
    return json_response({"status": "accepted"}, status=202)


def _authenticate_push(request: web.Request, raw: bytes) -> None:
    """A valid API key, or a valid, fresh ``X-Router-Signature`` over the raw body.

    With neither API keys nor a webhook secret configured, auth is off (loopback only).
    """
    if request.get(API_KEY) is not None:
        return
    settings = request.app[SETTINGS]
    secret = settings.webhook_secret
    if not secret and not request.app[API_KEYS]:
        return
    header = request.headers.get(signature.HEADER)
    if not secret or header is None:
        raise unauthorized(presented_key(request) is not None)
    verdict = signature.verify(header, raw, secret, tolerance_s=settings.webhook_tolerance_s)
    if verdict == "ok":
        return
    raise ApiError(
        401,
        "invalid_signature",
        _SIGNATURE_REFUSALS[verdict],
        [{"path": signature.HEADER, "message": verdict}],
    )


_SIGNATURE_REFUSALS = {
    "malformed": f"{signature.HEADER} must be 't=<unix seconds>,sha256=<hex HMAC-SHA256 of "
    '"<t>." followed by the raw body>\'.',
    "stale": f"{signature.HEADER} was made too long ago (or ahead): its t is further than "
    "ROUTER_WEBHOOK_TOLERANCE_S from the router's clock; sign each push when it is sent.",
    "mismatch": f"{signature.HEADER} does not match the body and its t.",
}


# Operations -------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the process serves."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 while the default ruleset serves and no ruleset that served since
    start-up is lost; a new file that was never valid, or a store outage, is not a reason to
    take the replica out (it still routes on lookups and inline facts)."""
    ready = await request.app[SERVICE].readiness()
    body = {
        "status": "ready" if ready.ready else "not_ready",
        "rulesets": ready.rulesets,
        "store": ready.store,
        "reason": ready.reason,
    }
    return json_response(body, status=200 if ready.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text; with ``PROMETHEUS_MULTIPROC_DIR`` set, the totals
    of every worker process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload = generate_latest(registry)
    else:
        payload = generate_latest(REGISTRY)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3.1 document of this API."""
    return web.Response(body=openapi_bytes(), content_type=JSON, charset="utf-8")
