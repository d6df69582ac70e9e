"""Replay: the same rules change nothing; changes are grouped; unknowns are uncertain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.records import Replay, render_text
from router.records.record import decode_record
from router.records.sources import replay_file
from tests.records._records import RULES, record, ruleset, write_file

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MONDAY_NIGHT = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def test_the_same_rules_change_nothing() -> None:
    rules = ruleset()
    replay = Replay({"default": rules})
    for index, reason in enumerate(["refund", "other", "refund", "refund"]):
        replay.feed(
            "r",
            record(
                rules,
                {"handoff": {"handoff_reason": reason}},
                at=MONDAY_NOON,
                conversation_id=f"conv-{index}",
            ),
        )
    report = replay.report()
    assert (report.replayed, report.changed, report.unchanged, report.uncertain) == (4, 0, 4, 0)


def test_changes_are_grouped_by_old_and_new_rule_and_queue() -> None:
    old = ruleset()
    new = ruleset(RULES.replace("route: {queue: vip}", "route: {queue: vip-2}"))
    replay = Replay({"default": new})
    ids = []
    for index in range(3):
        body = record(old, {"state": {"tier": "gold"}}, at=MONDAY_NOON, conversation_id=f"c{index}")
        ids.append(decode_record(body).decision_id)
        replay.feed("r", body)
    replay.feed("r", record(old, {}, at=MONDAY_NOON, conversation_id="plain"))
    document = replay.report().to_dict()
    assert document["changed"] == 3
    assert document["unchanged"] == 1
    assert document["changes"] == [
        {
            "from": {"rule": "vip", "queue": "vip"},
            "to": {"rule": "vip", "queue": "vip-2"},
            "count": 3,
            "examples": ids,
        }
    ]


def test_a_removed_sensitive_value_a_rule_reads_makes_the_decision_uncertain() -> None:
    rules = ruleset()
    body = record(rules, {"context": {"ani": "+447700900123"}}, at=MONDAY_NOON, conversation_id="c")
    assert decode_record(body).rule == "uk-mobile"
    assert b"+447700900123" not in body
    replay = Replay({"default": rules})
    replay.feed("r", body)
    report = replay.report()
    assert (report.replayed, report.uncertain, report.unchanged, report.changed) == (1, 1, 0, 0)
    assert report.uncertain_examples == (decode_record(body).decision_id,)


def test_a_rule_that_holds_whatever_the_removed_value_leaves_the_decision_certain() -> None:
    # 'vip' is any(tier gold, ani +1...): gold decides it whatever the caller's number.
    # 'uk-mobile' above it reads the number: without it, the number could have won.
    without_mobile = RULES.replace('context.ani: {starts_with: "+447"}', "state.never: here")
    rules = ruleset(without_mobile)
    body = record(
        rules,
        {"state": {"tier": "gold"}, "context": {"ani": "+15550100"}},
        at=MONDAY_NOON,
        conversation_id="c",
    )
    replay = Replay({"default": rules})
    replay.feed("r", body)
    assert (replay.report().unchanged, replay.report().uncertain) == (1, 0)


def test_a_removed_value_no_rule_reads_is_not_an_unknown() -> None:
    rules = ruleset(
        RULES.replace('context.ani: {starts_with: "+447"}', "state.never: here").replace(
            'context.ani: {starts_with: "+1"}', "state.never: here"
        )
    )
    replay = Replay({"default": rules})
    replay.feed(
        "r", record(rules, {"context": {"ani": "+44"}}, at=MONDAY_NOON, conversation_id="c")
    )
    assert (replay.report().unchanged, replay.report().uncertain) == (1, 0)


def test_a_failed_source_replays_as_failed_and_is_not_uncertain() -> None:
    rules = ruleset()
    body = record(rules, {"state": None}, at=MONDAY_NOON, conversation_id="c")
    assert decode_record(body).outcome == "fallback"
    replay = Replay({"default": rules})
    replay.feed("r", body)
    assert (replay.report().unchanged, replay.report().uncertain) == (1, 0)


def test_splits_replay_on_the_recorded_conversation_id() -> None:
    rules = ruleset()
    replay = Replay({"default": rules})
    queues = set()
    for index in range(40):
        body = record(
            rules,
            {"handoff": {"handoff_reason": "refund"}},
            at=MONDAY_NOON,
            conversation_id=f"conversation-{index}",
        )
        queues.add(decode_record(body).queue)
        replay.feed("r", body)
    assert queues == {"refunds-a", "refunds-b"}  # both shares were recorded …
    assert replay.report().unchanged == 40  # … and each replays to its own share


def test_schedules_are_evaluated_at_the_recorded_instant() -> None:
    rules = ruleset()
    replay = Replay({"default": rules})
    body = record(rules, {}, at=MONDAY_NIGHT, conversation_id="c")
    assert decode_record(body).queue == "night"
    replay.feed("r", body)
    assert replay.report().unchanged == 1


def test_records_of_another_ruleset_are_skipped() -> None:
    other = ruleset("ruleset: other\nrules: []\ndefault: {queue: q}\n", name="other")
    replay = Replay({"default": ruleset()})
    replay.feed("r", record(other, {}, at=MONDAY_NOON, conversation_id="c"))
    report = replay.report()
    assert (report.replayed, report.skipped, report.other_ruleset) == (0, 1, 1)


def test_records_before_since_are_left_out() -> None:
    rules = ruleset()
    replay = Replay({"default": rules}, since=MONDAY_NIGHT)
    replay.feed("r", record(rules, {}, at=MONDAY_NOON, conversation_id="old"))
    replay.feed("r", record(rules, {}, at=MONDAY_NIGHT, conversation_id="new"))
    assert (replay.report().replayed, replay.report().skipped) == (1, 0)


def test_bad_lines_are_skipped_with_their_place_and_reason(tmp_path: Path) -> None:
    rules = ruleset()
    good = record(rules, {}, at=MONDAY_NOON, conversation_id="c")
    path = write_file(tmp_path / "records.jsonl", [good, good])
    with path.open("ab") as handle:
        handle.write(b"{not json\n")
        handle.write(b'{"decision_id": "x", "ruleset": "default", "queue": "q"}\n')
        handle.write(b"\n")
        handle.write(good[: len(good) // 2])  # cut short mid-record
    replay = Replay({"default": rules})
    replay_file(replay, path)
    report = replay.report()
    assert report.replayed == 2
    assert report.unchanged == 2
    assert report.skipped == 3
    assert [(u.where, u.reason.split(" ")[0]) for u in report.unreadable] == [
        (f"{path}:3", "not"),
        (f"{path}:4", "an"),
        (f"{path}:6", "truncated:"),
    ]
    assert "no ruleset_version, at, facts" in report.unreadable[1].reason


def test_a_newer_record_shape_is_skipped_saying_so() -> None:
    replay = Replay({"default": ruleset()})
    replay.feed("line 1", b'{"v": 2, "decision_id": "x"}')
    assert replay.report().unreadable[0].reason == "record shape v=2: this router reads v=1"


def test_the_text_report_lists_totals_then_changes() -> None:
    old = ruleset()
    new = ruleset(RULES.replace("route: {queue: vip}", "route: {queue: vip-2}"))
    replay = Replay({"default": new})
    replay.feed("r", record(old, {"state": {"tier": "gold"}}, at=MONDAY_NOON, conversation_id="c"))
    text = render_text(replay.report())
    assert "  changed    1" in text
    assert "rule vip   queue vip → vip-2" in text


facts_strategy = st.fixed_dictionaries(
    {
        "handoff": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {}, optional={"handoff_reason": st.sampled_from(["refund", "fraud", "billing", ""])}
            ),
        ),
        "state": st.one_of(
            st.none(),
            st.fixed_dictionaries({}, optional={"tier": st.sampled_from(["gold", "silver", 3])}),
        ),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "ani": st.sampled_from(["+447700900123", "+15550100", "+33"]),
                "dnis": st.text(max_size=5),
            },
        ),
    }
)


BUNDLED = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traffic=st.lists(
        st.tuples(
            facts_strategy,
            st.datetimes(
                min_value=datetime(2026, 1, 1),
                max_value=datetime(2027, 12, 31),
                timezones=st.just(UTC),
            ),
            st.one_of(st.none(), st.text(min_size=1, max_size=12)),
        ),
        max_size=12,
    ),
)
def test_replaying_recorded_traffic_against_the_same_version_changes_nothing(
    traffic: list[tuple[dict[str, Any], datetime, str | None]],
) -> None:
    """The reload dry run: replayed against the version that decided it, recorded traffic
    changes nothing, and is uncertain only where a rule reads a value that was removed."""
    for text in (RULES, BUNDLED.read_text(encoding="utf-8")):
        rules = ruleset(text)
        replay = Replay({"default": rules})
        for facts, at, conversation_id in traffic:
            replay.feed("r", record(rules, facts, at=at, conversation_id=conversation_id))
        report = replay.report()
        assert report.changed == 0
        assert report.changes == ()
        assert report.replayed == report.unchanged + report.uncertain == len(traffic)
        removed = sum("ani" in facts["context"] for facts, _, _ in traffic)
        reads_removed = text == RULES  # the bundled rules never read context.ani
        assert report.uncertain <= (removed if reads_removed else 0)


def test_durations_read_as_ops_write_them() -> None:
    from datetime import timedelta

    import pytest

    from router.records.replay import parse_duration

    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("7d") == timedelta(days=7)
    for bad in ("soon", "1h 30m", "", "14m3502438s21s2417277724202790053.149h"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
