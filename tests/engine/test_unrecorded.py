"""UNRECORDED: a value known to have been there but not recorded reads as unknown."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from router.engine import UNRECORDED, RuleSet, decide_replayed, load_bytes, paths_read

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rules(body: str) -> RuleSet:
    text = "ruleset: t\nrules:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    text += "default: {queue: general}\nfallback: {queue: fallback}\n"
    loaded = load_bytes(text.encode(), "t.yaml", default_name="t")
    assert loaded.ruleset is not None, loaded.problems
    return loaded.ruleset


def facts(**namespaces: Any) -> dict[str, Any]:
    return {"handoff": {}, "state": {}, "conversation": {}, "context": {}, **namespaces}


ANI_FIRST = """\
- id: mobile
  when: {context.ani: {starts_with: "+447"}}
  route: {queue: mobile}
- id: gold
  when: {state.tier: gold}
  route: {queue: vip}
"""


@pytest.mark.parametrize(
    "condition",
    [
        '{context.ani: {starts_with: "+447"}}',
        "{context.ani: {exists: false}}",
        "{context.ani: {empty: true}}",
        "{not: {context.ani: {exists: true}}}",
        '{context.ani: {ne: "+1"}}',
    ],
)
def test_every_condition_on_an_unrecorded_value_is_unknown(condition: str) -> None:
    ruleset = rules(f"- id: r\n  when: {condition}\n  route: {{queue: q}}\n")
    decision, uncertain = decide_replayed(
        ruleset, facts(context={"ani": UNRECORDED}), conversation_id="c", at=AT
    )
    assert (decision.rule, uncertain) == (None, True)
    assert decision.outcome == "default"  # an unknown never matches, and is not a failed source


def test_a_later_rule_decided_after_an_unknown_one_is_uncertain() -> None:
    decision, uncertain = decide_replayed(
        rules(ANI_FIRST),
        facts(state={"tier": "gold"}, context={"ani": UNRECORDED}),
        conversation_id="c",
        at=AT,
    )
    assert (decision.rule, uncertain) == ("gold", True)


def test_a_rule_decided_before_the_unknown_one_is_certain() -> None:
    swapped = rules(
        "- id: gold\n  when: {state.tier: gold}\n  route: {queue: vip}\n"
        '- id: mobile\n  when: {context.ani: {starts_with: "+447"}}\n  route: {queue: mobile}\n'
    )
    decision, uncertain = decide_replayed(
        swapped, facts(state={"tier": "gold"}, context={"ani": UNRECORDED}), at=AT
    )
    assert (decision.rule, uncertain) == ("gold", False)


def test_three_valued_logic_decides_without_the_value_where_it_can() -> None:
    held = rules(
        '- id: r\n  when: {any: [{state.tier: gold}, {context.ani: {starts_with: "+1"}}]}\n'
        "  route: {queue: q}\n"
    )
    failed = rules(
        '- id: r\n  when: {all: [{state.tier: gold}, {context.ani: {starts_with: "+1"}}]}\n'
        "  route: {queue: q}\n"
    )
    unrecorded = {"ani": UNRECORDED}
    assert (
        decide_replayed(held, facts(state={"tier": "gold"}, context=unrecorded), at=AT)[1] is False
    )
    assert (
        decide_replayed(failed, facts(state={"tier": "x"}, context=unrecorded), at=AT)[1] is False
    )


def test_a_value_under_an_unrecorded_mapping_is_unknown_too() -> None:
    ruleset = rules(
        '- id: r\n  when: {context.sip.from: {starts_with: "sip:"}}\n  route: {queue: q}\n'
    )
    _, uncertain = decide_replayed(ruleset, facts(context={"sip": UNRECORDED}), at=AT)
    assert uncertain is True


def test_a_failed_source_is_not_an_unrecorded_value() -> None:
    decision, uncertain = decide_replayed(rules(ANI_FIRST), facts(context=None), at=AT)
    assert (decision.outcome, uncertain) == ("fallback", False)


def test_explain_says_not_recorded() -> None:
    decision = rules(ANI_FIRST).explain(facts(context={"ani": UNRECORDED}), at=AT)
    assert decision.trace is not None
    assert decision.trace[0]["result"] == "unknown"
    assert decision.trace[0]["condition"]["reason"] == "not recorded"


def test_decide_replayed_agrees_with_decide_when_nothing_is_unrecorded() -> None:
    ruleset = rules(ANI_FIRST)
    for given in (facts(), facts(state={"tier": "gold"}), facts(context={"ani": "+4477"})):
        replayed, uncertain = decide_replayed(ruleset, given, conversation_id="c", at=AT)
        assert replayed == ruleset.decide(given, conversation_id="c", at=AT)
        assert uncertain is False


def test_paths_read_lists_every_condition_path() -> None:
    ruleset = rules(
        "- id: r\n  when: {any: [{state.a: 1}, {not: {handoff.b.c: x}}], context.d: y}\n"
        "  route: {queue: q}\n"
    )
    assert paths_read(ruleset) == {"state.a", "handoff.b.c", "context.d"}
