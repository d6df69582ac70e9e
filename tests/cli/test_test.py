"""``router test`` (contract §4): results, failures, coverage and ``--format json``."""

from __future__ import annotations

import json

from ._run import router

RULES = """\
ruleset: shop
timezone: UTC
rules:
  - id: vip
    when: {state.tier: gold}
    route: {queue: vip, label: "VIP {state.tier}"}
  - id: refunds
    when: {handoff.reason: refund}
    route: {queue: refunds}
  - id: never-tested-rule
    when: {context.dnis: "+44800"}
    route: {queue: freephone}
default: {queue: general}
tests:
  - name: gold goes to vip
    input: {state: {tier: gold}}
    expect: {rule: vip, queue: vip, label: VIP gold}
  - name: refund goes to refunds
    input: {handoff: {reason: refund}}
    expect: {rule: refunds, queue: refunds}
"""

FAILING = RULES + (
    "  - name: silver goes to vip\n"
    "    input: {state: {tier: silver}}\n"
    "    expect: {rule: vip, queue: vip-queue-expected}\n"
)

COMPLETE = RULES + (
    "  - name: freephone\n    input: {context: {dnis: '+44800'}}\n    expect: {queue: freephone}\n"
)


def folder(tmp_path, text, name="shop.yaml"):
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / name).write_text(text)
    return rules


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_all_passing_exits_0_with_the_closing_line(tmp_path):
    done = router("test", folder(tmp_path, RULES), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert last_line(done.stdout) == "2 passed, 0 failed"


def test_a_failing_test_exits_1_and_shows_expected_and_actual(tmp_path):
    done = router("test", folder(tmp_path, FAILING), cwd=tmp_path)
    assert done.returncode == 1
    assert last_line(done.stdout) == "2 passed, 1 failed"
    out = done.stdout
    assert "silver goes to vip" in out
    assert "vip-queue-expected" in out  # expected
    assert "general" in out  # actual queue
    assert "gold goes to vip" not in out  # passing tests are not listed as failures


def test_the_path_defaults_to_the_rules_folder(tmp_path):
    folder(tmp_path, FAILING)
    done = router("test", cwd=tmp_path)
    assert done.returncode == 1
    assert last_line(done.stdout) == "2 passed, 1 failed"


def test_coverage_lists_the_rules_no_test_reaches(tmp_path):
    done = router("test", "--coverage", folder(tmp_path, RULES), cwd=tmp_path)
    assert done.returncode == 0
    assert "never-tested-rule" in done.stdout
    listed = [line for line in done.stdout.splitlines() if "vip" in line or "refunds" in line]
    assert listed == [], "reached rules are not listed"
    assert last_line(done.stdout) == "2 passed, 0 failed"


def test_coverage_with_every_rule_reached(tmp_path):
    done = router("test", "--coverage", folder(tmp_path, COMPLETE), cwd=tmp_path)
    assert done.returncode == 0
    assert "never-tested-rule" not in done.stdout.replace("freephone", "")
    assert last_line(done.stdout) == "3 passed, 0 failed"


def test_fail_unreached_exits_1_when_a_rule_is_not_reached(tmp_path):
    done = router("test", "--fail-unreached", folder(tmp_path, RULES), cwd=tmp_path)
    assert done.returncode == 1
    assert "never-tested-rule" in done.stdout
    complete = router("test", "--fail-unreached", folder(tmp_path, COMPLETE), cwd=tmp_path)
    assert complete.returncode == 0


def test_json_output_has_the_contract_shape(tmp_path):
    done = router("test", "--format", "json", folder(tmp_path, FAILING), cwd=tmp_path)
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert {"passed", "failed", "results"} <= set(document)
    assert (document["passed"], document["failed"]) == (2, 1)
    assert [r["name"] for r in document["results"]] == [
        "gold goes to vip",
        "refund goes to refunds",
        "silver goes to vip",
    ]
    for result in document["results"]:
        assert set(result) == {"ruleset", "name", "ok", "expected", "actual"}
        assert result["ruleset"] == "shop"
    failed = document["results"][2]
    assert failed["ok"] is False
    assert failed["expected"] == {"rule": "vip", "queue": "vip-queue-expected"}
    assert failed["actual"] == {"rule": None, "queue": "general"}
    assert document["results"][0]["actual"] == {"rule": "vip", "queue": "vip", "label": "VIP gold"}


def test_json_output_with_coverage_lists_unreached(tmp_path):
    done = router("test", "--format", "json", "--coverage", folder(tmp_path, RULES), cwd=tmp_path)
    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert document["unreached"] == [{"ruleset": "shop", "rule": "never-tested-rule"}]


def test_every_ruleset_in_the_folder_is_tested(tmp_path):
    folder(tmp_path, FAILING, "shop.yaml")
    rules = folder(
        tmp_path,
        "ruleset: other\nrules: []\ndefault: {queue: o}\n"
        "tests:\n  - name: default\n    expect: {queue: o, outcome: default, rule: null}\n",
        "other.yaml",
    )
    done = router("test", "--format", "json", rules, cwd=tmp_path)
    document = json.loads(done.stdout)
    assert (document["passed"], document["failed"]) == (3, 1)
    assert {r["ruleset"] for r in document["results"]} == {"shop", "other"}


def test_invalid_rules_make_the_test_run_fail(tmp_path):
    rules = folder(tmp_path, "rules: []\ndefault: {qeue: g}\n", "broken.yaml")
    done = router("test", rules, cwd=tmp_path)
    assert done.returncode == 1
    assert "broken.yaml:2:" in done.stdout + done.stderr


def test_no_tests_at_all(tmp_path):
    done = router("test", folder(tmp_path, "rules: []\ndefault: {queue: g}\n"), cwd=tmp_path)
    assert done.returncode == 0
    assert last_line(done.stdout) == "0 passed, 0 failed"


def test_a_failed_source_in_a_test(tmp_path):
    text = RULES + (
        "  - name: state down\n    input: {state: null}\n"
        "    expect: {outcome: fallback, degraded: true, queue: general}\n"
    )
    done = router("test", folder(tmp_path, text), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert last_line(done.stdout) == "3 passed, 0 failed"


def test_a_test_at_the_end_of_time_does_not_crash(tmp_path):
    text = (
        "timezone: America/New_York\nschedules: {o: {weekly: {mon: ['08:00-18:00']}}}\n"
        "rules:\n  - id: r\n    when: {during: o}\n    route: {queue: q}\ndefault: {queue: g}\n"
        "tests:\n  - name: far\n    at: '0001-01-01T00:00:00'\n    expect: {queue: g}\n"
    )
    done = router("test", folder(tmp_path, text), cwd=tmp_path)
    assert done.returncode in (0, 1)


BROKEN = (
    "ruleset: broken\n"
    "rules:\n"
    "  - id: r\n"
    "    when: {state.x: {eqq: 1}}\n"
    "    route: {queue: q}\n"
    "default: {queue: g}\n"
    "tests:\n"
    "  - {name: one, expect: {queue: g}}\n"
    "  - {name: two, expect: {queue: g}}\n"
    "  - {name: three, expect: {queue: g}}\n"
)


def test_a_broken_file_says_its_tests_did_not_run_and_counts_them(tmp_path):
    folder(tmp_path, RULES, "shop.yaml")
    rules = folder(tmp_path, BROKEN, "broken.yaml")
    done = router("test", rules, cwd=tmp_path)
    assert done.returncode == 1
    assert last_line(done.stdout) == "2 passed, 0 failed, 3 not run"
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("NOT RUN")]
    assert "broken.yaml: 3 tests did not run" in line
    assert "unknown operator 'eqq'" in line


def test_json_counts_the_tests_of_a_broken_file_as_not_run(tmp_path):
    folder(tmp_path, RULES, "shop.yaml")
    rules = folder(tmp_path, BROKEN, "broken.yaml")
    done = router("test", "--format", "json", rules, cwd=tmp_path)
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert (document["passed"], document["failed"], document["not_run"]) == (2, 0, 3)
    [skipped] = document["not_run_files"]
    assert skipped["file"].endswith("broken.yaml")
    assert (skipped["ruleset"], skipped["tests"]) == ("broken", 3)
    assert "eqq" in skipped["reason"]


def test_a_file_that_is_not_yaml_says_its_tests_did_not_run(tmp_path):
    folder(tmp_path, RULES, "shop.yaml")
    rules = folder(tmp_path, "rules: [\n", "garbled.yaml")
    done = router("test", rules, cwd=tmp_path)
    assert done.returncode == 1
    assert last_line(done.stdout).startswith("2 passed, 0 failed, 0 not run")
    assert "1 file that could not be read" in last_line(done.stdout)
    assert "NOT RUN  " in done.stdout
    assert "garbled.yaml: its tests did not run" in done.stdout


def test_the_tests_of_a_second_file_naming_the_same_ruleset_did_not_run(tmp_path):
    folder(tmp_path, RULES, "a.yaml")
    rules = folder(tmp_path, RULES, "b.yaml")
    done = router("test", "--format", "json", rules, cwd=tmp_path)
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert (document["passed"], document["not_run"]) == (2, 2)
    [skipped] = document["not_run_files"]
    assert skipped["file"].endswith("b.yaml")
    assert "already defined" in skipped["reason"]


def test_nothing_not_run_keeps_the_closing_line_and_json_at_zero(tmp_path):
    done = router("test", "--format", "json", folder(tmp_path, RULES), cwd=tmp_path)
    document = json.loads(done.stdout)
    assert (document["not_run"], document["not_run_files"]) == (0, [])
