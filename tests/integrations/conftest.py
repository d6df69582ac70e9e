"""Shared helpers for the tests of what ships in integrations/ (deployed outside the router)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INTEGRATIONS = REPO / "integrations"
PLATFORM_FIXTURES = REPO / "tests" / "fixtures" / "platforms"


def load_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))


def import_by_path(name: str, path: Path) -> ModuleType:
    """Import a file that is not part of any package, as Lambda imports its handler file."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def connect_lambda() -> ModuleType:
    """The Amazon Connect reference Lambda, imported from its file."""
    return import_by_path("lambda_function", INTEGRATIONS / "amazon-connect" / "lambda_function.py")
