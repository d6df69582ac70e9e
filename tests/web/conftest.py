"""Fixtures for the ops page and agent card: the real app on loopback with card links on."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.http.app import create_app
from router.settings import load_settings
from tests.rules import write_rules
from tests.web.rules import WEB_RULES_YAML

API_KEY = "ops-key"
SCOPED_KEY = "other-key"
CARD_SECRET = "card-secret-for-tests"

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def web_rules() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-web-rules-"))
    write_rules(folder, "default.yaml", WEB_RULES_YAML)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], web_rules: Path
) -> MakeClient:
    """``await make_client(**env_overrides)``: a client of the real app (no lookups)."""

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        values: dict[str, Any] = {
            "ROUTER_RULES": str(web_rules),
            "ROUTER_API_KEYS": f"{API_KEY},{SCOPED_KEY}=other",
            "ROUTER_CARD_SECRET": CARD_SECRET,
            "POLYAI_API_KEY": "",
        }
        values.update(overrides)
        return await aiohttp_client(create_app(load_settings(**values)))

    return make
