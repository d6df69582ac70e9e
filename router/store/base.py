"""The store interface: pushed facts, the lookup cache and the latest decisions.

Everything is keyed twice, by conversation id and by shared id (the
platform's call id), because a caller may know either. A store answers
each decision phase in one round trip: :meth:`Store.read_known` returns the
pushed facts *and* the cached lookups for both ids at once, and
:meth:`Store.save_decision` can take the lookups to cache along with the
decision, so a Redis implementation serves each phase with one pipelined
call (the Redis store needs a second read only when a request names just a
shared id that is linked to a conversation id, see :mod:`router.store.redis.store`).

Every method that may wait on the network takes an optional ``timeout_s``:
the longest the caller will wait (the request's budget), which a shared
store bounds further by ``ROUTER_STORE_TIMEOUT_MS``. The memory store
ignores it.

What a caller needs to know about a store it learns from the interface,
never from which backend it is: :attr:`Store.shared` says whether calls may
wait and fail (then callers arm timers and report ``sources.store``), and
:meth:`Store.connect` dials it at start. The memory store
(:mod:`router.store.memory`) is not shared and never fails; a shared store
(:mod:`router.store.redis`) raises :class:`StoreError` (or ``TimeoutError``)
and callers degrade to lookups and inline facts rather than fail the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

StoreKind = Literal["memory", "redis"]
StoreStatus = Literal["memory", "ok", "down"]
StoreFault = Literal["timeout", "error", "circuit_open"]

JSONMap = Mapping[str, Any]
"""A JSON object as read from a request or an upstream answer."""

#: Names of the cached lookups (also the fact sources they feed).
CACHE_HANDOFF = "handoff"
"""Cached Handoff API answer: the ``handoff`` namespace (``data`` + ``id`` + ``shared_id``)."""
CACHE_RECORD = "state"
"""Cached conversation record: ``{"state": {...}, "conversation": {...}}``."""
CACHE_NAMES = (CACHE_HANDOFF, CACHE_RECORD)
"""Every cached lookup name (a shared store reads exactly these)."""


class StoreError(Exception):
    """A shared store could not answer; ``fault`` says how (as reported in ``sources.store``).

    The message is logged: it must not hold a password, a URL with
    credentials, or any stored value.
    """

    def __init__(self, message: str, fault: StoreFault = "error") -> None:
        super().__init__(message)
        self.fault: StoreFault = fault


@dataclass(frozen=True, slots=True)
class Pushed:
    """Facts pushed to ``POST /v1/events/polyai`` for one conversation (``None``: not pushed).

    ``conversation_id`` / ``shared_id`` are the ids the push named, so a
    request that knows only one of them learns the other.
    """

    conversation_id: str | None = None
    shared_id: str | None = None
    handoff: JSONMap | None = None
    """The push's ``data`` object (the Handoff API's ``data``)."""
    state: JSONMap | None = None
    conversation: JSONMap | None = None


NOTHING_PUSHED = Pushed()


@dataclass(frozen=True, slots=True)
class Known:
    """What the store holds for a conversation: pushed facts and cached lookups."""

    pushed: Pushed = NOTHING_PUSHED
    cached: Mapping[str, JSONMap] = field(default_factory=dict)
    """Cached lookups by name (:data:`CACHE_HANDOFF`, :data:`CACHE_RECORD`)."""
    linked_conversation_id: str | None = None
    """When asked by shared id only: the conversation id that shared id is linked to, if
    the store followed the link and read that conversation's keys too (so the caller
    need not read them again). ``None`` otherwise (the memory store never sets it)."""


NOTHING_KNOWN = Known()


@runtime_checkable
class Store(Protocol):
    """Where pushed facts, cached lookups and decisions live (memory or a shared Redis).

    Every method is a coroutine so a network store fits behind it; ids that
    are ``None`` are simply not used as keys. Values must be JSON-able.
    """

    @property
    def kind(self) -> StoreKind:
        """``"memory"`` or ``"redis"``: which backend, for logs only (decide on
        :attr:`shared` instead)."""
        ...

    @property
    def shared(self) -> bool:
        """Whether replicas share this store over the network: then its calls may wait
        and fail, so callers bound them with timers and report ``sources.store``. False
        for the in-process memory store, which never waits and never fails."""
        ...

    async def connect(self) -> None:
        """Dial the store now rather than on first use (a Redis Cluster client also
        learns its slot map); a no-op for the memory store.

        Raises :class:`StoreError` when a shared store does not answer. The store keeps
        working, and retrying, afterwards: whether that stops a start is the caller's
        choice (the service logs it and starts anyway).
        """
        ...

    async def push(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        data: JSONMap | None = None,
        state: JSONMap | None = None,
        conversation: JSONMap | None = None,
        ttl_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """Store pushed facts under both ids for ``ttl_s`` seconds.

        A namespace given replaces that namespace of an earlier push; one
        given as ``None`` leaves the earlier one in place. Raises
        :class:`StoreError` when the push could not be stored (the sender
        must then be told to retry).
        """
        ...

    async def read_known(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        timeout_s: float | None = None,
    ) -> Known:
        """Pushed facts and cached lookups for either id, in one round trip.

        Where both ids have a value, the conversation id's wins.
        """
        ...

    async def cache_lookups(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        lookups: Mapping[str, JSONMap],
        *,
        ttl_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """Cache looked-up answers (by name) under both ids for ``ttl_s`` seconds."""
        ...

    async def save_decision(
        self,
        decision: JSONMap,
        *,
        ttl_s: float,
        lookups: Mapping[str, JSONMap] | None = None,
        cache_ttl_s: float = 0.0,
        timeout_s: float | None = None,
        record: bytes | None = None,
    ) -> None:
        """Keep ``decision`` as the latest for its ``conversation_id`` and ``shared_id``.

        ``lookups`` (with ``cache_ttl_s`` > 0) are cached under the same ids in
        the same round trip, as :meth:`cache_lookups` would. ``record`` (the decision's
        replay record, :mod:`router.records`) joins the bounded log of records in the
        same round trip, even for a decision with neither id; a record the store cannot
        take is dropped and counted (``router_records_dropped_total``), never retried.
        """
        ...

    def records(self, *, since: float | None = None) -> AsyncIterator[bytes]:
        """The decision records kept (at most ``ROUTER_RECORD_MAX``), oldest first.

        ``since`` (Unix seconds) lets a store start near that instant; it may still
        yield older records, so the caller filters by each record's ``at``. A shared
        store reads in pages, each its own round trip, and raises :class:`StoreError`
        when it cannot.
        """
        ...

    async def decision_for_conversation(
        self, conversation_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """The latest decision for a conversation id, or ``None``."""
        ...

    async def decision_for_shared_id(
        self, shared_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """The latest decision for a shared id, or ``None``."""
        ...

    async def status(self) -> StoreStatus:
        """``"memory"`` for the memory store, else ``"ok"`` or ``"down"`` (for ``/readyz``)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
