"""Fuzzing the loader: whatever the bytes, ``load_bytes``/``load_file`` answer with problems.

Invariants: never raises; every problem has line and col >= 1, a severity and
a message; a ruleset comes back exactly when there is no error; a ruleset that
loads can decide, explain and run its tests.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.engine.load import load_bytes, load_file
from router.engine.testing import run_tests

from ._rules import CONTRACT_EXAMPLE

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_invariants(raw: bytes) -> None:
    loaded = load_bytes(raw, "fuzz.yaml", default_name="fuzz")
    # YAML also breaks lines at \r (and more); allow one line past the end for an EOF mark
    lines = len(raw.decode("utf-8", "replace").splitlines()) + 2
    for problem in loaded.problems:
        assert problem.line >= 1, problem
        assert problem.col >= 1, problem
        assert problem.line <= lines, problem
        assert problem.severity in ("error", "warning")
        assert isinstance(problem.message, str)
        assert problem.message
        assert problem.file == "fuzz.yaml"
    has_error = any(p.severity == "error" for p in loaded.problems)
    assert (loaded.ruleset is None) == has_error, [str(p) for p in loaded.problems]
    if loaded.ruleset is not None:
        ruleset = loaded.ruleset
        at = datetime.fromisoformat("2026-11-23T10:00:00")
        for facts in ({}, {"state": None}, {"state": {"x": "1"}, "handoff": {"r": [1]}}):
            decided = ruleset.decide(facts, conversation_id="c", at=at)
            assert ruleset.explain(facts, conversation_id="c", at=at).rule == decided.rule
        run_tests(ruleset)


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(raw):
    check_invariants(raw)


YAMLISH = st.text(
    alphabet=st.sampled_from([*list(":-[]{},#&*!|>'\"%@`?~ \n\t\r.0123456789aeqxyzé\\"), "\xa0"]),
    max_size=200,
)


@FUZZ
@given(YAMLISH)
def test_arbitrary_yamlish_text(text):
    check_invariants(text.encode("utf-8"))


KEYS = [
    "ruleset", "description", "timezone", "schedules", "rules", "default", "fallback", "tests",
    "id", "when", "route", "queue", "label", "priority", "skills", "attributes", "split",
    "weight", "weekly", "closed", "open", "mon-fri", "sat", "all", "any", "not", "during",
    "outside", "state.x", "handoff.r", "context.c.d", "eq", "ne", "in", "not_in", "gt", "gte",
    "lt", "lte", "between", "contains", "starts_with", "ends_with", "matches", "exists",
    "empty", "ignore_case", "name", "at", "input", "expect", "rule", "outcome", "degraded",
    "state", "handoff", "conversation", "context", "conversation_id", "shared_id", "office",
    "platforms", "amazon-connect", "twilio", "genesys", "queues", "workflow",
]  # fmt: skip
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "office",
            "08:00-18:00",
            "22:00-02:00",
            "2026-12-25",
            "Europe/London",
            "gold",
            "{state.x}",
            "{",
            "}}",
            "(a",
            "^x$",
            "q",
            "r0",
            "2026-11-23T10:00:00",
            "mon",
            "",
            "x.y",
            "WQ0123456789abcdef0123456789abcdef",
            "WW0123456789abcdef0123456789abcdef",
            "6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01",
        ]
    ),
    st.text(max_size=8),
)
DOCS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)


def _dump(doc) -> bytes:
    try:
        return json.dumps(doc, allow_nan=True).encode()
    except (TypeError, ValueError):
        return yaml.safe_dump(doc).encode()


@FUZZ
@given(DOCS)
def test_structurally_random_documents(doc):
    check_invariants(_dump(doc))
    check_invariants(yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True).encode())


EXAMPLE = yaml.safe_load(CONTRACT_EXAMPLE)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


EXAMPLE_PATHS = [p for p in _paths(EXAMPLE) if p]


def _replace(doc, path, value):
    doc = json.loads(json.dumps(doc))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(EXAMPLE_PATHS), DOCS), min_size=1, max_size=3))
def test_mutations_of_the_contract_example(mutations):
    doc = EXAMPLE
    for path, value in mutations:
        try:
            doc = _replace(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue
    check_invariants(_dump(doc))


# --- regressions and odd corners found while fuzzing ---------------------------------------------


def _when(condition: bytes) -> bytes:
    return (
        b"rules:\n- id: r\n  when: " + condition + b"\n  route: {queue: q}\ndefault: {queue: g}\n"
    )


def _test(case: bytes) -> bytes:
    return b"rules: []\ndefault: {queue: g}\ntests: [" + case + b"]\n"


HEAD = b"rules: []\ndefault: {queue: g"
CORNERS = [
    b"",
    b"\x00",
    b"\xef\xbb\xbf",
    b"---\n---\n",
    b"? [a]\n: b\n",
    b"? a\n",
    b"{a: 1}: b\n",
    b"a: 1\na: 2\n",
    b"%YAML 1.2\n---\na: 1\n",
    b"%FOO bar\n---\na: 1\n",
    b"!<tag:yaml.org,2002:str> a\n",
    "a: b\n\u0085c: d\n".encode(),
    "rules: []\ndefault: {queue: g}\n# \u2028\n".encode(),
    HEAD + b"}\ntimezone: " + b"A" * 5000 + b"\n",
    HEAD + b"}\ntimezone: 'UTC\\0'\n",
    HEAD + b'}\ntimezone: "Europe/London\\0"\n',
    HEAD + b", priority: " + b"9" * 5000 + b"}\n",
    HEAD + b", priority: 1e999}\n",
    HEAD + b", priority: .nan}\n",
    HEAD + b", label: '{state.x|{'}\n",
    HEAD + b', label: "\\u202e{state.x}"}\n',
    b"rules: []\ndefault: {split: [{weight: 100, queue: q}]}\n",
    _when(b"{state.x: {between: [.nan, 1]}}"),
    _when(b"{state.x: {gte: .inf}}"),
    _when(b"{state.x: {matches: '" + b"a" * 3000 + b"'}}"),
    _when(b"{state.x: {matches: '\\C'}}"),
    _when(b"{.: 1}"),
    _when(b"{state.: 1}"),
    _when(b"{state..x: 1}"),
    b"rules:\n- 5\n- [a]\n- null\ndefault: {queue: g}\n",
    b"rules:\n- {id: r, route: {queue: q}}\n- {id: r, route: {queue: q}}\ndefault: {queue: g}\n",
    b"rules: []\nschedules: {o: {weekly: {'': ['08:00-09:00']}}}\ndefault: {queue: g}\n",
    b"rules: []\nschedules: {o: {weekly: {mon-: []}}}\ndefault: {queue: g}\n",
    b"rules: []\nschedules: {o: {open: {'2026-12-24': ['00:00-00:00']}}}\ndefault: {queue: g}\n",
    b"rules: []\nschedules: null\ntests: null\ndefault: {queue: g}\n",
    _test(b"{name: t, at: '2026-11-23T10:00:00+25:00', expect: {}}"),
    _test(b"{name: t, at: '9999-12-31T23:59:59-23:59', expect: {}}"),
    _test(b"{name: t, at: '0001-01-01T00:00:00', expect: {}}"),
    _test(b"{name: t, input: {state: 5}, expect: {}}"),
]


@pytest.mark.parametrize("raw", CORNERS, ids=lambda raw: repr(raw[:40]))
def test_loader_corner_cases(raw):
    check_invariants(raw)


def test_load_file_on_folders_and_missing_files(tmp_path):
    for target in (tmp_path, tmp_path / "missing.yaml"):
        loaded = load_file(target)
        assert loaded.ruleset is None
        assert loaded.problems
        assert all(p.line >= 1 and p.col >= 1 for p in loaded.problems)


def _schedule_file(at: str, zone: str = "America/New_York") -> bytes:
    return (
        f"timezone: {zone}\n"
        "schedules: {o: {weekly: {mon: ['22:00-02:00']}, closed: ['2026-12-25']}}\n"
        "rules:\n- id: r\n  when: {during: o}\n  route: {queue: q}\n"
        "default: {queue: g}\n"
        f"tests: [{{name: t, at: '{at}', expect: {{queue: g}}}}]\n"
    ).encode()


OFFSETS = st.sampled_from(["", "Z", "+14:00", "-12:00", "+23:59", "-23:59", "+05:30"])
ZONES = st.sampled_from(["UTC", "America/New_York", "Pacific/Kiritimati", "Europe/London"])


@FUZZ
@given(st.datetimes(), OFFSETS, ZONES)
def test_any_test_time_runs_or_is_refused(when, offset, zone):
    check_invariants(_schedule_file(when.isoformat() + offset, zone))


def test_extreme_test_times_do_not_crash():
    """Regression (found by the fuzz above): times at the ends of the calendar."""
    for at in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00"):
        check_invariants(_schedule_file(at))


def test_extreme_decision_times_do_not_crash():
    loaded = load_bytes(_schedule_file("2026-11-23T10:00:00"), "x.yaml", default_name="x")
    ruleset = loaded.ruleset
    assert ruleset is not None
    from datetime import UTC, timedelta, timezone

    for at in (
        datetime.min,
        datetime.max,
        datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
        datetime.max.replace(tzinfo=UTC),
    ):
        decision = ruleset.decide({}, at=at)
        assert decision.queue in ("q", "g")
