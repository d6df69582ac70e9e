"""A ruleset's own ``tests:`` (contract §3), run by ``run_tests``."""

from __future__ import annotations

import hashlib

from router.engine.testing import run_tests

from ._rules import errors_of, load_one

RULES = """\
ruleset: shop
timezone: Europe/London
schedules:
  office: {weekly: {mon-fri: ["08:00-18:00"]}}
rules:
  - id: vip
    when: {state.tier: gold}
    route:
      queue: vip
      label: "VIP {state.tier}"
      priority: 10
      skills: [billing, vip]
      attributes: {x_tier: "{state.tier}", x_other: fixed}
  - id: split
    when: {handoff.reason: complaint}
    route:
      split:
        - {weight: 50, queue: first}
        - {weight: 50, queue: second}
  - id: late
    when: {outside: office}
    route: {queue: late}
default: {queue: general, label: General}
fallback: {queue: backup}
"""


def bucket(rule_id: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{rule_id}/{key}".encode()).digest()[:8], "big") % 100


def results_for(tmp_path, tests: str):
    ruleset = load_one(tmp_path, RULES + "tests:\n" + tests)
    return {r.name: r for r in run_tests(ruleset)}


IN_HOURS = '    at: "2026-11-23T10:00:00"\n'


def test_every_expect_field_can_be_checked(tmp_path):
    results = results_for(
        tmp_path,
        "  - name: all fields\n" + IN_HOURS + "    input: {state: {tier: gold}}\n"
        "    expect:\n"
        "      rule: vip\n      queue: vip\n      label: VIP gold\n      outcome: matched\n"
        "      priority: 10\n      skills: [billing, vip]\n"
        "      attributes: {x_tier: gold, x_other: fixed}\n      degraded: false\n",
    )
    result = results["all fields"]
    assert result.ok, (result.expected, result.actual)
    assert result.ruleset == "shop"


def test_a_failing_test_reports_expected_and_actual(tmp_path):
    results = results_for(
        tmp_path,
        "  - name: wrong\n" + IN_HOURS + "    input: {state: {tier: silver}}\n"
        "    expect: {rule: vip, queue: vip, label: VIP silver, priority: 10}\n",
    )
    result = results["wrong"]
    assert result.ok is False
    assert result.expected == {"rule": "vip", "queue": "vip", "label": "VIP silver", "priority": 10}
    assert result.actual == {"rule": None, "queue": "general", "label": "General", "priority": None}


def test_only_the_fields_given_are_checked(tmp_path):
    results = results_for(
        tmp_path,
        "  - name: queue only\n" + IN_HOURS + "    input: {state: {tier: gold}}\n"
        "    expect: {queue: vip}\n",
    )
    assert results["queue only"].ok
    assert set(results["queue only"].expected) == {"queue"}


def test_a_null_namespace_is_a_failed_source(tmp_path):
    results = results_for(
        tmp_path,
        "  - name: state down\n" + IN_HOURS + "    input: {state: null}\n"
        "    expect: {rule: null, queue: backup, outcome: fallback, degraded: true}\n"
        "  - name: state empty\n" + IN_HOURS + "    input: {state: {}}\n"
        "    expect: {rule: null, queue: general, outcome: default, degraded: false}\n",
    )
    assert results["state down"].ok, (results["state down"].expected, results["state down"].actual)
    assert results["state empty"].ok, results["state empty"].actual


def test_conversation_id_defaults_to_the_test_name(tmp_path):
    names = [f"complaint {i}" for i in range(20)]
    tests = ""
    for name in names:
        queue = "first" if bucket("split", name) < 50 else "second"
        tests += (
            f"  - name: {name}\n" + IN_HOURS + "    input: {handoff: {reason: complaint}}\n"
            f"    expect: {{rule: split, queue: {queue}}}\n"
        )
    results = results_for(tmp_path, tests)
    assert all(results[name].ok for name in names), [
        (n, results[n].actual) for n in names if not results[n].ok
    ]
    assert {results[n].actual["queue"] for n in names} == {"first", "second"}


def test_an_explicit_conversation_id_keys_the_split(tmp_path):
    cid = next(f"c{i}" for i in range(100) if bucket("split", f"c{i}") >= 50)
    name = next(f"n{i}" for i in range(100) if bucket("split", f"n{i}") < 50)
    results = results_for(
        tmp_path,
        f"  - name: {name}\n    conversation_id: {cid}\n"
        + IN_HOURS
        + "    input: {handoff: {reason: complaint}}\n    expect: {queue: second}\n",
    )
    assert results[name].ok, results[name].actual


def test_at_without_offset_is_read_in_the_rulesets_zone(tmp_path):
    # 2026-07-06 is a Monday in BST: 07:30 London is closed, 07:30 UTC (08:30 London) is open
    results = results_for(
        tmp_path,
        "  - name: naive early\n    at: '2026-07-06T07:30:00'\n    expect: {rule: late}\n"
        "  - name: naive late\n    at: '2026-07-06T17:30:00'\n    expect: {rule: null}\n"
        "  - name: utc early\n    at: '2026-07-06T07:30:00+00:00'\n    expect: {rule: null}\n"
        "  - name: utc late\n    at: '2026-07-06T17:30:00Z'\n    expect: {rule: late}\n",
    )
    assert {name: r.ok for name, r in results.items()} == dict.fromkeys(results, True), {
        name: r.actual for name, r in results.items()
    }


def test_results_come_in_file_order_with_their_lines(tmp_path):
    tests = (
        "  - name: b\n" + IN_HOURS + "    expect: {queue: general}\n"
        "  - name: a\n" + IN_HOURS + "    expect: {queue: nope}\n"
    )
    ruleset = load_one(tmp_path, RULES + "tests:\n" + tests)
    results = run_tests(ruleset)
    assert [(r.name, r.ok) for r in results] == [("b", True), ("a", False)]
    first_test_line = (RULES + "tests:\n").count("\n") + 1
    assert results[0].line == first_test_line


def test_tests_naming_an_unknown_rule_do_not_load(tmp_path):
    text = RULES + "tests:\n  - name: t\n    expect: {rule: vipp}\n"
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    assert "vipp" in errors[0].message
