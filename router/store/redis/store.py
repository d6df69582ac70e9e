"""The Redis store's operations: pushes, reads, the lookup cache and decisions.

Round trips per decision phase:

- :meth:`RedisStore.read_known`: one pipelined call (one ``MGET`` per id given). When
  only a shared id is given and it is linked to a conversation id, a second call reads
  that conversation's keys: the link is only known once the first answer is in, and in
  a cluster the conversation's slot is another node's, so no single call (not even a
  Lua script, which must name its keys' slot up front) can do both. The answer says
  which conversation it followed (``Known.linked_conversation_id``), so the gatherer
  does not read it a third time.
- :meth:`RedisStore.save_decision` with ``lookups``: the decision and the cache in one
  pipelined call.

A push that could not be stored raises (the sender is told to retry). A decision that
could not be saved goes to the outbox (:mod:`router.store.redis.outbox`). Where each
value lives is :mod:`router.store.redis.keys`; how round trips are bounded and counted
is :mod:`router.store.redis.pipeline`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from router.breaker import BreakerState
from router.metrics import RECORDS_DROPPED
from router.sensitive import SensitivePaths
from router.settings import Settings
from router.store import codec
from router.store.base import (
    CACHE_NAMES,
    CACHE_RECORD,
    NOTHING_KNOWN,
    JSONMap,
    Known,
    Pushed,
    StoreError,
    StoreKind,
    StoreStatus,
)
from router.store.redis.keys import PUSHED_NAMES, READ_FIELDS, Keys, queue_mget
from router.store.redis.outbox import Outbox, Pending
from router.store.redis.pipeline import CLUSTER_INIT_TIMEOUT_S, Pipeline
from router.store.redis.url import RedisClient, RedisMode, connect
from router.store.seal import SEALED_MARK, PathsOf, Sealer

log = structlog.get_logger(__name__)

STATUS_FRESH_S = 1.0
"""A round trip that succeeded this recently answers ``status()`` without a PING."""
RECORD_PAGE = 1000
"""Records read per round trip by :meth:`RedisStore.records`."""
RECORD_FIELD = b"r"
"""The stream entry field holding a record's bytes."""


@dataclass(slots=True)
class _Read:
    """What one id's keys held."""

    link: tuple[str | None, str | None] | None
    pushed: dict[str, JSONMap]
    cached: dict[str, JSONMap]


def _ids(decision: JSONMap) -> tuple[str | None, str | None]:
    cid, sid = decision.get("conversation_id"), decision.get("shared_id")
    return (cid if isinstance(cid, str) else None, sid if isinstance(sid, str) else None)


