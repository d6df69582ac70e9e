"""Conditions written alike in several rules of a file compile once, to one shared node."""

from __future__ import annotations

from ._rules import compile_doc, decide_both


def test_a_condition_written_alike_in_many_rules_compiles_once():
    ruleset = compile_doc(
        {
            "schedules": {"office": {"weekly": {"mon-fri": ["08:00-18:00"]}}},
            "rules": [
                {
                    "id": f"r{i}",
                    "when": {"handoff.intent": f"i{i}", "state.tier": "gold", "during": "office"},
                    "route": {"queue": "q"},
                }
                for i in range(3)
            ],
            "default": {"queue": "d"},
        }
    )
    children = [{id(child) for child in rule.when.children} for rule in ruleset.rules]
    shared = children[0] & children[1] & children[2]
    assert len(shared) == 2  # state.tier: gold and during: office; the intents differ


def test_conditions_that_differ_only_in_the_type_of_their_value_are_not_shared():
    ruleset = compile_doc(
        {
            "rules": [
                {"id": "number", "when": {"state.x": 1}, "route": {"queue": "n"}},
                {"id": "boolean", "when": {"state.x": True}, "route": {"queue": "b"}},
                {"id": "text", "when": {"state.x": "1"}, "route": {"queue": "t"}},
                {"id": "float", "when": {"state.x": 1.5}, "route": {"queue": "f"}},
            ],
            "default": {"queue": "d"},
        }
    )
    assert len({id(rule.when) for rule in ruleset.rules}) == 4
    assert decide_both(ruleset, {"state": {"x": True}}).rule == "boolean"
    assert decide_both(ruleset, {"state": {"x": "1.0"}}).rule == "number"
    assert decide_both(ruleset, {"state": {"x": "1.50"}}).rule == "float"


def test_the_same_operators_in_another_order_explain_in_their_own_order():
    ruleset = compile_doc(
        {
            "rules": [
                {"id": "a", "when": {"state.x": {"gte": 1, "lte": 5}}, "route": {"queue": "a"}},
                {"id": "b", "when": {"state.x": {"lte": 5, "gte": 1}}, "route": {"queue": "b"}},
            ],
            "default": {"queue": "d"},
        }
    )
    trace = ruleset.explain({"state": {"x": "nope"}}).trace
    assert [entry["condition"]["op"] for entry in trace] == ["gte", "lte"]
