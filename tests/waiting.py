"""Waiting for something that happens asynchronously (a file watcher, a server), and the
room a real-time bound keeps for a loaded machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

LOADED_MACHINE_SLACK_S = 1.0
"""Added to a real-time bound that a test must keep (an answer within its budget while the
upstream hangs): on two cores shared with other busy processes, timers fire and answers
get written late by tens to hundreds of milliseconds. A bound this loose still catches what
such tests exist for: waiting for the upstream, or a second budget spent on top of the
first."""


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``condition()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
