"""Fixtures: the real app on a loopback test server, a fake PolyAI, temporary rule folders."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.http.app import create_app
from router.http.keys import SETTINGS
from router.http.protocol import install
from router.observe import remove_logging_handler
from router.settings import Settings, load_settings
from tests.fakes.polyai import FakePolyAI
from tests.rules import RULES_YAML, write_rules

API_KEY = "test-key-all"
SCOPED_KEY = "test-key-other"
"""Allowed only the ruleset ``other``."""
AUTH = {"Authorization": f"Bearer {API_KEY}"}

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def fake() -> AsyncIterator[FakePolyAI]:
    server = await FakePolyAI().start()
    yield server
    await server.close()


@pytest.fixture
def rules_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-rules-"))
    write_rules(folder, "default.yaml", RULES_YAML)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_settings(fake: FakePolyAI, rules_dir: Path) -> Callable[..., Settings]:
    """Settings for the fake PolyAI and the temporary rules; keyword overrides by env name."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "ROUTER_RULES": str(rules_dir),
            "ROUTER_API_KEYS": f"{API_KEY},{SCOPED_KEY}=other",
            "ROUTER_WEBHOOK_SECRET": "",
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


class _RouterRunner(web.AppRunner):
    """An app runner serving with the router's own connection handling, as ``router serve``
    does: contract-shaped protocol errors, the head timeout, the express lane."""

    async def setup(self) -> None:
        await super().setup()
        settings = self.app[SETTINGS]
        install(self, read_timeout_s=settings.read_timeout_s, route_lane=settings.route_lane)


class RouterTestServer(TestServer):
    """aiohttp's test server, with the connections ``router serve`` makes."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return _RouterRunner(self.app, **kwargs)


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    make_settings: Callable[..., Settings],
) -> MakeClient:
    """``await make_client(**settings_overrides, app_kwargs={...})``: a client of the real app."""

    async def make(
        app_kwargs: dict[str, Any] | None = None, **overrides: Any
    ) -> TestClient[Any, Any]:
        app = create_app(make_settings(**overrides), **(app_kwargs or {}))
        return await aiohttp_client(RouterTestServer(app))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Tests that configure logging into a captured stream must not leak that set-up."""
    yield
    structlog.reset_defaults()
    remove_logging_handler()
