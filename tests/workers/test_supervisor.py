"""The supervisor's parts, in this process: sockets, the metrics folder, what it imports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from router.workers import METRICS_DIR_VARIABLE, bind_sockets, multiprocess_metrics_dir


def test_every_address_of_a_name_is_bound_on_one_port() -> None:
    sockets = bind_sockets("localhost", 0)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=2):
            pass  # the listening socket queues it: no worker needed to connect
    finally:
        for sock in sockets:
            sock.close()


def test_a_fresh_metrics_folder_is_named_for_the_workers_and_removed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(METRICS_DIR_VARIABLE, raising=False)
    with multiprocess_metrics_dir() as folder:
        assert os.environ[METRICS_DIR_VARIABLE] == str(folder)
        (folder / "counter_123.db").write_bytes(b"")
    assert not folder.exists()
    assert METRICS_DIR_VARIABLE not in os.environ


def test_a_given_metrics_folder_is_kept_but_emptied_of_earlier_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_99.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(METRICS_DIR_VARIABLE, str(tmp_path))
    with multiprocess_metrics_dir() as folder:
        assert folder == tmp_path
        assert not (tmp_path / "counter_99.db").exists()
    assert (tmp_path / "notes.txt").exists()
    assert os.environ[METRICS_DIR_VARIABLE] == str(tmp_path)


def test_the_supervisor_defines_no_metric() -> None:
    # In multiprocess mode a metric made in the supervisor would write series of its own
    # (a router_store_up of 0 that no worker ever sets).
    code = (
        "import sys, router.cli, router.serve, router.server, router.workers; "
        "print(sorted(m for m in sys.modules if m in ('router.metrics', 'router.http.app')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
