"""Where replay reads records from: a record file (``ROUTER_RECORD_FILE``) or a store URL
(the Redis Stream every replica records to), and how far back (``--since``)."""

from __future__ import annotations

import sys
from pathlib import Path

from router.observe import configure_logging
from router.records.record import BadRecord, decode_record
from router.records.replay import Replay, parse_duration
from router.settings import STORE_SCHEMES, SettingsError, load_settings
from router.store import StoreError, open_store

__all__ = ["SourceError", "is_store_url", "parse_duration", "replay_file", "replay_store"]


class SourceError(Exception):
    """The records cannot be read at all (no such file, an unreachable store); the message
    says which and why."""


def is_store_url(source: str) -> bool:
    """Whether ``source`` names a store (``redis://…`` and the other store URLs)."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() in STORE_SCHEMES


def replay_file(replay: Replay, path: Path) -> None:
    """Feed every record of the JSON-lines file at ``path`` to ``replay``.

    A blank line is passed over; a line that is not a record is skipped as
    ``<file>:<line>`` with the reason, and so is a last line cut short (the file was
    copied while a record was being written). Raises :class:`SourceError` when the file
    cannot be read at all.
    """
    name = str(path)
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{name}:{number}"
                if line.endswith(b"\n"):
                    replay.feed(where, line)
                    continue
                try:
                    record = decode_record(line)
                except BadRecord as exc:
                    replay.skip_unreadable(
                        where, f"truncated: the file ends in the middle of a record ({exc})"
                    )
                    continue
                replay.add(record)
    except OSError as exc:
        raise SourceError(f"cannot read {name}: {exc.strerror or exc}") from None


async def replay_store(replay: Replay, url: str, *, since: float | None = None) -> None:
    """Feed every record of the store at ``url`` (``ROUTER_STORE_PREFIX`` from the
    environment) to ``replay``. Raises :class:`SourceError` when it cannot be read."""
    try:
        settings = load_settings(store=url)
        # The report goes to standard output: the store's own warnings go to standard error.
        configure_logging(
            settings.model_copy(update={"log_format": "console", "log_level": "warning"}),
            stream=sys.stderr,
        )
        store = open_store(settings)
    except (SettingsError, ValueError) as exc:
        raise SourceError(str(exc)) from None
    if not store.shared:
        raise SourceError("the memory store lives inside a router: use POST /v1/replay")
    read = 0
    try:
        async for body in store.records(since=since):
            read += 1
            replay.feed(f"store record {read}", body)
    except (StoreError, TimeoutError) as exc:
        raise SourceError(f"cannot read the store's records: {exc}") from None
    finally:
        await store.close()
