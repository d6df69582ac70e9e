"""Small rule files for the HTTP and reload tests (contract §3's language)."""

from __future__ import annotations

import os
from pathlib import Path

RULES_YAML = """\
ruleset: default
description: Test line
rules:
  - id: vip-billing
    when:
      handoff.handoff_reason: [billing_dispute, refund]
      state.customer_tier: gold
    route:
      queue: billing-priority
      label: "Billing · {state.customer_tier}"
      priority: 10
      skills: [billing]
      attributes: {x_tier: "{state.customer_tier}"}
  - id: by-dnis
    when:
      context.dnis: "+442071234567"
    route: {queue: uk-line, label: "UK line"}
default: {queue: general, label: "General enquiry"}
fallback: {queue: general-fallback, label: "Transferred · details unavailable"}
tests:
  - name: gold refund
    input:
      handoff: {handoff_reason: refund}
      state: {customer_tier: gold}
    expect: {rule: vip-billing, queue: billing-priority}
"""

OTHER_YAML = """\
ruleset: other
rules:
  - id: everyone
    when: {}
    route: {queue: other-queue}
default: {queue: other-default}
"""


def ruleset_yaml(name: str, queue: str, *, test_queue: str | None = None) -> str:
    """A one-rule ruleset routing everything to ``queue``; its test expects ``test_queue``."""
    return f"""\
ruleset: {name}
rules:
  - id: all
    when: {{}}
    route: {{queue: {queue}}}
default: {{queue: {queue}-default}}
tests:
  - name: routes everything
    input: {{}}
    expect: {{queue: {test_queue or queue}}}
"""


def write_rules(folder: Path, name: str, text: str) -> Path:
    """Write a rule file atomically (temporary file, then rename), as deploy tools do."""
    target = folder / name
    temporary = folder / f".{name}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    return target
