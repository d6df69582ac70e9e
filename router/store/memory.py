"""The in-process store: one worker's pushed facts, lookup cache and decisions.

Bounded twice: every value expires after its TTL, and at most
``ROUTER_MEMORY_MAX_ENTRIES`` keys are kept, the least recently used going
first, so memory cannot grow without limit however many conversations pass.
A key is one conversation id or one shared id, so a conversation known by
both ids takes two of them.

Asyncio-safe without a lock: no method awaits between reading and writing
its entries, so each runs to completion on the event loop before another
starts. It is not thread-safe (one store per event loop).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from router.store.base import NOTHING_KNOWN, JSONMap, Known, Pushed, StoreKind, StoreStatus

_Key = tuple[str, str]
_SWEEP_PER_WRITE = 2
"""Least recently used keys checked for expiry on each write (keeps dead keys from lingering)."""


@dataclass(slots=True)
class _Timed:
    expires_at: float
    value: Any


@dataclass(slots=True)
class _Entry:
    """Everything kept under one key (a conversation id or a shared id)."""

    link: _Timed | None = None
    """The ``(conversation_id, shared_id)`` a push named, so either id finds the other."""
    pushed: dict[str, _Timed] = field(default_factory=dict)
    cached: dict[str, _Timed] = field(default_factory=dict)
    decision: _Timed | None = None

    def prune(self, now: float) -> bool:
        """Drop what has expired; True when nothing is left."""
        if self.link is not None and self.link.expires_at <= now:
            self.link = None
        for bucket in (self.pushed, self.cached):
            for name in [n for n, t in bucket.items() if t.expires_at <= now]:
                del bucket[name]
        if self.decision is not None and self.decision.expires_at <= now:
            self.decision = None
        return self.link is None and not self.pushed and not self.cached and self.decision is None


def _keys(conversation_id: str | None, shared_id: str | None) -> list[_Key]:
    keys: list[_Key] = []
    if conversation_id is not None:
        keys.append(("c", conversation_id))
    if shared_id is not None:
        keys.append(("s", shared_id))
    return keys


class MemoryStore:
    """A :class:`~router.store.base.Store` kept in this process (``ROUTER_STORE=memory``).

    ``clock`` is the monotonic clock TTLs are measured on (injectable for tests). Every
    ``timeout_s`` is accepted and ignored: nothing here waits.
    """

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    @property
    def kind(self) -> StoreKind:
        return "memory"

    def __len__(self) -> int:
        """Keys currently held (expired ones included until touched or swept)."""
        return len(self._entries)

    # Internals -------------------------------------------------------------

    def _read(self, key: _Key, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.prune(now):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _write(self, key: _Key, now: float) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            self._sweep(now)
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def _sweep(self, now: float) -> None:
        """Drop the least recently used keys whose values have all expired."""
        dead = []
        for index, (key, entry) in enumerate(self._entries.items()):
            if index >= _SWEEP_PER_WRITE:
                break
            if entry.prune(now):
                dead.append(key)
        for key in dead:
            del self._entries[key]

    # Store -----------------------------------------------------------------

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
        """Store pushed facts under both ids; see :meth:`router.store.base.Store.push`.

        ``timeout_s`` is ignored (nothing here waits).
        """
        now = self._clock()
        expires_at = now + ttl_s
        given = {"handoff": data, "state": state, "conversation": conversation}
        for key in _keys(conversation_id, shared_id):
            entry = self._write(key, now)
            entry.link = _Timed(expires_at, (conversation_id, shared_id))
            for name, value in given.items():
                if value is not None:
                    entry.pushed[name] = _Timed(expires_at, dict(value))

    async def read_known(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        timeout_s: float | None = None,
    ) -> Known:
        """Pushed facts and cached lookups for either id (the conversation id's first)."""
        now = self._clock()
        entries = [e for k in _keys(conversation_id, shared_id) if (e := self._read(k, now))]
        if not entries:
            return NOTHING_KNOWN
        pushed: dict[str, Any] = {}
        cached: dict[str, JSONMap] = {}
        linked_cid: str | None = None
        linked_sid: str | None = None
        for entry in entries:
            for name, timed in entry.pushed.items():
                pushed.setdefault(name, timed.value)
            for name, timed in entry.cached.items():
                cached.setdefault(name, timed.value)
            if entry.link is not None:
                cid, sid = entry.link.value
                linked_cid = linked_cid or cid
                linked_sid = linked_sid or sid
        return Known(
            pushed=Pushed(
                conversation_id=linked_cid,
                shared_id=linked_sid,
                handoff=pushed.get("handoff"),
                state=pushed.get("state"),
                conversation=pushed.get("conversation"),
            ),
            cached=cached,
        )

    async def cache_lookups(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        lookups: Mapping[str, JSONMap],
        *,
        ttl_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """Cache looked-up answers under both ids for ``ttl_s`` seconds (0: not at all)."""
        if ttl_s <= 0 or not lookups:
            return
        now = self._clock()
        for key in _keys(conversation_id, shared_id):
            entry = self._write(key, now)
            for name, value in lookups.items():
                entry.cached[name] = _Timed(now + ttl_s, value)

    async def save_decision(
        self,
        decision: JSONMap,
        *,
        ttl_s: float,
        lookups: Mapping[str, JSONMap] | None = None,
        cache_ttl_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        """Keep ``decision`` (as JSON, like a shared store would) under its ids, and cache
        ``lookups`` under the same ids for ``cache_ttl_s`` seconds."""
        now = self._clock()
        # orjson hands back its (>= 4 KiB) working buffer; copy to keep ~0.6 KiB per decision.
        body = bytes(memoryview(orjson.dumps(decision)))
        raw_cid, raw_sid = decision.get("conversation_id"), decision.get("shared_id")
        cid = raw_cid if isinstance(raw_cid, str) else None
        sid = raw_sid if isinstance(raw_sid, str) else None
        for key in _keys(cid, sid):
            self._write(key, now).decision = _Timed(now + ttl_s, body)
        if lookups:
            await self.cache_lookups(cid, sid, lookups, ttl_s=cache_ttl_s)

    async def decision_for_conversation(
        self, conversation_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        return self._decision(("c", conversation_id))

    async def decision_for_shared_id(
        self, shared_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        return self._decision(("s", shared_id))

    def _decision(self, key: _Key) -> dict[str, Any] | None:
        entry = self._read(key, self._clock())
        if entry is None or entry.decision is None:
            return None
        decision: dict[str, Any] = orjson.loads(entry.decision.value)
        return decision

    async def status(self) -> StoreStatus:
        return "memory"

    async def close(self) -> None:
        self._entries.clear()
