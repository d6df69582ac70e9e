"""The record file (``ROUTER_RECORD_FILE``): records appended by a background thread.

A decision only hands its record to a bounded queue (never waits: a full queue drops the
record and counts it); a thread writes what has queued, many lines per write, so a slow
or full disk never delays a decision. The file is reopened when it is moved away (log
rotation by renaming), and a failed write drops that batch, counted, and is retried with
the next one.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from pathlib import Path
from typing import BinaryIO

import structlog

from router.metrics import RECORDS_DROPPED
from router.records.record import file_line

log = structlog.get_logger("router.records")

_BATCH = 1000
"""Most records written in one ``write``."""
_REOPEN_CHECK_S = 1.0
"""How often the writer checks whether the file was moved away (rotated)."""
_FAILURE_LOG_EVERY_S = 10.0
_STOP = b""


class RecordFile:
    """Appends records to ``path`` from a daemon thread; :meth:`close` to flush and stop.

    ``buffer`` bounds the records waiting to be written.
    """

    def __init__(self, path: Path, *, buffer: int) -> None:
        self.path = path
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=buffer)
        self._file: BinaryIO | None = None
        self._checked_at = 0.0
        self._failed_logged_at = -_FAILURE_LOG_EVERY_S
        self._dropped_full = RECORDS_DROPPED.labels(reason="file_buffer_full")
        self._dropped_write = RECORDS_DROPPED.labels(reason="file_write_failed")
        self._thread = threading.Thread(target=self._run, name="router-record-file", daemon=True)
        self._thread.start()

    def put(self, body: bytes) -> None:
        """Queue one record (as :func:`router.records.record.encode_record` wrote it);
        dropped and counted when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self._dropped_full.inc()

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what is queued (for up to ``timeout_s``), then stop the thread."""
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                continue
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("record_file_not_flushed", pending=self._queue.qsize())

    # The writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = _STOP in batch
                lines = [file_line(body) for body in batch if body != _STOP]
                if lines:
                    self._write(b"".join(lines), len(lines))
                if stop:
                    return
        finally:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()

    def _write(self, data: bytes, count: int) -> None:
        try:
            handle = self._open()
            handle.write(data)
            handle.flush()
        except OSError as exc:
            self._dropped_write.inc(count)
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
            now = time.monotonic()
            if now - self._failed_logged_at >= _FAILURE_LOG_EVERY_S:
                self._failed_logged_at = now
                log.warning(
                    "record_file_write_failed", file=str(self.path), reason=exc.strerror or str(exc)
                )

    def _open(self) -> BinaryIO:
        """The open file, reopened when the path no longer names it (it was rotated)."""
        handle = self._file
        now = time.monotonic()
        if handle is not None and now - self._checked_at >= _REOPEN_CHECK_S:
            self._checked_at = now
            try:
                moved = os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                moved = True
            if moved:
                handle.close()
                handle = self._file = None
        if handle is None:
            handle = self._file = open(self.path, "ab")  # noqa: SIM115 - kept open
            self._checked_at = now
        return handle
