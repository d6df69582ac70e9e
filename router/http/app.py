"""The aiohttp application: middlewares, routes, and the resources that live as long as it.

The app holds one :class:`~router.service.DecisionService` (with its store, HTTP client
session and fact gatherer), made in a cleanup context so it is created inside the running
loop and closed on shutdown, after in-flight requests have drained.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from aiohttp import web

from router.http import handlers
from router.http.keys import API_KEYS, SERVICE, SETTINGS
from router.http.middlewares import (
    add_standard_headers,
    add_worker_header,
    handle_request,
)
from router.platforms import amazon_connect, genesys, twilio
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.service import open_service
from router.settings import Settings
from router.store import Store
from router.web import add_routes as add_web_routes

log = structlog.get_logger("router.http")


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
        rules_registry = RulesRegistry(settings.default_ruleset)
        RulesReloader(rules_registry, settings.rules).reload()
    app.cleanup_ctx.append(_service(settings, rules_registry, store, session))
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
    app.router.add_post("/v1/replay", handlers.replay, name="replay")
    app.router.add_post("/v1/events/polyai", handlers.push_event, name="push_event")
    # The platform fronts (contract §7); their names are middlewares.PLATFORM_ROUTES.
    app.router.add_post(
        "/v1/platforms/amazon-connect", amazon_connect.handle, name="platform_amazon_connect"
    )
    app.router.add_post("/v1/platforms/twilio/voice", twilio.voice, name="platform_twilio_voice")
    app.router.add_post("/v1/platforms/twilio/studio", twilio.studio, name="platform_twilio_studio")
    app.router.add_post("/v1/platforms/genesys", genesys.handle, name="platform_genesys")
    app.router.add_get("/healthz", handlers.healthz, name="healthz")
    app.router.add_get("/readyz", handlers.readyz, name="readyz")
    app.router.add_get("/metrics", handlers.metrics, name="metrics", allow_head=False)
    app.router.add_get("/openapi.json", handlers.openapi, name="openapi", allow_head=False)
    add_web_routes(app)  # the ops page and the agent card


def _service(
    settings: Settings,
    rules: RulesRegistry,
    store: Store | None,
    session: aiohttp.ClientSession | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The decision service for the app's life: opened inside the running loop, closed
    after in-flight requests have drained."""

    async def service(app: web.Application) -> AsyncIterator[None]:
        async with open_service(settings, rules, store=store, session=session) as opened:
            app[SERVICE] = opened
            yield

    return service
