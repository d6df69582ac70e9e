"""One coroutine per endpoint of contract §2. Cross-cutting concerns live in the middlewares.

The handlers know the engine only through ``RuleSet.decide`` / ``RuleSet.explain`` and
``Decision.to_dict()``; the facts only through ``FactGatherer.gather``; the store only
through its interface.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson
import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from pydantic import TypeAdapter, ValidationError

from router import RuleSet
from router.budget import Deadline
from router.facts import GatheredFacts
from router.http.body import parse_model, read_json_bytes, validation_details
from router.http.errors import ApiError
from router.http.keys import (
    API_KEY,
    API_KEYS,
    ARRIVAL,
    GATHERER,
    LOGGED,
    PENDING_SAVES,
    RULES,
    SETTINGS,
    STORE,
)
from router.http.middlewares import presented_key, require_ruleset_access, unauthorized
from router.http.models import ConversationId, PushEvent, RouteRequest
from router.http.openapi import openapi_bytes
from router.metrics import DECISION_DURATION, DECISIONS, DEGRADED_DECISIONS
from router.store import StoreError

log = structlog.get_logger("router.http")

JSON = "application/json"
SIGNATURE_HEADER = "X-Router-Signature"
_STORE_STATUS_TIMEOUT_S = 1.0
_ID = TypeAdapter(ConversationId)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer, serialised with orjson."""
    return web.Response(status=status, body=orjson.dumps(data), content_type=JSON, charset="utf-8")


# Deciding ------------------------------------------------------------------------------


async def route(request: web.Request) -> web.Response:
    """``POST /v1/route``: gather the facts, decide, store the decision, answer."""
    settings = request.app[SETTINGS]
    body, ruleset, deadline = await _decision_request(request)
    gathered = await _gather(request, body, deadline)
    decision = ruleset.decide(
        _facts(gathered, body), conversation_id=body.conversation_id, shared_id=body.shared_id
    )
    answer = {"decision_id": str(uuid.uuid4()), **_decision_fields(decision.to_dict(), gathered)}
    answer["elapsed_ms"] = round(deadline.elapsed() * 1000, 3)
    await _save_decision(request.app, answer, gathered, deadline)
    _record(answer, decision_facts=gathered.facts, log_state=settings.log_state)
    request[LOGGED] = True  # the decision line stands for the request line
    return json_response(answer)


async def explain(request: web.Request) -> web.Response:
    """``POST /v1/explain``: the decision plus the per-rule trace; nothing is recorded."""
    body, ruleset, deadline = await _decision_request(request)
    gathered = await _gather(request, body, deadline)
    decision = ruleset.explain(
        _facts(gathered, body), conversation_id=body.conversation_id, shared_id=body.shared_id
    )
    answer = _decision_fields(decision.to_dict(), gathered)
    answer["trace"] = list(decision.trace or ())
    answer["elapsed_ms"] = round(deadline.elapsed() * 1000, 3)
    log.info("explained", ruleset=answer["ruleset"], rule=answer["rule"], outcome=answer["outcome"])
    return json_response(answer)


async def _decision_request(request: web.Request) -> tuple[RouteRequest, RuleSet, Deadline]:
    """Validate the body, check the key may use the ruleset, pick the ruleset up once."""
    settings = request.app[SETTINGS]
    raw = await read_json_bytes(request, settings.max_body_bytes)
    body = parse_model(raw, RouteRequest)
    require_ruleset_access(request, body.ruleset)
    ruleset = _current_ruleset(request, body.ruleset)
    budget_ms = body.budget_within(settings.budget_ms, settings.max_budget_ms)
    return body, ruleset, Deadline.start(budget_ms, started_at=request[ARRIVAL])


def _current_ruleset(request: web.Request, name: str) -> RuleSet:
    """The ruleset serving ``name`` now; this object serves the whole request."""
    registry = request.app[RULES]
    ruleset = registry.get(name)
    if ruleset is not None:
        return ruleset
    reason = registry.not_ready_reason()
    if reason is not None:
        raise ApiError(
            503,
            "not_ready",
            f"The ruleset {name!r} is not loaded: {reason}.",
            headers={"Retry-After": "1"},
        )
    raise ApiError(
        404,
        "ruleset_not_found",
        f"There is no ruleset named {name!r}.",
        [{"path": "ruleset", "message": "unknown ruleset"}],
    )


