"""Sensitive paths: parsing, matching, masking and stripping (router.sensitive)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router import load_rules
from router.engine import load_bytes, rule_file_schema
from router.sensitive import (
    MASK,
    PathError,
    compile_paths,
    mask,
    mask_trace,
    parse_path,
    strip,
)


def test_exact_prefix_and_subtree_paths_are_masked_and_the_rest_kept() -> None:
    paths = compile_paths(["state.card_number", "state.pin_*", "context.sip.*"])
    facts = {
        "state": {"card_number": "4111", "pin_code": "12", "pin": "x", "tier": "gold"},
        "context": {"sip": {"x_a": "1", "x_b": {"deep": "2"}}, "dnis": "+44"},
        "handoff": None,
    }
    assert mask(facts, paths) == {
        "state": {"card_number": MASK, "pin_code": MASK, "pin": "x", "tier": "gold"},
        "context": {"sip": {"x_a": MASK, "x_b": MASK}, "dnis": "+44"},
        "handoff": None,
    }
    assert strip(facts, paths) == {
        "state": {"pin": "x", "tier": "gold"},
        "context": {"sip": {}, "dnis": "+44"},
        "handoff": None,
    }
    assert facts["state"]["card_number"] == "4111"  # the caller's facts are not changed


def test_context_ani_is_always_sensitive() -> None:
    assert compile_paths([]).covers("context.ani")
    assert mask({"context": {"ani": "+447700900000"}}, compile_paths([])) == {
        "context": {"ani": MASK}
    }


def test_a_map_with_nothing_sensitive_is_not_copied() -> None:
    paths = compile_paths(["state.card_number"])
    state = {"tier": "gold"}
    assert mask({"state": state}, paths)["state"] is state


def test_conversation_paths_match_camel_case_keys_too() -> None:
    paths = compile_paths(["conversation.from_number"])
    masked = mask({"conversation": {"fromNumber": "+44", "from_number": "+44"}}, paths)
    assert masked == {"conversation": {"fromNumber": MASK, "from_number": MASK}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stat.card", "unknown namespace 'stat'"),
        ("state", "names a whole namespace"),
        ("state.", "is not a sensitive path"),
        ("state.a*.b", "is not a sensitive path"),
        ("state.a b", "is not a sensitive path"),
    ],
)
def test_bad_paths_are_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        parse_path(text)


def test_trace_actual_values_of_sensitive_paths_are_masked_operator_and_expected_kept() -> None:
    paths = compile_paths(["state.card"])
    trace = [
        {
            "rule": "r",
            "condition": {
                "path": None,
                "op": "any",
                "branches": [
                    {"path": "state.card", "op": "starts_with", "expected": "3", "actual": "41"},
                    {"path": "state.tier", "op": "eq", "expected": "vip", "actual": "gold"},
                ],
            },
        }
    ]
    [entry] = mask_trace(trace, paths)
    assert entry["condition"]["branches"] == [
        {"path": "state.card", "op": "starts_with", "expected": "3", "actual": MASK},
        {"path": "state.tier", "op": "eq", "expected": "vip", "actual": "gold"},
    ]


RULES = b"""
sensitive: [state.card_number]
rules:
  - id: card
    when: {state.card_number: {starts_with: "4"}}
    route: {queue: cards, label: "Card {state.card_number}", attributes: {t: "{state.tier}"}}
default: {queue: general}
"""


def test_rules_match_on_the_real_value_and_the_masked_rendering_hides_it() -> None:
    ruleset = load_bytes(RULES, "r.yaml", default_name="r").ruleset
    assert ruleset is not None
    assert ruleset.sensitive.paths == ("context.ani", "context.sip_from", "state.card_number")
    facts = {"state": {"card_number": "4111", "tier": "gold"}}
    decision = ruleset.decide(facts, conversation_id="c")
    assert (decision.rule, decision.label) == ("card", "Card 4111")
    masked = ruleset.mask_rendering(decision, facts, conversation_id="c")
    assert (masked.label, dict(masked.attributes)) == ("Card ***", {"t": "gold"})


def test_check_warns_where_a_template_shows_a_sensitive_path() -> None:
    loaded = load_bytes(RULES, "r.yaml", default_name="r")
    [warning] = [p for p in loaded.problems if p.severity == "warning"]
    assert (warning.line, warning.col) == (6, 34)  # the label's value
    assert "label shows the sensitive path 'state.card_number'" in warning.message


def test_check_reports_bad_sensitive_paths_where_they_are_written() -> None:
    loaded = load_bytes(
        b"sensitive:\n  - state.ok\n  - stat.card\ndefault: {queue: q}\n",
        "r.yaml",
        default_name="r",
    )
    [error] = loaded.errors
    assert (error.line, error.col) == (3, 5)
    assert "unknown namespace 'stat' in 'stat.card' (did you mean 'state'?)" in error.message


def test_sensitive_is_in_the_json_schema() -> None:
    schema = rule_file_schema()
    assert "sensitive" in schema["properties"]


def test_load_rules_exposes_the_effective_paths(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_bytes(RULES)
    assert load_rules(tmp_path)["r"].sensitive.covers("state.card_number")
