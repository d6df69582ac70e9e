"""Decisions Redis could not take yet, kept in this process and written once it answers.

A decision that could not be saved waits here, in a bounded queue (oldest dropped
first, ``router_store_outbox_dropped_total``), and is written, in order, as soon as
Redis answers again: at once when a round trip succeeds or a decision is queued, else
every second or so (the store's breaker decides when Redis is worth trying again).
While the outbox holds anything, new decisions queue behind it, so that an older
decision can never overwrite a newer one. A decision's TTL runs while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from router.metrics import STORE_OUTBOX_DROPPED, STORE_OUTBOX_PENDING
from router.store.base import StoreError
from router.store.redis.keys import Keys
from router.store.redis.pipeline import Pipeline

log = structlog.get_logger(__name__)

FLUSH_BATCH = 200
"""Most outbox decisions written in one round trip."""
DROP_LOG_EVERY_S = 1.0
"""Outbox drops are logged at most this often (they are counted every time)."""


@dataclass(slots=True)
class Pending:
    """A decision waiting in the outbox, with the ids it is kept under."""

    conversation_id: str | None
    shared_id: str | None
    body: bytes
    """The decision as :func:`router.store.codec.dumps` wrote it."""
    expires_at: float
    """On the store's monotonic clock: the decision's TTL runs while it waits."""


class Outbox:
    """The decisions of one store waiting for Redis, at most ``max_pending`` of them
    (0: none are kept). A failed flush is retried after ``retry_s``, or sooner when
    :meth:`wake` is called."""

    def __init__(
        self,
        pipeline: Pipeline,
        keys: Keys,
        *,
        max_pending: int,
        retry_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pipeline = pipeline
        self._keys = keys
        self._max = max_pending
        self._retry_s = retry_s
        self._clock = clock
        self._queue: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._drops_unlogged = 0
        self._drop_logged_at = float("-inf")

    def __len__(self) -> int:
        """Decisions waiting."""
        return len(self._queue)

    def add(self, pending: Pending) -> None:
        """Keep a decision for later; drop the oldest when full (counted, logged)."""
        if self._max <= 0:
            self._dropped(1)
            return
        while len(self._queue) >= self._max:
            self._queue.popleft()
            self._dropped(1)
        self._queue.append(pending)
        STORE_OUTBOX_PENDING.set(len(self._queue))
        self._wake.set()
        self._ensure_flusher()

    def wake(self) -> None:
        """Redis just answered: write what waits now rather than at the next retry."""
        if self._queue:
            self._wake.set()
            self._ensure_flusher()

    def _dropped(self, count: int) -> None:
        STORE_OUTBOX_DROPPED.inc(count)
        self._drops_unlogged += count
        now = self._clock()
        if now - self._drop_logged_at >= DROP_LOG_EVERY_S:
            log.warning("store_outbox_full", dropped=self._drops_unlogged, outbox_max=self._max)
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
        Redis succeeded, or a decision was queued), else every ``retry_s`` (the breaker
        decides when Redis is worth trying again)."""
        while self._queue and not self._closing:
            self._wake.clear()
            try:
                await self._flush_batch(None)
            except StoreError as exc:
                log.debug("store_outbox_flush_failed", fault=exc.fault, reason=str(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_s):
                        await self._wake.wait()

    async def _flush_batch(self, timeout_s: float | None) -> None:
        """Write the oldest queued decisions, in order, in one round trip (a patient one
        when no ``timeout_s`` is given)."""
        batch = list(itertools.islice(self._queue, FLUSH_BATCH))
        now = self._clock()
        live = [(pending, pending.expires_at - now) for pending in batch]
        live = [(pending, ttl) for pending, ttl in live if ttl > 0]
        keys = self._keys

        def build(pipe: Any) -> None:
            for pending, ttl in live:
                keys.queue_decision(
                    pipe, pending.conversation_id, pending.shared_id, pending.body, ttl
                )

        if live:
            await self._pipeline.pipelined(
                "outbox_flush", build, timeout_s, patient=timeout_s is None
            )
        written = {id(pending) for pending in batch}
        while self._queue and id(self._queue[0]) in written:
            self._queue.popleft()
        STORE_OUTBOX_PENDING.set(len(self._queue))
        log.info(
            "store_outbox_flushed",
            written=len(live),
            expired=len(batch) - len(live),
            outbox_pending=len(self._queue),
        )

    def stop(self) -> None:
        """Start no flusher from now on (the store is closing)."""
        self._closing = True

    async def close(self, flush_within_s: float) -> None:
        """Stop the flusher, try once more (for up to ``flush_within_s``) to write what
        waits, and log what is still queued as lost."""
        self.stop()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.wait({self._flusher})
        deadline = time.monotonic() + flush_within_s
        while self._queue and (left := deadline - time.monotonic()) > 0:
            try:
                await self._flush_batch(left)
            except StoreError as exc:
                log.warning("store_outbox_final_flush_failed", fault=exc.fault, reason=str(exc))
                break
        if self._queue:
            log.error("store_outbox_abandoned", decisions=len(self._queue))
            self._queue.clear()
            STORE_OUTBOX_PENDING.set(0)


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log a flusher that died of a bug (it is restarted by the next queued decision)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("store_outbox_flusher_crashed", exc_info=error)
