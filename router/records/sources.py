"""Where replay reads records from: a record file (``ROUTER_RECORD_FILE``), line by line.

(A store's records are read through :meth:`router.store.base.Store.records`.)
"""

from __future__ import annotations

from pathlib import Path

from router.records.record import BadRecord, decode_record
from router.records.replay import Replay


def replay_file(replay: Replay, path: Path) -> None:
    """Feed every record of the JSON-lines file at ``path`` to ``replay``.

    A blank line is passed over; a line that is not a record is skipped as
    ``<file>:<line>`` with the reason, and so is a last line cut short (the file was
    copied while a record was being written). Raises ``OSError`` when the file cannot
    be read at all.
    """
    name = str(path)
    with path.open("rb") as handle:
        number = 0
        for number, line in enumerate(handle, start=1):  # noqa: B007 - used after the loop
            if not line.strip():
                continue
            where = f"{name}:{number}"
            if not line.endswith(b"\n"):
                try:
                    record = decode_record(line)
                except BadRecord as exc:
                    replay.skip_unreadable(
                        where, f"truncated: the file ends in the middle of a record ({exc})"
                    )
                    continue
                replay.add(record)
                continue
            replay.feed(where, line)
