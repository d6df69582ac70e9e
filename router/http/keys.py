"""Typed keys of the application's and of each request's state (aiohttp ``AppKey``/``RequestKey``).

Kept apart from :mod:`router.http.app` so middlewares and handlers can import them
without importing the app factory.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from router.facts import FactGatherer
from router.rules_registry import RulesRegistry
from router.settings import ApiKey, Settings
from router.store import Store

SETTINGS = web.AppKey("settings", Settings)
API_KEYS = web.AppKey("api_keys", tuple[ApiKey, ...])
RULES = web.AppKey("rules", RulesRegistry)
STORE = web.AppKey("store", Store)
SESSION = web.AppKey("client_session", aiohttp.ClientSession)
GATHERER = web.AppKey("fact_gatherer", FactGatherer)
PENDING_SAVES = web.AppKey("pending_saves", set[asyncio.Task[None]])
"""Decision saves still running after their answer left (awaited at shutdown)."""

REQUEST_ID = web.RequestKey("request_id", str)
ARRIVAL = web.RequestKey("arrival", float)
"""``time.monotonic()`` when the first middleware saw the request: the budget's start."""
API_KEY: web.RequestKey[ApiKey | None] = web.RequestKey("api_key")
"""The key the caller authenticated with; ``None`` when auth is off or not yet shown."""
LOGGED = web.RequestKey("logged", bool)
"""Set by a handler that logged the call itself (``decision``): no ``request`` line then."""
