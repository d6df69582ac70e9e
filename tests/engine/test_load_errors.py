"""What ``router check`` rejects (contract §3), each at the right ``file:line:col``.

Positions are found in the file text itself (``pos``), so every assertion
names the exact line and column of the offending key or value.
"""

from __future__ import annotations

import pytest

from router import RulesError, load_rules
from router.engine.load import load_file

from ._rules import errors_of, problems_of, where, write

HEAD = "default: {queue: general}\nrules:\n"


def pos(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the ``nth`` occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def only_error(tmp_path, text: str | bytes):
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1, [str(p) for p in errors]
    return errors[0]


def assert_error_at(tmp_path, text: str, needle: str, *words: str, nth: int = 1) -> None:
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) == pos(text, needle, nth), str(problem)
    for word in words:
        assert word in problem.message, str(problem)


# --- YAML syntax ---------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_bad_character(tmp_path):
    text = HEAD + "  - id: a\n    when: {state.x: [1, 2}\n    route: {queue: q}\n"
    assert_error_at(tmp_path, text, "}\n", "YAML", nth=2)


def test_tab_indentation_is_a_syntax_error_on_its_line(tmp_path):
    text = HEAD + "  - id: a\n\twhen: {}\n"
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) == (4, 1)


def test_misindented_list_item_is_a_syntax_error_on_its_line(tmp_path):
    text = HEAD + "  - id: a\n    route: {queue: q}\n   - id: b\n"
    problem = only_error(tmp_path, text)
    assert problem.line == 5


def test_unclosed_quote_is_a_syntax_error(tmp_path):
    text = HEAD + '  - id: a\n    route: {queue: "q}\n'
    problem = only_error(tmp_path, text)
    assert problem.line >= 4
    assert "YAML" in problem.message


# --- unknown keys and operators, with "did you mean" ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle", "suggestion"),
    [
        ("rule: []\ndefault: {queue: general}\n", "rule:", "rules"),
        ("rules: []\ndefault: {queue: general}\nfalback: {queue: x}\n", "falback", "fallback"),
        ("rules: []\ndefault: {queue: general}\ntimezon: UTC\n", "timezon", "timezone"),
        (HEAD + "  - id: a\n    wen: {state.x: 1}\n    route: {queue: q}\n", "wen", "when"),
        (HEAD + "  - id: a\n    route: {queue: q, lable: x}\n", "lable", "label"),
        (HEAD + "  - id: a\n    route: {qeue: q}\n", "qeue", "queue"),
        ("rules: []\ndefault: {queue: g, prority: 1}\n", "prority", "priority"),
        (
            HEAD + "  - id: a\n    route:\n      split:\n        - {weigth: 100, queue: q}\n",
            "weigth",
            "weight",
        ),
        ("rules: []\ndefault: {queue: g}\nschedules:\n  o:\n    weeky: {}\n", "weeky", "weekly"),
        ("rules: []\ndefault: {queue: g}\nschedules:\n  o:\n    close: []\n", "close:", "closed"),
        (
            "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    expct: {queue: g}\n",
            "expct",
            "expect",
        ),
        (
            "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    inptu: {}\n"
            "    expect: {queue: g}\n",
            "inptu",
            "input",
        ),
        (
            "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    input: {sate: {}}\n"
            "    expect: {queue: g}\n",
            "sate",
            "state",
        ),
        (
            "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    expect: {queu: g}\n",
            "queu:",
            "queue",
        ),
    ],
)
def test_unknown_key_points_at_the_key_and_suggests(tmp_path, text, needle, suggestion):
    unknown = [p for p in errors_of(tmp_path, text) if "unknown" in p.message]
    assert len(unknown) == 1, [str(p) for p in unknown]
    assert (unknown[0].line, unknown[0].col) == pos(text, needle)
    assert f"did you mean '{suggestion}'" in unknown[0].message


