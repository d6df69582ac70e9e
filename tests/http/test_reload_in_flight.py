"""A request in flight during a reload finishes on the ruleset version it started with."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from tests.fakes.polyai import FakePolyAI, Reply
from tests.http.conftest import AUTH, MakeClient
from tests.rules import ruleset_yaml, write_rules
from tests.waiting import eventually


async def test_in_flight_request_keeps_its_version(
    make_client: MakeClient, fake: FakePolyAI, rules_dir: Path
) -> None:
    write_rules(rules_dir, "default.yaml", ruleset_yaml("default", "old-queue"))
    registry = RulesRegistry()
    reloader = RulesReloader(registry, rules_dir)
    reloader.reload()
    old_version = registry.snapshot.rulesets["default"].ruleset.version
    client = await make_client(app_kwargs={"rules_registry": registry})
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))

    async def route() -> Any:
        resp = await client.post(
            "/v1/route", json={"conversation_id": "c-flight", "budget_ms": 5000}, headers=AUTH
        )
        return await resp.json()

    in_flight = asyncio.create_task(route())
    await eventually(lambda: fake.in_flight == 2)  # the request is waiting for its facts
    write_rules(rules_dir, "default.yaml", ruleset_yaml("default", "new-queue"))
    assert reloader.reload(force=True).activated == ["default"]
    assert not in_flight.done()
    gate.set()  # its facts arrive only after the reload

    first = await in_flight
    assert first["degraded"] is False
    assert first["ruleset_version"] == old_version
    assert first["queue"] == "old-queue"
    fake.set_handoff(Reply.ok())
    fake.set_conversation(Reply.ok())
    second = await route()
    assert second["queue"] == "new-queue"
    assert second["ruleset_version"] != old_version
