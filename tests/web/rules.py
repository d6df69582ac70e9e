"""The rule file the ops page and card tests serve: descriptions, `show:`, a schedule."""

from __future__ import annotations

WEB_RULES_YAML = """\
ruleset: default
description: Support line
timezone: Europe/London
schedules:
  office:
    weekly:
      mon-fri: ["08:00-18:00"]
show: [state.customer_tier, handoff.handoff_reason, context.ani, state.missing]
rules:
  - id: out-of-hours
    description: The office is closed, so the caller is offered voicemail
    when:
      outside: office
      context.hours_check: "on"
    route: {queue: voicemail, label: "Out of hours"}
  - id: vip-billing
    description: Gold customer with a billing problem
    when:
      handoff.handoff_reason: [billing_dispute, refund]
      state.customer_tier: gold
    route:
      queue: billing-priority
      label: "Billing dispute · {state.customer_tier}"
      priority: 10
  - id: complaints
    when:
      handoff.handoff_reason: complaint
    route: {queue: complaints, label: "Complaint"}
default: {queue: general, label: "General enquiry"}
tests:
  - name: gold refund
    input:
      handoff: {handoff_reason: refund}
      state: {customer_tier: gold}
    expect: {rule: vip-billing, queue: billing-priority}
  - name: a complaint
    input:
      handoff: {handoff_reason: complaint}
    expect: {queue: complaints}
"""

BROKEN_YAML = """\
ruleset: default
rules:
  - id: vip-billing
    when:
      state.customer_tier: {equals: gold}
    route: {queue: billing-priority}
default: {queue: general}
"""
"""An unknown operator on line 5 (`equals`): a save the reloader rejects."""

GOLD_REFUND = {
    "conversation_id": "conv-web-1",
    "handoff": {"handoff_reason": "refund"},
    "state": {"customer_tier": "gold"},
    "context": {"ani": "+447700900123"},
}