@pytest.mark.parametrize(
    ("matcher", "needle", "suggestion"),
    [
        ("{gtee: 5}", "gtee", "gte"),
        ("{starts: '+44'}", "starts", "starts_with"),
        ("{eq: a, ignorecase: true}", "ignorecase", "ignore_case"),
        ("{not_int: [a]}", "not_int", "not_in"),
        ("{exist: true}", "exist", "exists"),
    ],
)
def test_unknown_operator_points_at_it_and_suggests(tmp_path, matcher, needle, suggestion):
    text = HEAD + f"  - id: a\n    when:\n      state.x: {matcher}\n    route: {{queue: q}}\n"
    assert_error_at(tmp_path, text, needle, "unknown operator", f"did you mean '{suggestion}'")


def test_bad_operator_three_levels_deep_points_at_that_operator(tmp_path):
    text = HEAD + (
        "  - id: a\n"
        "    when:\n"
        "      any:\n"
        "        - all:\n"
        "            - not: {state.x: {containz: a}}\n"
        "            - state.y: 1\n"
        "        - handoff.r: x\n"
        "    route: {queue: q}\n"
    )
    assert_error_at(tmp_path, text, "containz", "did you mean 'contains'")


def test_bad_operator_deep_in_block_style_points_at_that_operator(tmp_path):
    text = HEAD + (
        "  - id: a\n"
        "    when:\n"
        "      all:\n"
        "        - any:\n"
        "            - not:\n"
        "                state.x:\n"
        "                  eq: 1\n"
        "                  lesser: 3\n"
        "    route: {queue: q}\n"
    )
    assert_error_at(tmp_path, text, "lesser", "unknown operator")


@pytest.mark.parametrize(
    ("key", "suggestion"), [("sate.tier", "state"), ("handof.reason", "handoff")]
)
def test_unknown_namespace_in_a_condition_points_at_the_key(tmp_path, key, suggestion):
    text = HEAD + f"  - id: a\n    when: {{{key}: gold}}\n    route: {{queue: q}}\n"
    assert_error_at(tmp_path, text, key, f"did you mean '{suggestion}'")


def test_unknown_combinator_suggests_the_right_one(tmp_path):
    text = HEAD + "  - id: a\n    when:\n      anyy:\n        - state.x: 1\n    route: {queue: q}\n"
    assert_error_at(tmp_path, text, "anyy", "did you mean 'any'")


# --- wrong value types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "needle"),
    [
        ("{queue: q, priority: high}", "high"),
        ("{queue: q, priority: 1.5}", "1.5"),
        ("{queue: q, skills: billing}", "billing"),
        ("{queue: q, skills: [1, billing]}", "1,"),
        ("{queue: q, attributes: {x_tier: 5}}", "5}"),
        ("{queue: q, attributes: [a]}", "[a]"),
        ("{queue: q, label: [a]}", "[a]"),
        ("{queue: [q]}", "[q]"),
        ("{queue: 5}", "5}"),
    ],
)
def test_wrong_route_value_type_points_at_the_value(tmp_path, route, needle):
    text = HEAD + f"  - id: a\n    route: {route}\n"
    assert_error_at(tmp_path, text, needle)


@pytest.mark.parametrize(
    ("matcher", "needle"),
    [
        ('{gte: "abc"}', '"abc"'),
        ("{gte: [1]}", "[1]"),
        ("{between: [1]}", "[1]"),
        ("{between: [a, b]}", "[a, b]"),
        ("{exists: yes}", "yes"),
        ("{empty: 1}", "1}"),
        ("{in: gold}", "gold"),
        ("{not_in: [[a]]}", "[[a]]"),
        ("{eq: [a, b]}", "[a, b]"),
        ("{ne: {a: 1}}", "{a: 1}"),
        ("{matches: 5}", "5}"),
        ("{contains: [a]}", "[a]"),
        ("{eq: a, ignore_case: yes}", "yes"),
    ],
)
def test_wrong_operator_value_points_at_the_value(tmp_path, matcher, needle):
    text = HEAD + f"  - id: a\n    when:\n      state.x: {matcher}\n    route: {{queue: q}}\n"
    problem = only_error(tmp_path, text)
    line, col = pos(text, needle)
    assert problem.line == line, str(problem)
    # the value itself (or, acceptable too, its operator key on the same line)
    key_col = text.splitlines()[line - 1].index(matcher[1:].split(":")[0]) + 1
    assert problem.col in (col, key_col), str(problem)


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("  - id: [a]\n    route: {queue: q}\n", "[a]"),
        ("  - id: a\n    when: [state.x]\n    route: {queue: q}\n", "[state.x]"),
        ("  - id: a\n    when: gold\n    route: {queue: q}\n", "gold"),
        ("  - id: a\n    when: {any: {state.x: 1}}\n    route: {queue: q}\n", "{state.x: 1}"),
        ("  - id: a\n    when: {not: [a]}\n    route: {queue: q}\n", "[a]"),
        ("  - id: a\n    when: {during: [a]}\n    route: {queue: q}\n", "[a]"),
        ("  - id: a\n    route: queue-name\n", "queue-name"),
        ("  - id: a\n    description: [x]\n    route: {queue: q}\n", "[x]"),
    ],
)
def test_wrong_rule_value_points_at_the_value(tmp_path, rule, needle):
    text = HEAD + rule
    problems = errors_of(tmp_path, text)
    assert problems, "expected an error"
    assert pos(text, needle) in where(problems), [str(p) for p in problems]


