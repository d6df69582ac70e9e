"""Deterministic splits (contract §3): the bucket formula, keys, inheritance, stability."""

from __future__ import annotations

import hashlib

import pytest

from ._rules import compile_doc, decide_both, errors_of


def bucket(rule_id: str, key: str) -> int:
    """The contract's formula, written out independently of the engine."""
    return int.from_bytes(hashlib.sha256(f"{rule_id}/{key}".encode()).digest()[:8], "big") % 100


def split_rule(rule_id: str = "ab", weights=(90, 10), when=None, **route) -> dict:
    shares = [{"weight": w, "queue": f"q{i}"} for i, w in enumerate(weights)]
    rule = {"id": rule_id, "route": {**route, "split": shares}}
    if when is not None:
        rule["when"] = when
    return rule


def ruleset(*rules):
    return compile_doc({"rules": list(rules), "default": {"queue": "default"}})


def expected_queue(weights, b: int) -> str:
    upper = 0
    for i, weight in enumerate(weights):
        upper += weight
        if b < upper:
            return f"q{i}"
    raise AssertionError("weights do not cover the bucket")


IDS = [f"conv-{i}" for i in range(400)]


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (33, 33, 34), (1, 98, 1), (10, 0, 90)])
def test_the_bucket_is_the_contract_formula_and_shares_take_buckets_in_order(weights):
    rs = ruleset(split_rule("ab", weights))
    for cid in IDS:
        decision = decide_both(rs, {}, conversation_id=cid)
        assert decision.queue == expected_queue(weights, bucket("ab", cid)), cid
        assert decision.rule == "ab"


def test_ninety_ten_gives_buckets_0_to_89_to_the_first_share():
    rs = ruleset(split_rule("complaints", (90, 10)))
    by_bucket: dict[int, str] = {}
    i = 0
    while len(by_bucket) < 100:
        cid = f"c{i}"
        by_bucket.setdefault(bucket("complaints", cid), cid)
        i += 1
    for b, cid in by_bucket.items():
        queue = decide_both(rs, {}, conversation_id=cid).queue
        assert queue == ("q0" if b <= 89 else "q1"), (b, cid)


def test_the_rule_id_is_part_of_the_hash():
    one, other = ruleset(split_rule("alpha", (50, 50))), ruleset(split_rule("beta", (50, 50)))
    differ = [
        cid
        for cid in IDS
        if decide_both(one, {}, conversation_id=cid).queue
        != decide_both(other, {}, conversation_id=cid).queue
    ]
    assert differ, "rule ids should change the buckets"
    for cid in differ:
        assert (bucket("alpha", cid) < 50) != (bucket("beta", cid) < 50)


def test_the_key_is_the_conversation_id_else_the_shared_id():
    rs = ruleset(split_rule("ab", (50, 50)))
    for i in range(100):
        cid, sid = f"conv-{i}", f"CA{i:04x}"
        with_both = decide_both(rs, {}, conversation_id=cid, shared_id=sid)
        assert with_both.queue == expected_queue((50, 50), bucket("ab", cid))
        shared_only = decide_both(rs, {}, shared_id=sid)
        assert shared_only.queue == expected_queue((50, 50), bucket("ab", sid))


def test_fields_a_share_leaves_out_come_from_the_rules_route():
    rs = compile_doc(
        {
            "rules": [
                {
                    "id": "r",
                    "route": {
                        "queue": "base-queue",
                        "label": "Base {state.t}",
                        "priority": 5,
                        "skills": ["billing"],
                        "attributes": {"x_a": "1"},
                        "split": [
                            {"weight": 50},
                            {
                                "weight": 50,
                                "queue": "pilot",
                                "label": "Pilot",
                                "priority": 9,
                                "skills": [],
                                "attributes": {"x_b": "2"},
                            },
                        ],
                    },
                }
            ],
            "default": {"queue": "d"},
        }
    )
    first = next(c for c in IDS if bucket("r", c) < 50)
    second = next(c for c in IDS if bucket("r", c) >= 50)
    a = decide_both(rs, {"state": {"t": "T"}}, conversation_id=first)
    assert (a.queue, a.label, a.priority, list(a.skills), dict(a.attributes)) == (
        "base-queue",
        "Base T",
        5,
        ["billing"],
        {"x_a": "1"},
    )
    b = decide_both(rs, {"state": {"t": "T"}}, conversation_id=second)
    assert (b.queue, b.label, b.priority, list(b.skills), dict(b.attributes)) == (
        "pilot",
        "Pilot",
        9,
        [],
        {"x_b": "2"},
    )


def test_a_share_overriding_only_the_queue_keeps_the_rest():
    rs = ruleset(split_rule("r", (100,), label="L", priority=3, skills=["s"]))
    d = decide_both(rs, {}, conversation_id="x")
    assert (d.queue, d.label, d.priority, list(d.skills)) == ("q0", "L", 3, ["s"])


def test_the_same_input_gives_the_same_share_every_time_and_every_load():
    first = ruleset(split_rule("ab", (50, 50)))
    second = ruleset(split_rule("ab", (50, 50)))
    for cid in IDS[:100]:
        queues = {decide_both(rs, {}, conversation_id=cid).queue for rs in (first, second, first)}
        assert len(queues) == 1


def test_adding_other_rules_does_not_reshuffle_a_rules_split():
    alone = ruleset(split_rule("ab", (50, 50), when={"state.x": 1}))
    crowded = ruleset(
        {"id": "before", "when": {"state.x": 2}, "route": {"queue": "b"}},
        split_rule("other", (50, 50), when={"state.x": 3}),
        split_rule("ab", (50, 50), when={"state.x": 1}),
        {"id": "after", "route": {"queue": "z"}},
    )
    for cid in IDS:
        one = decide_both(alone, {"state": {"x": 1}}, conversation_id=cid)
        two = decide_both(crowded, {"state": {"x": 1}}, conversation_id=cid)
        assert (one.rule, one.queue) == (two.rule, two.queue) == ("ab", one.queue)


def test_all_weight_on_one_share():
    rs = ruleset(split_rule("r", (0, 100)))
    assert {decide_both(rs, {}, conversation_id=c).queue for c in IDS} == {"q1"}
    rs = ruleset(split_rule("r", (100, 0)))
    assert {decide_both(rs, {}, conversation_id=c).queue for c in IDS} == {"q0"}


def test_a_split_spreads_calls_roughly_by_weight():
    rs = ruleset(split_rule("r", (90, 10)))
    share = sum(decide_both(rs, {}, conversation_id=f"id-{i}").queue == "q0" for i in range(2000))
    assert 1700 < share < 1900


@pytest.mark.parametrize("weights", [(50, 40), (60, 50), (99,), (0,), (100, 1)])
def test_weights_not_summing_to_100_is_an_error(tmp_path, weights):
    shares = "".join(f"        - {{weight: {w}, queue: q{i}}}\n" for i, w in enumerate(weights))
    text = "default: {queue: d}\nrules:\n  - id: r\n    route:\n      split:\n" + shares
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].line in (5, 6)
    assert str(sum(weights)) in errors[0].message


@pytest.mark.parametrize("weight", ["-1", "101", "50.5", "'50'"])
def test_a_weight_is_a_whole_number_from_0_to_100(tmp_path, weight):
    text = (
        "default: {queue: d}\nrules:\n  - id: r\n    route:\n      split:\n"
        f"        - {{weight: {weight}, queue: a}}\n        - {{weight: 50, queue: b}}\n"
    )
    assert any(p.line == 6 for p in errors_of(tmp_path, text))
