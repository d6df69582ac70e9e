"""The shared store: pushed facts, the lookup cache and decisions in Redis, for every replica.

Selected by ``ROUTER_STORE=redis://…`` (also ``rediss://``, ``redis+cluster://``,
``redis+sentinel://``; see :mod:`router.store._redis_url`). It keeps the
:class:`~router.store.base.Store` contract of the memory store, and adds what a
network store needs: every round trip is bounded, failures are counted by a circuit
breaker, and decisions are never silently lost.

Keys (``P`` is ``ROUTER_STORE_PREFIX``, default ``router:``)::

    P{c:<conversation id>}:link              [conversation id, shared id] of the last push
    P{c:<conversation id>}:push:<namespace>  pushed handoff / state / conversation
    P{c:<conversation id>}:cache:<name>      cached lookup (handoff, state)
    P{c:<conversation id>}:decision          the latest decision
    P{s:<shared id>}:cid                     the conversation id this shared id belongs to
    P{s:<shared id>}:…                       the same fields, for writes that knew no
                                             conversation id (a push or decision by shared id)

Everything written for one conversation shares the hash tag ``{c:<id>}``, so it lives
on one Redis Cluster slot and a pipeline for it goes to one node. Ids are
percent-escaped for ``%``, ``{`` and ``}`` so the tag is always the whole id. Values
are compact JSON (:mod:`router.store.codec`); every key has its own TTL (``PX``), so
TTLs behave as in the memory store: each namespace, cached lookup and decision expires
on its own.

A write that knows both ids is kept under the conversation id, links the shared id to
it (``…:cid``, kept as long as the longest TTL so a decision stays findable by shared
id), and deletes what the shared id's own keys hold for the same fields (they are
older). So a read by conversation id prefers the conversation's keys, and a read by
shared id alone prefers the shared id's keys and then follows the link.

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

Faults (see docs/scaling.md, "When Redis is down"): each call waits at most
``min(ROUTER_STORE_TIMEOUT_MS, timeout_s)`` for an answer, or, while Redis is seen
answering other calls, up to ``timeout_s``; a timeout, a refused or reset connection
or a Redis error raises :class:`~router.store.base.StoreError` with ``fault`` set to
``timeout`` or ``error``. ``ROUTER_BREAKER_FAILURES`` consecutive failures open the
store's breaker: calls then fail at once with ``circuit_open`` (no waiting), and after
``ROUTER_BREAKER_RESET_S`` one call probes Redis again. Reconnection is redis-py's:
a dropped connection is redialled on the next use (one immediate retry within a call).
A push that could not be stored raises (the sender is told to retry). A decision that
could not be saved goes to a bounded in-process outbox (oldest dropped first,
``router_store_outbox_dropped_total``) and is written, in order, as soon as Redis
answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router.facts.breaker import Breaker, Permit
from router.metrics import (
    STORE_DURATION,
    STORE_OUTBOX_DROPPED,
    STORE_OUTBOX_PENDING,
    STORE_ROUND_TRIPS,
    STORE_UP,
)
from router.settings import Settings
from router.store import codec
from router.store._redis_url import RedisClient, RedisMode, connect, redact
from router.store.base import (
    CACHE_NAMES,
    NOTHING_KNOWN,
    JSONMap,
    Known,
    Pushed,
    StoreError,
    StoreKind,
    StoreStatus,
)

__all__ = ["RedisStore", "open_redis_store"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

PUSHED_NAMES = ("handoff", "state", "conversation")
"""The pushed namespaces, each its own key."""
_READ_FIELDS = (
    "link",
    *(f"push:{name}" for name in PUSHED_NAMES),
    *(f"cache:{name}" for name in CACHE_NAMES),
)
"""What :meth:`RedisStore.read_known` reads of one id, in ``MGET`` order."""
_FLUSH_BATCH = 200
"""Most outbox decisions written in one round trip."""
_PATIENT_TIMEOUT_S = 2.0
"""Least time an outbox flush (which no caller waits on) is given per round trip."""
_STATUS_FRESH_S = 1.0
"""A round trip that succeeded this recently answers ``status()`` without a PING."""
_DROP_LOG_EVERY_S = 1.0
"""Outbox drops are logged at most this often (they are counted every time)."""
_CLUSTER_INIT_TIMEOUT_S = 5.0
"""Longest a cluster client may take to learn the slot map (it runs in the background)."""


@dataclass(slots=True)
class _Pending:
    """A decision waiting in the outbox, with the ids it is kept under."""

    conversation_id: str | None
    shared_id: str | None
    body: bytes
    expires_at: float
    """On the store's monotonic clock: the decision's TTL runs while it waits."""


@dataclass(slots=True)
class _Read:
    """What one id's keys held."""

    link: tuple[str | None, str | None] | None
    pushed: dict[str, JSONMap]
    cached: dict[str, JSONMap]


