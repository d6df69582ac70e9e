"""Fixtures: the decision service on a fake PolyAI and temporary rules, with no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.service import DecisionService, open_service
from router.settings import Settings, load_settings
from tests.fakes.polyai import FakePolyAI
from tests.rules import RULES_YAML, write_rules


@pytest.fixture
async def fake() -> AsyncIterator[FakePolyAI]:
    server = await FakePolyAI().start()
    yield server
    await server.close()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    write_rules(folder, "default.yaml", RULES_YAML)
    return folder


@pytest.fixture
def make_settings(fake: FakePolyAI, rules_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "ROUTER_RULES": str(rules_dir),
            "POLYAI_API_KEY": fake.api_key,
            "POLYAI_ACCOUNT_ID": fake.account_id,
            "POLYAI_PROJECT_ID": fake.project_id,
            "POLYAI_AGENT_ID": fake.agent_id,
            "POLYAI_HANDOFF_URL": fake.url,
            "POLYAI_DATA_URL": fake.url,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def registry(make_settings: Callable[..., Settings]) -> RulesRegistry:
    rules = RulesRegistry()
    RulesReloader(rules, make_settings().rules).reload()
    return rules


@pytest.fixture
async def service(
    make_settings: Callable[..., Settings], registry: RulesRegistry
) -> AsyncIterator[DecisionService]:
    async with open_service(make_settings(), registry) as opened:
        yield opened
