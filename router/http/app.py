"""The aiohttp application: middlewares, routes, and the resources that live as long as it.

One :class:`aiohttp.ClientSession`, one store and one fact gatherer per process, made in a
cleanup context (so they are created inside the running loop and closed on shutdown,
after in-flight requests have drained).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from aiohttp import web

from router.facts import FactGatherer
from router.facts.polyai import make_client_session
from router.http import handlers
from router.http.keys import (
    API_KEYS,
    GATHERER,
    PENDING_SAVES,
    RULES,
    SESSION,
    SETTINGS,
    STORE,
)
from router.http.middlewares import (
    add_standard_headers,
    add_worker_header,
    handle_request,
)
from router.metrics import STORE_UP
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.settings import Settings
from router.store import Store, StoreError, open_store

log = structlog.get_logger("router.http")

_SAVE_DRAIN_TIMEOUT_S = 2.0
"""Longest wait at shutdown for decision saves still running (drain + this + the store's
outbox flush stay under the contract's 10 s)."""


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    session: aiohttp.ClientSession | None = None,
    rules_registry: RulesRegistry | None = None,
) -> web.Application:
    """Build the application.

    ``store`` and ``session`` default to ones the app opens and closes itself (a store or
    session passed in belongs to the caller). Without ``rules_registry`` the rules at
    ``settings.rules`` are loaded once, unwatched (``router serve`` passes a registry its
    watcher keeps current).
    """
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[handle_request],
    )
    app[SETTINGS] = settings
    app[API_KEYS] = settings.parsed_api_keys()
    if rules_registry is None:
        rules_registry = RulesRegistry()
        RulesReloader(rules_registry, settings.rules).reload()
    app[RULES] = rules_registry
    app[PENDING_SAVES] = set()
    app.cleanup_ctx.append(_resources(settings, store, session))
    app.on_response_prepare.append(add_standard_headers)
    if settings.workers > 1:
        app.on_response_prepare.append(add_worker_header)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/route", handlers.route, name="route")
    app.router.add_post("/v1/explain", handlers.explain, name="explain")
    app.router.add_get(
        "/v1/decisions/{conversation_id}",
        handlers.decision_by_conversation,
        name="decision_by_conversation",
        allow_head=False,
    )
    app.router.add_get(
        "/v1/decisions",
        handlers.decision_by_shared_id,
        name="decision_by_shared_id",
        allow_head=False,
    )
    app.router.add_get("/v1/rulesets", handlers.rulesets, name="rulesets", allow_head=False)
    app.router.add_post("/v1/events/polyai", handlers.push_event, name="push_event")
    app.router.add_get("/healthz", handlers.healthz, name="healthz")
    app.router.add_get("/readyz", handlers.readyz, name="readyz")
    app.router.add_get("/metrics", handlers.metrics, name="metrics", allow_head=False)
    app.router.add_get("/openapi.json", handlers.openapi, name="openapi", allow_head=False)


def _resources(
    settings: Settings, store: Store | None, session: aiohttp.ClientSession | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        own_store = store is None
        own_session = session is None
        app[STORE] = open_store(settings) if store is None else store
        if own_store:
            await _connect(app[STORE])
        if app[STORE].kind == "memory":
            STORE_UP.set(1)  # this process's own memory always answers
        app[SESSION] = make_client_session(settings) if session is None else session
        app[GATHERER] = FactGatherer(settings, app[STORE], app[SESSION])
        yield
        await _drain_saves(app)
        await app[GATHERER].drain()
        if own_session:
            await app[SESSION].close()
        if own_store:
            await app[STORE].close()

    return resources


async def _connect(store: Store) -> None:
    """Dial a shared store at start (a cluster client learns its slot map); best effort:
    a store that is down now is retried by its own breaker, and routing goes on without it."""
    connect = getattr(store, "connect", None)
    if connect is None:
        return
    try:
        await connect()
    except StoreError as exc:
        log.warning("store_unreachable_at_start", reason=str(exc))


async def _drain_saves(app: web.Application) -> None:
    """Let decision saves still running after their answer finish before the store closes."""
    pending = app[PENDING_SAVES]
    if not pending:
        return
    _, late = await asyncio.wait(set(pending), timeout=_SAVE_DRAIN_TIMEOUT_S)
    for task in late:
        task.cancel()
    if late:
        log.warning("decision_saves_abandoned", count=len(late))