def test_route_without_queue_or_split_is_an_error_at_the_route(tmp_path):
    text = HEAD + "  - id: a\n    route: {label: x}\n"
    assert_error_at(tmp_path, text, "{label", "queue")


def test_missing_route_is_an_error_at_the_rule(tmp_path):
    text = HEAD + "  - id: a\n    when: {state.x: 1}\n"
    problem = only_error(tmp_path, text)
    assert problem.line in (3, 4)
    assert "route" in problem.message


def test_rules_that_is_not_a_list_is_an_error(tmp_path):
    text = "default: {queue: g}\nrules: {id: a}\n"
    assert_error_at(tmp_path, text, "{id: a}")


def test_missing_default_is_an_error(tmp_path):
    problem = only_error(tmp_path, "rules: []\n")
    assert "default" in problem.message
    assert (problem.line, problem.col) == (1, 1)


# --- references, patterns, zones, hours ----------------------------------------------------------


def test_duplicate_rule_id_points_at_the_second_id(tmp_path):
    text = HEAD + (
        "  - id: same\n    when: {state.x: 1}\n    route: {queue: q}\n"
        "  - id: same\n    when: {state.x: 2}\n    route: {queue: r}\n"
    )
    assert_error_at(tmp_path, text, "same", "duplicate", nth=2)


def test_unknown_schedule_points_at_its_name_and_suggests(tmp_path):
    text = (
        "default: {queue: g}\n"
        "schedules:\n  office: {weekly: {mon: ['08:00-18:00']}}\n"
        "rules:\n  - id: a\n    when: {during: ofice}\n    route: {queue: q}\n"
        "  - id: b\n    when: {outside: nowhere}\n    route: {queue: q}\n"
    )
    errors = errors_of(tmp_path, text)
    assert where(errors) == [pos(text, "ofice"), pos(text, "nowhere")]
    assert "did you mean 'office'" in errors[0].message


@pytest.mark.parametrize("pattern", ["(?=x)", "(a", "(a)\\\\1", "x{2,1}", "[z-a]"])
def test_invalid_re2_pattern_points_at_the_pattern(tmp_path, pattern):
    text = HEAD + f'  - id: a\n    when:\n      state.x: {{matches: "{pattern}"}}\n'
    text += "    route: {queue: q}\n"
    assert_error_at(tmp_path, text, f'"{pattern}"', "RE2")


def test_invalid_ruleset_time_zone_points_at_it_and_suggests(tmp_path):
    text = "timezone: Europe/Londn\nrules: []\ndefault: {queue: g}\n"
    assert_error_at(tmp_path, text, "Europe/Londn", "did you mean 'Europe/London'")


def test_invalid_schedule_time_zone_points_at_it(tmp_path):
    text = "rules: []\ndefault: {queue: g}\nschedules:\n  o:\n    timezone: Mars/Base\n"
    assert_error_at(tmp_path, text, "Mars/Base", "time zone")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/localtime", "", "UTC\\x"])
