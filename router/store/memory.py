"""The in-process store: one worker's pushed facts, lookup cache and decisions.

Bounded twice: every value expires after its TTL, and at most
``ROUTER_MEMORY_MAX_ENTRIES`` keys are kept, the least recently used going
first, so memory cannot grow without limit however many conversations pass.
A key is one conversation id or one shared id, so a conversation known by
both ids takes two of them.

Invisible to the garbage collector: each key's entry is one flat, immutable
tuple of strings, floats and bytes (its records, back to back), and every
write replaces the whole entry (copy-on-write). Pushed facts, cached lookups,
decisions and the link between the two ids are kept as compact JSON
(:mod:`router.store.codec`, as a shared store keeps them) and decoded into fresh
dicts when read, so a caller may
change what it gets. CPython's cyclic collector stops tracking a tuple the
first time it finds nothing tracked inside (a flat one at its first
collection; a nested one could take several, as the collector may look at
the outer tuple before the inner), so the only object of the store a
collection walks is the LRU ``OrderedDict``: full collections do not visit
hundreds of thousands of per-key objects, and their pauses do not grow with
the store.

Asyncio-safe without a lock: no method awaits between reading and writing
its entries, so each runs to completion on the event loop before another
starts. It is not thread-safe (one store per event loop).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from router.store import codec
from router.store.base import NOTHING_KNOWN, JSONMap, Known, Pushed, StoreKind, StoreStatus

_Key = tuple[str, str]
"""``("c", conversation_id)`` or ``("s", shared_id)``."""

_Record = tuple[str, str, float, bytes]
"""``(kind, name, expires_at, body)``: one value kept under a key (at most one per kind and
name), its body the value as :func:`router.store.codec.dumps` writes it."""
_RECORD_SIZE = 4
"""Items per record in an entry."""
_LINK = "link"
"""Kind of the ``[conversation_id, shared_id]`` a push named, so either id finds the other
(name ``""``)."""
_PUSHED = "pushed"
"""Kind of a pushed namespace (named ``handoff``, ``state`` or ``conversation``)."""
_CACHED = "cached"
"""Kind of a cached lookup (named as in :data:`router.store.base.CACHE_NAMES`)."""
_DECISION = "decision"
"""Kind of the latest decision (name ``""``)."""

_Entry = tuple[str | float | bytes, ...]
"""Everything kept under one key: its :data:`_Record` items back to back, never mutated.

