"""X-Request-ID on every answer (contract §2) and the security headers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import AUTH


async def test_callers_request_id_is_echoed(client: Any) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123 from twilio"})
    assert resp.headers["X-Request-ID"] == "abc-123 from twilio"


@pytest.mark.parametrize("offered", ["x" * 129, "tab\there", "ünïcode"])
async def test_unusable_request_id_is_replaced(client: Any, offered: str) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": offered})
    assert resp.headers["X-Request-ID"] != offered
    assert 0 < len(resp.headers["X-Request-ID"]) <= 128


async def test_request_id_is_made_when_absent_and_differs_per_request(client: Any) -> None:
    first = (await client.get("/healthz")).headers["X-Request-ID"]
    second = (await client.get("/healthz")).headers["X-Request-ID"]
    assert first
    assert second
    assert first != second


async def test_errors_carry_the_request_id_and_security_headers(client: Any) -> None:
    resp = await client.post("/v1/route", json={}, headers={**AUTH, "X-Request-ID": "rid-1"})
    assert resp.status == 422
    assert resp.headers["X-Request-ID"] == "rid-1"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_404_carries_the_request_id(client: Any) -> None:
    resp = await client.get("/nowhere", headers={**AUTH, "X-Request-ID": "rid-404"})
    assert resp.status == 404
    assert resp.headers["X-Request-ID"] == "rid-404"
