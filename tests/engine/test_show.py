"""The rule file's `show:` key: the fact paths an agent card shows (contract §9)."""

from __future__ import annotations

import pytest

from router.engine import FileLoad, RuleSet, load_bytes, rule_file_schema

BASE = "ruleset: r\ndefault: {queue: q}\n"


def load(text: str) -> FileLoad:
    return load_bytes(text.encode(), "r.yaml", default_name="r")


def ruleset(text: str) -> RuleSet:
    loaded = load(text)
    assert loaded.ruleset is not None, loaded.problems
    return loaded.ruleset


def test_show_paths_are_kept_in_file_order_without_repeats() -> None:
    loaded = ruleset(BASE + "show: [state.tier, handoff.reason, state.tier, context.sip.x-id]\n")
    assert loaded.show == ("state.tier", "handoff.reason", "context.sip.x-id")


def test_a_file_without_show_shows_nothing() -> None:
    assert ruleset(BASE).show == ()


@pytest.mark.parametrize(
    ("show", "col"),
    [
        ("[tier]", 8),
        ("[secrets.key]", 8),
        ('["state."]', 8),
        ("[state.a b]", 8),
        ("[1]", 8),
        ("state.tier", 7),
    ],
)
def test_check_reports_a_bad_path_where_it_is(show: str, col: int) -> None:
    loaded = load(BASE + f"show: {show}\n")
    assert loaded.ruleset is None
    [problem] = loaded.problems
    assert (problem.line, problem.col) == (3, col)
    assert "show" in problem.message


def test_schema_describes_show_as_a_list_of_fact_paths() -> None:
    show = rule_file_schema()["properties"]["show"]
    assert show["type"] == "array"
    assert show["items"]["pattern"].startswith("^(handoff|state|conversation|context)")