class RedisStore:
    """A :class:`~router.store.base.Store` in Redis, shared by every replica.

    ``client`` is a redis-py asyncio client (standalone, Sentinel master or Cluster)
    made with ``decode_responses=False``. ``timeout_s`` bounds every round trip;
    ``link_ttl_s`` is how long a shared id stays linked to its conversation (the
    longest TTL configured); ``outbox_max`` bounds the decisions kept while Redis is
    down (0: none are kept); ``record_max`` is the (approximate) length of the stream of
    decision records (0: none are kept). ``helpers`` are other clients closed with this one.
    ``sealer`` encrypts (or leaves out) sensitive values of pushes and cached lookups
    (:mod:`router.store.seal`; by default they are left out).
    ``clock`` is the monotonic clock of the breaker, the outbox's TTLs and the
    health check (injectable for tests).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "router:",
        timeout_s: float,
        breaker_failures: int,
        breaker_reset_s: float,
        link_ttl_s: float,
        outbox_max: int = 10_000,
        record_max: int = 100_000,
        mode: RedisMode = "standalone",
        helpers: Sequence[Any] = (),
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer | None = None,
    ) -> None:
        self._keys = Keys(prefix, link_ttl_s)
        self._record_max = record_max
        self._dropped = RECORDS_DROPPED.labels(reason="store")
        self._sealer = Sealer("") if sealer is None else sealer
        self._client = client
        self._helpers = tuple(helpers)
        self._clock = clock
        self.mode: RedisMode = mode
        self._pipeline = Pipeline(
            client,
            timeout_s=timeout_s,
            breaker_failures=breaker_failures,
            breaker_reset_s=breaker_reset_s,
            on_answer=self._answered,
            clock=clock,
        )
        self._outbox = Outbox(
            self._pipeline,
            self._keys,
            max_pending=outbox_max,
            retry_s=min(breaker_reset_s, 1.0),
            clock=clock,
        )

    @property
    def kind(self) -> StoreKind:
        """``"redis"`` (descriptive, for logs)."""
        return "redis"

    @property
    def shared(self) -> bool:
        """True: replicas share it over the network, so its calls may wait and fail."""
        return True

    @property
    def breaker_state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open``: the store's circuit breaker."""
        return self._pipeline.breaker_state

    @property
    def outbox_pending(self) -> int:
        """Decisions waiting for Redis to answer again."""
        return len(self._outbox)

    def _answered(self, recovered: bool) -> None:
        """A round trip succeeded: log a recovery, and let the outbox write what waits."""
        if recovered:
            log.info("store_recovered", outbox_pending=len(self._outbox))
        self._outbox.wake()

    async def connect(self, timeout_s: float = CLUSTER_INIT_TIMEOUT_S) -> None:
        """Dial Redis now (for a cluster: learn its slots) instead of on the first request.

        Optional, at start-up: raises :class:`StoreError` when Redis does not answer a PING
        within ``timeout_s`` (the store still works, and keeps trying, afterwards).
        """
        await self._pipeline.connect(timeout_s)

    # Store: pushes -------------------------------------------------------------

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
        """Store pushed facts (see :meth:`router.store.base.Store.push`) in one round trip.

        Raises :class:`StoreError` when Redis did not confirm the write: the push is
        never acknowledged and then lost.
        """
        home = self._keys.home(conversation_id, shared_id)
        if home is None:
            return
        given = zip(PUSHED_NAMES, (data, state, conversation), strict=True)
        seal = self._sealer.seal
        values = {
            name: codec.dumps(seal(name, value)) for name, value in given if value is not None
        }
        link = codec.dumps([conversation_id, shared_id])
        keys = self._keys
        await self._pipeline.pipelined(
            "push",
            lambda pipe: keys.queue_push(
                pipe, home, conversation_id, shared_id, link, values, ttl_s
            ),
            timeout_s,
        )

    # Store: reads ----------------------------------------------------------------

    async def read_known(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        timeout_s: float | None = None,
    ) -> Known:
        """Pushed facts and cached lookups for either id: one round trip, or two when only
        a shared id is given and it is linked to a conversation (see the module doc)."""
        keys = self._keys
        ids: tuple[tuple[Literal["c", "s"], str | None], ...] = (
            ("c", conversation_id),
            ("s", shared_id),
        )
        owners = [keys.owner(kind, value) for kind, value in ids if value is not None]
        if not owners:
            return NOTHING_KNOWN
        follow = conversation_id is None
        began = time.monotonic()

        def build(pipe: Any) -> None:
            for owner in owners:
                keys.queue_read(pipe, owner)
            if follow:
                pipe.get(owners[0] + "cid")

        replies = await self._pipeline.pipelined("read_known", build, timeout_s)
        sealer = self._sealer
        reads = [_parse(reply, sealer) for reply in replies[: len(owners)]]
        linked: str | None = None
        if follow and replies[-1] is not None:
            linked = bytes(replies[-1]).decode()
            left = None if timeout_s is None else timeout_s - (time.monotonic() - began)
            owner = keys.owner("c", linked)
            more = await self._pipeline.pipelined(
                "read_known_linked", lambda pipe: keys.queue_read(pipe, owner), left
            )
            reads.append(_parse(more[0], sealer))
        return _merge(reads, linked)

    # Store: cache and decisions ------------------------------------------------------

    async def cache_lookups(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        lookups: Mapping[str, JSONMap],
        *,
        ttl_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """Cache looked-up answers for ``ttl_s`` seconds (0: not at all), in one round trip.

        Only the names in :data:`~router.store.base.CACHE_NAMES` are kept (``ValueError``
        for others: they would never be read back).
        """
        if ttl_s <= 0 or not lookups:
            return
        home = self._keys.home(conversation_id, shared_id)
        if home is None:
            return
        values = _cache_values(lookups, self._sealer)
        keys = self._keys
        await self._pipeline.pipelined(
            "cache_lookups",
            lambda pipe: keys.queue_cache(pipe, home, conversation_id, shared_id, values, ttl_s),
            timeout_s,
        )

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
        """Keep ``decision`` (and cache ``lookups``) in one round trip; never raises for Redis.

        When Redis cannot take it, the decision waits in the outbox and is written when
        Redis answers again (the lookups are dropped: they are only a cache). While the
        outbox holds anything, new decisions queue behind it, so that an older decision
        can never overwrite a newer one.

        ``record`` is added to the records stream (``XADD … MAXLEN ~``) in the same
        pipeline, as a write of its own that no one waits on: its failure never sends the
        decision to the outbox, and a record Redis does not take is dropped and counted.
        """
        cid, sid = _ids(decision)
        if record is not None and self._record_max:
            if self._outbox:  # Redis is not answering: no round trip for a record alone
                self._dropped.inc()
            else:
                self._add_record(record, timeout_s)
        if cid is None and sid is None:
            return
        pending = Pending(cid, sid, codec.dumps_trusted(decision), self._clock() + ttl_s)
        if self._outbox:
            self._outbox.add(pending)
            return
        home = self._keys.home(cid, sid)
        assert home is not None
        values = _cache_values(lookups, self._sealer) if lookups and cache_ttl_s > 0 else {}
        keys = self._keys

        def build(pipe: Any) -> None:
            keys.queue_decision(pipe, cid, sid, pending.body, ttl_s)
            if values:
                keys.queue_cache(pipe, home, cid, sid, values, cache_ttl_s)

        try:
            await self._pipeline.pipelined("save_decision", build, timeout_s)
        except StoreError as exc:
            self._outbox.add(pending)
            log.warning(
                "decision_queued",
                fault=exc.fault,
                reason=str(exc),
                outbox_pending=len(self._outbox),
            )
        except asyncio.CancelledError:  # it may not have landed: keep it, then stop
            self._outbox.add(pending)
            raise

    def _add_record(self, record: bytes, timeout_s: float | None) -> None:
        """Queue the ``XADD`` of ``record`` with this loop turn's pipeline."""
        key = self._keys.records
        limit = self._record_max

        def build(pipe: Any) -> None:
            pipe.xadd(key, {RECORD_FIELD: record}, maxlen=limit, approximate=True)

        self._pipeline.join_unawaited("record", build, timeout_s, self._record_failed)

    def _record_failed(self, error: StoreError) -> None:
        self._dropped.inc()
        log.debug("record_dropped", fault=error.fault)

    async def records(self, *, since: float | None = None) -> AsyncIterator[bytes]:
        """The records stream, oldest first, a page (:data:`RECORD_PAGE`) per round trip;
        with ``since``, from the entries Redis added at or after that Unix time."""
        key = self._keys.records
        start = "-" if since is None else f"{max(int(since * 1000), 0)}-0"
        while True:
            first = start

            async def page(first: str = first) -> Any:
                return await self._client.xrange(key, min=first, max="+", count=RECORD_PAGE)

            entries = await self._pipeline.round_trip("records", page, None, patient=True)
            for _, fields in entries:
                body = fields.get(RECORD_FIELD)
                if body is not None:
                    yield bytes(body)
            if len(entries) < RECORD_PAGE:
                return
            last = bytes(entries[-1][0]).decode()
            millis, _, sequence = last.partition("-")
            start = f"{millis}-{int(sequence or 0) + 1}"

    async def decision_for_conversation(
        self, conversation_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """The latest decision for a conversation id (one round trip), or ``None``."""
        key = self._keys.owner("c", conversation_id) + "decision"
        replies = await self._pipeline.pipelined(
            "decision_for_conversation", lambda pipe: pipe.get(key), timeout_s
        )
        return _decision(replies[0])

    async def decision_for_shared_id(
        self, shared_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """The latest decision for a shared id, or ``None``.

        One round trip when the decision was saved by shared id alone, two when it is
        kept under the conversation the shared id is linked to.
        """
        shared = self._keys.owner("s", shared_id)
        began = time.monotonic()
        replies = await self._pipeline.pipelined(
            "decision_for_shared_id",
            lambda pipe: queue_mget(pipe, [shared + "decision", shared + "cid"]),
            timeout_s,
        )
        own, linked = replies[0]
        if own is not None or linked is None:
            return _decision(own)
        key = self._keys.owner("c", bytes(linked).decode()) + "decision"
        left = None if timeout_s is None else timeout_s - (time.monotonic() - began)
        more = await self._pipeline.pipelined(
            "decision_for_shared_id_linked", lambda pipe: pipe.get(key), left
        )
        found = _decision(more[0])
        # The conversation's latest decision may have been made under another shared id.
        return found if found is not None and found.get("shared_id") == shared_id else None

    # Health and shutdown -----------------------------------------------------------

    async def status(self) -> StoreStatus:
        """``"ok"`` or ``"down"``, cheaply: no round trip while the breaker is open or a
        call succeeded in the last second; otherwise one bounded PING."""
        if self._pipeline.breaker_state == "open":
            return "down"
        if self._pipeline.answered_within(STATUS_FRESH_S):
            return "ok"
        try:
            await self._pipeline.round_trip("ping", self._client.ping, None)
        except StoreError:
            return "down"
        return "ok"

    async def close(self, *, flush_within_s: float = 1.0) -> None:
        """Stop the outbox, try once more (for up to ``flush_within_s``) to write what it
        holds, then close the connections. Decisions still queued are logged as lost."""
        self._outbox.stop()
        await self._pipeline.settle(flush_within_s)  # pipelines on their way: let them land
        await self._outbox.close(flush_within_s)
        await self._pipeline.close()
        for helper in self._helpers:
            await helper.aclose()


# Reading values back -----------------------------------------------------------------


def _cache_values(lookups: Mapping[str, JSONMap], sealer: Sealer) -> dict[str, bytes]:
    unknown = set(lookups) - set(CACHE_NAMES)
    if unknown:
        raise ValueError(f"unknown cached lookup {sorted(unknown)}; known: {CACHE_NAMES}")
    values: dict[str, bytes] = {}
    for name, value in lookups.items():
        sealed = sealer.seal_record(value) if name == CACHE_RECORD else sealer.seal(name, value)
        if sealed is not value and not sealer.encrypts:
            # Cached without its sensitive values, a lookup would decide the conversation's
            # next call differently: not cached at all, it is looked up again instead.
            continue
        values[name] = codec.dumps_trusted(sealed)  # upstream answers: no NaN can be in them
    return values


def _loads(raw: bytes | None, what: str, sealer: Sealer | None = None, root: str = "") -> Any:
    """Decode one stored JSON value (opening sealed values in it, under ``root``); an
    unreadable one is logged and read as absent."""
    if raw is None:
        return None
    try:
        value = codec.loads(raw)
    except ValueError:  # orjson's JSONDecodeError and json's are both ValueErrors
        log.warning("store_value_unreadable", field=what)
        return None
    if sealer is not None and SEALED_MARK in raw:
        return sealer.open(value, root)
    return value


def _link_ids(value: Any) -> tuple[str | None, str | None] | None:
    """A stored ``[conversation id, shared id]`` pair, or ``None`` when it is not one."""
    if isinstance(value, list) and len(value) == 2:
        cid, sid = value
        if (cid is None or isinstance(cid, str)) and (sid is None or isinstance(sid, str)):
            return cid, sid
    return None


def _decision(raw: bytes | None) -> dict[str, Any] | None:
    value = _loads(raw, "decision")
    return value if isinstance(value, dict) else None


def _parse(values: Sequence[bytes | None], sealer: Sealer) -> _Read:
    """One id's ``MGET`` answer (in :data:`~router.store.redis.keys.READ_FIELDS` order) as
    Python values."""
    fields = dict(zip(READ_FIELDS, values, strict=True))
    return _Read(
        link=_link_ids(_loads(fields["link"], "link")),
        pushed={
            name: value
            for name in PUSHED_NAMES
            if isinstance(value := _loads(fields[f"push:{name}"], "push", sealer, name), dict)
        },
        cached={
            name: value
            for name in CACHE_NAMES
            if isinstance(
                value := _loads(
                    fields[f"cache:{name}"], "cache", sealer, "" if name == CACHE_RECORD else name
                ),
                dict,
            )
        },
    )


def _merge(reads: Sequence[_Read], linked: str | None) -> Known:
    """Combine the reads of several ids, the first read's values winning (as in memory)."""
    pushed: dict[str, JSONMap] = {}
    cached: dict[str, JSONMap] = {}
    link_cid: str | None = None
    link_sid: str | None = None
    for read in reads:
        for name, value in read.pushed.items():
            pushed.setdefault(name, value)
        for name, value in read.cached.items():
            cached.setdefault(name, value)
        if read.link is not None:
            link_cid = link_cid or read.link[0]
            link_sid = link_sid or read.link[1]
    if not pushed and not cached and link_cid is None and link_sid is None and linked is None:
        return NOTHING_KNOWN
    return Known(
        pushed=Pushed(
            conversation_id=link_cid,
            shared_id=link_sid,
            handoff=pushed.get("handoff"),
            state=pushed.get("state"),
            conversation=pushed.get("conversation"),
        ),
        cached=cached,
        linked_conversation_id=linked,
    )


def _fixed(paths: SensitivePaths) -> PathsOf:
    return lambda: paths


def open_redis_store(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
    sensitive: PathsOf | None = None,
) -> RedisStore:
    """The Redis store ``ROUTER_STORE`` names, configured from ``settings``.

    No connection is made yet (the first call dials); a URL that cannot be used raises
    ``ValueError`` naming ``ROUTER_STORE`` (without its password). ``clock`` is the
    store's monotonic clock (see :class:`RedisStore`); ``sensitive`` gives the paths
    whose values are sealed (``ROUTER_STORE_SECRET``) or left out (default: those of
    ``ROUTER_SENSITIVE_PATHS`` and ``context.ani``).
    """
    timeout_s = settings.store_timeout_ms / 1000.0
    connected = connect(settings.store, pool_size=settings.store_pool_size, timeout_s=timeout_s)
    log.info("store_opened", kind="redis", mode=connected.mode, url=connected.where)
    return RedisStore(
        connected.client,
        prefix=settings.store_prefix,
        timeout_s=timeout_s,
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_s,
        link_ttl_s=max(settings.push_ttl_s, settings.cache_ttl_s, settings.decision_ttl_s),
        outbox_max=settings.store_outbox_max,
        record_max=settings.record_max,
        mode=connected.mode,
        helpers=connected.helpers,
        clock=clock,
        sealer=Sealer(settings.store_secret, sensitive or _fixed(settings.sensitive())),
    )
