"""Replay from the service: a candidate rule file decided against the store's records."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from router.engine import RuleSet, load_bytes
from router.records import Replay, ReplayReport
from router.service.errors import CandidateInvalid, StoreUnavailable
from router.settings import Settings
from router.store import Store, StoreError

log = structlog.get_logger("router.service")

_REPLAY_SLICE = 200
"""Records replayed between two yields to the event loop (a few milliseconds of work), so
routed calls keep being answered while ``POST /v1/replay`` runs."""


def load_candidate(raw: bytes, *, filename: str, ruleset: str) -> RuleSet:
    """A candidate rule file for :meth:`replay`, compiled; ``ruleset`` names it when the
    file does not.

    Raises :class:`CandidateInvalid` with the problems ``router check`` would report.
    """
    loaded = load_bytes(raw, filename, default_name=ruleset)
    errors = [p for p in loaded.problems if p.severity == "error"]
    if loaded.ruleset is None or errors:
        raise CandidateInvalid(errors or loaded.problems)
    return loaded.ruleset


async def replay_records(
    settings: Settings, store: Store, candidate: RuleSet, *, since: datetime | None = None
) -> ReplayReport:
    """Decide the store's records (at most ``ROUTER_RECORD_MAX``, from ``since``) again
    with ``candidate``, for at most ``ROUTER_REPLAY_TIMEOUT_S``: past that, the report
    says where it stopped.

    Raises :class:`StoreUnavailable` when a shared store cannot be read.
    """
    replay = Replay({candidate.name: candidate}, since=since)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + settings.replay_timeout_s
    read = 0
    records = store.records(since=None if since is None else since.timestamp())
    try:
        async for body in records:
            read += 1
            replay.feed(f"record {read}", body)
            if read >= settings.record_max:
                break
            if read % _REPLAY_SLICE == 0:
                await asyncio.sleep(0)
                if loop.time() >= stop_at:
                    replay.stopped = (
                        f"the time limit (ROUTER_REPLAY_TIMEOUT_S="
                        f"{settings.replay_timeout_s:g}) was reached after {read} records"
                    )
                    break
    except (StoreError, TimeoutError) as exc:
        log.warning("store_read_failed", operation="records", reason=exc.__class__.__name__)
        raise StoreUnavailable("The shared store cannot be reached; retry shortly.") from None
    finally:
        await records.aclose()  # type: ignore[attr-defined]
    report = replay.report()
    log.info(
        "replayed",
        ruleset=candidate.name,
        version=candidate.version,
        replayed=report.replayed,
        changed=report.changed,
        uncertain=report.uncertain,
        skipped=report.skipped,
    )
    return report
