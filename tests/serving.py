"""``router serve`` as a real subprocess, for the signal tests (SIGTERM drain, SIGHUP)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

START_TIMEOUT_S = 20.0


class ServeProcess:
    """A running ``python -m router serve``; its JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.raw_lines: list[bytes] = []
        self.port = 0
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, rules: Path, **env: str) -> ServeProcess:
        environment = {**os.environ, "ROUTER_LOG_FORMAT": "json", **env}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router",
            "serve",
            "--rules",
            str(rules),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        served = cls(process)
        listening = await served.wait_for("listening", START_TIMEOUT_S)
        served.port = int(listening["port"])
        return served

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.raw_lines.append(line)
            with contextlib.suppress(orjson.JSONDecodeError):
                self.events.append(orjson.loads(line))

    async def wait_for(self, event: str, within: float = 5.0, *, after: int = 0) -> dict[str, Any]:
        """The first log event named ``event`` (from index ``after`` on)."""
        deadline = time.monotonic() + within
        while True:
            for logged in self.events[after:]:
                if logged.get("event") == event:
                    return logged
            if self.process.returncode is not None or time.monotonic() > deadline:
                stderr = b""
                if self.process.stderr is not None and self.process.returncode is not None:
                    stderr = await self.process.stderr.read()
                tail = self.raw_lines[-10:]
                raise AssertionError(f"no {event!r} event; logged: {tail}, stderr: {stderr!r}")
            await asyncio.sleep(0.02)

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def exit_code(self, within: float) -> int:
        """Wait for the process to end; its exit status."""
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.wait_for(self._reader, within)
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
