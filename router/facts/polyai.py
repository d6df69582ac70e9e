"""The HTTP client for PolyAI's Handoff API and conversation record (contract §1).

Each lookup turns whatever happens upstream into an :class:`Answer` whose
``result`` is ``ok``, ``not_found``, ``timeout`` or ``error``; it never raises
for an upstream fault and never outlives the request's
:meth:`~router.budget.Deadline.upstream_timeout`.

- 404 is ``not_found`` (a definite answer); 429 and 5xx are ``error``.
- 429 and 503 are tried once more when the budget allows: after
  ``Retry-After`` when given and shorter than what is left, and only when
  at least as long as the first try took (and never less than 10 ms) would
  still be left for the second.
- At most ``ROUTER_UPSTREAM_MAX_BYTES`` of a body are read; a longer body,
  a body that is not JSON, or JSON not of the expected shape is ``error``.
- Bodies are asked for uncompressed; a compressed one is inflated with the
  same byte limit on its *inflated* size (no decompression bombs).
- Small non-2xx bodies (a 404 above all) are read to the end so the
  keep-alive connection goes back to the pool.
- A connection that drops before any answer is resent once by aiohttp
  itself (RFC 9112 §9.3.1, for the stale keep-alive case); that happens
  inside the same deadline and is still one lookup.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
import structlog
from yarl import URL

from router.budget import Deadline
from router.settings import Settings

LookupResult = Literal["ok", "not_found", "timeout", "error", "circuit_open"]
"""How a lookup ended; ``circuit_open`` comes from the breaker, never from the client."""
FAILED: frozenset[str] = frozenset({"timeout", "error", "circuit_open"})
"""Results that make a source *failed* (its namespace unknown, the decision degraded)."""

RETRY_STATUSES = frozenset({429, 503})
MIN_RETRY_S = 0.010
"""Least time that must be left for a retry to be worth making."""
_CHUNK = 64 * 1024
_DRAIN_BYTES = 16 * 1024
_USER_AGENT = "polyai-router/0.1"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one lookup (retries included).

    ``body`` is the validated JSON object when ``result`` is ``ok``; ``reason``
    is a short, secret-free explanation for logs when it is not.
    """

    result: LookupResult
    body: dict[str, Any] | None = None
    status: int | None = None
    reason: str = ""
    tries: int = 1


class _BadBody(Exception):
    """The body was too large, not JSON, or not of the expected shape."""


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    """The process's one session for PolyAI lookups; call inside the running loop.

    Keep-alive connections (so a lookup pays no TLS handshake), a bounded
    pool, cached DNS, no cookies, no proxies from the environment, no
    automatic decompression (bodies are inflated under the size limit by
    :class:`PolyAIClient`) and no exceptions for HTTP statuses. The session
    timeout is only a backstop: each lookup is bounded by its deadline.
    """
    connector = aiohttp.TCPConnector(
        limit=200,
        limit_per_host=100,
        ttl_dns_cache=60,
        keepalive_timeout=30.0,
    )
    backstop = settings.max_budget_ms / 1000.0
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=backstop, sock_connect=backstop),
        auto_decompress=False,
        raise_for_status=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": _USER_AGENT},
    )


def _segment(value: str) -> str:
    """``value`` quoted as one path segment (``/``, ``.`` and ``..`` cannot escape it)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)


def _inflate(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo a ``Content-Encoding``, refusing output over ``max_bytes``."""
    if encoding in {"", "identity"}:
        return raw
    if encoding in {"gzip", "x-gzip"}:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise _BadBody(f"unsupported content-encoding {encoding!r}")
    try:
        out = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise _BadBody("corrupt compressed body") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise _BadBody("body over ROUTER_UPSTREAM_MAX_BYTES")
    return out