Flat, with no tuple inside, so the garbage collector untracks it on its first collection."""

_SWEEP_PER_WRITE = 2
"""Least recently used keys checked for expiry on each write (keeps dead keys from lingering)."""


def _keys(conversation_id: str | None, shared_id: str | None) -> list[_Key]:
    keys: list[_Key] = []
    if conversation_id is not None:
        keys.append(("c", conversation_id))
    if shared_id is not None:
        keys.append(("s", shared_id))
    return keys


def _records(entry: _Entry) -> Iterator[_Record]:
    """The records an entry holds, in order."""
    items = iter(entry)  # zipped with itself: _RECORD_SIZE items at a time
    return cast("Iterator[_Record]", zip(items, items, items, items, strict=True))


def _entry(records: Iterable[_Record]) -> _Entry:
    """The flat entry holding ``records``."""
    return tuple(item for record in records for item in record)


def _unexpired(entry: _Entry, now: float) -> _Entry | None:
    """``entry`` without its expired records (``entry`` itself when none has expired);
    ``None`` when none is left."""
    live = [record for record in _records(entry) if record[2] > now]
    if not live:
        return None
    if len(live) * _RECORD_SIZE == len(entry):
        return entry
    return _entry(live)


def _replaced(entry: _Entry, records: Sequence[_Record]) -> _Entry:
    """``entry`` with ``records`` replacing those of the same kind and name (in place), the
    others appended."""
    replacing = {record[:2]: record for record in records}
    kept = [replacing.pop(record[:2], record) for record in _records(entry)]
    return _entry([*kept, *replacing.values()])


def _named(kind: str, values: Mapping[str, JSONMap | None], expires_at: float) -> list[_Record]:
    """Records of ``kind`` for the values given (those not ``None``), by name. Cached lookups
    are upstream answers orjson parsed (no NaN can be in them); pushes may hold anything."""
    dumps = codec.dumps_trusted if kind == _CACHED else codec.dumps
    return [
        (kind, name, expires_at, dumps(dict(value)))
        for name, value in values.items()
        if value is not None
    ]


class MemoryStore:
    """A :class:`~router.store.base.Store` kept in this process (``ROUTER_STORE=memory``).

    ``clock`` is the monotonic clock TTLs are measured on (injectable for tests). Every
    ``timeout_s`` is accepted and ignored: nothing here waits. The last ``record_max``
    decision records are kept in a ring (0: none), as bytes, which the garbage collector
    does not walk.
    """

    def __init__(
        self,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        record_max: int = 100_000,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if record_max < 0:
            raise ValueError("record_max must not be negative")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._records: deque[bytes] | None = deque(maxlen=record_max) if record_max else None

    @property
    def kind(self) -> StoreKind:
        """``"memory"`` (descriptive, for logs)."""
        return "memory"

    @property
    def shared(self) -> bool:
        """False: this process's own store never waits and never fails."""
        return False

    async def connect(self) -> None:
        """Nothing to dial."""

    def __len__(self) -> int:
        """Keys currently held (expired ones included until touched or swept)."""
        return len(self._entries)

    # Internals -------------------------------------------------------------

    def _read(self, key: _Key, now: float) -> _Entry | None:
        """The key's unexpired records (marking it most recently used), or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        live = _unexpired(entry, now)
        if live is None:
            del self._entries[key]
            return None
        if live is not entry:
            self._entries[key] = live
        self._entries.move_to_end(key)
        return live

    def _write(self, key: _Key, now: float, records: Sequence[_Record]) -> None:
        """Replace the key's entry with one holding ``records`` and its other unexpired ones;
        a new key sweeps expired ones first and may evict the least recently used."""
        entry = self._entries.get(key)
        if entry is None:
            self._sweep(now)
            # A record is a flat entry of its own: a new key holding one needs no copy.
            self._entries[key] = records[0] if len(records) == 1 else _entry(records)
        else:
            self._entries.move_to_end(key)
            self._entries[key] = _replaced(_unexpired(entry, now) or (), records)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def _sweep(self, now: float) -> None:
        """Drop the least recently used keys whose records have all expired."""
        entries = self._entries
        for _ in range(min(_SWEEP_PER_WRITE, len(entries))):
            key, entry = next(iter(entries.items()))
            if _unexpired(entry, now) is not None:
                return
            del entries[key]

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
        link: _Record = (_LINK, "", expires_at, codec.dumps([conversation_id, shared_id]))
        records = [link, *_named(_PUSHED, given, expires_at)]
        for key in _keys(conversation_id, shared_id):
            self._write(key, now, records)

    async def read_known(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        timeout_s: float | None = None,
    ) -> Known:
        """Pushed facts and cached lookups for either id (the conversation id's first)."""
        now = self._clock()
        keys = _keys(conversation_id, shared_id)
        entries = [entry for key in keys if (entry := self._read(key, now)) is not None]
        if not entries:
            return NOTHING_KNOWN
        pushed: dict[str, bytes] = {}
        cached: dict[str, bytes] = {}
        linked_cid: str | None = None
        linked_sid: str | None = None
        for entry in entries:
            for kind, name, _, body in _records(entry):
                if kind == _PUSHED:
                    pushed.setdefault(name, body)
                elif kind == _CACHED:
                    cached.setdefault(name, body)
                elif kind == _LINK:
                    cid, sid = codec.loads(body)
                    linked_cid = linked_cid or cid
                    linked_sid = linked_sid or sid
        namespaces = {name: codec.loads(body) for name, body in pushed.items()}
        return Known(
            pushed=Pushed(
                conversation_id=linked_cid,
                shared_id=linked_sid,
                handoff=namespaces.get("handoff"),
                state=namespaces.get("state"),
                conversation=namespaces.get("conversation"),
            ),
            cached={name: codec.loads(body) for name, body in cached.items()},
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
        records = _named(_CACHED, lookups, now + ttl_s)
        for key in _keys(conversation_id, shared_id):
            self._write(key, now, records)

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
        """Keep ``decision`` (as JSON, like a shared store would) under its ids, cache
        ``lookups`` under the same ids for ``cache_ttl_s`` seconds, and put ``record`` in
        the ring of records (the oldest going when it is full)."""
        if record is not None and self._records is not None:
            self._records.append(record)
        now = self._clock()
        raw_cid, raw_sid = decision.get("conversation_id"), decision.get("shared_id")
        cid = raw_cid if isinstance(raw_cid, str) else None
        sid = raw_sid if isinstance(raw_sid, str) else None
        keys = _keys(cid, sid)
        if not keys:
            return
        kept: _Record = (_DECISION, "", now + ttl_s, codec.dumps_trusted(decision))
        for key in keys:
            self._write(key, now, [kept])
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
        if entry is None:
            return None
        for kind, _, _, body in _records(entry):
            if kind == _DECISION:
                decision: dict[str, Any] = codec.loads(body)
                return decision
        return None

    async def records(self, *, since: float | None = None) -> AsyncIterator[bytes]:
        """The records in the ring, oldest first (``since`` is left to the caller: the
        ring is in this process, so reading it all costs no round trip)."""
        for record in list(self._records or ()):
            yield record

    async def status(self) -> StoreStatus:
        return "memory"

    async def close(self) -> None:
        self._entries.clear()
