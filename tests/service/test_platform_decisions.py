"""The decision service for the platform fronts: the mapped ids from the deciding ruleset
version, and the split key of a call that names no conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from router.engine.routes import split_bucket
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.service import DecisionRequest, DecisionService, open_service
from router.settings import Settings
from tests.rules import write_rules

MAPPED = """\
ruleset: default
rules:
  - id: pilot
    when: {context.pilot: "yes"}
    route:
      split:
        - {weight: 50, queue: pilot-a}
        - {weight: 50, queue: pilot-b}
default: {queue: general}
platforms:
  twilio:
    workflow: WW0123456789abcdef0123456789abcdef
    queues: {general: WQ0123456789abcdef0123456789abcdef}
  genesys:
    queues: {general: 6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01}
"""


@pytest.fixture
async def mapped_service(
    make_settings: Callable[..., Settings], rules_dir: Path
) -> AsyncIterator[DecisionService]:
    write_rules(rules_dir, "default.yaml", MAPPED)
    registry = RulesRegistry()
    RulesReloader(registry, rules_dir).reload()
    async with open_service(make_settings(), registry) as opened:
        yield opened


@pytest.mark.parametrize(
    ("platform", "queue_id", "workflow"),
    [
        ("twilio", "WQ0123456789abcdef0123456789abcdef", "WW0123456789abcdef0123456789abcdef"),
        ("genesys", "6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01", ""),
        ("amazon-connect", "", ""),
        ("api", "", ""),
    ],
)
async def test_decide_for_platform_names_the_platforms_ids(
    mapped_service: DecisionService, platform: str, queue_id: str, workflow: str
) -> None:
    decided = await mapped_service.decide_for_platform(DecisionRequest(platform=platform))

    assert decided.answer.queue == "general"
    assert (decided.queue_id, decided.workflow) == (queue_id, workflow)
    assert decided.answer.sources == {"handoff": "skipped", "state": "skipped"}
    assert decided.answer.degraded is False


async def test_a_call_without_ids_splits_by_its_split_key(mapped_service: DecisionService) -> None:
    def call(key: str | None) -> DecisionRequest:
        return DecisionRequest(context={"pilot": "yes"}, split_key=key, platform="twilio")

    by_key = {
        key: (await mapped_service.decide(call(key))).queue for key in (f"CA{n}" for n in range(40))
    }

    assert set(by_key.values()) == {"pilot-a", "pilot-b"}
    for key, queue in list(by_key.items())[:5]:  # the same call keeps its share
        assert (await mapped_service.decide(call(key))).queue == queue
    answer = await mapped_service.decide(call("CA1"))
    assert answer.conversation_id is None
    assert answer.shared_id is None  # the split key is not an id


def share(key: str) -> str:
    return "pilot-a" if split_bucket("pilot", key) < 50 else "pilot-b"


async def test_ids_key_the_split_before_the_split_key(mapped_service: DecisionService) -> None:
    other = next(f"CA{n}" for n in range(100) if share(f"CA{n}") != share("s-1"))
    with_id = DecisionRequest(
        shared_id="s-1", context={"pilot": "yes"}, handoff={}, state={}, split_key=other
    )

    assert (await mapped_service.decide(with_id)).queue == share("s-1")