def test_time_zone_names_are_not_file_paths(tmp_path, name):
    text = f"timezone: '{name}'\nrules: []\ndefault: {{queue: g}}\n"
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) == (1, 11)


@pytest.mark.parametrize("hours", ["08:00-25:00", "8-18", "08:00", "24:00-02:00", "08:60-09:00"])
def test_invalid_hours_point_at_the_range(tmp_path, hours):
    text = (
        "rules: []\ndefault: {queue: g}\nschedules:\n  o:\n    weekly:\n"
        f"      mon: ['07:00-08:00', '{hours}']\n"
    )
    assert_error_at(tmp_path, text, f"'{hours}'", hours)


@pytest.mark.parametrize(("day", "needle"), [("mun", "mun"), ("mon-fry", "mon-fry"), ("x", "x:")])
def test_unknown_day_points_at_the_key(tmp_path, day, needle):
    text = (
        "rules: []\ndefault: {queue: g}\nschedules:\n  o:\n    weekly:\n"
        f"      {day}: ['08:00-18:00']\n"
    )
    assert_error_at(tmp_path, text, needle, "day")


def test_invalid_closed_and_open_dates_point_at_them(tmp_path):
    text = (
        "rules: []\ndefault: {queue: g}\nschedules:\n  o:\n"
        "    closed: ['2026-12-25', '2026-13-01', 'christmas']\n"
        "    open: {'2026-02-30': ['09:00-12:00']}\n"
    )
    errors = errors_of(tmp_path, text)
    assert where(errors) == [
        pos(text, "'2026-13-01'"),
        pos(text, "'christmas'"),
        pos(text, "'2026-02-30'"),
    ]


def test_hours_ending_at_2400_are_fine(tmp_path):
    text = "rules: []\ndefault: {queue: g}\nschedules:\n  o: {weekly: {mon: ['18:00-24:00']}}\n"
    assert errors_of(tmp_path, text) == []


def test_split_weights_not_summing_to_100_is_an_error_at_the_split(tmp_path):
    text = HEAD + (
        "  - id: a\n    route:\n      split:\n"
        "        - {weight: 50, queue: a}\n        - {weight: 40, queue: b}\n"
    )
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) in (pos(text, "split"), pos(text, "- {weight: 50"))
    assert "100" in problem.message


@pytest.mark.parametrize("weights", [[60, 50], [100, 1], [0, 0], [99]])
def test_split_weights_must_sum_to_exactly_100(tmp_path, weights):
    shares = "".join(f"        - {{weight: {w}, queue: q{i}}}\n" for i, w in enumerate(weights))
    text = HEAD + "  - id: a\n    route:\n      split:\n" + shares
    assert errors_of(tmp_path, text)


def test_split_share_without_any_queue_is_an_error(tmp_path):
    text = HEAD + (
        "  - id: a\n    route:\n      split:\n"
        "        - {weight: 50, queue: a}\n        - {weight: 50, label: b}\n"
    )
    assert_error_at(tmp_path, text, "{weight: 50, label")


@pytest.mark.parametrize(
    ("where_", "template", "bad"),
    [
        ("label", "'Hi {sesion.x}'", "{sesion.x}"),
        ("label", "'{state.tier} and {session.tier}'", "{session.tier}"),
        ("attributes", "{x: '{caller.id}'}", "{caller.id}"),
    ],
)
def test_template_over_unknown_namespace_is_an_error(tmp_path, where_, template, bad):
    text = HEAD + f"  - id: a\n    route:\n      queue: q\n      {where_}: {template}\n"
    problem = only_error(tmp_path, text)
    value_start = pos(text, template if where_ == "label" else template[4:])
    assert problem.line == value_start[0]
    assert problem.col in (value_start[1], pos(text, bad)[1]), str(problem)
    assert "namespace" in problem.message


def test_template_errors_in_default_and_fallback_are_reported(tmp_path):
    text = "rules: []\ndefault: {queue: g, label: '{nope.x}'}\nfallback: {queue: f, label: '{'}\n"
    errors = errors_of(tmp_path, text)
    assert [p.line for p in errors] == [2, 3]


