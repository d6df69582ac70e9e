"""The record file: appended in the background, never blocking, drops counted."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from router.records import RecordFile
from router.records import writer as writer_module
from router.store import codec


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("router_records_dropped_total", {"reason": reason}) or 0.0


def wait_until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_records_are_appended_as_json_lines_and_flushed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordFile(path, buffer=100)
    for n in range(10):
        writer.put(codec.dumps({"n": n, "big": 2**70}))
    writer.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(10))
    assert json.loads(lines[0])["big"] == 2**70  # an exact body is plain JSON in the file


def test_a_full_buffer_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "blocked"
    os.mkfifo(fifo)  # nobody reads it: the writer's open() blocks, so the queue fills
    writer = RecordFile(fifo, buffer=3)
    before = dropped("file_buffer_full")
    began = time.monotonic()
    for n in range(20):
        writer.put(b"%d" % n)
    assert time.monotonic() - began < 5  # never waited on the disk
    assert dropped("file_buffer_full") - before >= 16
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer go
    try:
        writer.close(timeout_s=10)
    finally:
        os.close(reader)


def test_a_failed_write_is_counted_and_the_writer_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    writer = RecordFile(folder, buffer=100)  # opening a folder for append fails
    before = dropped("file_write_failed")
    writer.put(b'{"n":1}')
    wait_until(lambda: dropped("file_write_failed") - before >= 1)
    writer.close()


def test_a_rotated_file_is_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "_REOPEN_CHECK_S", 0.0)
    path = tmp_path / "records.jsonl"
    writer = RecordFile(path, buffer=100)
    writer.put(b'{"n":1}')
    wait_until(lambda: path.exists() and path.read_text() != "")
    path.rename(tmp_path / "records.jsonl.1")
    writer.put(b'{"n":2}')
    wait_until(lambda: path.exists() and path.read_text() != "")
    writer.close()
    assert path.read_text() == '{"n":2}\n'
    assert (tmp_path / "records.jsonl.1").read_text() == '{"n":1}\n'