async def _gather(request: web.Request, body: RouteRequest, deadline: Deadline) -> GatheredFacts:
    """The request's facts. A fault in gathering itself (a bug: upstream and store faults
    are already reported per source) degrades the decision instead of failing the call."""
    try:
        return await request.app[GATHERER].gather(
            conversation_id=body.conversation_id,
            shared_id=body.shared_id,
            inline_handoff=body.handoff,
            inline_state=body.state,
            deadline=deadline,
            # Lookups are cached only with a routed call's decision (one store round trip);
            # explain records nothing.
            cache_with_decision=True,
        )
    except Exception:
        log.exception("facts_gathering_failed")
        return GatheredFacts(
            facts=dict.fromkeys(("handoff", "state", "conversation")),
            sources={"handoff": "error", "state": "error"},
            conversation_id=body.conversation_id,
            shared_id=body.shared_id,
        )


def _facts(gathered: GatheredFacts, body: RouteRequest) -> dict[str, Any]:
    return {**gathered.facts, "context": body.context}


def _decision_fields(decision: dict[str, Any], gathered: GatheredFacts) -> dict[str, Any]:
    """The answer's fields in the contract's order (§2.1), from the engine's decision."""
    degraded = bool(decision["degraded"]) or gathered.degraded
    return {
        "conversation_id": gathered.conversation_id,
        "shared_id": gathered.shared_id,
        "ruleset": decision["ruleset"],
        "ruleset_version": decision["ruleset_version"],
        "queue": decision["queue"],
        "label": decision["label"],
        "priority": decision["priority"],
        "skills": decision["skills"],
        "attributes": decision["attributes"],
        "rule": decision["rule"],
        "outcome": decision["outcome"],
        "degraded": degraded,
        "sources": dict(gathered.sources),
    }


async def _save_decision(
    app: web.Application, answer: dict[str, Any], gathered: GatheredFacts, deadline: Deadline
) -> None:
    """Store the decision, waiting at most what is left of the budget.

    A save still running when the budget ends finishes in the background (awaited at
    shutdown); a failed save is logged, and the decision goes out all the same.
    """
    saving = app[GATHERER].save_decision(answer, gathered, deadline=deadline)
    if app[STORE].kind == "memory":  # never waits: no task, no timer
        try:
            await saving
        except StoreError as exc:
            log.warning("decision_not_saved", reason=str(exc))
        return
    save = asyncio.create_task(saving)
    pending = app[PENDING_SAVES]
    pending.add(save)
    save.add_done_callback(pending.discard)
    save.add_done_callback(_report_failed_save)
    await asyncio.wait({save}, timeout=deadline.remaining())


def _report_failed_save(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        log.warning("decision_not_saved", reason="cancelled")
        return
    error = task.exception()
    if isinstance(error, StoreError | TimeoutError):
        log.warning("decision_not_saved", reason=error.__class__.__name__)
    elif error is not None:
        log.error("decision_not_saved", exc_info=error)


@functools.lru_cache(maxsize=4096)
def _decision_counter(ruleset: str, rule: str, outcome: str) -> Counter:
    """The labelled child for a (ruleset, rule, outcome), looked up once (rule ids are bounded
    by the rule files, so the cache is too)."""
    return DECISIONS.labels(ruleset=ruleset, rule=rule, outcome=outcome)


def _record(answer: dict[str, Any], *, decision_facts: Any, log_state: bool) -> None:
    """The ``decision`` log line and the decision metrics (no ids in labels)."""
    _decision_counter(answer["ruleset"], answer["rule"] or "", answer["outcome"]).inc()
    if answer["degraded"]:
        DEGRADED_DECISIONS.labels(ruleset=answer["ruleset"]).inc()
    DECISION_DURATION.observe(answer["elapsed_ms"] / 1000)
    fields = {
        key: answer[key]
        for key in (
            "decision_id",
            "conversation_id",
            "shared_id",
            "ruleset",
            "ruleset_version",
            "rule",
            "queue",
            "outcome",
            "degraded",
            "sources",
            "elapsed_ms",
        )
    }
    if log_state:
        fields.update(label=answer["label"], attributes=answer["attributes"], facts=decision_facts)
    log.info("decision", **fields)


# Reading decisions back -----------------------------------------------------------------


async def decision_by_conversation(request: web.Request) -> web.Response:
    """``GET /v1/decisions/{conversation_id}``: the latest decision of that conversation."""
    conversation_id = _valid_id(request.match_info["conversation_id"], "conversation_id")
    store = request.app[STORE]
    return await _stored_decision(request, store.decision_for_conversation(conversation_id))


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
    store = request.app[STORE]
    return await _stored_decision(request, store.decision_for_shared_id(shared_id))


def _valid_id(value: str, name: str) -> str:
    try:
        return _ID.validate_python(value)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False, include_input=False))
        for detail in details:
            detail["path"] = name
        raise ApiError(422, "validation_error", f"{name} is not valid.", details) from None


