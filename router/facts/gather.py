"""Gathering a conversation's facts for one decision, within its deadline.

For each namespace the first source that has it wins: pushed (``POST
/v1/events/polyai``) > inline (the request's ``handoff`` / ``state``) >
cached lookup > a lookup against PolyAI. The two lookups run concurrently,
or one after the other when only a shared id is known (the conversation id
then comes from the Handoff API's answer).

Choices made here (see the contract §1, §2.1):

- ``sources`` always names ``handoff`` and ``state``. The conversation
  record feeds both ``state`` and ``conversation``, so ``conversation`` is
  named only when its status differs from ``state``'s: when one of them was
  pushed and the other was not, or when inline ``state`` left it unfetched
  (``skipped``). With a shared store, ``store`` reports its health.
- A 404 is *not* cached: handoff state is written at the moment of
  transfer, so a lookup may race the write, and caching the miss would hide
  the state from a retried transfer for ``ROUTER_CACHE_TTL_S``. Concurrent
  requests still share one call (single-flight).
- When only a shared id is known and the handoff lookup failed, the
  conversation record cannot be looked up: ``state`` reports the handoff's
  failure (and is unknown); when the handoff answer names no conversation
  (404), ``state`` is ``not_found``.
- Cache writes run in the background so they never delay an answer;
  :meth:`FactGatherer.drain` waits for them (at shutdown, and in tests). With
  ``gather(..., cache_with_decision=True)`` they are handed back instead, in
  :attr:`GatheredFacts.uncached`, for the caller to write with the decision in one
  store round trip.
- Every store call gets the request's remaining budget as ``timeout_s``; a shared
  store bounds each round trip further by ``ROUTER_STORE_TIMEOUT_MS`` and counts its
  own failures (its circuit breaker), so the gatherer only adds a slightly longer
  guard. The memory store never waits, so it is called without any timer.
- A store fault never fails the gathering: the store's part reads as nothing known,
  the lookups run, and ``sources["store"]`` says ``timeout``, ``error`` or
  ``circuit_open`` (the worst seen in this request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import structlog

from router.breaker import Breaker, BreakerState, Permit
from router.budget import Deadline
from router.engine.values import snake_case_aliases
from router.facts.polyai import FAILED, Answer, PolyAIClient
from router.facts.singleflight import SingleFlight
from router.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS
from router.observe import Throttle
from router.settings import Settings
from router.store.base import (
    CACHE_HANDOFF,
    CACHE_RECORD,
    NOTHING_KNOWN,
    JSONMap,
    Known,
    Store,
    StoreError,
)

SourceStatus = Literal[
    "ok", "inline", "pushed", "cached", "not_found", "timeout", "error", "circuit_open", "skipped"
]
Namespace = Literal["handoff", "state", "conversation"]
FactMap = dict[str, Any]

SOURCES = ("handoff", "state")
"""The upstream sources: the Handoff API and the conversation record."""

log = structlog.get_logger(__name__)

_FAILURE_LOG_INTERVAL_S = 1.0
"""At most one ``upstream_lookup_failed`` line per source, result and status a second (the
rest are counted in the next line's ``suppressed``; every failure is in the metrics)."""
_STORE_GUARD_S = 0.005
"""Extra time the gatherer's own guard gives a store that bounds its calls itself, so the
store's timeout (which its breaker counts) fires first."""


def conversation_namespace(record: JSONMap) -> FactMap:
    """Every top-level field of a conversation record but ``state``; camelCase keys
    are also given under their snake_case name (a key already present wins)."""
    return dict(snake_case_aliases({k: v for k, v in record.items() if k != "state"}))


def handoff_namespace(data: JSONMap, conversation_id: str | None, shared_id: str | None) -> FactMap:
    """The handoff ``data`` keys plus ``id`` and ``shared_id`` (when known; they win)."""
    out: FactMap = dict(data)
    if conversation_id is not None:
        out["id"] = conversation_id
    if shared_id is not None:
        out["shared_id"] = shared_id
    return out


@dataclass(slots=True)  # not frozen: built on every call, and frozen fields cost
class GatheredFacts:
    """What a decision is made on.

    ``facts`` maps ``handoff``, ``state`` and ``conversation`` to a mapping,
    or to ``None`` when that source failed; ``sources`` says where each came
    from (contract §2.1).
    """

    facts: dict[str, FactMap | None]
    sources: dict[str, str]
    conversation_id: str | None
    shared_id: str | None
    uncached: Mapping[str, JSONMap] = field(default_factory=dict)
    """Looked-up answers not yet cached (only with ``cache_with_decision=True``): the caller
    caches them with the decision (the store's ``save_decision(..., lookups=…)``)."""

    @property
    def degraded(self) -> bool:
        """True when a fact source timed out, failed or had its circuit open."""
        return any(status in FAILED for name, status in self.sources.items() if name != "store")


class _Slot:
    """One namespace being resolved: its status and value once known."""

    __slots__ = ("status", "value")

    def __init__(self) -> None:
        self.status: str | None = None
        self.value: FactMap | None = None

    @property
    def open(self) -> bool:
        return self.status is None

    def fill(self, status: str, value: FactMap | None) -> None:
        if self.status is None:
            self.status, self.value = status, value


class _Gathering:
    """The mutable state of one :meth:`FactGatherer.gather` call."""

    __slots__ = (
        "cache",
        "cid",
        "conversation",
        "handoff",
        "known",
        "read_keys",
        "sid",
        "state",
        "store",
    )

    def __init__(self, cid: str | None, sid: str | None) -> None:
        self.cid, self.sid = cid, sid
        self.read_keys: set[tuple[str | None, str | None]] = set()
        self.known: list[Known] = []
        self.handoff, self.state, self.conversation = _Slot(), _Slot(), _Slot()
        self.store: str | None = None
        self.cache: dict[str, JSONMap] = {}

    @property
    def record_wanted(self) -> bool:
        return self.state.open or self.conversation.open

    def note_store(self, status: str) -> None:
        if self.store in (None, "ok"):
            self.store = status


class FactGatherer:
    """Gathers facts for decisions: one per process, sharing breakers and flights.

    ``session`` is the app's one :class:`aiohttp.ClientSession` (see
    :func:`router.facts.polyai.make_client_session`); ``clock`` is the
    monotonic clock the breakers measure their reset on.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = PolyAIClient(settings, session)
        self._breakers = {
            source: Breaker(
                source,
                failures=settings.breaker_failures,
                reset_s=settings.breaker_reset_s,
                clock=clock,
            )
            for source in SOURCES
        }
        self._flights: SingleFlight[Answer] = SingleFlight()
        self._writes: set[asyncio.Task[None]] = set()
        self._store_timeout = settings.store_timeout_ms / 1000.0
        self._failure_logs = Throttle(_FAILURE_LOG_INTERVAL_S, clock=clock)

    def breaker_states(self) -> dict[str, BreakerState]:
        """``closed``, ``open`` or ``half_open`` per source."""
        return {source: breaker.state for source, breaker in self._breakers.items()}

    async def drain(self) -> None:
        """Wait for cache writes still running in the background."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def gather(
        self,
        *,
        conversation_id: str | None = None,
        shared_id: str | None = None,
        inline_handoff: JSONMap | None = None,
        inline_state: JSONMap | None = None,
        deadline: Deadline,
        cache_with_decision: bool = False,
    ) -> GatheredFacts:
        """The facts for one conversation, by the precedence above, within ``deadline``.

        Never raises for an upstream or store fault: a failed source is
        ``None`` in ``facts`` and says why in ``sources``. With
        ``cache_with_decision``, new lookups are not cached now but returned in
        ``uncached``, to be cached with the decision (one store round trip for both).
        """
        if conversation_id is None and shared_id is None:
            raise ValueError("gather needs a conversation id or a shared id")
        g = _Gathering(conversation_id, shared_id)
        known = await self._read(g, conversation_id, shared_id, deadline)
        if (
            known is NOTHING_KNOWN
            and inline_handoff is not None
            and inline_state is not None
            and not self._store.shared
        ):
            # Nothing pushed or cached, both given inline (the usual call): what the steps
            # below come to, without them.
            return GatheredFacts(
                facts={
                    "handoff": handoff_namespace(inline_handoff, conversation_id, shared_id),
                    "state": dict(inline_state),
                    "conversation": {},
                },
                sources={"handoff": "inline", "state": "inline", "conversation": "skipped"},
                conversation_id=conversation_id,
                shared_id=shared_id,
            )
        self._apply_known(g, known)
        if inline_handoff is not None:
            g.handoff.fill("inline", handoff_namespace(inline_handoff, g.cid, g.sid))
        if inline_state is not None:
            g.state.fill("inline", dict(inline_state))
            g.conversation.fill("skipped", {})  # the record call is skipped (contract §1)
        self._apply_cached_handoff(g)
        enabled = self._settings.lookups_enabled
        if not enabled:
            g.handoff.fill("skipped", {})

        if g.handoff.open and g.cid is None:
            await self._lookup_handoff(g, deadline)  # the record lookup needs its answer's id
            await self._resolve_record(g, deadline)
        elif g.handoff.open:
            await asyncio.gather(
                self._lookup_handoff(g, deadline), self._resolve_record(g, deadline)
            )
        elif g.record_wanted:  # (with state given, nothing is: no coroutine to run)
            await self._resolve_record(g, deadline)

        if g.cache and not cache_with_decision:
            self._write_cache(g.cid, g.sid, dict(g.cache))
        return self._result(g, uncached=g.cache if cache_with_decision else {})

    # Phases ----------------------------------------------------------------

    async def _read(
        self, g: _Gathering, cid: str | None, sid: str | None, deadline: Deadline
    ) -> Known:
        """One store round trip for what is pushed and cached; a store fault reads as nothing."""
        g.read_keys.add((cid, sid))
        try:
            if not self._store.shared:  # never waits: no timer to arm
                known = await self._store.read_known(cid, sid)
            else:
                budget = deadline.upstream_timeout()
                async with asyncio.timeout(budget + _STORE_GUARD_S):
                    known = await self._store.read_known(cid, sid, timeout_s=budget)
        except TimeoutError:
            g.note_store("timeout")
            known = NOTHING_KNOWN
        except StoreError as exc:
            # An open breaker was logged once by the store; per request it is only noise.
            report = log.debug if exc.fault == "circuit_open" else log.warning
            report("store_read_failed", fault=exc.fault, reason=str(exc))
            g.note_store(exc.fault)
            known = NOTHING_KNOWN
        else:
            g.note_store("ok")
            if known.linked_conversation_id is not None:  # the store read that one too
                g.read_keys.add((known.linked_conversation_id, sid))
                g.cid = g.cid or known.linked_conversation_id
        return known

    def _apply_known(self, g: _Gathering, known: Known) -> None:
        """Fill namespaces from pushed facts (precedence 1) and learn ids from the push."""
        pushed = known.pushed
        g.cid = g.cid or pushed.conversation_id
        g.sid = g.sid or pushed.shared_id
        if pushed.handoff is not None:
            g.handoff.fill("pushed", handoff_namespace(pushed.handoff, g.cid, g.sid))
        if pushed.state is not None:
            g.state.fill("pushed", dict(pushed.state))
        if pushed.conversation is not None:
            g.conversation.fill("pushed", conversation_namespace(pushed.conversation))
        g.known.append(known)

    def _apply_cached_handoff(self, g: _Gathering) -> None:
        """Fill ``handoff`` from the lookup cache (precedence 3) and learn ids from it."""
        for known in g.known:
            cached = known.cached.get(CACHE_HANDOFF)
            if cached is not None and g.handoff.open:
                g.handoff.fill("cached", dict(cached))
                g.cid = g.cid or _str_or_none(cached.get("id"))
                g.sid = g.sid or _str_or_none(cached.get("shared_id"))

    def _apply_cached_record(self, g: _Gathering) -> None:
        """Fill ``state`` / ``conversation`` from the lookup cache (precedence 3)."""
        for known in g.known:
            cached = known.cached.get(CACHE_RECORD)
            if cached is not None and g.record_wanted:
                g.state.fill("cached", dict(cached.get("state") or {}))
                g.conversation.fill("cached", dict(cached.get("conversation") or {}))

    async def _lookup_handoff(self, g: _Gathering, deadline: Deadline) -> None:
        if g.cid is not None:
            key: tuple[str, str, str] = ("handoff", "id", g.cid)
        else:
            assert g.sid is not None
            key = ("handoff", "shared_id", g.sid)
        cid, sid = g.cid, g.sid
        answer = await self._lookup(
            key,
            deadline,
            lambda: self._client.handoff_state(
                conversation_id=cid, shared_id=None if cid else sid, deadline=deadline
            ),
        )
        if answer.result == "ok" and answer.body is not None:
            body = answer.body
            g.cid = g.cid or body["id"]
            g.sid = g.sid or body["shared_id"]
            namespace = handoff_namespace(
                body["data"], body["id"] or g.cid, body["shared_id"] or g.sid
            )
            g.handoff.fill("ok", namespace)
            g.cache[CACHE_HANDOFF] = namespace
        elif answer.result == "not_found":
            g.handoff.fill("not_found", handoff_namespace({}, g.cid, g.sid))
        else:
            g.handoff.fill(answer.result, None)

    async def _resolve_record(self, g: _Gathering, deadline: Deadline) -> None:
        """``state`` and ``conversation``: pushed/cached under a newly learnt id, else a lookup."""
        if not g.record_wanted:
            return
        if g.cid is not None and not any(g.cid == c for c, _ in g.read_keys):
            self._apply_known(g, await self._read(g, g.cid, None, deadline))
        self._apply_cached_record(g)
        if not g.record_wanted:
            return
        if not self._settings.lookups_enabled:
            g.state.fill("skipped", {})
            g.conversation.fill("skipped", {})
            return
        if g.cid is None:
            status = g.handoff.status or "skipped"
            if status in FAILED:
                g.state.fill(status, None)
                g.conversation.fill(status, None)
            else:  # the handoff answered but names no conversation, or was not asked
                status = "not_found" if status in ("ok", "not_found") else "skipped"
                g.state.fill(status, {})
                g.conversation.fill(status, {})
            return
        cid = g.cid
        answer = await self._lookup(
            ("state", cid), deadline, lambda: self._client.conversation(cid, deadline=deadline)
        )
        if answer.result == "ok" and answer.body is not None:
            state = dict(answer.body["state"])
            conversation = conversation_namespace(answer.body)
            g.state.fill("ok", state)
            g.conversation.fill("ok", conversation)
            g.cache[CACHE_RECORD] = {"state": state, "conversation": conversation}
        elif answer.result == "not_found":
            g.state.fill("not_found", {})
            g.conversation.fill("not_found", {})
        else:
            g.state.fill(answer.result, None)
            g.conversation.fill(answer.result, None)

    # Lookups ---------------------------------------------------------------

    async def _lookup(
        self,
        key: tuple[str, ...],
        deadline: Deadline,
        fetch: Callable[[], Coroutine[Any, Any, Answer]],
    ) -> Answer:
        """One lookup for ``key``, shared with concurrent callers, guarded by the breaker."""
        source = key[0]
        flight = self._flights.get(key)
        if flight is None:
            permit = self._breakers[source].acquire()
            if permit is None:
                UPSTREAM_REQUESTS.labels(source=source, result="circuit_open").inc()
                return Answer("circuit_open", reason="circuit breaker open", tries=0)
            flight = self._flights.start(key, self._call(source, permit, fetch()), deadline)
        try:
            return await SingleFlight.wait(flight, deadline)
        except TimeoutError:
            return Answer("timeout", reason="deadline reached waiting for a shared lookup")

    async def _call(
        self, source: str, permit: Permit, fetch: Coroutine[Any, Any, Answer]
    ) -> Answer:
        """Run one upstream lookup and settle its breaker permit before anyone sees the answer."""
        breaker = self._breakers[source]
        began = time.monotonic()
        settled = False
        try:
            try:
                answer = await fetch
            except Exception:  # a bug must not take the request down: report the source failed
                log.exception("upstream_lookup_crashed", source=source)
                answer = Answer("error", reason="internal error")
            breaker.record(permit, failed=answer.result in FAILED)
            settled = True
        finally:
            if not settled:
                breaker.abandon(permit)
        UPSTREAM_REQUESTS.labels(source=source, result=answer.result).inc()
        UPSTREAM_DURATION.labels(source=source).observe(time.monotonic() - began)
        if answer.result in FAILED:
            held = self._failure_logs.allow((source, answer.result, answer.status))
            if held is not None:
                log.warning(
                    "upstream_lookup_failed",
                    source=source,
                    result=answer.result,
                    status=answer.status,
                    reason=answer.reason,
                    tries=answer.tries,
                    suppressed=held,
                )
        return answer

    # Output ----------------------------------------------------------------

    def _write_cache(self, cid: str | None, sid: str | None, lookups: dict[str, JSONMap]) -> None:
        if self._settings.cache_ttl_s <= 0:
            return
        task = asyncio.create_task(self._cache(cid, sid, lookups))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _cache(self, cid: str | None, sid: str | None, lookups: dict[str, JSONMap]) -> None:
        ttl_s = self._settings.cache_ttl_s
        try:
            async with asyncio.timeout(self._store_timeout + _STORE_GUARD_S):
                await self._store.cache_lookups(
                    cid, sid, lookups, ttl_s=ttl_s, timeout_s=self._store_timeout
                )
        except TimeoutError:
            log.warning("lookup_cache_write_failed", fault="timeout")
        except StoreError as exc:
            log.warning("lookup_cache_write_failed", fault=exc.fault, reason=str(exc))

    def _result(self, g: _Gathering, *, uncached: Mapping[str, JSONMap]) -> GatheredFacts:
        for slot in (g.handoff, g.state, g.conversation):
            slot.fill("skipped", {})
        sources: dict[str, str] = {"handoff": str(g.handoff.status), "state": str(g.state.status)}
        if g.conversation.status != g.state.status:
            sources["conversation"] = str(g.conversation.status)
        if self._store.shared and g.store is not None:
            sources["store"] = g.store
        return GatheredFacts(
            facts={
                "handoff": g.handoff.value,
                "state": g.state.value,
                "conversation": g.conversation.value,
            },
            sources=sources,
            conversation_id=g.cid,
            shared_id=g.sid,
            uncached=dict(uncached),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
