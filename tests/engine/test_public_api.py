"""The embedding API of contract §6."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from ._rules import CONTRACT_EXAMPLE, write


def test_the_public_names_import_from_router():
    from router import Decision, RulesError, RuleSet, load_rules

    assert callable(load_rules)
    assert isinstance(RuleSet, type)
    assert isinstance(Decision, type)
    assert issubclass(RulesError, Exception)


def test_load_rules_reads_a_folder_and_decides_as_in_the_contract(tmp_path):
    from router import Decision, RuleSet, load_rules

    write(tmp_path, CONTRACT_EXAMPLE, "support.yaml")
    rulesets = load_rules(str(tmp_path) + "/")
    assert list(rulesets) == ["default"]
    ruleset = rulesets["default"]
    assert isinstance(ruleset, RuleSet)
    decision = ruleset.decide(
        {
            "handoff": {"handoff_reason": "refund"},
            "state": {"customer_tier": "gold", "balance": 1500},
        },
        conversation_id="0bba04d7-38b3-4fd3-a1a8-329c34517fc1",
        at=datetime.fromisoformat("2026-11-23T10:00:00+00:00"),
    )
    assert isinstance(decision, Decision)
    assert (decision.queue, decision.rule, decision.outcome) == (
        "billing-priority",
        "vip-billing",
        "matched",
    )
    assert decision.label == "Billing dispute · gold"
    assert decision.priority == 10
    assert list(decision.skills) == ["billing"]
    assert dict(decision.attributes) == {"x_tier": "gold"}
    assert decision.degraded is False
    trace = ruleset.explain({"state": {"customer_tier": "gold"}}, conversation_id="x").trace
    assert [entry["rule"] for entry in trace] == ["out-of-hours", "vip-billing", "complaints"]


def test_load_rules_takes_one_file_too(tmp_path):
    from router import load_rules

    path = write(tmp_path, "rules: []\ndefault: {queue: g}\n", "single.yml")
    assert list(load_rules(path)) == ["single"]


def test_decide_takes_the_shared_id_for_splits(tmp_path):
    from router import load_rules

    ruleset = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"]
    at = datetime.fromisoformat("2026-11-23T10:00:00+00:00")
    facts = {"handoff": {"handoff_reason": "complaint_escalation"}}
    by_shared = {ruleset.decide(facts, shared_id=f"CA{i}", at=at).queue for i in range(60)}
    assert by_shared == {"complaints", "complaints-pilot"}


def test_a_naive_at_is_read_in_the_rulesets_time_zone(tmp_path):
    from router import load_rules

    ruleset = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"]
    # Monday 2026-07-06 is in BST: 07:30 London is before opening, 07:30 UTC is 08:30 London
    assert ruleset.decide({}, at=datetime(2026, 7, 6, 7, 30)).rule == "out-of-hours"
    assert ruleset.decide({}, at=datetime.fromisoformat("2026-07-06T07:30:00+00:00")).rule is None


def test_a_namespace_given_as_none_is_a_failed_source(tmp_path):
    from router import load_rules

    ruleset = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"]
    decision = ruleset.decide({"state": None}, at=datetime(2026, 11, 23, 10))
    assert (decision.outcome, decision.degraded) == ("fallback", True)
    assert decision.label == "Transferred · details unavailable"


def test_rules_error_carries_the_problems_router_check_prints(tmp_path):
    from router import RulesError, load_rules

    path = write(tmp_path, "rule: []\ndefault: {qeue: g}\nrules:\n  - id: a\n    route: {}\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    problems = caught.value.problems
    assert problems
    for problem in problems:
        assert problem.file == str(path)
        assert problem.line >= 1
        assert problem.col >= 1
        assert problem.severity in ("error", "warning")
        assert problem.message
    checked = subprocess.run(
        [sys.executable, "-m", "router", "check", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    printed = json.loads(checked.stdout)["problems"]
    assert printed == [
        {"file": p.file, "line": p.line, "col": p.col, "severity": p.severity, "message": p.message}
        for p in problems
    ]


def test_load_rules_on_a_missing_path_raises_rules_error(tmp_path):
    from router import RulesError, load_rules

    with pytest.raises(RulesError):
        load_rules(tmp_path / "nowhere")


def test_warnings_alone_do_not_raise_and_sit_on_the_ruleset(tmp_path):
    from router import load_rules

    path = write(
        tmp_path,
        "default: {queue: g}\nrules:\n  - id: all\n    route: {queue: q}\n"
        "  - id: never\n    when: {state.x: 1}\n    route: {queue: r}\n",
    )
    ruleset = load_rules(path)["rules"]
    assert len(ruleset.warnings) == 1
    warning = ruleset.warnings[0]
    assert (warning.file, warning.line, warning.severity) == (str(path), 5, "warning")
    assert "never" in warning.message


def test_a_ruleset_is_immutable(tmp_path):
    from router import load_rules

    ruleset = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"]
    for name, value in [("name", "x"), ("rules", ()), ("version", "x"), ("warnings", ())]:
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            setattr(ruleset, name, value)
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        ruleset.anything_new = 1
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        del ruleset.name
    assert isinstance(ruleset.rules, tuple)
    assert isinstance(ruleset.warnings, tuple)
    with pytest.raises((AttributeError, TypeError)):
        ruleset.rules.append(None)  # type: ignore[attr-defined]
    assert ruleset.name == "default"


def test_a_decision_is_immutable(tmp_path):
    from router import load_rules

    decision = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"].decide({})
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError)):
        decision.queue = "elsewhere"  # type: ignore[misc]


def test_a_ruleset_is_safe_to_share_between_threads(tmp_path):
    from router import load_rules

    ruleset = load_rules(write(tmp_path, CONTRACT_EXAMPLE))["default"]
    at = datetime(2026, 11, 23, 10)

    def facts_for(i: int) -> dict:
        if i % 3 == 0:
            return {"state": {"sentiment": "angry"}}
        if i % 3 == 1:
            return {"handoff": {"handoff_reason": "refund"}, "state": {"customer_tier": "gold"}}
        return {"state": None}

    inputs = [(facts_for(i), f"c{i}") for i in range(300)]
    expected = [ruleset.decide(f, conversation_id=c, at=at) for f, c in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda fc: ruleset.decide(fc[0], conversation_id=fc[1], at=at), inputs))
    assert got == expected


def test_folder_loading_skips_dotfiles_subfolders_and_other_files(tmp_path):
    from router import load_rules

    write(tmp_path, "rules: []\ndefault: {queue: a}\n", "alpha.yaml")
    write(tmp_path, "ruleset: beta\nrules: []\ndefault: {queue: b}\n", "named-by-key.yml")
    write(tmp_path, "not: [valid", ".hidden.yaml")
    write(tmp_path, "not: [valid", "notes.txt")
    (tmp_path / "..data").mkdir()
    write(tmp_path / "..data", "rules: []\ndefault: {queue: a}\n", "alpha.yaml")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "not: [valid", "gamma.yaml")
    rulesets = load_rules(tmp_path)
    assert sorted(rulesets) == ["alpha", "beta"]
    assert rulesets["beta"].source == str(tmp_path / "named-by-key.yml")


def test_the_engine_does_not_import_aiohttp(tmp_path):
    path = write(tmp_path, CONTRACT_EXAMPLE)
    code = textwrap.dedent(
        f"""
        import sys
        from router import load_rules, RuleSet, Decision, RulesError
        from router.engine.testing import run_tests
        rulesets = load_rules({str(path)!r})
        rulesets["default"].decide({{"state": {{"customer_tier": "gold"}}}}, conversation_id="c")
        rulesets["default"].explain({{}}, conversation_id="c")
        run_tests(rulesets["default"])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp"))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


ENGINE_API = {
    "MAX_FILE_BYTES",
    "RULE_FILE_SUFFIXES", "Decision", "FileLoad", "PathLoad", "Problem", "RuleSet", "RulesError",
    "TestResult", "decide_by_scan", "load_bytes", "load_file", "load_path", "load_rules",
    "rule_file_schema", "ruleset_files", "run_tests", "unreached_rules",
    "UNRECORDED", "decide_replayed", "paths_read",
}  # fmt: skip


def test_the_engine_api_is_what_router_engine_exports():
    import router
    import router.engine

    assert set(router.engine.__all__) == ENGINE_API
    for name in ENGINE_API:
        assert getattr(router.engine, name) is not None
    assert set(router.__all__) == {"Decision", "Problem", "RuleSet", "RulesError", "load_rules"}
    for name in router.__all__:
        assert getattr(router, name) is getattr(router.engine, name)


@pytest.mark.parametrize("module", ["router/cli.py", "router/reload.py"])
def test_the_cli_and_the_reloader_use_only_the_engine_api(module):
    from pathlib import Path

    source = (Path(__file__).parents[2] / module).read_text(encoding="utf-8")
    assert "router.engine." not in source
    assert "from router.engine import" in source
