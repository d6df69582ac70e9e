"""Cross-cutting request handling: request context, authentication, errors, the request log.

Handlers stay about their endpoint: they get an authenticated request with a request id
bound to every log line, raise :class:`~router.http.errors.ApiError` for failures, and
never see a stack trace escape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web

from router.http.errors import ApiError, body_too_large, error_response, from_status
from router.http.keys import (
    API_KEY,
    API_KEYS,
    ARRIVAL,
    ERROR_CODE,
    LOGGED,
    REQUEST_ID,
    SETTINGS,
)
from router.ids import new_id
from router.observe import bind_request_id, unbind_request_id
from router.service import NotReady, RulesetNotFound, ServiceError, StoreUnavailable
from router.settings import ApiKey

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("router.http")

REQUEST_ID_HEADER = "X-Request-ID"
WORKER_HEADER = "X-Router-Worker"
"""With several workers, the process id of the worker that answered (ops and tests)."""
_REQUEST_ID = re.compile(r"[ -~]{1,128}")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
"""Paths that need no API key (probes, scrapes, the API description)."""

ROUTE_ROLES: dict[str, str] = {
    "/v1/route": "route",
    "/v1/explain": "explain",
    "/v1/replay": "explain",
    "/v1/decisions/{conversation_id}": "read",
    "/v1/decisions": "read",
    "/v1/rulesets": "ops",
    "/v1/events/polyai": "push",
    "/ops": "ops",
}
"""The role (contract §8) each endpoint needs, by route template."""
ROLE_PREFIXES = (("/v1/platforms/", "route"), ("/ops/", "ops"))
"""Roles of whole families of endpoints, by the start of their template."""
UNLISTED_ROLE = "ops"
"""An endpoint missing from the tables above needs the most trusted role: a route added
without a role fails closed for keys with few roles, never open."""

SIGNED_ROUTES = frozenset({"push_event", "platform_twilio_voice", "platform_twilio_studio"})
"""Route names that may authenticate by request signature instead of a key (their handler
checks the signature, or refuses the request, once it has the body)."""

PLATFORM_ROUTES = frozenset(
    {
        "platform_amazon_connect",
        "platform_twilio_voice",
        "platform_twilio_studio",
        "platform_genesys",
    }
)
"""The platform endpoints' route names: their 401s challenge for Basic auth."""

OPS_ROUTES = frozenset({"ops_page", "ops_feed", "ops_static"})
"""The ops page and its feeds: a browser reads them, so their 401s challenge for Basic
auth (the key as password) and the browser prompts."""

PUBLIC_ROUTES = frozenset({"agent_card", "agent_card_static"})
"""Route names that need no API key: the agent card checks its link's signature instead."""

FRAMEABLE_ROUTES = frozenset({"agent_card", "agent_card_static"})
"""Route names an agent desktop may frame: no ``X-Frame-Options: DENY`` (their own CSP
says who may frame them, from ``ROUTER_CARD_FRAME_ANCESTORS``)."""

SERVER_NAME = "router"
"""The ``Server`` header: no framework or version for a scanner to match."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

_HEADERS_KEPT_ON_ERRORS = ("Allow", "WWW-Authenticate", "Retry-After")

CLIENT_CLOSED = 499
"""The status a request's log line shows when the caller hung up before the answer (nginx's
convention): no answer is sent, and it is not a server error."""


def _route_template(request: web.Request) -> str:
    """The matched route's template (never the raw path, which may carry ids)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