async def _stored_decision(
    request: web.Request, lookup: Awaitable[dict[str, Any] | None]
) -> web.Response:
    try:
        decision = await lookup
    except (StoreError, TimeoutError) as exc:
        log.warning("store_read_failed", operation="decision", reason=exc.__class__.__name__)
        raise _store_unavailable() from None
    if decision is None:
        raise ApiError(404, "decision_not_found", "No decision is stored for that id.")
    require_ruleset_access(request, str(decision.get("ruleset", "")))
    return json_response(decision)


def _store_unavailable() -> ApiError:
    return ApiError(
        503,
        "store_unavailable",
        "The shared store cannot be reached; retry shortly.",
        headers={"Retry-After": "1"},
    )


# Rulesets ---------------------------------------------------------------------------------


async def rulesets(request: web.Request) -> web.Response:
    """``GET /v1/rulesets``: what is being served (that the key may use), and the last error."""
    snapshot = request.app[RULES].snapshot
    key = request.get(API_KEY)
    listed = [
        {
            "name": name,
            "version": loaded.ruleset.version,
            "rules": len(loaded.ruleset.rules),
            "loaded_at": loaded.loaded_at.isoformat(),
            "source": loaded.ruleset.source,
        }
        for name, loaded in sorted(snapshot.rulesets.items())
        if key is None or key.allows(name)
    ]
    error = snapshot.last_reload_error
    return json_response(
        {
            "rulesets": listed,
            "last_reload_error": None
            if error is None
            else {"file": error.file, "message": error.message, "at": error.at.isoformat()},
        }
    )


# Push ------------------------------------------------------------------------------------


async def push_event(request: web.Request) -> web.Response:
    """``POST /v1/events/polyai``: keep pushed facts; 202 only once the store has them."""
    settings = request.app[SETTINGS]
    raw = await read_json_bytes(request, settings.max_body_bytes)
    _authenticate_push(request, raw)
    event = parse_model(raw, PushEvent)
    try:
        await request.app[STORE].push(
            event.id,
            event.shared_id,
            data=event.data,
            state=event.state,
            conversation=event.conversation,
            ttl_s=settings.push_ttl_s,
        )
    except (StoreError, TimeoutError) as exc:
        log.warning("push_not_stored", reason=exc.__class__.__name__)
        raise _store_unavailable() from None
    log.info("pushed", conversation_id=event.id, shared_id=event.shared_id)
    return json_response({"status": "accepted"}, status=202)


def _authenticate_push(request: web.Request, raw: bytes) -> None:
    """A valid API key, or a valid ``X-Router-Signature`` over the raw body.

    With neither API keys nor a webhook secret configured, auth is off (loopback only).
    """
    if request.get(API_KEY) is not None:
        return
    secret = request.app[SETTINGS].webhook_secret
    if not secret and not request.app[API_KEYS]:
        return
    signature = request.headers.get(SIGNATURE_HEADER)
    if secret and signature is not None:
        if _signature_matches(secret, raw, signature):
            return
        raise ApiError(
            401,
            "invalid_signature",
            f"{SIGNATURE_HEADER} does not match the body "
            "(expected sha256=<hex HMAC-SHA256 of the raw body>).",
        )
    raise unauthorized(presented_key(request) is not None)


def _signature_matches(secret: str, raw: bytes, signature: str) -> bool:
    """Constant-time check of ``sha256=<hex>`` against the HMAC-SHA256 of ``raw``."""
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    offered = signature.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected.encode(), offered)


# Operations -------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the process serves."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 when every rule file has a valid version; a store outage is not
    a reason to take the replica out (it still routes on lookups and inline facts)."""
    registry = request.app[RULES]
    reason = registry.not_ready_reason()
    body = {
        "status": "ready" if reason is None else "not_ready",
        "rulesets": {
            name: loaded.ruleset.version
            for name, loaded in sorted(registry.snapshot.rulesets.items())
        },
        "store": await _store_status(request.app),
        "reason": reason,
    }
    return json_response(body, status=200 if reason is None else 503)


async def _store_status(app: web.Application) -> str:
    try:
        return await asyncio.wait_for(app[STORE].status(), _STORE_STATUS_TIMEOUT_S)
    except (StoreError, TimeoutError, OSError) as exc:
        log.warning("store_status_failed", reason=exc.__class__.__name__)
        return "down"


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