def test_test_naming_an_unknown_rule_points_at_it_and_suggests(tmp_path):
    text = HEAD + (
        "  - id: vip-billing\n    when: {state.x: 1}\n    route: {queue: q}\n"
        "tests:\n  - name: t\n    input: {state: {x: 1}}\n    expect: {rule: vip-biling}\n"
    )
    assert_error_at(tmp_path, text, "vip-biling}", "did you mean 'vip-billing'")


def test_test_with_a_bad_at_points_at_it(tmp_path):
    text = "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    at: tomorrow\n"
    text += "    expect: {queue: g}\n"
    assert_error_at(tmp_path, text, "tomorrow")


def test_test_with_a_bad_outcome_points_at_it(tmp_path):
    text = "rules: []\ndefault: {queue: g}\ntests:\n  - name: t\n    expect: {outcome: won}\n"
    assert_error_at(tmp_path, text, "won")


# --- files that are not UTF-8 or not a mapping ---------------------------------------------------


def test_non_utf8_file_points_at_the_first_bad_byte(tmp_path):
    problem = only_error(tmp_path, b"rules: []\ndefault: {queue: \xff}\n")
    assert (problem.line, problem.col) == (2, 18)
    assert "UTF-8" in problem.message


def test_latin1_file_is_not_utf8(tmp_path):
    raw = "rules: []\ndefault: {queue: g, label: 'Caf\u00e9'}\n".encode("latin-1")
    problem = only_error(tmp_path, raw)
    assert problem.line == 2
    assert "UTF-8" in problem.message


def test_utf8_bom_is_accepted(tmp_path):
    assert errors_of(tmp_path, b"\xef\xbb\xbfrules: []\ndefault: {queue: g}\n") == []


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just text\n", "42\n", "null\n", "[rules, default]\n"]
)
def test_file_that_is_not_a_mapping_is_an_error(tmp_path, text):
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) == (1, 1)
    assert "mapping" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_an_error(tmp_path, text):
    problem = only_error(tmp_path, text)
    assert (problem.line, problem.col) == (1, 1)


def test_empty_document_is_an_error(tmp_path):
    assert only_error(tmp_path, "---\n...\n")


# --- every problem in one run --------------------------------------------------------------------

MANY = """\
rule: []
default: {queue: general}
timezone: Europe/Londn
rules:
  - id: a
    wen: {state.x: 1}
    route: {queue: q}
  - id: b
    when:
      state.y: {matches: "(a"}
      during: ofice
    route: {queue: q, priority: high}
  - id: b
    when: {sate.tier: gold}
    route:
      label: "Hi {sesion.x}"
      split:
        - {weight: 50, queue: a}
        - {weight: 40, queue: b}
tests:
  - name: t
    expect: {rule: zz}
"""


def test_every_problem_of_a_file_is_reported_in_one_run(tmp_path):
    errors = errors_of(tmp_path, MANY)
    got = where(errors)
    expected = [
        pos(MANY, "rule:"),
        pos(MANY, "Europe/Londn"),
        pos(MANY, "wen"),
        pos(MANY, '"(a"'),
        pos(MANY, "ofice"),
        pos(MANY, "high"),
        pos(MANY, "b\n", nth=2),
        pos(MANY, "sate.tier"),
        pos(MANY, "zz"),
    ]
    for spot in expected:
        assert spot in got, (spot, [str(p) for p in errors])
    # the template and the split of rule b (second) are reported on their lines too
    assert pos(MANY, '"Hi')[0] in [p.line for p in errors]
    assert {pos(MANY, "split")[0], pos(MANY, "split")[0] + 1} & {p.line for p in errors}
    # in file order
    assert got == sorted(got)


def test_load_rules_raises_with_every_problem(tmp_path):
    path = write(tmp_path, MANY)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert [(p.line, p.col) for p in caught.value.problems] == where(errors_of(tmp_path, MANY))
    assert all(p.file == str(path) for p in caught.value.problems)


def test_problem_prints_as_file_line_col_message(tmp_path):
    path = write(tmp_path, "rule: []\ndefault: {queue: g}\n")
    (problem,) = load_file(path).problems
    text = str(problem)
    assert text.startswith(f"{path}:1:1: ")
    assert text.endswith(problem.message)
    assert problem.severity == "error"


