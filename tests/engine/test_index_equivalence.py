"""Property: the indexed ``RuleSet.decide`` agrees with the plain in-order scan and with
``RuleSet.explain``.

Random rulesets (eq/in on a few paths, the other operators, any/all/not,
ignore_case, mixed value types, schedules) are written to a file and loaded with
``load_rules``; random inputs (failed namespaces, missing paths, numeric
strings, case variants, instants in and out of office hours) are decided both
ways and explained: explain must select the rule decide chose, return the same
decision, and say of every rule exactly what that rule's compiled check says.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import load_rules
from router.engine.decide import decide_by_scan

PATHS = ["state.a", "state.b", "handoff.r", "context.c", "state.n.m", "conversation.from_number"]
TEXTS = [
    "gold", "Gold", "GOLD", "3", "3.0", "03", " 3", "2.5", "-1", "1000", "1e3",
    "true", "TRUE", "false", "x", "", "straße", "STRASSE", "refund", "+44",
]  # fmt: skip
NUMBERS = [0, 3, -1, 1000, 2.5, 3.0, 0.5]

scalars = st.one_of(st.sampled_from(TEXTS), st.sampled_from(NUMBERS), st.booleans())
texts = st.sampled_from(TEXTS)
numbers = st.sampled_from(NUMBERS)
patterns = st.sampled_from(["^g", "old$", "(?i)gold", "^[0-9.]+$", "a|b", "", "ß", "^$"])
value_lists = st.lists(scalars, min_size=1, max_size=4)

CASE_OPS = {"eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "matches"}

single_ops = st.one_of(
    st.tuples(st.just("eq"), scalars),
    st.tuples(st.just("in"), value_lists),
    st.tuples(st.just("ne"), scalars),
    st.tuples(st.just("not_in"), value_lists),
    st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), numbers),
    st.tuples(st.just("between"), st.lists(numbers, min_size=2, max_size=2).map(sorted)),
    st.tuples(st.just("contains"), scalars),
    st.tuples(st.sampled_from(["starts_with", "ends_with"]), texts),
    st.tuples(st.just("matches"), patterns),
    st.tuples(st.sampled_from(["exists", "empty"]), st.booleans()),
)


@st.composite
def matchers(draw):
    kind = draw(st.sampled_from(["scalar", "list", "ops", "ops", "ops"]))
    if kind == "scalar":
        return draw(scalars)
    if kind == "list":
        return draw(value_lists)
    ops = dict(draw(st.lists(single_ops, min_size=1, max_size=3)))
    if CASE_OPS & set(ops) and draw(st.booleans()):
        ops["ignore_case"] = True
    return ops


path_conditions = st.dictionaries(st.sampled_from(PATHS), matchers(), min_size=1, max_size=3)


def _extend(inner):
    return st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        inner.map(lambda x: {"not": x}),
        st.tuples(path_conditions, inner).map(lambda pair: {**pair[1], **pair[0]}),
    )


conditions = st.recursive(path_conditions, _extend, max_leaves=6)

# What the index files rules under: a top-level eq/in (scalar or list) beside other conditions.
indexable = st.tuples(
    st.dictionaries(
        st.sampled_from(PATHS), st.one_of(scalars, value_lists), min_size=1, max_size=2
    ),
    st.one_of(st.just({}), conditions),
).map(lambda pair: {**pair[1], **pair[0]})


schedule_conditions = st.builds(
    lambda key, name: {key: name}, st.sampled_from(["during", "outside"]), st.just("office")
)


@st.composite
def rulesets(draw):
    rules = []
    for i in range(draw(st.integers(min_value=1, max_value=8))):
        rule = {"id": f"r{i}"}
        shape = draw(st.integers(0, 19))
        if shape > 9:
            rule["when"] = draw(indexable)
        elif shape > 0:
            rule["when"] = draw(conditions)
        if shape % 5 == 1:  # a schedule beside the conditions, or inside an any/not
            timed = draw(schedule_conditions)
            rule["when"] = draw(
                st.sampled_from(
                    [
                        {**rule.get("when", {}), **timed},
                        {"any": [timed, rule.get("when") or {"state.a": "x"}]},
                        {"not": timed},
                    ]
                )
            )
        if draw(st.integers(0, 4)) == 0:
            first = draw(st.integers(0, 100))
            rule["route"] = {
                "label": f"L{i} {{state.a|-}}",
                "split": [
                    {"weight": first, "queue": f"q{i}a"},
                    {"weight": 100 - first, "queue": f"q{i}b"},
                ],
            }
        else:
            rule["route"] = {"queue": f"q{i}", "label": f"L{i} {{state.a|-}}"}
        rules.append(rule)
    doc = {
        "ruleset": "prop",
        "schedules": {"office": {"weekly": {"mon-fri": ["08:00-18:00"]}}},
        "rules": rules,
        "default": {"queue": "default"},
    }
    if draw(st.booleans()):
        doc["fallback"] = {"queue": "fallback"}
    return doc


fact_values = st.one_of(
    scalars, st.none(), st.lists(scalars, max_size=3), st.dictionaries(st.just("m"), scalars)
)


def namespace(keys: dict):
    body = st.fixed_dictionaries({}, optional=keys)
    return st.one_of(st.just("absent"), st.none(), body)


facts_strategy = st.fixed_dictionaries(
    {
        "state": namespace(
            {
                "a": fact_values,
                "b": fact_values,
                "n": st.one_of(fact_values, st.fixed_dictionaries({}, optional={"m": fact_values})),
            }
        ),
        "handoff": namespace({"r": fact_values}),
        "context": namespace({"c": fact_values}),
        "conversation": namespace({"fromNumber": fact_values, "from_number": fact_values}),
    }
).map(lambda facts: {k: v for k, v in facts.items() if v != "absent"})

#: Monday 10:00 (office open) and 20:00 (closed), UTC.
INSTANTS = [datetime.fromisoformat(f"2026-11-23T{h}:00:00+00:00") for h in ("10", "20")]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    doc=rulesets(),
    inputs=st.lists(
        st.tuples(
            facts_strategy, st.one_of(st.none(), st.text(max_size=6)), st.sampled_from(INSTANTS)
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_indexed_decide_agrees_with_the_in_order_scan_and_with_explain(tmp_path, doc, inputs):
    path = tmp_path / "prop.yaml"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    ruleset = load_rules(path)["prop"]
    for facts, cid, at in inputs:
        indexed = ruleset.decide(facts, conversation_id=cid, at=at)
        scanned = decide_by_scan(ruleset, facts, conversation_id=cid, at=at)
        assert (indexed.rule, indexed.queue, indexed.outcome) == (
            scanned.rule,
            scanned.queue,
            scanned.outcome,
        ), (facts, cid)
        assert indexed == scanned

        explained = ruleset.explain(facts, conversation_id=cid, at=at)
        assert explained.trace is not None
        assert dataclasses.replace(explained, trace=None) == indexed, (facts, cid)
        selected = [entry["rule"] for entry in explained.trace if entry["selected"]]
        assert selected == ([] if indexed.rule is None else [indexed.rule])
        matched = [entry["rule"] for entry in explained.trace if entry["matched"]]
        assert matched[:1] == selected  # the selected rule is the first that matched
        scope, _ = ruleset._scope(facts, at)
        for entry, check in zip(explained.trace, ruleset.checks, strict=True):
            result = check(scope)
            assert entry["matched"] is (result is True)
            assert entry["result"] == {True: "matched", False: "no_match", None: "unknown"}[result]
            assert (entry["condition"] is None) is (result is True)
