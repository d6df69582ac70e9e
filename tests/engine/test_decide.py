"""Decisions: first match in file order, routes, default, fallback, three-valued logic."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pytest

from router.engine.testing import run_tests

from ._rules import CONTRACT_EXAMPLE, compile_doc, decide_both, load_one, one_rule, write

FAILED = None  # a namespace given as None: its source failed


def ruleset_with(rules, *, fallback=True):
    doc = {"rules": rules, "default": {"queue": "general", "label": "General enquiry"}}
    if fallback:
        doc["fallback"] = {"queue": "backup", "label": "Details unavailable"}
    return compile_doc(doc)


def rule(rule_id, when, queue=None):
    out = {"id": rule_id, "route": {"queue": queue or rule_id}}
    if when is not None:
        out["when"] = when
    return out


# --- first match, routes, default ----------------------------------------------------------------


def test_the_first_rule_in_file_order_whose_when_holds_wins():
    ruleset = ruleset_with(
        [
            rule("a", {"state.x": 1}),
            rule("b", {"state.y": 1}),
            rule("c", {"state.x": 1, "state.y": 1}),
            rule("d", None),
        ]
    )
    assert decide_both(ruleset, {"state": {"x": 1, "y": 1}}).rule == "a"
    assert decide_both(ruleset, {"state": {"y": "1"}}).rule == "b"
    assert decide_both(ruleset, {"state": {}}).rule == "d"


def test_a_rule_without_conditions_matches_every_call():
    ruleset = ruleset_with([rule("all", None)])
    for facts in ({}, {"state": {"x": 1}}, {"handoff": {"a": None}}):
        decision = decide_both(ruleset, facts)
        assert (decision.rule, decision.queue, decision.outcome) == ("all", "all", "matched")


def test_a_matched_rule_gives_its_whole_route(tmp_path):
    ruleset = load_one(tmp_path, CONTRACT_EXAMPLE)
    decision = ruleset.decide(
        {
            "handoff": {"handoff_reason": "refund"},
            "state": {"customer_tier": "gold", "balance": "1500"},
        },
        conversation_id="0bba04d7",
        at=datetime.fromisoformat("2026-11-23T10:00:00+00:00"),
    )
    assert decision.rule == "vip-billing"
    assert decision.outcome == "matched"
    assert decision.queue == "billing-priority"
    assert decision.label == "Billing dispute · gold"
    assert decision.priority == 10
    assert list(decision.skills) == ["billing"]
    assert dict(decision.attributes) == {"x_tier": "gold"}
    assert decision.degraded is False
    assert decision.ruleset == "default"


def test_ruleset_version_is_the_sha256_of_the_file_bytes(tmp_path):
    path = write(tmp_path, CONTRACT_EXAMPLE)
    ruleset = load_one(tmp_path, CONTRACT_EXAMPLE)
    expected = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert ruleset.version == expected
    decision = ruleset.decide({}, at=datetime(2026, 11, 23, 10, 0))
    assert decision.ruleset_version == expected


def test_the_contract_example_passes_its_own_tests(tmp_path):
    ruleset = load_one(tmp_path, CONTRACT_EXAMPLE)
    results = run_tests(ruleset)
    assert [(r.name, r.ok) for r in results] == [("gold refund in office hours", True)]


@pytest.mark.parametrize(
    ("at", "facts", "rule", "queue"),
    [
        ("2026-11-23T07:59:00", {}, "out-of-hours", "voicemail"),
        ("2026-11-28T12:30:00", {}, "out-of-hours", "voicemail"),  # Saturday, end exclusive
        ("2026-12-25T10:00:00", {}, "out-of-hours", "voicemail"),  # closed date
        ("2026-11-23T10:00:00", {}, None, "general"),
        (
            "2026-11-23T10:00:00",
            {
                "handoff": {"handoff_reason": "refund"},
                "state": {"customer_tier": "gold", "balance": 999},
            },
            None,
            "general",
        ),
        (
            "2026-11-23T10:00:00",
            {
                "handoff": {"handoff_reason": "billing_dispute"},
                "state": {"customer_tier": "gold", "balance": "1000"},
            },
            "vip-billing",
            "billing-priority",
        ),
        (
            "2026-11-23T10:00:00",
            {"state": {"sentiment": "ANGRY"}},
            "complaints",
            None,
        ),
    ],
)
def test_the_contract_example_routes(tmp_path, at, facts, rule, queue):
    ruleset = load_one(tmp_path, CONTRACT_EXAMPLE)
    decision = decide_both(ruleset, facts, conversation_id="c-1", at=datetime.fromisoformat(at))
    assert decision.rule == rule
    if queue is not None:
        assert decision.queue == queue
    else:
        assert decision.queue in ("complaints", "complaints-pilot")
    assert decision.outcome == ("matched" if rule else "default")


def test_no_rule_matching_with_every_source_answering_is_default():
    ruleset = ruleset_with([rule("a", {"state.x": 1})])
    decision = decide_both(ruleset, {"state": {"x": 2}, "handoff": {}})
    assert decision.rule is None
    assert decision.outcome == "default"
    assert decision.queue == "general"
    assert decision.label == "General enquiry"
    assert decision.degraded is False


def test_decision_to_dict_is_json_with_the_decision_fields():
    ruleset = ruleset_with([rule("a", None)])
    body = decide_both(ruleset, {}).to_dict()
    json.dumps(body)
    assert {
        "ruleset",
        "ruleset_version",
        "queue",
        "label",
        "priority",
        "skills",
        "attributes",
        "rule",
        "outcome",
        "degraded",
    } <= set(body)
    assert "trace" not in body
    assert body["skills"] == []
    assert body["attributes"] == {}


def test_route_without_optional_fields_gives_none_and_empties():
    decision = decide_both(ruleset_with([rule("a", None)]), {})
    assert decision.label is None
    assert decision.priority is None
    assert tuple(decision.skills) == ()
    assert dict(decision.attributes) == {}


def test_same_input_gives_the_same_decision():
    ruleset = ruleset_with([rule("a", {"state.x": {"gte": 1}}), rule("b", None)])
    facts = {"state": {"x": "5"}}
    assert ruleset.decide(facts, conversation_id="c") == ruleset.decide(facts, conversation_id="c")


def test_decide_does_not_change_the_facts():
    ruleset = one_rule({"conversation.from_number": {"starts_with": "+44"}})
    facts = {"conversation": {"fromNumber": "+44"}, "state": {"a": [1]}}
    before = json.dumps(facts, sort_keys=True)
    decide_both(ruleset, facts)
    assert json.dumps(facts, sort_keys=True) == before


# --- three-valued logic with a failed source -----------------------------------------------------


def test_a_condition_on_a_failed_source_never_matches_and_degrades():
    ruleset = ruleset_with([rule("gold", {"state.tier": "gold"})])
    decision = decide_both(ruleset, {"state": FAILED, "handoff": {"tier": "gold"}})
    assert decision.rule is None
    assert decision.outcome == "fallback"
    assert decision.queue == "backup"
    assert decision.label == "Details unavailable"
    assert decision.degraded is True


@pytest.mark.parametrize(
    "matcher",
    [
        {"exists": False},
        {"empty": True},
        {"ne": "gold"},
        {"not_in": ["gold"]},
        {"exists": True},
        {"empty": False},
        "gold",
    ],
    ids=str,
)
def test_no_operator_matches_a_failed_source(matcher):
    ruleset = ruleset_with([rule("r", {"state.tier": matcher})])
    decision = decide_both(ruleset, {"state": FAILED})
    assert decision.rule is None
    assert decision.outcome == "fallback"


def test_not_of_unknown_is_unknown_so_a_not_rule_does_not_fire():
    ruleset = ruleset_with([rule("not-gold", {"not": {"state.tier": "gold"}})])
    decision = decide_both(ruleset, {"state": FAILED})
    assert decision.rule is None
    assert (decision.outcome, decision.degraded, decision.queue) == ("fallback", True, "backup")
    # with state answering, the same rule fires for a non-gold caller
    assert decide_both(ruleset, {"state": {"tier": "silver"}}).rule == "not-gold"


def test_not_not_of_unknown_is_still_unknown():
    ruleset = ruleset_with([rule("r", {"not": {"not": {"state.tier": "gold"}}})])
    assert decide_both(ruleset, {"state": FAILED}).rule is None
    assert decide_both(ruleset, {"state": {"tier": "gold"}}).rule == "r"


def test_any_is_true_when_one_branch_is_true_despite_an_unknown():
    ruleset = ruleset_with(
        [rule("r", {"any": [{"state.tier": "gold"}, {"handoff.reason": "refund"}]})]
    )
    decision = decide_both(ruleset, {"state": FAILED, "handoff": {"reason": "refund"}})
    assert decision.rule == "r"
    assert decision.outcome == "matched"
    assert decision.degraded is True


def test_any_with_an_unknown_and_a_false_branch_does_not_match():
    ruleset = ruleset_with(
        [rule("r", {"any": [{"state.tier": "gold"}, {"handoff.reason": "refund"}]})]
    )
    decision = decide_both(ruleset, {"state": FAILED, "handoff": {"reason": "other"}})
    assert decision.rule is None
    # and it is unknown, not false: its negation does not fire either
    negated = ruleset_with(
        [rule("r", {"not": {"any": [{"state.tier": "gold"}, {"handoff.reason": "refund"}]}})]
    )
    assert decide_both(negated, {"state": FAILED, "handoff": {"reason": "other"}}).rule is None


def test_all_is_false_when_one_branch_is_false_despite_an_unknown():
    negated = ruleset_with(
        [rule("r", {"not": {"all": [{"state.tier": "gold"}, {"handoff.reason": "refund"}]}})]
    )
    # all(unknown, false) is false, so not(...) is true: the rule fires
    assert decide_both(negated, {"state": FAILED, "handoff": {"reason": "other"}}).rule == "r"
    # all(unknown, true) is unknown, so not(...) is unknown: it does not fire
    assert decide_both(negated, {"state": FAILED, "handoff": {"reason": "refund"}}).rule is None


def test_a_mapping_of_paths_is_all_with_three_valued_logic():
    negated = ruleset_with([rule("r", {"not": {"state.tier": "gold", "handoff.reason": "refund"}})])
    assert decide_both(negated, {"state": FAILED, "handoff": {"reason": "other"}}).rule == "r"
    assert decide_both(negated, {"state": FAILED, "handoff": {"reason": "refund"}}).rule is None


def test_any_of_not_mixes_correctly():
    ruleset = ruleset_with(
        [rule("r", {"any": [{"not": {"state.tier": "gold"}}, {"context.vip": True}]})]
    )
    assert decide_both(ruleset, {"state": FAILED, "context": {"vip": "true"}}).rule == "r"
    assert decide_both(ruleset, {"state": FAILED, "context": {"vip": False}}).rule is None


def test_a_rule_not_reading_the_failed_source_still_matches_but_degraded():
    ruleset = ruleset_with([rule("r", {"handoff.reason": "refund"})])
    decision = decide_both(ruleset, {"state": FAILED, "handoff": {"reason": "refund"}})
    assert (decision.rule, decision.outcome, decision.degraded) == ("r", "matched", True)


def test_later_rule_wins_when_an_earlier_rule_is_unknown():
    ruleset = ruleset_with([rule("a", {"state.tier": "gold"}), rule("b", {"handoff.r": 1})])
    assert decide_both(ruleset, {"state": FAILED, "handoff": {"r": 1}}).rule == "b"


def test_fallback_without_a_fallback_route_is_the_default_route():
    ruleset = ruleset_with([rule("r", {"state.tier": "gold"})], fallback=False)
    decision = decide_both(ruleset, {"state": FAILED})
    assert decision.outcome == "fallback"
    assert decision.degraded is True
    assert decision.queue == "general"
    assert decision.label == "General enquiry"
    assert decision.rule is None


@pytest.mark.parametrize("namespace", ["handoff", "state", "conversation"])
def test_any_failed_fact_source_degrades_the_decision(namespace):
    ruleset = ruleset_with([rule("r", {"context.x": 1})])
    decision = decide_both(ruleset, {namespace: FAILED})
    assert decision.degraded is True
    assert decision.outcome == "fallback"


def test_an_absent_namespace_is_empty_not_failed():
    ruleset = ruleset_with([rule("r", {"state.tier": {"exists": False}})])
    decision = decide_both(ruleset, {})
    assert (decision.rule, decision.degraded) == ("r", False)


def test_schedules_are_not_affected_by_failed_sources(tmp_path):
    ruleset = load_one(
        tmp_path,
        "timezone: UTC\nschedules:\n  always: {weekly: {mon-sun: ['00:00-24:00']}}\n"
        "rules:\n  - id: open\n    when: {during: always}\n    route: {queue: q}\n"
        "default: {queue: g}\n",
    )
    decision = decide_both(ruleset, {"state": FAILED}, at=datetime(2026, 1, 1, 12))
    assert (decision.rule, decision.degraded) == ("open", True)
