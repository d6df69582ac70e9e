"""X-Request-ID on every answer (contract §2) and the security headers."""

from __future__ import annotations

import time
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


async def test_a_load_balancers_request_start_counts_against_the_budget(client: Any) -> None:
    queued_since = time.time() - 0.2  # the balancer held it for 200 ms
    resp = await client.post(
        "/v1/route",
        json={"conversation_id": "c-lb", "handoff": {}, "state": {}, "budget_ms": 1000},
        headers={**AUTH, "X-Request-Start": f"t={int(queued_since * 1e6)}"},
    )
    assert resp.status == 200
    assert (await resp.json())["elapsed_ms"] >= 200


@pytest.mark.parametrize("stamp", ["t=soon", "t=99999999999999999", "t=1", ""])
async def test_an_unusable_request_start_is_ignored(client: Any, stamp: str) -> None:
    resp = await client.post(
        "/v1/route",
        json={"conversation_id": "c-lb2", "handoff": {}, "state": {}},
        headers={**AUTH, "X-Request-Start": stamp},
    )
    assert resp.status == 200
    assert (await resp.json())["elapsed_ms"] < 1000
