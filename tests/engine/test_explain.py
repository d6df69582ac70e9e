"""``RuleSet.explain``: the decision plus a per-rule trace (contract §2.2 / §6)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from ._rules import CONTRACT_EXAMPLE, compile_doc, load_one

RULES = {
    "rules": [
        {
            "id": "vip",
            "when": {"state.tier": "gold", "state.balance": {"gte": 1000}},
            "route": {"queue": "vip", "label": "VIP {state.tier}"},
        },
        {
            "id": "refund",
            "when": {"handoff.reason": ["refund", "billing"]},
            "route": {"queue": "r"},
        },
        {"id": "angry", "when": {"state.sentiment": {"matches": "^ang"}}, "route": {"queue": "a"}},
        {
            "id": "either",
            "when": {"any": [{"context.dnis": "+44"}, {"context.ivr": {"in": ["2", "3"]}}]},
            "route": {"split": [{"weight": 50, "queue": "s1"}, {"weight": 50, "queue": "s2"}]},
        },
        {"id": "catch", "when": {"not": {"state.tier": "gold"}}, "route": {"queue": "c"}},
    ],
    "default": {"queue": "d"},
    "fallback": {"queue": "f"},
}

INPUTS = [
    {},
    {"state": {"tier": "gold", "balance": "1500"}},
    {"state": {"tier": "gold", "balance": "500"}},
    {"state": {"tier": "gold"}, "handoff": {"reason": "refund"}},
    {"state": {"tier": "gold", "sentiment": "angry"}},
    {"state": {"tier": "gold"}, "context": {"ivr": 3}},
    {"state": None},
    {"state": None, "handoff": {"reason": "billing"}},
    {"state": None, "context": {"dnis": "+44"}},
    {"state": {"tier": "silver"}},
    {"handoff": None, "state": {"tier": "gold"}},
]


@pytest.fixture(scope="module")
def ruleset():
    return compile_doc(RULES)


def by_rule(decision):
    return {entry["rule"]: entry for entry in decision.trace}


@pytest.mark.parametrize("facts", INPUTS, ids=json.dumps)
def test_explain_gives_the_same_decision_as_decide(ruleset, facts):
    for cid in ("c1", "c2", "c3", "c4"):
        decided = ruleset.decide(facts, conversation_id=cid)
        explained = ruleset.explain(facts, conversation_id=cid)
        assert explained.trace is not None
        body = explained.to_dict()
        trace = body.pop("trace")
        assert body == decided.to_dict()
        assert isinstance(trace, list)
        json.dumps(trace)


@pytest.mark.parametrize("facts", INPUTS, ids=json.dumps)
def test_the_trace_lists_every_rule_in_order(ruleset, facts):
    decision = ruleset.explain(facts, conversation_id="c")
    assert [entry["rule"] for entry in decision.trace] == [r["id"] for r in RULES["rules"]]
    matched = [entry["rule"] for entry in decision.trace if entry["matched"]]
    if decision.rule is None:
        assert matched == []
    else:
        assert matched[0] == decision.rule


def test_a_matched_rule_has_no_failing_condition(ruleset):
    trace = by_rule(ruleset.explain({"state": {"tier": "gold", "balance": 2000}}))
    assert trace["vip"]["matched"] is True
    assert not trace["vip"].get("condition")


def test_the_first_failing_condition_is_reported_with_path_op_expected_actual(ruleset):
    trace = by_rule(ruleset.explain({"state": {"tier": "gold", "balance": "500"}}))
    failure = trace["vip"]["condition"]
    assert trace["vip"]["matched"] is False
    assert failure["path"] == "state.balance"
    assert failure["op"] == "gte"
    assert failure["expected"] == 1000
    assert failure["actual"] == "500"


def test_the_first_failing_condition_is_the_first_written(ruleset):
    failure = by_rule(ruleset.explain({"state": {"tier": "silver", "balance": 1}}))["vip"][
        "condition"
    ]
    assert (failure["path"], failure["op"], failure["expected"], failure["actual"]) == (
        "state.tier",
        "eq",
        "gold",
        "silver",
    )


def test_a_list_matcher_reports_in_with_the_list(ruleset):
    failure = by_rule(ruleset.explain({"handoff": {"reason": "other"}}))["refund"]["condition"]
    assert (failure["path"], failure["op"], failure["expected"], failure["actual"]) == (
        "handoff.reason",
        "in",
        ["refund", "billing"],
        "other",
    )


def test_a_missing_value_is_reported_as_missing(ruleset):
    failure = by_rule(ruleset.explain({}))["angry"]["condition"]
    assert (failure["path"], failure["op"], failure["expected"]) == (
        "state.sentiment",
        "matches",
        "^ang",
    )
    assert failure["actual"] is None


def test_a_failed_source_is_not_a_match_in_the_trace(ruleset):
    decision = ruleset.explain({"state": None})
    trace = by_rule(decision)
    for rule in ("vip", "angry", "catch"):
        assert trace[rule]["matched"] is False
        assert trace[rule]["condition"]
    assert decision.outcome == "fallback"
    assert decision.degraded is True


def test_explain_does_not_change_with_the_trace(ruleset):
    facts = {"state": {"tier": "gold", "balance": 5}, "context": {"dnis": "+44"}}
    first = ruleset.explain(facts, conversation_id="x").to_dict()
    second = ruleset.explain(facts, conversation_id="x").to_dict()
    assert first == second
    assert first["rule"] == "either"


def test_explain_with_schedules_and_a_naive_at(tmp_path):
    ruleset = load_one(tmp_path, CONTRACT_EXAMPLE)
    facts = {
        "handoff": {"handoff_reason": "refund"},
        "state": {"customer_tier": "gold", "balance": 1500},
    }
    for at in ("2026-11-23T10:00:00", "2026-11-23T07:00:00", "2026-12-25T10:00:00+00:00"):
        when = datetime.fromisoformat(at)
        decided = ruleset.decide(facts, conversation_id="c", at=when)
        explained = ruleset.explain(facts, conversation_id="c", at=when)
        body = explained.to_dict()
        body.pop("trace")
        assert body == decided.to_dict()
    closed = ruleset.explain(facts, at=datetime.fromisoformat("2026-11-23T10:00:00"))
    assert by_rule(closed)["out-of-hours"]["matched"] is False
    assert by_rule(closed)["out-of-hours"]["condition"]
    assert closed.rule == "vip-billing"


def test_the_first_written_failure_is_reported_though_a_cheaper_one_runs_first():
    ruleset = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "when": {"state.dnis": {"matches": "^[+]44"}, "state.tier": "gold"},
                    "route": {"queue": "q"},
                }
            ],
            "default": {"queue": "d"},
        }
    )
    failure = by_rule(ruleset.explain({"state": {"dnis": "+1", "tier": "silver"}}))["r"][
        "condition"
    ]
    assert (failure["path"], failure["op"]) == ("state.dnis", "matches")


def test_an_unknown_all_reports_the_first_written_unknown_condition():
    ruleset = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "when": {"context.x": {"matches": "a"}, "state.tier": "gold"},
                    "route": {"queue": "q"},
                }
            ],
            "default": {"queue": "d"},
        }
    )
    entry = by_rule(ruleset.explain({"context": None, "state": None}))["r"]
    assert entry["result"] == "unknown"
    assert entry["condition"]["path"] == "context.x"
    assert entry["condition"]["reason"] == "source 'context' failed"


def test_decide_never_runs_the_trace_closures(ruleset):
    # The fast path pays nothing for tracing: swap every rule's why for one that fails.
    def no_tracing(scope):
        raise AssertionError("decide ran a why closure")

    traced = dataclasses.replace(ruleset)
    object.__setattr__(traced, "whys", tuple(no_tracing for _ in traced.whys))
    for facts in INPUTS:
        assert traced.decide(facts, conversation_id="c") == ruleset.decide(
            facts, conversation_id="c"
        )
    with pytest.raises(AssertionError, match="why closure"):
        traced.explain({}, conversation_id="c")


def test_the_condition_a_rule_is_indexed_under_is_still_reported_first_when_written_first():
    # The index files this rule under handoff.intent and decide tests it last.
    ruleset = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "when": {"handoff.intent": "refund", "state.tier": "gold"},
                    "route": {"queue": "q"},
                },
                {"id": "other", "when": {"handoff.intent": "sales"}, "route": {"queue": "s"}},
            ],
            "default": {"queue": "d"},
        }
    )
    facts = {"handoff": {"intent": "sales"}, "state": {"tier": "silver"}}
    failure = by_rule(ruleset.explain(facts))["r"]["condition"]
    assert (failure["path"], failure["actual"]) == ("handoff.intent", "sales")
