"""Label and attribute templates (contract §3): substitution, defaults, sanitising, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.engine.load import load_bytes

from ._rules import compile_doc, decide_both


def rendered(template: str, facts: dict, *, where: str = "label") -> str:
    route: dict = {"queue": "q"}
    if where == "label":
        route["label"] = template
    else:
        route["attributes"] = {"a": template}
    ruleset = compile_doc({"rules": [{"id": "r", "route": route}], "default": {"queue": "d"}})
    decision = decide_both(ruleset, facts)
    return decision.label if where == "label" else decision.attributes["a"]


BOTH = pytest.mark.parametrize("where", ["label", "attributes"])


@BOTH
def test_a_path_is_substituted(where):
    assert rendered("Tier {state.tier}", {"state": {"tier": "gold"}}, where=where) == "Tier gold"
    assert (
        rendered(
            "{state.a.b}/{handoff.r}",
            {"state": {"a": {"b": 1}}, "handoff": {"r": "x"}},
            where=where,
        )
        == "1/x"
    )


@BOTH
@pytest.mark.parametrize(
    "facts",
    [{"state": {}}, {"state": {"tier": None}}, {"state": {"tier": ""}}, {"state": None}, {}],
    ids=["missing", "null", "blank", "failed", "absent"],
)
def test_missing_null_blank_or_failed_is_empty_or_the_default_text(where, facts):
    assert rendered("Tier:{state.tier}.", facts, where=where) == "Tier:."
    assert rendered("{state.tier|unknown tier}", facts, where=where) == "unknown tier"
    assert rendered("{state.tier|}", facts, where=where) == ""


@BOTH
def test_the_default_text_is_not_used_when_a_value_is_there(where):
    facts = {"state": {"tier": "gold", "zero": 0, "no": False}}
    assert rendered("{state.tier|unknown}", facts, where=where) == "gold"
    assert rendered("{state.zero|none}", facts, where=where) == "0"
    assert rendered("{state.no|none}", facts, where=where) == "false"


@BOTH
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (2.5, "2.5"),
        (-1, "-1"),
        (0, "0"),
        (True, "true"),
        (False, "false"),
        (10**12, "1000000000000"),
    ],
)
def test_numbers_and_booleans_render_as_json_scalars(where, value, text):
    assert rendered("{state.v}", {"state": {"v": value}}, where=where) == text


@BOTH
@pytest.mark.parametrize("value", [[], ["a", "b"], {}, {"k": "v"}, [[1]]], ids=str)
def test_lists_and_maps_render_as_empty(where, value):
    assert rendered("<{state.v}>", {"state": {"v": value}}, where=where) == "<>"


@BOTH
def test_double_braces_are_literal_braces(where):
    facts = {"state": {"tier": "gold"}}
    assert rendered("{{state.tier}}", facts, where=where) == "{state.tier}"
    assert rendered("{{{state.tier}}}", facts, where=where) == "{gold}"
    assert rendered("a {{ b }} c", facts, where=where) == "a { b } c"


@BOTH
def test_substituted_values_are_not_templates_themselves(where):
    facts = {"state": {"tier": "{state.secret}", "secret": "s3cr3t"}}
    assert rendered("{state.tier}", facts, where=where) == "{state.secret}"


@BOTH
@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("gold\nplus", "gold plus"),
        ("a\t\tb   c", "a b c"),
        ("line1\r\nline2", "line1 line2"),
        ("x\x07y", "xy"),
        ("nul\x00byte", "nulbyte"),
        ("\x1b[31mred", "[31mred"),
        ("del\x7f", "del"),
        ("Straße · Gold", "Straße · Gold"),
    ],
)
def test_substituted_values_are_sanitised(where, value, text):
    assert rendered("{state.v}", {"state": {"v": value}}, where=where) == text


def test_label_is_cut_to_120_characters():
    label = rendered("Caller: {state.v}", {"state": {"v": "x" * 500}})
    assert label == "Caller: " + "x" * 112
    assert len(rendered("{state.v}", {"state": {"v": "é" * 500}})) == 120


def test_attribute_is_cut_to_256_characters():
    value = rendered("id={state.v}", {"state": {"v": "y" * 1000}}, where="attributes")
    assert value == "id=" + "y" * 253


def test_the_cut_applies_to_the_whole_result_including_literal_text():
    literal = "L" * 130
    assert rendered(literal, {}) == "L" * 120
    assert rendered("A" * 300, {}, where="attributes") == "A" * 256
    # short enough: nothing is cut
    assert rendered("L" * 120, {}) == "L" * 120


def test_whitespace_is_collapsed_before_the_cut():
    value = "a" + " " * 300 + "b"
    assert rendered("{state.v}", {"state": {"v": value}}) == "a b"


def test_conversation_camel_case_is_readable_in_templates():
    facts = {"conversation": {"fromNumber": "+44 20"}}
    assert rendered("{conversation.from_number}", facts) == "+44 20"


def test_templates_in_the_default_and_fallback_routes_render():
    ruleset = compile_doc(
        {
            "rules": [],
            "default": {"queue": "d", "label": "D {context.dnis|?}"},
            "fallback": {"queue": "f", "label": "F {state.tier|no state}"},
        }
    )
    assert decide_both(ruleset, {"context": {"dnis": "+44"}}).label == "D +44"
    assert decide_both(ruleset, {"state": None}).label == "F no state"


def test_a_split_share_label_is_a_template():
    ruleset = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "route": {"split": [{"weight": 100, "queue": "q", "label": "S {state.t}"}]},
                }
            ],
            "default": {"queue": "d"},
        }
    )
    assert decide_both(ruleset, {"state": {"t": "x"}}, conversation_id="c").label == "S x"


# --- nothing but paths is evaluated --------------------------------------------------------------


LABEL_LINE = 5


def _load_label(template: str):
    quoted = template.replace("'", "''")
    text = (
        "rules:\n  - id: r\n    route:\n      queue: q\n"
        f"      label: '{quoted}'\n"  # line 5
        "default: {queue: d}\n"
    )
    return load_bytes(text.encode(), "t.yaml", default_name="t")


@pytest.mark.parametrize(
    "template",
    [
        "{0}",
        "{}",
        "{x.__class__}",
        "{state.a:>10}",
        "{state.tier!r}",
        "{state.tier[0]}",
        "{state.tier.upper()}",
        "{state}",
        "{state.tier:{state.a}}",
    ],
)
def test_format_syntax_is_not_evaluated(template):
    """Either a check error on the label's line, or rendered without any formatting.

    Currently every one of these is a check error (the first branch).
    """
    loaded = _load_label(template)
    if loaded.ruleset is None:
        errors = [p for p in loaded.problems if p.severity == "error"]
        assert [p.line for p in errors] == [LABEL_LINE]
        return
    label = decide_both(loaded.ruleset, {"state": {"tier": "gold", "a": "x"}}).label
    assert label in ("", template)


@pytest.mark.parametrize(
    "template", ["{state.__class__}", "{state.tier.__class__}", "{state.__dict__}"]
)
def test_dunder_keys_are_plain_lookups(template):
    loaded = _load_label(template)
    if loaded.ruleset is None:  # refusing them is fine too
        return
    label = decide_both(loaded.ruleset, {"state": {"tier": "gold"}}).label
    assert label == ""
    assert decide_both(loaded.ruleset, {"state": {"__class__": "k", "__dict__": "k"}}).label in (
        "k",
        "",
    )


@pytest.mark.parametrize("template", ["{session.x}", "{x.y}", "Hi {stat.tier}"])
def test_unknown_namespace_is_a_check_error(template):
    loaded = _load_label(template)
    assert loaded.ruleset is None
    assert any("namespace" in p.message for p in loaded.problems)


@pytest.mark.parametrize("template", ["{state.tier", "state.tier}", "{state.{x}}", "a } b"])
def test_unbalanced_braces_are_a_check_error(template):
    assert _load_label(template).ruleset is None


@given(st.text(max_size=20) | st.text(alphabet=" \t\n\x0b\x1c\x7fab\u200b\x85\xa0", max_size=8))
@settings(max_examples=500, deadline=None)
def test_sanitise_skips_no_character_its_patterns_would_change(text):
    from router.engine.values import _CONTROL, _SPACE, sanitise

    assert sanitise(text) == _SPACE.sub(" ", _CONTROL.sub("", text))
