"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from router.facts import make_client_session
from router.settings import Settings


@pytest.fixture
async def session(make_settings: Callable[..., Settings]) -> AsyncIterator[aiohttp.ClientSession]:
    """The app's kind of client session, built from the folder's own ``make_settings``."""
    client = make_client_session(make_settings())
    yield client
    await client.close()