@web.middleware
async def handle_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything around a handler, in one middleware (each layer costs a coroutine and
    aiohttp's wrapper per request):

    1. note the arrival time; adopt the caller's ``X-Request-ID`` or make one, and bind it
       to every log line of the request;
    2. authenticate (:func:`authenticate`);
    3. turn every failure into the contract's error shape (:func:`error_answer`), so no
       stack trace ever leaves;
    4. log one ``request`` line (route template, never the raw path; probes at debug),
       unless the handler already logged the call (a routed call's ``decision`` line).
    """
    # The budget starts when the request's head came in (stamped by the connection, before
    # any request of that loop turn did its work), not one request's worth of CPU later.
    received = getattr(request.protocol, "head_received_at", None)
    arrival = request[ARRIVAL] = arrival_of(
        request.headers.get(REQUEST_START_HEADER), received or time.monotonic()
    )
    request_id = request[REQUEST_ID] = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    token = bind_request_id(request_id)
    try:
        try:
            authenticate(request)
            response = await handler(request)
        except asyncio.CancelledError:
            log.info("request_cancelled", method=request.method, route=_route_template(request))
            raise
        except Exception as exc:
            response = error_answer(request, exc)
            if response.status == 408:
                await _answer_and_close(request, response)
        if not request.get(LOGGED):
            log_at = log.debug if request.path in PUBLIC_PATHS else log.info
            code = request.get(ERROR_CODE)
            log_at(
                "request",
                method=request.method,
                route=_route_template(request),
                status=response.status,
                duration_ms=round((time.monotonic() - arrival) * 1000, 3),
                **({"code": code} if code is not None else {}),
            )
        return response
    finally:
        unbind_request_id(token)


REQUEST_START_HEADER = "X-Request-Start"
_LONGEST_QUEUE_S = 60.0


def request_id_for(offered: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is printable ASCII of 1-128 characters, else a
    new id."""
    return offered if offered and _REQUEST_ID.fullmatch(offered) else new_id()


def arrival_of(stamp: str | None, now: float) -> float:
    """When the request arrived, on the monotonic clock: ``now``, or earlier when a load
    balancer in front stamped ``X-Request-Start`` (``stamp``: ``t=<unix time>`` in seconds,
    milli- or microseconds, as HAProxy, nginx and Heroku write it), so time spent queued
    before the router counts against the budget. A stamp in the future, unreadable or more
    than a minute old is ignored."""
    if not stamp:
        return now
    text = stamp.strip().removeprefix("t=")
    try:
        value = float(text)
    except ValueError:
        return now
    if value > 1e14:
        value /= 1e6  # microseconds
    elif value > 1e11:
        value /= 1e3  # milliseconds
    queued = time.time() - value
    if not 0.0 < queued < _LONGEST_QUEUE_S:
        return now
    return now - queued


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The contract's error answer for a failure (its code noted in ``request[ERROR_CODE]``
    for the request line); a redirect (3xx) is re-raised.

    A caller that hung up (its connection lost while its body was read) is not an error
    of the server: a debug line, and :data:`CLIENT_CLOSED` for the request line."""
    if isinstance(exc, ConnectionError) and _hung_up(request):
        log.debug("client_disconnected", route=_route_template(request))
        request[ERROR_CODE] = "client_disconnected"
        return web.Response(status=CLIENT_CLOSED)
    error = _as_api_error(request, exc)
    request[ERROR_CODE] = error.code
    response = error_response(error)
    if error.headers.get("Connection") == "close":
        response.force_close()
    return response


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response`` now and close the connection, rather than let aiohttp keep reading
    (lingering on) the body of a sender too slow to finish it."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass
    request.protocol.force_close()


def _hung_up(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _as_api_error(request: web.Request, exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ServiceError):
        return service_refusal(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        kept = {k: exc.headers[k] for k in _HEADERS_KEPT_ON_ERRORS if k in exc.headers}
        if exc.status == 413:
            return body_too_large(request.app[SETTINGS].max_body_bytes)
        return from_status(exc.status, headers=kept)
    log.error("unhandled_error", route=_route_template(request), exc_info=exc)
    return from_status(500)


def service_refusal(exc: ServiceError) -> ApiError:
    """The contract's answer for a refusal of the decision service."""
    if isinstance(exc, RulesetNotFound):
        return ApiError(
            404,
            "ruleset_not_found",
            str(exc),
            [{"path": "ruleset", "message": "unknown ruleset"}],
        )
    if isinstance(exc, NotReady):
        return ApiError(503, "not_ready", str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, "store_unavailable", str(exc), headers={"Retry-After": "1"})
    return ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"})


def find_key(keys: Iterable[ApiKey], presented: str) -> ApiKey | None:
    """The configured key equal to ``presented``, comparing in constant time against each.

    Digests are compared, not the keys, so that not even a key's length shows in the timing;
    there is no early exit, so neither does which key (if any) matched.
    """
    offered = _digest(presented)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(key.digest, offered):
            found = found or key
    return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def presented_key(request: web.Request) -> str | None:
    """The key in ``Authorization: Bearer …``, the password of ``Authorization: Basic …``
    (any user name: what Twilio Studio and Genesys data actions can send), or ``X-API-Key``.

    A Basic header that cannot be decoded presents its raw token, which matches no key
    (so the caller hears "invalid", not "missing").
    """
    return key_presented(request.headers.get("Authorization"), request.headers.get("X-API-Key"))


def key_presented(authorization: str | None, api_key_header: str | None) -> str | None:
    """:func:`presented_key`, from the two headers' values."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if token:
        scheme = scheme.lower()
        if scheme == "bearer":
            return token
        if scheme == "basic":
            return _basic_password(token)
    api_key = (api_key_header or "").strip()
    return api_key or None


def _basic_password(token: str) -> str:
    """The password of a Basic credential (``base64(user:password)``), or ``token`` itself
    when it is not one."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return token
    _, colon, password = decoded.partition(":")
    return password if colon and password else token


def authenticate(request: web.Request) -> None:
    """Require a configured API key, except on public paths and when auth is off; the key
    found (or ``None``) is left in ``request[API_KEY]`` for the handler's scope checks.

    Signed routes (the push webhook) may instead carry a request signature, which only
    the handler can check (it needs the raw body); they pass with ``API_KEY`` unset.
    """
    request[API_KEY] = None
    keys = request.app[API_KEYS]
    name = request.match_info.route.name
    if not keys or request.path in PUBLIC_PATHS or name in PUBLIC_ROUTES:
        return
    offered = presented_key(request)
    key = find_key(keys, offered) if offered is not None else None
    if key is None and name not in SIGNED_ROUTES:
        raise unauthorized(offered is not None, basic=name in OPS_ROUTES or name in PLATFORM_ROUTES)
    request[API_KEY] = key
    if key is not None:
        require_role(request, key)


def required_role(request: web.Request) -> str | None:
    """The role the matched endpoint needs (``None`` for a path no endpoint serves)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    template = resource.canonical
    role = ROUTE_ROLES.get(template)
    if role is not None:
        return role
    for prefix, family_role in ROLE_PREFIXES:
        if template.startswith(prefix):
            return family_role
    return UNLISTED_ROLE


def require_role(request: web.Request, key: ApiKey) -> None:
    """403 ``forbidden_role`` unless ``key`` has the role the endpoint needs."""
    role = required_role(request)
    if role is None or key.has(role):
        return
    hint = (
        " A key limited to rulesets cannot push: pushed facts serve every ruleset."
        if role == "push" and key.scoped
        else ""
    )
    raise ApiError(
        403,
        "forbidden_role",
        f"This API key does not have the '{role}' role this endpoint needs.{hint}",
        [{"path": "Authorization", "message": f"needs the '{role}' role"}],
    )


def unauthorized(key_was_offered: bool, *, basic: bool = False) -> ApiError:
    """The 401 for a missing or wrong key.

    ``basic``: challenge with ``WWW-Authenticate: Basic realm="router"``: the ops page and
    its feeds (a browser then prompts, and sends the key as the password), and the platform
    endpoints (Twilio sends the credentials of a URL only after such a challenge).
    """
    if key_was_offered:
        code, message = "invalid_api_key", "The API key is not valid."
    elif basic:
        code, message = (
            "missing_api_key",
            "Send an API key as the password of HTTP Basic auth (any user name), as "
            "'Authorization: Bearer <key>' or as 'X-API-Key: <key>'.",
        )
    else:
        code, message = (
            "missing_api_key",
            "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
        )
    challenge = 'Basic realm="router"' if basic else 'Bearer realm="router"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def require_ruleset_access(request: web.Request, ruleset: str) -> None:
    """403 unless the caller's key may use ``ruleset`` (any key may when unscoped)."""
    key = request.get(API_KEY)
    if key is not None and not key.allows(ruleset):
        raise ApiError(
            403,
            "ruleset_forbidden",
            f"This API key may not use the ruleset {ruleset!r}.",
            [{"path": "ruleset", "message": "not allowed for this key"}],
        )


async def add_standard_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id and the security headers on every answer."""
    response.headers[REQUEST_ID_HEADER] = request.get(REQUEST_ID) or new_id()
    response.headers["Server"] = SERVER_NAME
    frameable = request.match_info.route.name in FRAMEABLE_ROUTES
    for name, value in SECURITY_HEADERS.items():
        if not (frameable and name == "X-Frame-Options"):
            response.headers.setdefault(name, value)


async def add_worker_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` with several workers: which worker answered (its pid)."""
    response.headers[WORKER_HEADER] = str(os.getpid())
