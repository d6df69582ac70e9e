"""``router check`` (contract §4): exit codes, ``file:line:col`` lines, ``--format json``."""

from __future__ import annotations

import json
import re

import pytest

from ._run import one_line, router

GOOD = (
    "ruleset: main\nrules:\n  - id: a\n    when: {state.x: 1}\n    route: {queue: q}\n"
    "default: {queue: g}\n"
)
BAD = (
    "ruleset: broken\n"  # 1
    "default: {queue: g}\n"  # 2
    "rules:\n"  # 3
    "  - id: a\n"  # 4
    "    wen: {state.x: 1}\n"  # 5: unknown key at 5:5
    "    route: {queue: q}\n"  # 6
    "  - id: b\n"  # 7
    "    when: {state.x: {gtee: 1}}\n"  # 8: unknown operator at 8:22
    "    route: {queue: q, priority: high}\n"  # 9: wrong type at 9:33
)
BAD_SPOTS = [(5, 5), (8, 22), (9, 33)]
WARN = (
    "ruleset: warned\ndefault: {queue: g}\nrules:\n"
    "  - id: all\n    route: {queue: q}\n"
    "  - id: never\n    when: {state.x: 1}\n    route: {queue: r}\n"
)
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def test_valid_rules_exit_0(tmp_path):
    (tmp_path / "main.yaml").write_text(GOOD)
    done = router("check", tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stdout.lower()


def test_invalid_rules_exit_1_with_file_line_col_lines(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD)
    done = router("check", tmp_path, cwd=tmp_path)
    assert done.returncode == 1
    found = [m for m in map(LINE.match, done.stdout.splitlines()) if m]
    assert [(int(m["line"]), int(m["col"])) for m in found] == BAD_SPOTS
    assert {m["file"] for m in found} == {str(path)}
    assert "did you mean 'when'" in found[0]["message"]
    assert "did you mean 'gte'" in found[1]["message"]


def test_json_output_has_exactly_the_contract_shape(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD)
    done = router("check", "--format", "json", path, cwd=tmp_path)
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert set(document) == {"ok", "problems"}
    assert document["ok"] is False
    for problem in document["problems"]:
        assert set(problem) == {"file", "line", "col", "severity", "message"}
        assert problem["file"] == str(path)
        assert isinstance(problem["line"], int)
        assert isinstance(problem["col"], int)
        assert problem["severity"] in ("error", "warning")
        assert isinstance(problem["message"], str)
        assert problem["message"]
    assert [(p["line"], p["col"]) for p in document["problems"]] == BAD_SPOTS
    assert {p["severity"] for p in document["problems"]} == {"error"}


def test_json_output_for_valid_rules(tmp_path):
    (tmp_path / "main.yaml").write_text(GOOD)
    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"ok": True, "problems": []}


def test_warnings_alone_leave_ok_and_exit_0(tmp_path):
    path = tmp_path / "warned.yaml"
    path.write_text(WARN)
    done = router("check", "--format", "json", path, cwd=tmp_path)
    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert document["ok"] is True
    assert [(p["line"], p["severity"]) for p in document["problems"]] == [(6, "warning")]
    text = router("check", path, cwd=tmp_path)
    assert text.returncode == 0
    assert f"{path}:6:" in text.stdout


def test_path_defaults_to_router_rules(tmp_path):
    (tmp_path / "broken.yaml").write_text(BAD)
    good = tmp_path / "good"
    good.mkdir()
    (good / "main.yaml").write_text(GOOD)
    assert router("check", cwd=tmp_path, env={"ROUTER_RULES": str(good)}).returncode == 0
    bad = router("check", "--format", "json", cwd=tmp_path, env={"ROUTER_RULES": str(tmp_path)})
    assert bad.returncode == 1


