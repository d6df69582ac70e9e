"""``router explain`` (contract §4): the decision plus the per-rule trace for one input."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from router import load_rules

from ._run import one_line, router

RULES = """\
ruleset: support
timezone: Europe/London
schedules:
  office: {weekly: {mon-fri: ["08:00-18:00"]}}
rules:
  - id: out-of-hours
    when: {outside: office}
    route: {queue: voicemail}
  - id: vip
    when: {state.tier: gold, state.balance: {gte: 1000}}
    route:
      queue: vip
      label: "VIP {state.tier}"
      priority: 10
      skills: [billing]
      attributes: {x: "{state.tier}"}
  - id: not-gold
    when: {not: {state.tier: gold}}
    route: {split: [{weight: 50, queue: s1}, {weight: 50, queue: s2}]}
default: {queue: general}
fallback: {queue: backup}
"""

MONDAY_10 = "2026-11-23T10:00:00"
DECISION_FIELDS = {
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
}


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "support.yaml"
    path.write_text(RULES)
    return path


def input_file(tmp_path, document, name="input.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def explain(tmp_path, rules, document, *extra):
    return router(
        "explain", "--ruleset", "support", "--rules", rules, *extra, input_file(tmp_path, document),
        cwd=tmp_path,
    )  # fmt: skip


def test_text_output_shows_the_decision_and_every_rule(tmp_path, rules):
    done = explain(
        tmp_path, rules, {"state": {"tier": "gold", "balance": "500"}}, "--at", MONDAY_10
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for word in (
        "out-of-hours",
        "vip",
        "not-gold",
        "general",
        "state.balance",
        "gte",
        "1000",
        "500",
    ):
        assert word in out, word


def test_json_output_is_the_decision_plus_the_trace(tmp_path, rules):
    facts = {"state": {"tier": "gold", "balance": "1500"}}
    done = explain(
        tmp_path, rules, {**facts, "conversation_id": "c-1"}, "--at", MONDAY_10, "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert DECISION_FIELDS | {"trace"} <= set(body)
    expected = load_rules(rules)["support"].explain(
        facts, conversation_id="c-1", at=datetime.fromisoformat(MONDAY_10)
    )
    assert {k: body[k] for k in DECISION_FIELDS} == {
        k: v for k, v in expected.to_dict().items() if k in DECISION_FIELDS
    }
    assert body["trace"] == json.loads(json.dumps(expected.to_dict()["trace"]))
    assert (body["rule"], body["queue"], body["label"], body["attributes"]) == (
        "vip",
        "vip",
        "VIP gold",
        {"x": "gold"},
    )
    assert [entry["rule"] for entry in body["trace"]] == ["out-of-hours", "vip", "not-gold"]
    assert body.get("conversation_id") == "c-1"


def test_json_output_has_the_fields_of_the_http_explain_answer(tmp_path, rules):
    """Contract §4: 'the same object as POST /v1/explain answers' (§2.1 fields + trace)."""
    done = explain(tmp_path, rules, {"state": {"tier": "gold"}}, "--format", "json")
    body = json.loads(done.stdout)
    http_fields = DECISION_FIELDS | {"conversation_id", "shared_id", "sources", "trace"}
    assert http_fields <= set(body), sorted(http_fields - set(body))


def test_the_trace_names_the_first_failing_condition(tmp_path, rules):
    done = explain(
        tmp_path, rules, {"state": {"tier": "gold", "balance": 20}}, "--at", MONDAY_10,
        "--format", "json",
    )  # fmt: skip
    vip = next(entry for entry in json.loads(done.stdout)["trace"] if entry["rule"] == "vip")
    assert vip["matched"] is False
    condition = vip["condition"]
    assert (condition["path"], condition["op"], condition["expected"], condition["actual"]) == (
        "state.balance",
        "gte",
        1000,
        20,
    )


def test_at_without_offset_is_read_in_the_rulesets_zone(tmp_path, rules):
    facts = {"state": {"tier": "gold", "balance": 5000}}
    # 2026-07-06 is a Monday in BST: 07:30 London is closed, 07:30 UTC is 08:30 London
    early = explain(tmp_path, rules, facts, "--at", "2026-07-06T07:30:00", "--format", "json")
    assert json.loads(early.stdout)["rule"] == "out-of-hours"
    utc = explain(tmp_path, rules, facts, "--at", "2026-07-06T07:30:00+00:00", "--format", "json")
    assert json.loads(utc.stdout)["rule"] == "vip"


def test_a_null_namespace_is_a_failed_source(tmp_path, rules):
    done = explain(tmp_path, rules, {"state": None}, "--at", MONDAY_10, "--format", "json")
    assert done.returncode == 0
    body = json.loads(done.stdout)
    assert (body["rule"], body["outcome"], body["degraded"], body["queue"]) == (
        None,
        "fallback",
        True,
        "backup",
    )


def test_input_from_standard_input(tmp_path, rules):
    done = router(
        "explain", "--ruleset", "support", "--rules", rules, "--at", MONDAY_10, "--format", "json",
        "-", cwd=tmp_path, stdin=json.dumps({"state": {"tier": "silver"}, "conversation_id": "x"}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule"] == "not-gold"


def test_rules_default_to_router_rules(tmp_path, rules):
    path = input_file(tmp_path, {"state": {"tier": "gold"}})
    done = router(
        "explain", "--ruleset", "support", "--at", MONDAY_10, "--format", "json", path,
        cwd=tmp_path, env={"ROUTER_RULES": str(rules)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queue"] == "general"


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '"text"',
        "5",
        "null",
        '{"state": "gold"}',
        '{"state": [1]}',
        '{"conversation_id": 5}',
        '{"stat": {}}',
    ],
    ids=repr,
)
def test_malformed_input_is_a_usage_error_in_one_line(tmp_path, rules, content):
    done = explain(tmp_path, rules, content)
    assert done.returncode == 2
    assert one_line(done.stderr)
    assert done.stdout == ""


def test_missing_input_is_a_usage_error(tmp_path, rules):
    done = router(
        "explain", "--ruleset", "support", "--rules", rules, tmp_path / "absent.json", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "absent.json" in one_line(done.stderr)


def test_unreadable_input_is_a_usage_error(tmp_path, rules):
    (tmp_path / "latin.json").write_bytes(b'{"state": {"name": "caf\xe9"}}')
    for target in (tmp_path / "latin.json", tmp_path):
        done = router("explain", "--ruleset", "support", "--rules", rules, target, cwd=tmp_path)
        assert done.returncode == 2
        assert one_line(done.stderr)


@pytest.mark.parametrize("at", ["tomorrow", "2026-13-01T00:00:00", "10:00", ""])
def test_a_bad_at_is_a_usage_error(tmp_path, rules, at):
    done = explain(tmp_path, rules, {}, "--at", at)
    assert done.returncode == 2
    assert one_line(done.stderr)


def test_an_unknown_ruleset_is_a_usage_error(tmp_path, rules):
    done = router(
        "explain", "--ruleset", "nope", "--rules", rules, input_file(tmp_path, {}), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "nope" in one_line(done.stderr)


def test_a_missing_ruleset_option_is_a_usage_error(tmp_path, rules):
    done = router("explain", "--rules", rules, input_file(tmp_path, {}), cwd=tmp_path)
    assert done.returncode == 2


def test_a_time_at_the_end_of_the_calendar_does_not_crash(tmp_path, rules):
    for at in ("0001-01-01T00:00:00", "9999-12-31T23:59:59-23:59"):
        done = explain(tmp_path, rules, {}, "--at", at, "--format", "json")
        assert done.returncode in (0, 2)


def test_a_broken_other_file_does_not_stop_explaining_a_healthy_ruleset(tmp_path, rules):
    (rules.parent / "broken.yaml").write_text("ruleset: other\nrules: []\ndefault: {qeue: g}\n")
    done = explain(tmp_path, rules.parent, {"state": {"tier": "gold"}}, "--at", MONDAY_10)
    assert done.returncode == 0, done.stderr
    assert "queue     general" in done.stdout
    assert "broken.yaml" not in done.stdout + done.stderr


def test_a_broken_named_ruleset_fails_with_only_its_own_errors(tmp_path, rules):
    (rules.parent / "other.yaml").write_text("ruleset: other\nrules: []\ndefault: {qeue: g}\n")
    (rules.parent / "support.yaml").write_text(RULES.replace("{gte: 1000}", "{gtee: 1000}"))
    done = explain(tmp_path, rules.parent, {}, "--at", MONDAY_10)
    assert done.returncode == 1
    assert "support.yaml:10:46: error: unknown operator 'gtee'" in done.stderr
    assert "gtee" in done.stderr
    assert "other.yaml" not in done.stderr
    assert done.stdout == ""


def test_a_ruleset_two_files_define_is_not_explained(tmp_path, rules):
    (rules.parent / "zz-copy.yaml").write_text(RULES)
    done = explain(tmp_path, rules.parent, {}, "--at", MONDAY_10)
    assert done.returncode == 1
    assert "already defined" in done.stderr


def test_an_unreadable_file_that_may_hold_the_ruleset_is_reported(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text("rules: [\n")
    done = explain(tmp_path, rules, {})
    assert done.returncode == 1
    assert "a.yaml:" in done.stderr
    assert "may define it" in done.stderr
