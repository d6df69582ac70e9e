"""Typed keys of the application's and of each request's state (aiohttp ``AppKey``/``RequestKey``).

Kept apart from :mod:`router.http.app` so middlewares and handlers can import them
without importing the app factory.
"""

from __future__ import annotations

from aiohttp import web

from router.service import DecisionService
from router.settings import ApiKey, Settings

SETTINGS = web.AppKey("settings", Settings)
API_KEYS = web.AppKey("api_keys", tuple[ApiKey, ...])
SERVICE = web.AppKey("decision_service", DecisionService)
"""The process's decision service (made in the app's cleanup context)."""

REQUEST_ID = web.RequestKey("request_id", str)
ARRIVAL = web.RequestKey("arrival", float)
"""``time.monotonic()`` when the first middleware saw the request: the budget's start."""
API_KEY: web.RequestKey[ApiKey | None] = web.RequestKey("api_key")
"""The key the caller authenticated with; ``None`` when auth is off or not yet shown."""
LOGGED = web.RequestKey("logged", bool)
"""Set by a handler that logged the call itself (``decision``): no ``request`` line then."""
ERROR_CODE = web.RequestKey("error_code", str)
"""The error code of a failed request's answer, for its ``request`` log line."""
