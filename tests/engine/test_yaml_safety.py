"""Hostile and surprising rule files: errors, never crashes, code execution or blow-ups."""

from __future__ import annotations

import random

import pytest

from router.engine.load import load_bytes, load_file

from ._rules import compile_doc, decide_both, errors_of, load_one, write

VALID_TAIL = "rules: []\ndefault: {queue: g}\n"


def single_error(tmp_path, raw: bytes | str):
    errors = errors_of(tmp_path, raw)
    assert len(errors) == 1, [str(p) for p in errors]
    assert errors[0].line >= 1
    assert errors[0].col >= 1
    return errors[0]


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
default: {queue: g, skills: *i}
rules: []
"""


def test_billion_laughs_is_an_error_not_an_out_of_memory(tmp_path):
    problem = single_error(tmp_path, BILLION_LAUGHS)
    assert problem.line == 1
    assert "alias" in problem.message or "anchor" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "default: &d {queue: g}\nfallback: *d\nrules: []\n",
        "base: &b {queue: g}\ndefault:\n  <<: *b\nrules: []\n",
        "rules: []\ndefault: {queue: &q g}\n",
    ],
)
def test_anchors_and_aliases_are_refused(tmp_path, text):
    single_error(tmp_path, text)


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    text = (
        f"default: !!python/object/apply:os.system ['touch {marker}']\n"
        "fallback: !!python/object/apply:subprocess.check_output [['touch', '"
        f"{marker}']]\nrules: []\n"
    )
    problem = single_error(tmp_path, text)
    assert (problem.line, problem.col) == (1, 10)
    assert "tag" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "value",
    [
        "!!python/name:os.system",
        "!!python/object:collections.OrderedDict {}",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!str 5",
        "!custom x",
        "!!timestamp 2026-12-25",
    ],
)
def test_every_explicit_tag_is_refused(tmp_path, value):
    problem = single_error(tmp_path, f"rules: []\ndefault: {{queue: g, label: {value}}}\n")
    assert problem.line == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"a: " + b"[" * 10_000 + b"]" * 10_000,
        b"a: " + b"{a: " * 10_000 + b"}" * 10_000,
        b"[" * 100_000,
        b"default: {queue: g}\nrules:\n  - id: r\n    when: "
        + b"{not: " * 10_000
        + b"{state.x: 1}"
        + b"}" * 10_000
        + b"\n    route: {queue: q}\n",
        "".join("  " * i + "a:\n" for i in range(400)).encode(),
    ],
    ids=["lists", "maps", "unclosed", "when", "block"],
)
def test_deep_nesting_is_an_error_not_a_crash(tmp_path, raw):
    single_error(tmp_path, raw)


def test_a_17_mb_file_is_refused(tmp_path):
    line = b"# " + b"x" * 1021 + b"\n"
    raw = VALID_TAIL.encode() + line * (17 * 1024)
    assert len(raw) > 17 * 1024 * 1024
    path = write(tmp_path, raw)
    problems = load_file(path).problems
    assert len(problems) == 1
    assert (problems[0].line, problems[0].col) == (1, 1)
    assert (
        "large" in problems[0].message
        or "MiB" in problems[0].message
        or "MB" in problems[0].message
    )


@pytest.mark.parametrize(
    "raw",
    [
        random.Random(0).randbytes(4096),
        random.Random(1).randbytes(64),
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(2).randbytes(200),
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
        b"PK\x03\x04" + random.Random(3).randbytes(100),
        b"\xff\xfe" + "rules: []\n".encode("utf-16-le"),
        b"\xfe\xff" + "rules: []\n".encode("utf-16-be"),
    ],
    ids=["random4k", "random64", "all-bytes", "png", "elf", "zip", "utf16le", "utf16be"],
)
def test_binary_junk_is_an_error(tmp_path, raw):
    single_error(tmp_path, raw)


def test_binary_file_points_at_the_first_nul_byte(tmp_path):
    problem = single_error(tmp_path, "# café\n".encode() + b"a\x00b\n")
    assert (problem.line, problem.col) == (2, 2)


def test_control_characters_in_the_text_are_an_error(tmp_path):
    problem = single_error(tmp_path, b"rules: []\ndefault: {queue: \x01g}\n")
    assert problem.line == 2


# --- regular expressions run in linear time ------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "want"),
    [
        ("(a+)+$", "a" * 100_000 + "b", False),
        ("(a+)+$", "a" * 100_000, True),
        ("(a|aa)*c", "a" * 50_000, False),
        ("(x+x+)+y", "x" * 50_000, False),
        ("^(([a-z])+.)+[A-Z]([a-z])+$", "a" * 30_000 + "!", False),
    ],
)
def test_catastrophic_regexes_compile_in_re2_and_finish(pattern, value, want):
    ruleset = compile_doc(
        {
            "rules": [
                {"id": "r", "when": {"state.x": {"matches": pattern}}, "route": {"queue": "q"}}
            ],
            "default": {"queue": "d"},
        }
    )
    assert (decide_both(ruleset, {"state": {"x": value}}).rule == "r") is want


def test_a_huge_value_is_matched_without_trouble():
    ruleset = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "when": {"state.x": {"contains": "needle", "ignore_case": True}},
                    "route": {"queue": "q", "label": "{state.x}"},
                }
            ],
            "default": {"queue": "d"},
        }
    )
    decision = decide_both(ruleset, {"state": {"x": "hay " * 500_000 + "NEEDLE"}})
    assert decision.rule == "r"
    assert len(decision.label) == 120


# --- YAML 1.2 scalars ----------------------------------------------------------------------------


def test_yaml_1_2_scalars_stay_strings(tmp_path):
    ruleset = load_one(
        tmp_path,
        "rules:\n  - id: r\n    route:\n      queue: q\n      label: no\n"
        "      attributes:\n"
        "        opens: 18:00\n        answer: no\n        norway: NO\n        agree: yes\n"
        "        power: on\n        light: off\n        letter: y\n        day: 2026-12-25\n"
        "        sexagesimal: 1:30:00\n"
        "default: {queue: d}\n",
    )
    decision = decide_both(ruleset, {})
    assert decision.label == "no"
    assert dict(decision.attributes) == {
        "opens": "18:00",
        "answer": "no",
        "norway": "NO",
        "agree": "yes",
        "power": "on",
        "light": "off",
        "letter": "y",
        "day": "2026-12-25",
        "sexagesimal": "1:30:00",
    }


@pytest.mark.parametrize(
    ("matcher", "actual", "want"),
    [
        ("no", "no", True),
        ("no", False, False),
        ("off", "off", True),
        ("on", True, False),
        ("yes", "yes", True),
        ("18:00", "18:00", True),
        ("18:00", 1080, False),
        ("{gte: 1e3}", "1500", True),
        ("{gte: 1e3}", "999", False),
        ("true", "TRUE", True),
        ("True", "true", True),
    ],
)
def test_yaml_1_2_scalars_in_conditions(tmp_path, matcher, actual, want):
    ruleset = load_one(
        tmp_path,
        f"rules:\n  - id: r\n    when:\n      state.x: {matcher}\n    route: {{queue: q}}\n"
        "default: {queue: d}\n",
    )
    assert (decide_both(ruleset, {"state": {"x": actual}}).rule == "r") is want


def test_unquoted_dates_work_in_schedules(tmp_path):
    ruleset = load_one(
        tmp_path,
        "timezone: UTC\nschedules:\n  s:\n    weekly: {mon-sun: ['00:00-24:00']}\n"
        "    closed: [2026-12-25]\n    open: {2026-12-26: ['10:00-11:00']}\n"
        "rules:\n  - id: r\n    when: {during: s}\n    route: {queue: q}\ndefault: {queue: d}\n",
    )
    from datetime import datetime

    assert decide_both(ruleset, {}, at=datetime(2026, 12, 25, 12)).rule is None
    assert decide_both(ruleset, {}, at=datetime(2026, 12, 26, 10, 30)).rule == "r"
    assert decide_both(ruleset, {}, at=datetime(2026, 12, 26, 12)).rule is None


def test_duplicate_keys_are_an_error_at_the_second_key(tmp_path):
    problem = single_error(tmp_path, "rules: []\ndefault: {queue: a}\ndefault: {queue: b}\n")
    assert (problem.line, problem.col) == (3, 1)


def test_load_bytes_never_touches_the_file_system_for_names():
    loaded = load_bytes(b"rules: []\ndefault: {queue: g}\n", "../../etc/passwd", default_name="x")
    assert loaded.ruleset is not None
    assert loaded.ruleset.name == "x"