@dataclass(slots=True)
class _Caller:
    """One store call waiting in a :class:`_Batch`: its future and its two deadlines (on
    the event loop's clock). Past ``soft`` (the store timeout) it waits on, up to ``hard``
    (its budget), only while Redis is seen answering other calls."""

    future: asyncio.Future[list[Any]]
    joined: float
    """On the store's clock, for :meth:`RedisStore._answered_since`."""
    soft: float
    hard: float
    soft_limit: float
    hard_limit: float


class _Batch:
    """The store calls of one event-loop turn, sent together as one pipeline.

    Every caller queues its commands with ``build`` and waits on its own future for its
    own slice of the replies, until its own deadline; the pipeline waits until the
    latest of them.
    """

    __slots__ = ("builds", "callers", "deadline", "expired", "full", "soft_deadline", "timers")

    def __init__(self) -> None:
        self.builds: list[Callable[[Any], None]] = []
        self.callers: list[_Caller] = []
        self.timers: list[asyncio.TimerHandle] = []
        self.soft_deadline = 0.0
        """The latest store timeout of the callers: when Redis must have answered."""
        self.deadline = 0.0
        """The latest budget of the callers: how long a busy loop may keep waiting."""
        self.expired = False
        self.full = False
        """Whether some caller had the store's whole timeout (then a timeout is a verdict)."""

    def join(self, build: Callable[[Any], None], caller: _Caller, *, full: bool) -> None:
        self.builds.append(build)
        self.callers.append(caller)
        self.soft_deadline = max(self.soft_deadline, caller.soft)
        self.deadline = max(self.deadline, caller.hard)
        self.full = self.full or full

    def fail(self, error: StoreError) -> None:
        for caller in self.callers:
            if not caller.future.done():
                caller.future.set_exception(error)


def _time_out(future: asyncio.Future[list[Any]], limit: float) -> None:
    """A caller's deadline passed before the pipeline's answer: it stops waiting."""
    if not future.done():
        future.set_exception(
            StoreError(f"Redis gave no answer within {limit * 1000:.0f} ms", "timeout")
        )


def _escape(value: str) -> str:
    """Keep ``{``/``}`` out of an id so the hash tag is the whole id (and keys stay unique)."""
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _ms(seconds: float) -> int:
    """A TTL for ``PX``: whole milliseconds, at least 1 (Redis refuses 0)."""
    return max(int(seconds * 1000), 1)


def _describe(exc: BaseException) -> str:
    """A short, secret-free account of a Redis client error, for logs and StoreError."""
    text = redact(str(exc)).strip()
    name = exc.__class__.__name__
    return f"{name}: {text[:200]}" if text else name


def _ids(decision: JSONMap) -> tuple[str | None, str | None]:
    cid, sid = decision.get("conversation_id"), decision.get("shared_id")
    return (cid if isinstance(cid, str) else None, sid if isinstance(sid, str) else None)


