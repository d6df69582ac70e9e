"""Round trips to Redis: bounded, auto-pipelined, and counted by the store's circuit breaker.

Two ways to make a round trip, one verdict on how it ended (:meth:`Pipeline._fault`):

- :meth:`Pipeline.pipelined`, for every store call: the calls made in one turn of the
  event loop share one pipeline (auto-pipelining), each caller with its own replies,
  errors and deadline.
- :meth:`Pipeline.round_trip`, for what goes alone: a ``PING`` for ``status()``, and the
  outbox's flush, which no caller waits on and which gets a longer timeout.

Each call waits at most ``min(ROUTER_STORE_TIMEOUT_MS, timeout_s)`` for an answer, or,
while Redis is seen answering other calls, up to ``timeout_s`` (then the answer is late
because this process is busy, and waiting beats routing blind). A timeout, a refused or
reset connection or a Redis error raises :class:`~router.store.base.StoreError` with
``fault`` set to ``timeout`` or ``error``. ``ROUTER_BREAKER_FAILURES`` consecutive
failures open the breaker: calls then fail at once with ``circuit_open`` (no waiting),
and after ``ROUTER_BREAKER_RESET_S`` one call probes Redis again. A timeout counts only
when the call had the store's whole timeout and no other round trip succeeded
meanwhile. Reconnection is redis-py's: a dropped connection is redialled on the next use
(one immediate retry within a call).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router.breaker import Breaker, BreakerState, Permit
from router.metrics import STORE_DURATION, STORE_ROUND_TRIPS, STORE_UP
from router.store.base import StoreError
from router.store.redis.url import RedisClient, redact

log = structlog.get_logger(__name__)

T = TypeVar("T")

PATIENT_TIMEOUT_S = 2.0
"""Least time a patient round trip (the outbox flush, which no caller waits on) is given."""
CLUSTER_INIT_TIMEOUT_S = 5.0
"""Longest a cluster client may take to learn the slot map (it runs in the background)."""


def describe(exc: BaseException) -> str:
    """A short, secret-free account of a Redis client error, for logs and StoreError."""
    text = redact(str(exc)).strip()
    name = exc.__class__.__name__
    return f"{name}: {text[:200]}" if text else name


@dataclass(slots=True)
class _Caller:
    """One store call waiting in a :class:`_Batch`: its future and its two deadlines (on
    the event loop's clock). Past ``soft`` (the store timeout) it waits on, up to ``hard``
    (its budget), only while Redis is seen answering other calls."""

    future: asyncio.Future[list[Any]]
    joined: float
    """On the store's clock, for :meth:`Pipeline._answered_since`."""
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

    __slots__ = ("builds", "callers", "deadline", "full", "soft_deadline", "timers")

    def __init__(self) -> None:
        self.builds: list[Callable[[Any], None]] = []
        self.callers: list[_Caller] = []
        self.timers: list[asyncio.TimerHandle] = []
        self.soft_deadline = 0.0
        """The latest store timeout of the callers: when Redis must have answered."""
        self.deadline = 0.0
        """The latest budget of the callers: how long a busy loop may keep waiting."""
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


def _expire(window: asyncio.Timeout) -> None:
    """End a pipeline's wait now (its task then raises ``TimeoutError``)."""
    if not window.expired():
        window.reschedule(asyncio.get_running_loop().time())


class Pipeline:
    """Every round trip of one Redis store, through ``client`` (a redis-py asyncio client).

    ``timeout_s`` is the store timeout; the breaker opens after ``breaker_failures``
    consecutive failures for ``breaker_reset_s`` (on ``clock``). ``on_answer`` is told
    of every round trip that succeeded, with ``True`` when it closed the breaker.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        timeout_s: float,
        breaker_failures: int,
        breaker_reset_s: float,
        on_answer: Callable[[bool], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.client = client
        self._timeout = timeout_s
        self._clock = clock
        self._on_answer = on_answer
        self._breaker = Breaker(
            "store", failures=breaker_failures, reset_s=breaker_reset_s, clock=clock
        )
        self._reset_s = breaker_reset_s
        self._last_ok_at: float | None = None
        self._cluster_init: asyncio.Task[None] | None = None
        self._cluster_ready = not isinstance(client, RedisCluster)
        self._cluster_attempts = 0
        self._batch: _Batch | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._durations: dict[str, Any] = {}

    @property
    def breaker_state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open``: the store's circuit breaker."""
        return self._breaker.state

    def answered_within(self, seconds: float) -> bool:
        """Whether a round trip succeeded in the last ``seconds`` (on the store's clock)."""
        return self._last_ok_at is not None and self._clock() - self._last_ok_at < seconds

    # The one verdict -----------------------------------------------------------------

    def _fault(
        self,
        permit: Permit,
        error: BaseException,
        *,
        full: bool,
        warming: bool,
        since: float,
        waited_s: float,
    ) -> StoreError | None:
        """Settle ``permit`` for a round trip that raised ``error``, and say what its
        callers get: a :class:`StoreError`, or ``None`` when the trip was cut short
        (cancelled, or a bug) and the caller re-raises ``error``.

        A timeout counts against the breaker only when the trip had the store's full
        timeout (``full``: a request whose budget is nearly spent says nothing about
        Redis's health), was not the first slow lesson of a cluster's slot map
        (``warming``), and no other round trip succeeded since ``since`` (then Redis
        answers, and it is this process's event loop that is too busy to read the answer
        in time). A connection or Redis error always counts; a trip cut short gives no
        verdict, and lets the next caller probe.
        """
        if isinstance(error, TimeoutError | RedisTimeoutError):
            self._failed(permit, counts=full and not warming and not self._answered_since(since))
            return StoreError(f"Redis gave no answer within {waited_s * 1000:.0f} ms", "timeout")
        if isinstance(error, RedisError | RedisClusterException | OSError):
            self._failed(permit, counts=True)
            return StoreError(describe(error), "error")
        self._breaker.abandon(permit)
        return None

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
        self._on_answer(was != "closed")

    def _answered_since(self, moment: float) -> bool:
        """Whether a round trip succeeded after ``moment``: then a timeout now says the
        event loop was too busy to read the answer in time, not that Redis is down."""
        return self._last_ok_at is not None and self._last_ok_at > moment

    # A round trip alone --------------------------------------------------------------

    async def round_trip(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        timeout_s: float | None,
        *,
        patient: bool = False,
    ) -> T:
        """Run one round trip under the breaker, bounded by ``min(store timeout, timeout_s)``.

        Raises :class:`StoreError` (``circuit_open``, ``timeout`` or ``error``).
        ``patient`` round trips (the outbox flush: no caller waits on it) get at least
        :data:`PATIENT_TIMEOUT_S`, so that a router whose event loop is saturated, and
        whose round trips therefore look slow, still drains its outbox and closes the
        breaker instead of dropping decisions while Redis is healthy.
        """
        limit = self._timeout if timeout_s is None else min(self._timeout, timeout_s)
        if patient:
            limit = max(limit, PATIENT_TIMEOUT_S)
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
        except BaseException as exc:
            full = min(limit, self._timeout) >= self._timeout
            error = self._fault(
                permit, exc, full=full, warming=warming, since=started, waited_s=limit
            )
            if error is None:
                raise
            raise StoreError(f"{operation}: {error}", error.fault) from None
        finally:
            STORE_DURATION.labels(operation=operation).observe(time.monotonic() - began)
        self._succeeded(permit)
        return result

    # Auto-pipelining ----------------------------------------------------------------

    async def pipelined(
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
        :meth:`round_trip` gives them.
        """
        if patient:

            async def run() -> list[Any]:
                pipe = self.client.pipeline(transaction=False)
                build(pipe)
                replies: list[Any] = await pipe.execute()
                return replies

            return await self.round_trip(operation, run, timeout_s, patient=True)
        future = self._join(operation, build, timeout_s)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            return await future
        except StoreError as exc:
            raise StoreError(f"{operation}: {exc}", exc.fault) from None
        finally:
            self._duration(operation).observe(loop.time() - began)

    def join_unawaited(
        self,
        operation: str,
        build: Callable[[Any], None],
        timeout_s: float | None,
        on_failure: Callable[[StoreError], None],
    ) -> None:
        """Queue ``build``'s commands with the calls of this loop turn, and wait for nothing.

        For a write no caller waits on (a decision's replay record): it rides in the
        pipeline of the call made with it (no round trip of its own when that call is
        made in the same turn), and only a failure is reported, to ``on_failure``.
        """
        try:
            future = self._join(operation, build, timeout_s)
        except StoreError as exc:
            on_failure(exc)
            return

        def done(finished: asyncio.Future[list[Any]]) -> None:
            if finished.cancelled():
                on_failure(StoreError(f"{operation}: cancelled", "error"))
            elif (error := finished.exception()) is not None:
                on_failure(error if isinstance(error, StoreError) else StoreError(str(error)))

        future.add_done_callback(done)

    def _join(
        self, operation: str, build: Callable[[Any], None], timeout_s: float | None
    ) -> asyncio.Future[list[Any]]:
        """Add a caller to this loop turn's batch (starting one if none is open)."""
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
        return future

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
        pipe = self.client.pipeline(transaction=False)
        slices: list[tuple[int, int]] = []
        for build in batch.builds:
            start = len(pipe)
            build(pipe)
            slices.append((start, len(pipe)))
        STORE_ROUND_TRIPS.inc()
        loop = asyncio.get_running_loop()
        began = self._clock()
        warming = not self._cluster_ready and self._cluster_attempts <= 1
        try:
            # The pipeline waits until the latest budget of its callers, unless its store
            # timeout passes with no other round trip succeeding (:meth:`_batch_deadline`);
            # a caller whose store timeout comes sooner has a timer of its own (the calls
            # of one turn usually share one: the loop's clock stands still within a turn).
            async with asyncio.timeout_at(batch.deadline) as window:
                for caller in batch.callers:
                    if caller.soft < batch.soft_deadline:
                        batch.timers.append(
                            loop.call_at(caller.soft, self._soft_deadline, batch, caller)
                        )
                batch.timers.append(
                    loop.call_at(batch.soft_deadline, self._batch_deadline, batch, window, began)
                )
                if warming:
                    await self._learn_cluster()
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            fault = self._fault(
                permit,
                exc,
                full=batch.full,
                warming=warming,
                since=began,
                waited_s=self._clock() - began,
            )
            batch.fail(fault or StoreError("the round trip was cut short", "error"))
            if fault is None:
                raise
            return
        finally:
            for timer in batch.timers:
                timer.cancel()
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
                future.set_exception(StoreError(describe(error), "error"))

    def _batch_deadline(self, batch: _Batch, window: asyncio.Timeout, began: float) -> None:
        """The pipeline's store timeout passed. If Redis answered another call meanwhile,
        wait on: each caller until its own budget, the pipeline until the latest; a caller
        with no budget beyond the store timeout stops now. Else give up on the pipeline."""
        if not (batch.deadline > batch.soft_deadline and self._answered_since(began)):
            _expire(window)
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

    # A cluster's slot map, connecting, closing --------------------------------------------

    async def _learn_cluster(self) -> None:
        """Wait (within the caller's bound) for the cluster client to learn the slot map.

        That takes a few round trips and a large ``COMMAND`` reply, often more than one
        store timeout, so it runs as a background task that a timed-out call does not
        cancel: the next call finds it done. A failed attempt is retried by the next call
        (and from then on its timeouts count against the breaker as usual).
        """
        client = self.client
        assert isinstance(client, RedisCluster)

        async def learn() -> None:
            async with asyncio.timeout(CLUSTER_INIT_TIMEOUT_S):
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

    async def connect(self, timeout_s: float = CLUSTER_INIT_TIMEOUT_S) -> None:
        """Dial Redis now (for a cluster: learn its slots) instead of on the first call.

        Raises :class:`StoreError` when Redis does not answer a PING within ``timeout_s``
        (the store still works, and keeps trying, afterwards).
        """
        try:
            async with asyncio.timeout(timeout_s):
                if not self._cluster_ready:
                    await self._learn_cluster()
                await self.client.ping()
        except (TimeoutError, RedisError, RedisClusterException, OSError) as exc:
            raise StoreError(f"connect: {describe(exc)}", "error") from None
        STORE_UP.set(1)
        self._last_ok_at = self._clock()

    async def settle(self, within_s: float) -> None:
        """Let the pipelines already on their way land (for up to ``within_s``)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=within_s)

    async def close(self) -> None:
        """Stop learning the slot map and close the client's connections."""
        if self._cluster_init is not None and not self._cluster_init.done():
            self._cluster_init.cancel()
            await asyncio.wait({self._cluster_init})
        await self.client.aclose()


def _report_cluster_init(task: asyncio.Task[None]) -> None:
    """Log a failed attempt to learn the cluster's slots (the next call tries again)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("store_cluster_init_failed", reason=describe(error))