async def _read_raw(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body as sent, read in chunks and abandoned as soon as it passes ``max_bytes``."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise _BadBody("body over ROUTER_UPSTREAM_MAX_BYTES")
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > max_bytes:
            raise _BadBody("body over ROUTER_UPSTREAM_MAX_BYTES")
    return bytes(buf)


async def _read_limited(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, inflated if it was compressed, of at most ``max_bytes`` either way."""
    raw = await _read_raw(resp, max_bytes)
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    return _inflate(raw, encoding, max_bytes)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read a small non-2xx body to its end so the keep-alive connection is reused.

    A 404 is a normal answer here; closing its connection would make the next
    lookup pay a new TCP and TLS handshake. A large or broken body is left
    unread and the connection is closed instead.
    """
    try:
        await _read_raw(resp, _DRAIN_BYTES)
    except (_BadBody, aiohttp.ClientError) as exc:
        log.debug("upstream_body_not_drained", reason=type(exc).__name__)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadBody("body is not JSON") from exc
    if not isinstance(body, dict):
        raise _BadBody("body is not a JSON object")
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _BadBody(f"{key!r} is not a string")


def _handoff_shape(raw: bytes) -> dict[str, Any]:
    """``{"id", "shared_id", "data"}`` from a Handoff API body (unknown fields ignored)."""
    body = _json_object(raw)
    data = body.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise _BadBody("'data' is not an object")
    return {
        "id": _optional_str(body, "id"),
        "shared_id": _optional_str(body, "shared_id"),
        "data": data,
    }


def _record_shape(raw: bytes) -> dict[str, Any]:
    """A conversation record, with ``state`` an object (missing or null: empty)."""
    body = _json_object(raw)
    state = body.get("state")
    if state is None:
        body["state"] = {}
    elif not isinstance(state, dict):
        raise _BadBody("'state' is not an object")
    return body


class PolyAIClient:
    """Lookups against the two PolyAI endpoints, over the app's one session."""

    __slots__ = ("_data_base", "_handoff_url", "_headers", "_max_bytes", "_session")

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._max_bytes = settings.upstream_max_bytes
        self._headers = {
            "x-api-key": settings.polyai_api_key,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        account = _segment(settings.polyai_account_id)
        project = _segment(settings.polyai_project_id)
        self._handoff_url = f"{settings.handoff_base_url}/v1/{account}/{project}/handoff_state"
        self._data_base = f"{settings.data_base_url}/v1/agents/{_segment(settings.agent_id)}"

    def handoff_url(self, *, conversation_id: str | None, shared_id: str | None) -> URL:
        """``…/handoff_state?id=…``, or ``?shared_id=…`` when only that is known."""
        if conversation_id is not None:
            query = {"id": conversation_id}
        elif shared_id is not None:
            query = {"shared_id": shared_id}
        else:
            raise ValueError("a handoff lookup needs a conversation id or a shared id")
        return URL(self._handoff_url, encoded=True).with_query(query)

    def conversation_url(self, conversation_id: str) -> URL:
        """``…/v1/agents/{agent_id}/conversations/{conversation_id}``."""
        return URL(f"{self._data_base}/conversations/{_segment(conversation_id)}", encoded=True)

    async def handoff_state(
        self,
        *,
        conversation_id: str | None = None,
        shared_id: str | None = None,
        deadline: Deadline,
    ) -> Answer:
        """The handoff state stored for a conversation.

        ``body`` is ``{"id", "shared_id", "data"}`` (ids may be ``None``).
        """
        url = self.handoff_url(conversation_id=conversation_id, shared_id=shared_id)
        return await self._lookup("handoff", url, _handoff_shape, deadline)

    async def conversation(self, conversation_id: str, *, deadline: Deadline) -> Answer:
        """The conversation record; ``body`` is the record with ``state`` an object."""
        return await self._lookup(
            "state", self.conversation_url(conversation_id), _record_shape, deadline
        )

    async def _lookup(
        self,
        source: str,
        url: URL,
        shape: Callable[[bytes], dict[str, Any]],
        deadline: Deadline,
    ) -> Answer:
        budget = deadline.upstream_timeout()
        if budget <= 0:
            return Answer("timeout", reason="no time left in the budget", tries=0)
        tries = 0
        status: int | None = None
        try:
            async with deadline.upstream_window():
                while True:
                    tries += 1
                    began = time.monotonic()
                    async with self._session.get(
                        url,
                        headers=self._headers,
                        allow_redirects=False,
                        auto_decompress=False,
                    ) as resp:
                        status = resp.status
                        if 200 <= status < 300:
                            return Answer(
                                "ok",
                                shape(await _read_limited(resp, self._max_bytes)),
                                status,
                                tries=tries,
                            )
                        await _drain(resp)
                        if status == 404:
                            return Answer("not_found", status=status, tries=tries)
                        wait = _retry_after(resp.headers.get("Retry-After"))
                    if status not in RETRY_STATUSES or tries > 1:
                        return Answer("error", status=status, reason=f"HTTP {status}", tries=tries)
                    wait = wait or 0.0
                    left = deadline.upstream_timeout() - wait
                    if left < max(MIN_RETRY_S, time.monotonic() - began):
                        return Answer(
                            "error",
                            status=status,
                            reason=f"HTTP {status}, no time left to retry",
                            tries=tries,
                        )
                    log.debug("upstream_retry", source=source, status=status, wait_s=wait)
                    if wait:
                        await asyncio.sleep(wait)
        except TimeoutError:
            return Answer("timeout", status=status, reason="deadline reached", tries=tries)
        except _BadBody as exc:
            return Answer("error", status=status, reason=str(exc), tries=tries)
        except (aiohttp.ClientError, OSError) as exc:
            return Answer("error", status=status, reason=type(exc).__name__, tries=tries)
