"""Fixtures: a temporary rules folder, a fake clock, and a reloader watching the folder."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from tests.waiting import eventually

WATCH_DEADLINE_S = 20.0
"""Generous wait for anything the file watcher does (a loaded 2-core machine is slow)."""


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Watching(Protocol):
    """``start(**reloader_kwargs)``: load the folder once, then watch it until the test ends."""

    async def __call__(self, **kwargs: Any) -> RulesReloader: ...


_probes = itertools.count()


async def watcher_sees(reloader: RulesReloader, folder: Path) -> None:
    """Return once the watcher reacts to a change in ``folder`` (so it is in place).

    Touches a dot-file (never read as rules) until a pass follows; no fixed sleep.
    """
    deadline = time.monotonic() + WATCH_DEADLINE_S
    probe = folder / f".probe-{next(_probes)}"
    while True:
        before = reloader.passes
        probe.write_text(str(time.monotonic()), encoding="utf-8")
        try:
            await eventually(lambda b=before: reloader.passes > b, within=1.0)
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError("the rules watcher never reacted to a change") from None
            continue
        return  # the probe stays: deleting it would start one more pass later


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


@pytest.fixture
def registry() -> RulesRegistry:
    return RulesRegistry("main")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def watching(registry: RulesRegistry, rules_dir: Path) -> AsyncIterator[Watching]:
    """``await start(**kwargs)`` loads the folder once, watches it, and returns once the
    watcher is in place. Defaults: no settle wait (``settle_ms=0``), a short debounce."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(**kwargs: Any) -> RulesReloader:
        options: dict[str, Any] = {"step_ms": 50, "debounce_ms": 200, "settle_ms": 0}
        options.update(kwargs)
        reloader = RulesReloader(registry, rules_dir, **options)
        reloader.reload()
        tasks.append(asyncio.create_task(reloader.watch(stop)))
        await watcher_sees(reloader, rules_dir)
        return reloader

    yield start
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), WATCH_DEADLINE_S)