def test_path_defaults_to_the_rules_folder_here(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text(BAD)
    done = router("check", "--format", "json", cwd=tmp_path)
    assert done.returncode == 1
    files = {p["file"] for p in json.loads(done.stdout)["problems"]}
    assert len(files) == 1
    assert files.pop().endswith("broken.yaml")
    (rules / "broken.yaml").write_text(GOOD)
    assert router("check", cwd=tmp_path).returncode == 0


def test_a_missing_path_is_reported_in_one_line(tmp_path):
    done = router("check", tmp_path / "nowhere", cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert "nowhere" in done.stdout + done.stderr


def test_two_files_naming_the_same_ruleset_fail(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    assert done.returncode == 1
    errors = [p for p in json.loads(done.stdout)["problems"] if p["severity"] == "error"]
    assert len(errors) == 1
    assert "main" in errors[0]["message"]


def test_non_utf8_and_non_mapping_files_fail_with_positions(tmp_path):
    (tmp_path / "latin.yaml").write_bytes(b"rules: []\ndefault: {queue: caf\xe9}\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    assert done.returncode == 1
    spots = {
        (p["file"].rsplit("/", 1)[-1], p["line"], p["col"])
        for p in json.loads(done.stdout)["problems"]
    }
    assert spots == {("latin.yaml", 2, 21), ("list.yaml", 1, 1)}


def test_python_dash_m_router_is_the_same_command(tmp_path):
    (tmp_path / "broken.yaml").write_text(BAD)
    script = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    module = router("check", "--format", "json", tmp_path, cwd=tmp_path, module=True)
    assert (module.returncode, module.stdout) == (script.returncode, script.stdout)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["check", "--format", "xml"],
        ["check", "--no-such-flag"],
        ["check", "a", "b"],
        ["test", "--format"],
        ["explain"],
        ["schema", "extra"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(tmp_path, args):
    done = router(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip()


def test_version_and_help_exit_0(tmp_path):
    assert router("--help", cwd=tmp_path).returncode == 0
    assert router("check", "--help", cwd=tmp_path).returncode == 0
    assert one_line(router("--version", cwd=tmp_path).stdout)


def test_a_rule_with_a_broken_condition_is_still_a_rule_its_tests_can_name(tmp_path):
    (tmp_path / "support.yaml").write_text(
        "ruleset: support\n"  # 1
        "rules:\n"  # 2
        "  - id: complaints\n"  # 3
        "    when: {handoff.reason: {eqq: complaint}}\n"  # 4: the one real problem
        "    route: {queue: complaints}\n"  # 5
        "default: {queue: general}\n"  # 6
        "tests:\n"  # 7
        "  - name: complaint\n"  # 8
        "    input: {handoff: {reason: complaint}}\n"  # 9
        "    expect: {rule: complaints}\n"  # 10
        "  - name: typo in the test\n"  # 11
        "    expect: {rule: complaint}\n"  # 12: a real unknown rule
    )
    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    assert done.returncode == 1
    errors = [p for p in json.loads(done.stdout)["problems"] if p["severity"] == "error"]
    assert [(p["line"], p["message"].split(" (")[0]) for p in errors] == [
        (4, "unknown operator 'eqq'"),
        (12, "unknown rule 'complaint'"),
    ]


PLATFORMS = (
    "ruleset: mapped\n"  # 1
    "default: {queue: general}\n"  # 2
    "platforms:\n"  # 3
    "  twilio:\n"  # 4
    "    queues: {general: WQ42}\n"  # 5: bad id at 5:23
    "  genesys:\n"  # 6
    "    queues: {}\n"  # 7
)


def test_platform_ids_are_checked_with_their_position(tmp_path):
    (tmp_path / "mapped.yaml").write_text(PLATFORMS)

    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)

    assert done.returncode == 1
    report = json.loads(done.stdout)
    [error] = [p for p in report["problems"] if p["severity"] == "error"]
    assert (error["line"], error["col"]) == (5, 23)
    assert "TaskQueue SID" in error["message"]

    (tmp_path / "mapped.yaml").write_text(PLATFORMS.replace("WQ42", "WQ" + "0a" * 16))
    done = router("check", "--format", "json", tmp_path, cwd=tmp_path)
    assert done.returncode == 0
    [warning] = json.loads(done.stdout)["problems"]
    assert (warning["line"], warning["col"], warning["severity"]) == (2, 18, "warning")
    assert "genesys" in warning["message"]
