"""POST /v1/replay and the records routed calls leave behind (memory store: the ring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from router.http.keys import SERVICE
from router.records.record import decode_record
from tests.http.conftest import AUTH, SCOPED_KEY, MakeClient
from tests.rules import RULES_YAML
from tests.waiting import eventually

YAML = {**AUTH, "Content-Type": "application/yaml"}
GOLD_REFUND = {
    "handoff": {"handoff_reason": "refund"},
    "state": {"customer_tier": "gold"},
    "context": {"ani": "+447700900123", "dnis": "+441"},
}


async def route(client: TestClient[Any, Any], conversation_id: str, **body: Any) -> Any:
    answer = await client.post(
        "/v1/route", json={"conversation_id": conversation_id, **body}, headers=AUTH
    )
    assert answer.status == 200, await answer.text()
    return await answer.json()


async def records(client: TestClient[Any, Any]) -> list[Any]:
    return [decode_record(body) async for body in client.app[SERVICE].store.records()]


async def test_every_routed_call_is_recorded_without_the_callers_number(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    answer = await route(client, "conv-1", **GOLD_REFUND)
    await route(client, "conv-2", handoff={"handoff_reason": "other"}, state=None)
    kept = await records(client)
    assert [r.decision_id for r in kept] == [answer["decision_id"], kept[1].decision_id]
    first = kept[0]
    assert (first.rule, first.queue, first.outcome) == (
        "vip-billing",
        "billing-priority",
        "matched",
    )
    assert first.facts["context"] == {"dnis": "+441"}
    assert first.removed == ("context.ani",)
    assert first.at.utcoffset() is not None
    bodies = [b async for b in client.app[SERVICE].store.records()]
    assert b"+447700900123" not in bodies[0]
    assert b"label" not in bodies[0]  # labels may render sensitive values


async def test_explain_records_nothing(client: TestClient[Any, Any]) -> None:
    answer = await client.post(
        "/v1/explain", json={"conversation_id": "c", **GOLD_REFUND}, headers=AUTH
    )
    assert answer.status == 200
    assert await records(client) == []


async def test_the_ring_keeps_the_last_record_max_records(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_RECORD_MAX="3")
    for index in range(5):
        await route(client, f"c-{index}")
    assert [r.conversation_id for r in await records(client)] == ["c-2", "c-3", "c-4"]


async def test_record_max_zero_records_nothing(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_RECORD_MAX="0")
    await route(client, "c")
    assert await records(client) == []


async def test_replaying_the_served_rules_changes_nothing(client: TestClient[Any, Any]) -> None:
    for index in range(4):
        await route(client, f"c-{index}", **GOLD_REFUND)
    await route(client, "c-plain")
    answer = await client.post("/v1/replay", data=RULES_YAML.encode(), headers=YAML)
    assert answer.status == 200, await answer.text()
    report = await answer.json()
    assert {k: report[k] for k in ("replayed", "changed", "unchanged", "uncertain", "skipped")} == {
        "replayed": 5,
        "changed": 0,
        "unchanged": 5,
        "uncertain": 0,
        "skipped": 0,
    }
    assert report["changes"] == []


async def test_a_candidate_that_moves_calls_reports_the_change(
    client: TestClient[Any, Any],
) -> None:
    moved = [(await route(client, f"c-{i}", **GOLD_REFUND))["decision_id"] for i in range(2)]
    await route(client, "other", handoff={"handoff_reason": "x"}, state={})
    candidate = RULES_YAML.replace("queue: billing-priority", "queue: billing-vip")
    candidate = candidate.split("tests:")[0]
    answer = await client.post(
        "/v1/replay",
        data=orjson.dumps({"rules": candidate}),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    report = await answer.json()
    assert (report["changed"], report["unchanged"]) == (2, 1)
    assert report["changes"] == [
        {
            "from": {"rule": "vip-billing", "queue": "billing-priority"},
            "to": {"rule": "vip-billing", "queue": "billing-vip"},
            "count": 2,
            "examples": moved,
        }
    ]


async def test_a_candidate_that_reads_the_removed_number_is_uncertain(
    client: TestClient[Any, Any],
) -> None:
    await route(client, "c-1", **GOLD_REFUND)
    candidate = RULES_YAML.replace(
        "  - id: by-dnis",
        '  - id: uk-mobile\n    when: {context.ani: {starts_with: "+447"}}\n'
        "    route: {queue: mobile}\n  - id: by-dnis",
    ).replace(
        "  - id: vip-billing",
        "  - id: first\n    when: {context.ani: {exists: true}}\n"
        "    route: {queue: has-number}\n  - id: vip-billing",
    )
    answer = await client.post("/v1/replay", data=candidate.encode(), headers=YAML)
    report = await answer.json()
    assert (report["uncertain"], report["changed"], report["unchanged"]) == (1, 0, 0)


async def test_records_of_other_rulesets_are_skipped(client: TestClient[Any, Any]) -> None:
    await route(client, "c-1")
    candidate = "ruleset: elsewhere\nrules: []\ndefault: {queue: q}\n"
    report = await (await client.post("/v1/replay", data=candidate.encode(), headers=YAML)).json()
    assert (report["replayed"], report["skipped"]) == (0, 1)
    assert report["skipped_reasons"] == {"other_ruleset": 1, "unreadable": 0}


async def test_a_candidate_that_fails_check_is_422_with_file_line_col(
    client: TestClient[Any, Any],
) -> None:
    broken = "ruleset: default\nrules:\n  - id: x\n    when: {state.tier: {eqq: gold}}\n"
    broken += "    route: {queue: q}\ndefault: {queue: g}\n"
    answer = await client.post("/v1/replay", data=broken.encode(), headers=YAML)
    assert answer.status == 422
    error = (await answer.json())["error"]
    assert error["code"] == "invalid_rules"
    assert error["details"][0]["path"] == "candidate.yaml:4:25"
    assert "eqq" in error["details"][0]["message"]


async def test_a_candidate_without_a_name_replays_the_named_ruleset(
    client: TestClient[Any, Any],
) -> None:
    await route(client, "c-1")
    nameless = RULES_YAML.replace("ruleset: default\n", "")
    answer = await client.post("/v1/replay?ruleset=default", data=nameless.encode(), headers=YAML)
    assert (await answer.json())["replayed"] == 1


async def test_replay_needs_a_key_that_may_use_the_ruleset(client: TestClient[Any, Any]) -> None:
    headers = {"Authorization": f"Bearer {SCOPED_KEY}", "Content-Type": "application/yaml"}
    answer = await client.post("/v1/replay", data=RULES_YAML.encode(), headers=headers)
    assert answer.status == 403
    missing = await client.post("/v1/replay", data=RULES_YAML.encode())
    assert missing.status == 401


async def test_other_media_types_and_bad_since_are_refused(client: TestClient[Any, Any]) -> None:
    text = await client.post(
        "/v1/replay", data=b"x", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert text.status == 415
    since = await client.post("/v1/replay?since=yesterday", data=RULES_YAML.encode(), headers=YAML)
    assert since.status == 422
    assert (await since.json())["error"]["details"][0]["path"] == "since"


async def test_a_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES="1000")
    answer = await client.post("/v1/replay", data=b"#" * 5000, headers=YAML)
    assert answer.status == 413


async def test_the_record_file_gets_one_json_line_per_decision(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    client = await make_client(ROUTER_RECORD_FILE=str(path))
    ids = [(await route(client, f"c-{i}", **GOLD_REFUND))["decision_id"] for i in range(3)]

    def written() -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    await eventually(lambda: len(written()) == 3, within=20)
    lines = written()
    assert [line["decision_id"] for line in lines] == ids
    assert set(lines[0]) >= {
        "decision_id", "conversation_id", "shared_id", "ruleset", "ruleset_version", "at",
        "facts", "rule", "queue", "outcome",
    }  # fmt: skip
    assert set(lines[0]["facts"]) == {"handoff", "state", "conversation", "context"}
    assert "+447700900123" not in path.read_text()


async def test_the_time_limit_answers_with_what_was_replayed(make_client: MakeClient) -> None:
    from datetime import UTC, datetime

    from tests.records._records import record, ruleset

    client = await make_client(ROUTER_REPLAY_TIMEOUT_S="0.000001")
    store = client.app[SERVICE].store
    served = ruleset(RULES_YAML)
    at = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for n in range(450):
        body = record(served, {}, at=at, conversation_id=f"c-{n}")
        await store.save_decision({"conversation_id": None}, ttl_s=60, record=body)
    report = await (await client.post("/v1/replay", data=RULES_YAML.encode(), headers=YAML)).json()
    assert report["replayed"] == 200  # stopped at the first look at the clock
    assert "ROUTER_REPLAY_TIMEOUT_S" in report["stopped"]
