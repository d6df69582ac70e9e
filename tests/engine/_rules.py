"""Helpers for the engine tests: rulesets from YAML text or from Python documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from router import Decision, RuleSet, load_rules
from router.engine.decide import decide_by_scan
from router.engine.load import load_bytes, load_file
from router.engine.problems import Problem

#: A marker for "this path is not there" in parametrised tables (distinct from None/null).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()

#: The example rule file of contract §3, verbatim.
CONTRACT_EXAMPLE = """\
ruleset: default
description: Inbound support line
timezone: Europe/London          # default for schedules and `at` in tests

schedules:
  office:
    weekly:
      mon-fri: ["08:00-18:00"]
      sat: ["09:00-12:30"]
    closed: ["2026-12-25", "2026-12-26"]

rules:
  - id: out-of-hours
    when:
      outside: office
    route: {queue: voicemail, label: "Out of hours"}

  - id: vip-billing
    description: Gold customers with a billing problem
    when:
      handoff.handoff_reason: [billing_dispute, refund]     # list = in
      state.customer_tier: gold                             # scalar = equals
      state.balance: {gte: 1000}
    route:
      queue: billing-priority
      label: "Billing dispute · {state.customer_tier|unknown tier}"
      priority: 10
      skills: [billing]
      attributes: {x_tier: "{state.customer_tier}"}

  - id: complaints
    when:
      any:
        - handoff.handoff_reason: complaint_escalation
        - state.sentiment: {in: [angry, upset], ignore_case: true}
    route:
      split:                                   # deterministic by conversation
        - {weight: 90, queue: complaints}
        - {weight: 10, queue: complaints-pilot, label: "Complaint (pilot)"}

default:  {queue: general, label: "General enquiry"}
fallback: {queue: general, label: "Transferred · details unavailable"}

tests:
  - name: gold refund in office hours
    at: "2026-11-23T10:00:00"
    input:
      handoff: {handoff_reason: refund}
      state: {customer_tier: gold, balance: "1500"}
    expect: {rule: vip-billing, queue: billing-priority}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "rules.yaml") -> Path:
    """Write a rule file (text as UTF-8, bytes as they are) and return its path."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, name: str = "rules.yaml") -> RuleSet:
    """Load one valid rule file through the public ``load_rules``."""
    rulesets = load_rules(write(tmp_path, text, name))
    assert len(rulesets) == 1
    return next(iter(rulesets.values()))


def problems_of(tmp_path: Path, text: str | bytes, name: str = "rules.yaml") -> list[Problem]:
    """Every problem ``load_file`` reports for this file."""
    return list(load_file(write(tmp_path, text, name)).problems)


def errors_of(tmp_path: Path, text: str | bytes, name: str = "rules.yaml") -> list[Problem]:
    return [p for p in problems_of(tmp_path, text, name) if p.severity == "error"]


def where(problems: list[Problem]) -> list[tuple[int, int]]:
    return [(p.line, p.col) for p in problems]


def compile_doc(doc: dict[str, Any]) -> RuleSet:
    """A ruleset from a Python document (written as JSON, which is YAML 1.2)."""
    raw = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    loaded = load_bytes(raw, "doc.yaml", default_name="doc")
    assert loaded.ruleset is not None, [str(p) for p in loaded.problems]
    return loaded.ruleset


def one_rule(when: Any, *, route: dict[str, Any] | None = None, **extra: Any) -> RuleSet:
    """A ruleset with one rule ``r`` (route queue ``hit``) and default queue ``miss``."""
    return compile_doc(
        {
            "rules": [{"id": "r", "when": when, "route": route or {"queue": "hit"}}],
            "default": {"queue": "miss"},
            **extra,
        }
    )


def decide_both(ruleset: RuleSet, facts: dict[str, Any], **kwargs: Any) -> Decision:
    """``decide`` (indexed), checked against the plain in-order scan."""
    decision = ruleset.decide(facts, **kwargs)
    scanned = decide_by_scan(ruleset, facts, **kwargs)
    assert decision == scanned
    return decision


def facts_with(path: str, value: Any) -> dict[str, Any]:
    """Facts holding ``value`` at ``namespace.key…`` (or nothing there for MISSING)."""
    namespace, *keys = path.split(".")
    if value is MISSING:
        return {namespace: {}}
    inner: Any = value
    for key in reversed(keys):
        inner = {key: inner}
    return {namespace: inner}
