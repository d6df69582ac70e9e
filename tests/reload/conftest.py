"""Fixtures: a temporary rules folder and a reloader watching it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from router.reload import RulesReloader
from router.rules_registry import RulesRegistry

WATCH_SETTLE_S = 0.3
"""Time for the file watcher to be in place before a test changes files."""


@pytest.fixture
def rules_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-reload-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def registry() -> RulesRegistry:
    return RulesRegistry()


@pytest.fixture
async def watching(
    registry: RulesRegistry, rules_dir: Path
) -> AsyncIterator[Callable[[], RulesReloader]]:
    """``start()`` loads the folder once and watches it until the test ends."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start() -> RulesReloader:
        reloader = RulesReloader(registry, rules_dir, step_ms=50, debounce_ms=500)
        reloader.reload()
        tasks.append(asyncio.create_task(reloader.watch(stop)))
        return reloader

    yield start
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
