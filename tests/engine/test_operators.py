"""Every operator of contract §3 ("Matching in detail"), one row per edge case.

Each row builds a one-rule ruleset ``state.x: <matcher>`` and asks whether the
rule fires for ``state.x = <actual>`` (or for no ``state.x`` at all). The
indexed ``decide`` and the plain scan must agree on every row.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ._rules import MISSING, compile_doc, decide_both, facts_with, one_rule


@cache
def _ruleset(path: str, matcher_json: str) -> Any:
    import json

    return one_rule({path: json.loads(matcher_json)})


def fires(matcher: Any, actual: Any, path: str = "state.x") -> bool:
    import json

    ruleset = _ruleset(path, json.dumps(matcher))
    decision = decide_both(ruleset, facts_with(path, actual))
    assert decision.degraded is False
    return decision.rule == "r"


def _rows(matcher: Any, cases: list[tuple[Any, bool]]) -> list[Any]:
    return [
        pytest.param(matcher, actual, want, id=f"{matcher}-{actual!r}") for actual, want in cases
    ]


# --- eq, and the scalar shorthand ----------------------------------------------------------------

EQ_ROWS = [
    # number expected: the actual is read as a number first
    *_rows({"eq": 3}, [(3, True), ("3", True), ("3.0", True), (3.0, True), ("03", True)]),
    *_rows({"eq": 3}, [("3.5", False), ("abc", False), ("", False), (None, False), (4, False)]),
    *_rows({"eq": 3}, [(MISSING, False), ([3], False), ({"a": 3}, False)]),
    *_rows({"eq": 2.5}, [(2.5, True), ("2.5", True), ("2.50", True), (2, False)]),
    *_rows({"eq": 0}, [(0, True), ("0", True), ("0.0", True), (False, False), ("", False)]),
    *_rows({"eq": -1}, [("-1", True), (-1.0, True), ("1", False)]),
    # string expected: strings compared, a number actual read as its plain decimal text
    *_rows({"eq": "3"}, [(3, True), ("3", True), ("3.0", False), (" 3", False), (4, False)]),
    *_rows({"eq": "2.5"}, [(2.5, True), ("2.5", True), ("2.50", False)]),
    *_rows({"eq": "gold"}, [("gold", True), ("Gold", False), ("gold ", False), ("golden", False)]),
    *_rows({"eq": "gold"}, [(None, False), (MISSING, False), (["gold"], False)]),
    *_rows({"eq": ""}, [("", True), (MISSING, False), (None, False)]),
    # boolean expected: true or "true" in any case
    *_rows({"eq": True}, [(True, True), ("true", True), ("TRUE", True), ("True", True)]),
    *_rows({"eq": True}, [(False, False), ("false", False), ("yes", False), (1, False)]),
    *_rows({"eq": True}, [("1", False), (None, False), (MISSING, False)]),
    *_rows({"eq": False}, [(False, True), ("false", True), ("FALSE", True), (True, False)]),
    *_rows({"eq": False}, [(0, False), ("", False), (None, False), (MISSING, False)]),
    # a scalar matcher is eq
    *_rows(3, [(3, True), ("3", True), ("3.0", True), ("x", False)]),
    *_rows("3", [(3, True), ("3", True)]),
    *_rows("gold", [("gold", True), ("GOLD", False)]),
    *_rows(True, [("TRUE", True), (True, True), ("no", False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), EQ_ROWS)
def test_eq_reads_the_actual_by_the_expected_values_type(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- ne ------------------------------------------------------------------------------------------

NE_ROWS = [
    *_rows({"ne": 3}, [("abc", True), (4, True), ("4", True), (3, False), ("3", False)]),
    *_rows({"ne": 3}, [("3.0", False), (3.0, False), (MISSING, False)]),
    # null is present (exists: true matches it), and it is not 3
    *_rows({"ne": 3}, [(None, True)]),
    *_rows({"ne": "gold"}, [("silver", True), ("gold", False), ("GOLD", True), (MISSING, False)]),
    *_rows({"ne": "3"}, [(3, False), (4, True)]),
    *_rows({"ne": True}, [("false", True), ("TRUE", False), (True, False), ("x", True)]),
    *_rows({"ne": True}, [(MISSING, False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), NE_ROWS)
def test_ne_is_present_and_not_eq(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- in / not_in ---------------------------------------------------------------------------------

IN_ROWS = [
    *_rows({"in": [1, 2]}, [(2, True), ("2", True), ("2.0", True), (2.0, True), (3, False)]),
    *_rows({"in": [1, 2]}, [("x", False), (None, False), (MISSING, False), (True, False)]),
    *_rows({"in": ["a", "b"]}, [("a", True), ("b", True), ("A", False), ("c", False)]),
    *_rows({"in": ["3"]}, [(3, True), ("3", True), ("3.0", False)]),
    *_rows({"in": [True]}, [("True", True), ("true", True), (True, True), (False, False)]),
    *_rows({"in": ["gold", 3, True]}, [("gold", True), ("3.0", True), ("TRUE", True)]),
    *_rows({"in": ["gold", 3, True]}, [("silver", False), (4, False), ("false", False)]),
    # a list matcher is in
    *_rows(["refund", "billing_dispute"], [("refund", True), ("billing_dispute", True)]),
    *_rows(["refund", "billing_dispute"], [("Refund", False), (MISSING, False), (None, False)]),
    *_rows([1, 2], [("1", True), ("1.0", True), ("5", False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), IN_ROWS)
def test_in_is_eq_of_any_listed_value(matcher, actual, want):
    assert fires(matcher, actual) is want


NOT_IN_ROWS = [
    *_rows({"not_in": ["a", "b"]}, [("c", True), ("a", False), ("B", True), (MISSING, False)]),
    *_rows({"not_in": ["a", "b"]}, [(None, True), (3, True)]),
    *_rows({"not_in": [3]}, [("3.0", False), ("3", False), (3, False), ("abc", True)]),
    *_rows({"not_in": [3]}, [(MISSING, False)]),
    *_rows({"not_in": [True]}, [("TRUE", False), ("false", True)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), NOT_IN_ROWS)
def test_not_in_is_present_and_not_in(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- numeric comparisons -------------------------------------------------------------------------

NUMERIC_ROWS = [
    *_rows({"gte": 1000}, [(1500, True), ("1500", True), ("1000", True), (1000.0, True)]),
    *_rows({"gte": 1000}, [("999", False), ("999.99", False), (999, False)]),
    *_rows({"gte": 1000}, [("abc", False), ("", False), (None, False), (MISSING, False)]),
    *_rows({"gte": 1000}, [([1500], False), ({"v": 1500}, False), ("1,500", False)]),
    *_rows({"gt": 10}, [("10", False), (10, False), ("10.5", True), ("12.5", True), (11, True)]),
    *_rows({"gt": 0}, [(True, False), ("true", False)]),
    *_rows({"lt": 20}, [("19.99", True), (20, False), ("-5", True), ("x", False)]),
    *_rows({"lte": 20}, [(20, True), ("20.0", True), ("20.01", False), (None, False)]),
    *_rows({"lt": 2.5}, [("2.4", True), (2.5, False), ("2", True)]),
    *_rows({"between": [10, 20]}, [(10, True), (20, True), ("15", True), ("10.0", True)]),
    *_rows({"between": [10, 20]}, [(9.99, False), ("20.01", False), ("x", False)]),
    *_rows({"between": [10, 20]}, [(MISSING, False), (None, False), ([15], False)]),
    *_rows({"between": [0.5, 1.5]}, [("0.5", True), (1.5, True), ("1.51", False)]),
    *_rows({"between": [5, 5]}, [(5, True), ("5", True), (4.99, False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), NUMERIC_ROWS)
def test_numeric_operators_read_numeric_strings(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- text operators ------------------------------------------------------------------------------

TEXT_ROWS = [
    # contains: substring on a string, membership on a list
    *_rows({"contains": "bill"}, [("billing", True), ("my bill", True), ("BILLING", False)]),
    *_rows({"contains": "bill"}, [(["bill", "x"], True), (["billing"], False), ([], False)]),
    *_rows({"contains": "bill"}, [(None, False), (MISSING, False), ({"bill": 1}, False)]),
    *_rows({"contains": 3}, [([1, 3], True), ([1, 2], False), (12345, False)]),
    *_rows({"contains": "3"}, [(12345, False), (3, False), ("123", True)]),
    # starts_with / ends_with: strings only
    *_rows({"starts_with": "+44"}, [("+442071234567", True), ("0044", False), (["+44"], False)]),
    *_rows({"starts_with": "44"}, [(442071, False), ("442071", True)]),
    *_rows({"ends_with": "567"}, [("abc567", True), (1234567, False), (["567"], False)]),
    *_rows({"ends_with": "567"}, [(None, False), (MISSING, False), ("5678", False)]),
    # matches: RE2, searched anywhere, strings only
    *_rows({"matches": "bill"}, [("my billing", True), ("BILL", False), (["bill"], False)]),
    *_rows({"matches": "^bill$"}, [("bill", True), ("billing", False), ("a\nbill", False)]),
    *_rows({"matches": r"^\+44"}, [("+4420", True), ("x+44", False)]),
    *_rows({"matches": r"\d+"}, [("a1", True), (123, False), (True, False), (None, False)]),
    *_rows({"matches": r"\d+"}, [(MISSING, False)]),
    # RE2 syntax (Python's re has no \p{Greek})
    *_rows({"matches": r"^\p{Greek}+$"}, [("αβγ", True), ("abc", False)]),
    *_rows({"matches": "^(?i)gold$"}, [("GOLD", True)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), TEXT_ROWS)
def test_text_operators(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- exists / empty ------------------------------------------------------------------------------

PRESENCE_ROWS = [
    *_rows({"exists": True}, [("x", True), (None, True), ("", True), (0, True), (False, True)]),
    *_rows({"exists": True}, [([], True), (MISSING, False)]),
    *_rows({"exists": False}, [(MISSING, True), (None, False), ("", False)]),
    *_rows({"empty": True}, [(MISSING, True), (None, True), ("", True), ([], True), ({}, True)]),
    *_rows({"empty": True}, [("x", False), (0, False), (False, False), ([0], False)]),
    *_rows({"empty": True}, [({"a": None}, False), ("0", False)]),
    *_rows({"empty": False}, [("x", True), (0, True), (False, True), ([0], True)]),
    *_rows({"empty": False}, [(MISSING, False), (None, False), ("", False), ([], False)]),
    *_rows({"empty": False}, [({}, False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), PRESENCE_ROWS)
def test_exists_and_empty(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- ignore_case ---------------------------------------------------------------------------------

CASE_ROWS = [
    *_rows({"eq": "STRASSE", "ignore_case": True}, [("straße", True), ("Strasse", True)]),
    *_rows({"eq": "straße", "ignore_case": True}, [("STRASSE", True), ("strasse", True)]),
    *_rows({"eq": "straße"}, [("STRASSE", False)]),
    *_rows({"eq": "gold", "ignore_case": True}, [("GOLD", True), ("gold", True), ("gol", False)]),
    *_rows({"eq": "ΣΊΣΥΦΟΣ", "ignore_case": True}, [("σίσυφος", True), ("σίσυφοσ", True)]),
    *_rows({"ne": "gold", "ignore_case": True}, [("GOLD", False), ("silver", True)]),
    *_rows({"ne": "gold", "ignore_case": True}, [(MISSING, False)]),
    *_rows({"in": ["angry", "upset"], "ignore_case": True}, [("ANGRY", True), ("Upset", True)]),
    *_rows({"in": ["angry", "upset"], "ignore_case": True}, [("calm", False)]),
    *_rows({"in": ["STRASSE"], "ignore_case": True}, [("Straße", True)]),
    *_rows({"not_in": ["a"], "ignore_case": True}, [("A", False), ("b", True)]),
    *_rows({"not_in": ["a"], "ignore_case": True}, [(MISSING, False)]),
    *_rows({"contains": "STRASSE", "ignore_case": True}, [("Hauptstraße 5", True)]),
    *_rows({"contains": "Bill", "ignore_case": True}, [(["BILL"], True), (["x"], False)]),
    *_rows({"starts_with": "MR", "ignore_case": True}, [("mr smith", True), ("ms", False)]),
    *_rows({"ends_with": "SMITH", "ignore_case": True}, [("Mr Smith", True), ("Smithy", False)]),
    *_rows({"ends_with": "STRASSE", "ignore_case": True}, [("Hauptstraße", True)]),
    *_rows({"matches": "^gold$", "ignore_case": True}, [("GOLD", True), ("GOLDEN", False)]),
    *_rows({"matches": "^école$", "ignore_case": True}, [("ÉCOLE", True)]),
    *_rows({"matches": "^gold$"}, [("GOLD", False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), CASE_ROWS)
def test_ignore_case_uses_unicode_case_folding(matcher, actual, want):
    assert fires(matcher, actual) is want


# --- several operators, missing paths, nested paths ----------------------------------------------

SEVERAL_ROWS = [
    *_rows({"gte": 10, "lt": 20}, [(10, True), ("19", True), (20, False), (9, False)]),
    *_rows({"starts_with": "+44", "ends_with": "7"}, [("+447", True), ("+448", False)]),
    *_rows({"exists": True, "ne": "x"}, [("y", True), ("x", False), (MISSING, False)]),
    *_rows({"empty": False, "matches": "^[a-z]+$"}, [("abc", True), ("ABC", False)]),
]


@pytest.mark.parametrize(("matcher", "actual", "want"), SEVERAL_ROWS)
def test_several_operators_in_one_mapping_must_all_hold(matcher, actual, want):
    assert fires(matcher, actual) is want


EVERY_MATCHER = [
    "gold",
    3,
    True,
    ["a", "b"],
    {"eq": "gold"},
    {"eq": 0},
    {"eq": False},
    {"ne": "gold"},
    {"ne": 3},
    {"in": ["a", 1]},
    {"not_in": ["a"]},
    {"gt": 0},
    {"gte": 0},
    {"lt": 0},
    {"lte": 0},
    {"between": [-1, 1]},
    {"contains": "a"},
    {"starts_with": ""},
    {"ends_with": ""},
    {"matches": ""},
    {"matches": ".*"},
    {"exists": True},
    {"exists": False},
    {"empty": True},
    {"empty": False},
    {"eq": "", "ignore_case": True},
]


@pytest.mark.parametrize("matcher", EVERY_MATCHER, ids=str)
def test_a_missing_path_matches_only_exists_false_and_empty_true(matcher):
    want = matcher in ({"exists": False}, {"empty": True})
    assert fires(matcher, MISSING) is want
    # nothing at all in the namespace, and a namespace not given at all, are the same
    decision = decide_both(_ruleset("state.x", __import__("json").dumps(matcher)), {})
    assert (decision.rule == "r") is want


def test_nested_paths_read_into_mappings():
    ruleset = one_rule({"state.a.b": "x", "state.a.c.d": {"gte": 2}})
    assert decide_both(ruleset, {"state": {"a": {"b": "x", "c": {"d": "2"}}}}).rule == "r"
    assert decide_both(ruleset, {"state": {"a": {"b": "x", "c": {"d": 1}}}}).rule is None
    assert decide_both(ruleset, {"state": {"a": {"b": "x"}}}).rule is None


@pytest.mark.parametrize("parent", ["text", 5, ["b"], None])
def test_a_path_through_a_non_mapping_is_missing(parent):
    facts = {"state": {"a": parent}}
    for matcher, want in [
        ({"exists": False}, True),
        ({"empty": True}, True),
        ({"exists": True}, False),
        ({"ne": "x"}, False),
        ({"not_in": ["x"]}, False),
    ]:
        decision = decide_both(one_rule({"state.a.b": matcher}), facts)
        assert (decision.rule == "r") is want, matcher


@pytest.mark.parametrize("namespace", ["handoff", "state", "conversation", "context"])
def test_every_namespace_can_be_read(namespace):
    ruleset = one_rule({f"{namespace}.k": "v"})
    assert decide_both(ruleset, {namespace: {"k": "v"}}).rule == "r"
    assert decide_both(ruleset, {namespace: {"k": "w"}}).rule is None


def test_handoff_id_and_shared_id_are_ordinary_handoff_keys():
    ruleset = one_rule({"handoff.shared_id": {"starts_with": "CA"}})
    assert decide_both(ruleset, {"handoff": {"id": "x", "shared_id": "CA5f1e"}}).rule == "r"


def test_conversation_camel_case_keys_are_readable_as_snake_case():
    ruleset = one_rule({"conversation.from_number": {"starts_with": "+44"}})
    facts = {"conversation": {"fromNumber": "+442071234567"}}
    assert decide_both(ruleset, facts).rule == "r"
    camel = one_rule({"conversation.fromNumber": {"starts_with": "+44"}})
    assert decide_both(camel, facts).rule == "r"
    reason = one_rule({"conversation.handoff_reason": "refund"})
    assert decide_both(reason, {"conversation": {"handoffReason": "refund"}}).rule == "r"


def test_an_operator_list_keeps_all_rules_in_file_order():
    ruleset = compile_doc(
        {
            "rules": [
                {"id": "first", "when": {"state.x": {"gte": 5}}, "route": {"queue": "q1"}},
                {"id": "second", "when": {"state.x": 7}, "route": {"queue": "q2"}},
            ],
            "default": {"queue": "d"},
        }
    )
    assert decide_both(ruleset, {"state": {"x": "7"}}).rule == "first"
    assert decide_both(ruleset, {"state": {"x": "4"}}).rule is None


def test_matches_uses_re2s_own_match_call_with_this_google_re2():
    # The yes/no RE2 call skips building a Python Match (3-6x faster); if an upgrade of
    # google-re2 changes what it is, this says so rather than silently slowing down.
    from router.engine import compile as conditions

    assert conditions._RAW_MATCHES is True


@given(
    pattern=st.sampled_from(
        ["^g", "old$", "(?i)gold", "^[0-9.]+$", "a|b", "", "ß", "^$", r"\p{Greek}", "(a)(b)?c"]
    ),
    text=st.text(max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_the_fast_regex_check_answers_as_re2_search_does(pattern, text):
    from router.engine.compile import _matches, compile_pattern

    compiled = compile_pattern(pattern, False)
    try:
        expected = compiled.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate: search cannot take it, the check can
        expected = compiled.search(text.encode("utf-8", "surrogatepass")) is not None
    assert _matches(compiled)(text) is expected


def test_a_lone_surrogate_in_a_fact_does_not_break_matches():
    ruleset = one_rule({"state.x": {"matches": "^a"}})
    assert decide_both(ruleset, {"state": {"x": "a\ud800"}}).queue == "hit"
    assert decide_both(ruleset, {"state": {"x": "\ud800"}}).queue == "miss"