# --- unreachable rules: warnings, not errors -----------------------------------------------------


@pytest.mark.parametrize("catch_all", ["", "    when: {}\n", "    when: null\n", "    when:\n"])
def test_rule_after_a_rule_without_conditions_is_warned_about(tmp_path, catch_all):
    text = HEAD + (
        "  - id: everyone\n" + catch_all + "    route: {queue: q}\n"
        "  - id: later\n    when: {state.x: 1}\n    route: {queue: r}\n"
        "  - id: even-later\n    when: {state.x: 2}\n    route: {queue: r}\n"
    )
    problems = problems_of(tmp_path, text)
    assert [p.severity for p in problems] == ["warning", "warning"]
    assert where(problems)[0][0] == pos(text, "later")[0]
    assert where(problems)[1][0] == pos(text, "even-later")[0]
    assert "later" in problems[0].message
    ruleset = load_rules(write(tmp_path, text))["rules"]
    assert [w.message for w in ruleset.warnings] == [p.message for p in problems]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{state.x: 1}", "{state.x: 1}"),
        ("{state.x: 1, state.y: {gte: 2}}", "{state.y: {gte: 2}, state.x: 1}"),
        ("{during: office}", "{during: office}"),
        ("{any: [{state.x: 1}, {state.y: 2}]}", "{any: [{state.x: 1}, {state.y: 2}]}"),
        ("{state.x: {gte: 1, lt: 5}}", "{state.x: {lt: 5, gte: 1}}"),
    ],
)
def test_rule_with_the_same_when_as_an_earlier_rule_is_warned_about(tmp_path, first, second):
    text = (
        "default: {queue: g}\nschedules:\n  office: {weekly: {mon: ['08:00-18:00']}}\nrules:\n"
        f"  - id: one\n    when: {first}\n    route: {{queue: q}}\n"
        "  - id: between\n    when: {state.z: 9}\n    route: {queue: q}\n"
        f"  - id: two\n    when: {second}\n    route: {{queue: r}}\n"
    )
    problems = problems_of(tmp_path, text)
    assert [p.severity for p in problems] == ["warning"], [str(p) for p in problems]
    assert problems[0].line == pos(text, "two")[0]
    assert "one" in problems[0].message
    assert load_file(write(tmp_path, text)).ruleset is not None


def test_different_whens_are_not_warned_about(tmp_path):
    text = HEAD + (
        "  - id: one\n    when: {state.x: 1}\n    route: {queue: q}\n"
        "  - id: two\n    when: {state.x: 2}\n    route: {queue: r}\n"
        "  - id: three\n    when: {state.x: {eq: 1, ignore_case: true}}\n    route: {queue: r}\n"
    )
    assert problems_of(tmp_path, text) == []


# --- several files -------------------------------------------------------------------------------


def test_two_files_naming_the_same_ruleset_is_an_error(tmp_path):
    write(tmp_path, "ruleset: main\nrules: []\ndefault: {queue: a}\n", "a.yaml")
    write(tmp_path, "ruleset: main\nrules: []\ndefault: {queue: b}\n", "b.yaml")
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    errors = [p for p in caught.value.problems if p.severity == "error"]
    assert len(errors) == 1
    assert "main" in errors[0].message
    assert errors[0].line >= 1
    assert errors[0].col >= 1


def test_a_file_stem_clashing_with_a_ruleset_key_is_an_error(tmp_path):
    write(tmp_path, "rules: []\ndefault: {queue: a}\n", "main.yaml")
    write(tmp_path, "ruleset: main\nrules: []\ndefault: {queue: b}\n", "other.yml")
    with pytest.raises(RulesError):
        load_rules(tmp_path)


def test_problems_of_several_files_are_all_reported(tmp_path):
    write(tmp_path, "rule: []\ndefault: {queue: a}\n", "a.yaml")
    write(tmp_path, "rules: []\ndefault: {qeue: b}\n", "b.yaml")
    write(tmp_path, "rules: []\ndefault: {queue: c}\n", "c.yaml")
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    files = sorted({p.file for p in caught.value.problems})
    assert files == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