class RedisStore:
    """A :class:`~router.store.base.Store` in Redis, shared by every replica.

    ``client`` is a redis-py asyncio client (standalone, Sentinel master or Cluster)
    made with ``decode_responses=False``. ``timeout_s`` bounds every round trip;
    ``link_ttl_s`` is how long a shared id stays linked to its conversation (the
    longest TTL configured); ``outbox_max`` bounds the decisions kept while Redis is
    down (0: none are kept). ``helpers`` are other clients closed with this one.
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
        mode: RedisMode = "standalone",
        helpers: Sequence[Any] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold '{' or '}'")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._client = client
        self._helpers = tuple(helpers)
        self._prefix = prefix
        self._timeout = timeout_s
        self._link_ttl_s = link_ttl_s
        self._clock = clock
        self.mode: RedisMode = mode
        self._breaker = Breaker(
            "store", failures=breaker_failures, reset_s=breaker_reset_s, clock=clock
        )
        self._reset_s = breaker_reset_s
        self._retry_s = min(breaker_reset_s, 1.0)
        self._last_ok_at: float | None = None
        self._outbox: deque[_Pending] = deque()
        self._outbox_max = outbox_max
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._drops_unlogged = 0
        self._drop_logged_at = float("-inf")
        self._cluster_init: asyncio.Task[None] | None = None
        self._cluster_ready = not isinstance(client, RedisCluster)
        self._cluster_attempts = 0
        self._batch: _Batch | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._durations: dict[str, Any] = {}

    @property
    def kind(self) -> StoreKind:
        return "redis"

    @property
    def shared(self) -> bool:
        """Always: every replica reads and writes the same Redis."""
        return True

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half_open``: the store's circuit breaker."""
        return self._breaker.state

    @property
    def outbox_pending(self) -> int:
        """Decisions waiting for Redis to answer again."""
        return len(self._outbox)

    # Keys ------------------------------------------------------------------

    def _owner(self, kind: str, value: str) -> str:
        """The common start of one id's keys: ``<prefix>{c:<id>}:`` or ``<prefix>{s:<id>}:``."""
        return f"{self._prefix}{{{kind}:{_escape(value)}}}:"

    def _home(self, cid: str | None, sid: str | None) -> str | None:
        """Where a write goes: the conversation id's keys, else the shared id's."""
        if cid is not None:
            return self._owner("c", cid)
        if sid is not None:
            return self._owner("s", sid)
        return None

    def _link(self, pipe: Any, cid: str, sid: str, ttl_s: float, fields: Sequence[str]) -> None:
        """Queue: link ``sid`` to ``cid``; drop the shared id's own (older) ``fields``."""
        shared = self._owner("s", sid)
        pipe.set(shared + "cid", cid.encode(), px=_ms(max(ttl_s, self._link_ttl_s)))
        if fields:
            pipe.delete(*(shared + field for field in fields))

    # Round trips -------------------------------------------------------------

    async def _round_trip(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        timeout_s: float | None,
        *,
        patient: bool = False,
    ) -> T:
        """Run one round trip under the breaker, bounded by ``min(store timeout, timeout_s)``.

        Raises :class:`StoreError` (``circuit_open``, ``timeout`` or ``error``). A timeout
        counts against the breaker only when the call had the store's full timeout (a
        request whose budget is nearly spent says nothing about Redis's health) and no
        other round trip succeeded meanwhile (then Redis answers, and it is this process's
        event loop that is too busy to read the answer in time).

        ``patient`` round trips (the outbox flush: no caller waits on it) get at least
        :data:`_PATIENT_TIMEOUT_S`, so that a router whose event loop is saturated, and
        whose round trips therefore look slow, still drains its outbox and closes the
        breaker instead of dropping decisions while Redis is healthy.
        """
        limit = self._timeout if timeout_s is None else min(self._timeout, timeout_s)
        if patient:
            limit = max(limit, _PATIENT_TIMEOUT_S)
        if limit <= 0:
            raise StoreError(f"{operation}: no time left in the request's budget", "timeout")
        permit = self._breaker.acquire()
        if permit is None:
            raise StoreError(f"{operation}: the store's circuit breaker is open", "circuit_open")
        began = time.monotonic()
        started = self._clock()
        # The first time a cluster client learns its slots is slow, not a fault.
        warming = not self._cluster_ready and self._cluster_attempts <= 1
        try:
            async with asyncio.timeout(limit):
                if warming:
                    await self._learn_cluster()
                result = await call()
        except (TimeoutError, RedisTimeoutError):
            counts = (
                min(limit, self._timeout) >= self._timeout
                and not warming
                and not self._answered_since(started)
            )
            self._failed(permit, counts=counts)
            raise StoreError(
                f"{operation}: Redis gave no answer within {limit * 1000:.0f} ms", "timeout"
            ) from None
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failed(permit, counts=True)
            raise StoreError(f"{operation}: {_describe(exc)}", "error") from None
        except BaseException:  # cancelled (or a bug): no verdict on Redis; let another probe
            self._breaker.abandon(permit)
            raise
        finally:
            STORE_DURATION.labels(operation=operation).observe(time.monotonic() - began)
        self._succeeded(permit)
        return result

    async def _pipelined(
        self,
        operation: str,
        build: Callable[[Any], None],
        timeout_s: float | None,
        *,
        patient: bool = False,
    ) -> list[Any]:
        """The replies to the commands ``build`` queues, sent in one pipelined round trip.

        Calls made in the same turn of the event loop share that round trip
        (auto-pipelining): under load, one pipeline carries the reads and writes of many
        requests, so its fixed cost (a pooled connection, two system calls, a timer, the
        breaker's bookkeeping) is paid once, not once per call. Each caller gets only its
        own replies, and a command that fails (a Redis error reply) fails only its caller.
        Each caller waits ``min(store timeout, timeout_s)``, and on past that, up to
        ``timeout_s`` (its budget), only while Redis is answering other calls: then the
        answer is late because this process is busy, and waiting beats routing blind.
        ``patient`` round trips (the outbox) go alone, with the longer timeout
        :meth:`_round_trip` gives them.
        """
        if patient:

            async def run() -> list[Any]:
                pipe = self._client.pipeline(transaction=False)
                build(pipe)
                replies: list[Any] = await pipe.execute()
                return replies

            return await self._round_trip(operation, run, timeout_s, patient=True)
        hard_limit = self._timeout if timeout_s is None else timeout_s
        soft_limit = min(self._timeout, hard_limit)
        if soft_limit <= 0:
            raise StoreError(f"{operation}: no time left in the request's budget", "timeout")
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            loop.call_soon(self._send, batch)
        began = loop.time()
        future: asyncio.Future[list[Any]] = loop.create_future()
        caller = _Caller(
            future,
            self._clock(),
            began + soft_limit,
            began + hard_limit,
            soft_limit,
            hard_limit,
        )
        batch.join(build, caller, full=soft_limit >= self._timeout)
        try:
            return await future
        except StoreError as exc:
            raise StoreError(f"{operation}: {exc}", exc.fault) from None
        finally:
            self._duration(operation).observe(loop.time() - began)

    def _duration(self, operation: str) -> Any:
        """The ``router_store_duration_seconds`` child of an operation (looked up once)."""
        child = self._durations.get(operation)
        if child is None:
            child = self._durations[operation] = STORE_DURATION.labels(operation=operation)
        return child

    def _send(self, batch: _Batch) -> None:
        """End of the loop turn: close ``batch`` to newcomers and send it."""
        if self._batch is batch:
            self._batch = None
        task = asyncio.get_running_loop().create_task(self._send_batch(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_batch(self, batch: _Batch) -> None:
        """One pipeline for every call of ``batch``, under the breaker; each caller's
        future gets its slice of the replies or the :class:`StoreError` of the trip."""
        permit = self._breaker.acquire()
        if permit is None:
            batch.fail(StoreError("the store's circuit breaker is open", "circuit_open"))
            return
        pipe = self._client.pipeline(transaction=False)
        slices: list[tuple[int, int]] = []
        for build in batch.builds:
            start = len(pipe)
            build(pipe)
            slices.append((start, len(pipe)))
        STORE_ROUND_TRIPS.inc()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        began = self._clock()
        # The pipeline's store timeout (which it extends while Redis is seen answering
        # other calls), and a timer for each caller whose store timeout comes sooner (the
        # calls of one turn usually share one: the loop's clock stands still within a turn).
        for caller in batch.callers:
            if caller.soft < batch.soft_deadline:
                batch.timers.append(loop.call_at(caller.soft, self._soft_deadline, batch, caller))
        batch.timers.append(
            loop.call_at(batch.soft_deadline, self._batch_deadline, batch, task, began)
        )
        warming = not self._cluster_ready and self._cluster_attempts <= 1
        try:
            if warming:
                await self._learn_cluster()
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            if not batch.expired or task.uncancel() > 0:  # cancelled from outside
                self._breaker.abandon(permit)
                batch.fail(StoreError("the round trip was cut short", "error"))
                raise
            timed_out = True
        except RedisTimeoutError:
            timed_out = True
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failed(permit, counts=True)
            batch.fail(StoreError(_describe(exc), "error"))
            return
        except BaseException:  # a bug: no verdict on Redis; let another probe
            self._breaker.abandon(permit)
            batch.fail(StoreError("the round trip was cut short", "error"))
            raise
        else:
            timed_out = False
        finally:
            for timer in batch.timers:
                timer.cancel()
        if timed_out:
            counts = batch.full and not warming and not self._answered_since(began)
            self._failed(permit, counts=counts)
            waited = (self._clock() - began) * 1000
            batch.fail(StoreError(f"Redis gave no answer within {waited:.0f} ms", "timeout"))
            return
        self._succeeded(permit)
        for caller, (start, end) in zip(batch.callers, slices, strict=True):
            future = caller.future
            if future.done():  # its caller gave up waiting
                continue
            mine = replies[start:end]
            error = next((reply for reply in mine if isinstance(reply, Exception)), None)
            if error is None:
                future.set_result(mine)
            else:
                future.set_exception(StoreError(_describe(error), "error"))

    def _batch_deadline(self, batch: _Batch, task: asyncio.Task[None], began: float) -> None:
        """The pipeline's store timeout passed. If Redis answered another call meanwhile,
        wait on: each caller until its own budget, the pipeline until the latest; a caller
        with no budget beyond the store timeout stops now. Else give up on the pipeline."""
        if not (batch.deadline > batch.soft_deadline and self._answered_since(began)):
            self._expire(batch, task)
            return
        loop = asyncio.get_running_loop()
        for caller in batch.callers:
            if caller.future.done() or caller.soft < batch.soft_deadline:
                continue  # answered, or its own timer already decided
            if caller.hard <= caller.soft:
                _time_out(caller.future, caller.soft_limit)
            elif caller.hard < batch.deadline:
                batch.timers.append(
                    loop.call_at(caller.hard, _time_out, caller.future, caller.hard_limit)
                )
        batch.timers.append(loop.call_at(batch.deadline, self._expire, batch, task))

    @staticmethod
    def _expire(batch: _Batch, task: asyncio.Task[None]) -> None:
        if not task.done():
            batch.expired = True
            task.cancel()

    def _soft_deadline(self, batch: _Batch, caller: _Caller) -> None:
        """A caller's store timeout passed before the pipeline's. If Redis answered another
        call meanwhile, the answer is late because this event loop is busy, not because
        Redis is down: waiting on (within the caller's budget) then gives a better decision
        than giving up. Otherwise the caller stops waiting."""
        if caller.future.done():
            return
        if caller.hard > caller.soft and self._answered_since(caller.joined):
            timer = asyncio.get_running_loop().call_at(
                caller.hard, _time_out, caller.future, caller.hard_limit
            )
            batch.timers.append(timer)
            return
        _time_out(caller.future, caller.soft_limit)

    def _answered_since(self, moment: float) -> bool:
        """Whether a round trip succeeded after ``moment``: then a timeout now says the
        event loop was too busy to read the answer in time, not that Redis is down."""
        return self._last_ok_at is not None and self._last_ok_at > moment

    async def _learn_cluster(self) -> None:
        """Wait (within the caller's bound) for the cluster client to learn the slot map.

        That takes a few round trips and a large ``COMMAND`` reply, often more than one
        store timeout, so it runs as a background task that a timed-out call does not
        cancel: the next call finds it done. A failed attempt is retried by the next call
        (and from then on its timeouts count against the breaker as usual).
        """
        client = self._client
        assert isinstance(client, RedisCluster)

        async def learn() -> None:
            async with asyncio.timeout(_CLUSTER_INIT_TIMEOUT_S):
                await client.initialize()

        task = self._cluster_init
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            self._cluster_attempts += 1
            task = self._cluster_init = asyncio.get_running_loop().create_task(
                learn(), name="router-store-cluster-init"
            )
            task.add_done_callback(_report_cluster_init)
        await asyncio.shield(task)
        self._cluster_ready = True

    async def connect(self, timeout_s: float = _CLUSTER_INIT_TIMEOUT_S) -> None:
        """Dial Redis now (for a cluster: learn its slots) instead of on the first request.

        Optional, at start-up: raises :class:`StoreError` when Redis does not answer a PING
        within ``timeout_s`` (the store still works, and keeps trying, afterwards).
        """
        try:
            async with asyncio.timeout(timeout_s):
                if not self._cluster_ready:
                    await self._learn_cluster()
                await self._client.ping()
        except (TimeoutError, RedisError, RedisClusterException, OSError) as exc:
            raise StoreError(f"connect: {_describe(exc)}", "error") from None
        STORE_UP.set(1)
        self._last_ok_at = self._clock()

    def _failed(self, permit: Permit, *, counts: bool) -> None:
        was = self._breaker.state
        if counts:
            self._breaker.record(permit, failed=True)
            STORE_UP.set(0)
        else:  # cut short by the caller's budget: no verdict on Redis
            self._breaker.abandon(permit)
        if was != "open" and self._breaker.state == "open":
            log.warning("store_circuit_open", reset_s=self._reset_s)

    def _succeeded(self, permit: Permit) -> None:
        was = self._breaker.state
        self._breaker.record(permit, failed=False)
        STORE_UP.set(1)
        self._last_ok_at = self._clock()
        if was != "closed":
            log.info("store_recovered", outbox_pending=len(self._outbox))
        if self._outbox:
            self._wake.set()
            self._ensure_flusher()

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
        home = self._home(conversation_id, shared_id)
        if home is None:
            return
        given = {
            name: value
            for name, value in zip(PUSHED_NAMES, (data, state, conversation), strict=True)
            if value is not None
        }
        ttl_ms = _ms(ttl_s)
        link = codec.dumps([conversation_id, shared_id])
        values = {name: codec.dumps(value) for name, value in given.items()}

        def build(pipe: Any) -> None:
            pipe.set(home + "link", link, px=ttl_ms)
            for name, body in values.items():
                pipe.set(f"{home}push:{name}", body, px=ttl_ms)
            if conversation_id is not None and shared_id is not None:
                self._link(pipe, conversation_id, shared_id, ttl_s, [f"push:{n}" for n in given])

        await self._pipelined("push", build, timeout_s)

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
        owners = [
            self._owner(kind, value)
            for kind, value in (("c", conversation_id), ("s", shared_id))
            if value is not None
        ]
        if not owners:
            return NOTHING_KNOWN
        follow = conversation_id is None
        began = time.monotonic()

        def build(pipe: Any) -> None:
            for owner in owners:
                _mget(pipe, [owner + field for field in _READ_FIELDS])
            if follow:
                pipe.get(owners[0] + "cid")

        replies = await self._pipelined("read_known", build, timeout_s)
        reads = [self._parse(reply) for reply in replies[: len(owners)]]
        linked: str | None = None
        if follow and replies[-1] is not None:
            linked = bytes(replies[-1]).decode()
            left = None if timeout_s is None else timeout_s - (time.monotonic() - began)
            owner = self._owner("c", linked)
            more = await self._pipelined(
                "read_known_linked",
                lambda pipe: _mget(pipe, [owner + field for field in _READ_FIELDS]),
                left,
            )
            reads.append(self._parse(more[0]))
        return _merge(reads, linked)

    def _parse(self, values: Sequence[bytes | None]) -> _Read:
        """One id's ``MGET`` answer (in :data:`_READ_FIELDS` order) as Python values."""
        fields = dict(zip(_READ_FIELDS, values, strict=True))
        return _Read(
            link=_link_ids(_loads(fields["link"], "link")),
            pushed={
                name: value
                for name in PUSHED_NAMES
                if isinstance(value := _loads(fields[f"push:{name}"], "push"), dict)
            },
            cached={
                name: value
                for name in CACHE_NAMES
                if isinstance(value := _loads(fields[f"cache:{name}"], "cache"), dict)
            },
        )

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
        home = self._home(conversation_id, shared_id)
        if home is None:
            return
        values = self._cache_values(lookups)
        await self._pipelined(
            "cache_lookups",
            lambda pipe: self._queue_cache(pipe, home, conversation_id, shared_id, values, ttl_s),
            timeout_s,
        )

    @staticmethod
    def _cache_values(lookups: Mapping[str, JSONMap]) -> dict[str, bytes]:
        unknown = set(lookups) - set(CACHE_NAMES)
        if unknown:
            raise ValueError(f"unknown cached lookup {sorted(unknown)}; known: {CACHE_NAMES}")
        return {name: codec.dumps(value) for name, value in lookups.items()}

    def _queue_cache(
        self,
        pipe: Any,
        home: str,
        cid: str | None,
        sid: str | None,
        values: Mapping[str, bytes],
        ttl_s: float,
    ) -> None:
        for name, body in values.items():
            pipe.set(f"{home}cache:{name}", body, px=_ms(ttl_s))
        if cid is not None and sid is not None:
            self._link(pipe, cid, sid, ttl_s, [f"cache:{name}" for name in values])

    def _queue_decision(self, pipe: Any, pending: _Pending, ttl_s: float) -> None:
        home = self._home(pending.conversation_id, pending.shared_id)
        assert home is not None
        pipe.set(home + "decision", pending.body, px=_ms(ttl_s))
        if pending.conversation_id is not None and pending.shared_id is not None:
            self._link(pipe, pending.conversation_id, pending.shared_id, ttl_s, ["decision"])

    async def save_decision(
        self,
        decision: JSONMap,
        *,
        ttl_s: float,
        lookups: Mapping[str, JSONMap] | None = None,
        cache_ttl_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        """Keep ``decision`` (and cache ``lookups``) in one round trip; never raises for Redis.

        When Redis cannot take it, the decision waits in the outbox and is written when
        Redis answers again (the lookups are dropped: they are only a cache). While the
        outbox holds anything, new decisions queue behind it, so that an older decision
        can never overwrite a newer one.
        """
        cid, sid = _ids(decision)
        if cid is None and sid is None:
            return
        pending = _Pending(cid, sid, codec.dumps(decision), self._clock() + ttl_s)
        if self._outbox:
            self._enqueue(pending)
            return
        home = self._home(cid, sid)
        assert home is not None
        values = self._cache_values(lookups) if lookups and cache_ttl_s > 0 else {}

        def build(pipe: Any) -> None:
            self._queue_decision(pipe, pending, ttl_s)
            if values:
                self._queue_cache(pipe, home, cid, sid, values, cache_ttl_s)

        try:
            await self._pipelined("save_decision", build, timeout_s)
        except StoreError as exc:
            self._enqueue(pending)
            log.warning(
                "decision_queued",
                fault=exc.fault,
                reason=str(exc),
                outbox_pending=len(self._outbox),
            )
        except asyncio.CancelledError:  # it may not have landed: keep it, then stop
            self._enqueue(pending)
            raise

    async def decision_for_conversation(
        self, conversation_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any] | None:
        """The latest decision for a conversation id (one round trip), or ``None``."""
        key = self._owner("c", conversation_id) + "decision"
        replies = await self._pipelined(
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
        shared = self._owner("s", shared_id)
        began = time.monotonic()
        replies = await self._pipelined(
            "decision_for_shared_id",
            lambda pipe: _mget(pipe, [shared + "decision", shared + "cid"]),
            timeout_s,
        )
        own, linked = replies[0]
        if own is not None or linked is None:
            return _decision(own)
        key = self._owner("c", bytes(linked).decode()) + "decision"
        left = None if timeout_s is None else timeout_s - (time.monotonic() - began)
        more = await self._pipelined(
            "decision_for_shared_id_linked", lambda pipe: pipe.get(key), left
        )
        found = _decision(more[0])
        # The conversation's latest decision may have been made under another shared id.
        return found if found is not None and found.get("shared_id") == shared_id else None

    # Outbox ------------------------------------------------------------------------

    def _enqueue(self, pending: _Pending) -> None:
        """Keep a decision for later; drop the oldest when full (counted, logged)."""
        if self._outbox_max <= 0:
            self._dropped(1)
            return
        while len(self._outbox) >= self._outbox_max:
            self._outbox.popleft()
            self._dropped(1)
        self._outbox.append(pending)
        STORE_OUTBOX_PENDING.set(len(self._outbox))
        self._wake.set()
        self._ensure_flusher()

    def _dropped(self, count: int) -> None:
        STORE_OUTBOX_DROPPED.inc(count)
        self._drops_unlogged += count
        now = self._clock()
        if now - self._drop_logged_at >= _DROP_LOG_EVERY_S:
            log.warning(
                "store_outbox_full",
                dropped=self._drops_unlogged,
                outbox_max=self._outbox_max,
            )
            self._drops_unlogged = 0
            self._drop_logged_at = now

    def _ensure_flusher(self) -> None:
        if self._closing or (self._flusher is not None and not self._flusher.done()):
            return
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_loop(), name="router-store-outbox"
        )
        self._flusher.add_done_callback(_report_crash)

    async def _flush_loop(self) -> None:
        """Write queued decisions while there are any: at once when woken (a call to
        Redis succeeded, or a decision was queued), else every second or so (the
        breaker decides when Redis is worth trying again)."""
        while self._outbox and not self._closing:
            self._wake.clear()
            try:
                await self._flush_batch(None)
            except StoreError as exc:
                log.debug("store_outbox_flush_failed", fault=exc.fault, reason=str(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_s):
                        await self._wake.wait()

    async def _flush_batch(self, timeout_s: float | None) -> None:
        """Write the oldest queued decisions, in order, in one round trip."""
        batch = list(itertools.islice(self._outbox, _FLUSH_BATCH))
        now = self._clock()
        live = [(pending, pending.expires_at - now) for pending in batch]
        live = [(pending, ttl) for pending, ttl in live if ttl > 0]

        def build(pipe: Any) -> None:
            for pending, ttl in live:
                self._queue_decision(pipe, pending, ttl)

        if live:
            await self._pipelined("outbox_flush", build, timeout_s, patient=timeout_s is None)
        written = {id(pending) for pending in batch}
        while self._outbox and id(self._outbox[0]) in written:
            self._outbox.popleft()
        STORE_OUTBOX_PENDING.set(len(self._outbox))
        log.info(
            "store_outbox_flushed",
            written=len(live),
            expired=len(batch) - len(live),
            outbox_pending=len(self._outbox),
        )

    # Health and shutdown -----------------------------------------------------------

    async def status(self) -> StoreStatus:
        """``"ok"`` or ``"down"``, cheaply: no round trip while the breaker is open or a
        call succeeded in the last second; otherwise one bounded PING."""
        if self._breaker.state == "open":
            return "down"
        if self._last_ok_at is not None and self._clock() - self._last_ok_at < _STATUS_FRESH_S:
            return "ok"
        try:
            await self._round_trip("ping", self._client.ping, None)
        except StoreError:
            return "down"
        return "ok"

    async def close(self, *, flush_within_s: float = 1.0) -> None:
        """Stop the outbox, try once more (for up to ``flush_within_s``) to write what it
        holds, then close the connections. Decisions still queued are logged as lost."""
        self._closing = True
        if self._sending:  # pipelines already on their way: let them land
            await asyncio.wait(set(self._sending), timeout=flush_within_s)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.wait({self._flusher})
        deadline = time.monotonic() + flush_within_s
        while self._outbox and (left := deadline - time.monotonic()) > 0:
            try:
                await self._flush_batch(left)
            except StoreError as exc:
                log.warning("store_outbox_final_flush_failed", fault=exc.fault, reason=str(exc))
                break
        if self._outbox:
            log.error("store_outbox_abandoned", decisions=len(self._outbox))
            self._outbox.clear()
            STORE_OUTBOX_PENDING.set(0)
        if self._cluster_init is not None and not self._cluster_init.done():
            self._cluster_init.cancel()
            await asyncio.wait({self._cluster_init})
        await self._client.aclose()
        for helper in self._helpers:
            await helper.aclose()


def _report_cluster_init(task: asyncio.Task[None]) -> None:
    """Log a failed attempt to learn the cluster's slots (the next call tries again)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("store_cluster_init_failed", reason=_describe(error))


def _mget(pipe: Any, keys: Sequence[str]) -> None:
    """Queue one ``MGET`` of keys that share a hash tag (one slot, so one cluster node).

    redis-py's cluster pipeline refuses its ``mget`` helper (it cannot know the keys
    share a slot); the raw command is routed by its keys' slot, which is the same.
    """
    pipe.execute_command("MGET", *keys)


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log a flusher that died of a bug (it is restarted by the next queued decision)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("store_outbox_flusher_crashed", exc_info=error)


def _loads(raw: bytes | None, what: str) -> Any:
    """Decode one stored JSON value; an unreadable one is logged and read as absent."""
    if raw is None:
        return None
    try:
        return codec.loads(raw)
    except ValueError:  # orjson's JSONDecodeError and json's are both ValueErrors
        log.warning("store_value_unreadable", field=what)
        return None


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


def open_redis_store(settings: Settings) -> RedisStore:
    """The Redis store ``ROUTER_STORE`` names, configured from ``settings``.

    No connection is made yet (the first call dials); a URL that cannot be used raises
    ``ValueError`` naming ``ROUTER_STORE`` (without its password).
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
        mode=connected.mode,
        helpers=connected.helpers,
    )
