"""Fixtures: a fake PolyAI on loopback, settings pointing at it, the app's kind of session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from router.facts import FactGatherer
from router.settings import Settings, load_settings
from router.store.memory import MemoryStore
from tests.fakes.clock import ManualClock
from tests.fakes.polyai import FakePolyAI


@pytest.fixture
async def fake() -> AsyncIterator[FakePolyAI]:
    server = await FakePolyAI().start()
    yield server
    await server.close()


@pytest.fixture
def make_settings(fake: FakePolyAI) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "POLYAI_API_KEY": fake.api_key,
            "POLYAI_ACCOUNT_ID": fake.account_id,
            "POLYAI_PROJECT_ID": fake.project_id,
            "POLYAI_AGENT_ID": fake.agent_id,
            "POLYAI_HANDOFF_URL": fake.url,
            "POLYAI_DATA_URL": fake.url,
            "ROUTER_BREAKER_FAILURES": 5,
            "ROUTER_BREAKER_RESET_S": 10,
            "ROUTER_UPSTREAM_MAX_BYTES": 1_048_576,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_gatherer(
    make_settings: Callable[..., Settings],
    session: aiohttp.ClientSession,
    clock: ManualClock,
) -> Callable[..., tuple[FactGatherer, MemoryStore]]:
    """``make_gatherer(**settings) -> (gatherer, store)``; breakers and TTLs run on ``clock``."""

    def make(**overrides: Any) -> tuple[FactGatherer, MemoryStore]:
        settings = make_settings(**overrides)
        store = MemoryStore(settings.memory_max_entries, clock=clock)
        return FactGatherer(settings, store, session, clock=clock), store

    return make
