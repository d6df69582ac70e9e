"""Records made the way the decision service makes them, for replay tests."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from router.engine import RuleSet, load_bytes
from router.ids import new_id
from router.records import encode_record, recorded_facts, sensitive_paths

RULES = """\
ruleset: default
timezone: Europe/London
schedules:
  office:
    weekly:
      mon-fri: ["08:00-20:00"]
rules:
  - id: uk-mobile
    when:
      context.ani: {starts_with: "+447"}
    route: {queue: mobile}
  - id: refunds
    when:
      handoff.handoff_reason: refund
    route:
      split:
        - {weight: 50, queue: refunds-a}
        - {weight: 50, queue: refunds-b}
  - id: vip
    when:
      any:
        - state.tier: gold
        - context.ani: {starts_with: "+1"}
    route: {queue: vip}
  - id: after-hours
    when:
      outside: office
    route: {queue: night}
default: {queue: general}
fallback: {queue: general-fallback}
"""


def ruleset(text: str = RULES, name: str = "default") -> RuleSet:
    loaded = load_bytes(textwrap.dedent(text).encode(), f"{name}.yaml", default_name=name)
    assert loaded.ruleset is not None, loaded.problems
    return loaded.ruleset


def record(
    rules: RuleSet,
    facts: dict[str, Any],
    *,
    at: datetime,
    conversation_id: str | None = None,
    shared_id: str | None = None,
    sensitive: tuple[str, ...] = (),
) -> bytes:
    """The record the service would write for deciding ``facts`` with ``rules``."""
    full = {"handoff": {}, "state": {}, "conversation": {}, "context": {}, **facts}
    decision = rules.decide(full, conversation_id=conversation_id, shared_id=shared_id, at=at)
    kept, removed = recorded_facts(full, sensitive_paths(sensitive))
    return encode_record(
        decision_id=new_id(),
        conversation_id=conversation_id,
        shared_id=shared_id,
        ruleset=decision.ruleset,
        ruleset_version=decision.ruleset_version,
        at=at,
        facts=kept,
        removed=removed,
        rule=decision.rule,
        queue=decision.queue,
        outcome=decision.outcome,
    )


def write_file(path: Path, bodies: list[bytes]) -> Path:
    from router.records.record import file_line

    path.write_bytes(b"".join(file_line(body) for body in bodies))
    return path
