"""Schedules (contract §3): weekly hours, overnight ranges, closed and open dates, zones, DST."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.engine.schedule import Schedule, parse_hours

from ._rules import decide_both, load_one


def schedule_ruleset(tmp_path, schedule: str, *, timezone: str = "Europe/London"):
    body = textwrap.indent(textwrap.dedent(schedule).strip("\n"), "    ")
    text = (
        f"timezone: {timezone}\n"
        "schedules:\n"
        "  s:\n"
        f"{body}\n"
        "rules:\n"
        "  - id: open\n    when: {during: s}\n    route: {queue: open}\n"
        "  - id: shut\n    when: {outside: s}\n    route: {queue: shut}\n"
        "default: {queue: neither}\n"
    )
    return load_one(tmp_path, text)


def is_open(ruleset, at: str) -> bool:
    decision = decide_both(ruleset, {}, at=datetime.fromisoformat(at))
    assert decision.rule in ("open", "shut"), "during and outside are complementary"
    return decision.rule == "open"


def check(tmp_path, schedule: str, cases: list[tuple[str, bool]], **kwargs) -> None:
    ruleset = schedule_ruleset(tmp_path, schedule, **kwargs)
    got = [(at, is_open(ruleset, at)) for at, _ in cases]
    assert got == cases


OFFICE = """
weekly:
  mon-fri: ["08:00-18:00"]
  sat: ["09:00-12:30"]
"""


def test_weekly_ranges_with_end_exclusive(tmp_path):
    check(
        tmp_path,
        OFFICE,
        [
            ("2026-11-23T07:59:59+00:00", False),  # Monday
            ("2026-11-23T08:00:00+00:00", True),
            ("2026-11-23T17:59:59+00:00", True),
            ("2026-11-23T18:00:00+00:00", False),
            ("2026-11-27T12:00:00+00:00", True),  # Friday: inside mon-fri
            ("2026-11-28T09:00:00+00:00", True),  # Saturday
            ("2026-11-28T12:29:00+00:00", True),
            ("2026-11-28T12:30:00+00:00", False),
            ("2026-11-29T10:00:00+00:00", False),  # Sunday: no hours
        ],
    )


def test_day_ranges_cover_every_day_between(tmp_path):
    schedule = 'weekly:\n  tue-thu: ["10:00-11:00"]\n  sun: ["10:00-11:00"]\n'
    days = {
        "2026-11-23": False,  # mon
        "2026-11-24": True,
        "2026-11-25": True,
        "2026-11-26": True,
        "2026-11-27": False,  # fri
        "2026-11-28": False,
        "2026-11-29": True,  # sun
    }
    check(tmp_path, schedule, [(f"{day}T10:30:00+00:00", want) for day, want in days.items()])


def test_several_ranges_on_one_day(tmp_path):
    schedule = 'weekly:\n  mon: ["09:00-12:00", "13:00-17:00"]\n'
    check(
        tmp_path,
        schedule,
        [
            ("2026-11-23T11:59:00+00:00", True),
            ("2026-11-23T12:30:00+00:00", False),
            ("2026-11-23T13:00:00+00:00", True),
            ("2026-11-23T17:00:00+00:00", False),
        ],
    )


def test_a_range_ending_at_2400_includes_the_last_minute(tmp_path):
    check(
        tmp_path,
        'weekly:\n  mon: ["18:00-24:00"]\n',
        [
            ("2026-11-23T23:59:59+00:00", True),
            ("2026-11-24T00:00:00+00:00", False),
        ],
    )


NIGHT = """
weekly:
  fri: ["22:00-02:00"]
  sat: ["22:00-02:00"]
"""


def test_a_range_past_midnight_runs_into_the_next_day(tmp_path):
    check(
        tmp_path,
        NIGHT,
        [
            ("2026-11-26T23:00:00+00:00", False),  # thursday night: no range starts thursday
            ("2026-11-27T21:59:00+00:00", False),
            ("2026-11-27T22:00:00+00:00", True),  # friday 22:00
            ("2026-11-28T01:59:00+00:00", True),  # friday's tail, on saturday
            ("2026-11-28T02:00:00+00:00", False),  # end exclusive
            ("2026-11-28T23:00:00+00:00", True),
            ("2026-11-29T01:00:00+00:00", True),  # saturday's tail, on sunday
            ("2026-11-29T23:00:00+00:00", False),
            ("2026-11-30T01:00:00+00:00", False),
        ],
    )


def test_closing_a_day_closes_its_overnight_tail_and_not_the_previous_nights(tmp_path):
    check(
        tmp_path,
        NIGHT + 'closed: ["2026-11-28"]\n',  # the saturday
        [
            ("2026-11-27T23:00:00+00:00", True),  # friday night
            ("2026-11-28T01:00:00+00:00", True),  # friday's tail spills into closed saturday: open
            ("2026-11-28T23:00:00+00:00", False),  # saturday's own range: closed
            ("2026-11-29T01:00:00+00:00", False),  # saturday's tail on sunday: closed too
        ],
    )


def test_closing_the_first_night_closes_its_tail(tmp_path):
    check(
        tmp_path,
        NIGHT + 'closed: ["2026-11-27"]\n',  # the friday
        [
            ("2026-11-27T23:00:00+00:00", False),
            ("2026-11-28T01:00:00+00:00", False),  # friday's tail, though saturday is not closed
            ("2026-11-28T23:00:00+00:00", True),
        ],
    )


def test_closed_dates_close_the_whole_local_day(tmp_path):
    check(
        tmp_path,
        OFFICE + 'closed: ["2026-12-25", "2026-12-26"]\n',
        [
            ("2026-12-24T10:00:00+00:00", True),
            ("2026-12-25T10:00:00+00:00", False),
            ("2026-12-26T10:00:00+00:00", False),  # a saturday
            ("2026-12-28T10:00:00+00:00", True),
        ],
    )


def test_open_dates_replace_that_days_weekly_hours(tmp_path):
    check(
        tmp_path,
        OFFICE + 'open:\n  "2026-12-24": ["09:00-13:00"]\n  "2026-12-27": ["10:00-11:00"]\n',
        [
            ("2026-12-24T08:30:00+00:00", False),  # weekly would be open
            ("2026-12-24T09:00:00+00:00", True),
            ("2026-12-24T12:59:00+00:00", True),
            ("2026-12-24T13:00:00+00:00", False),
            ("2026-12-24T15:00:00+00:00", False),  # weekly would be open
            ("2026-12-23T15:00:00+00:00", True),  # other days keep weekly hours
            ("2026-12-27T10:30:00+00:00", True),  # a sunday, no weekly hours
            ("2026-12-27T11:00:00+00:00", False),
        ],
    )


def test_open_dates_replace_the_overnight_range_starting_that_day(tmp_path):
    check(
        tmp_path,
        NIGHT + 'open:\n  "2026-11-27": ["09:00-10:00"]\n',
        [
            ("2026-11-27T09:30:00+00:00", True),
            ("2026-11-27T23:00:00+00:00", False),  # friday's weekly night is replaced
            ("2026-11-28T01:00:00+00:00", False),  # and so is its tail
            ("2026-11-28T23:00:00+00:00", True),
        ],
    )


def test_an_open_date_may_run_past_midnight(tmp_path):
    check(
        tmp_path,
        'weekly: {}\nopen:\n  "2026-12-31": ["20:00-01:00"]\n',
        [
            ("2026-12-31T19:59:00+00:00", False),
            ("2026-12-31T23:30:00+00:00", True),
            ("2027-01-01T00:30:00+00:00", True),
            ("2027-01-01T01:00:00+00:00", False),
        ],
    )


def test_the_ruleset_time_zone_applies_to_its_schedules(tmp_path):
    check(
        tmp_path,
        OFFICE,
        [
            ("2026-11-23T12:59:00+00:00", False),  # 07:59 in New York
            ("2026-11-23T13:00:00+00:00", True),  # 08:00 in New York
            ("2026-11-23T08:00:00-05:00", True),
            ("2026-11-23T22:59:00+00:00", True),  # 17:59 in New York
            ("2026-11-23T23:00:00+00:00", False),
        ],
        timezone="America/New_York",
    )


def test_a_schedule_may_set_its_own_time_zone(tmp_path):
    schedule = 'timezone: America/New_York\nweekly:\n  mon-fri: ["09:00-17:00"]\n'
    ruleset = schedule_ruleset(tmp_path, schedule, timezone="Europe/London")
    cases = [
        ("2026-11-23T13:59:00+00:00", False),  # 08:59 in New York
        ("2026-11-23T14:00:00+00:00", True),
        ("2026-11-23T21:59:00+00:00", True),
        ("2026-11-23T22:00:00+00:00", False),
        # naive times are read in the ruleset's zone (London, GMT in November)
        ("2026-11-23T13:30:00", False),
        ("2026-11-23T14:30:00", True),
        ("2026-11-23T21:30:00", True),
        ("2026-11-23T22:30:00", False),
    ]
    assert [(at, is_open(ruleset, at)) for at, _ in cases] == cases


def test_two_schedules_in_two_zones(tmp_path):
    text = (
        "timezone: Europe/London\n"
        "schedules:\n"
        "  london: {weekly: {mon-fri: ['09:00-17:00']}}\n"
        "  madrid: {timezone: Europe/Madrid, weekly: {mon-fri: ['09:00-17:00']}}\n"
        "rules:\n"
        "  - id: both\n    when: {during: london, all: [{during: madrid}]}\n"
        "    route: {queue: both}\n"
        "  - id: madrid-only\n    when: {during: madrid}\n    route: {queue: madrid}\n"
        "  - id: london-only\n    when: {during: london}\n    route: {queue: london}\n"
        "default: {queue: none}\n"
    )
    ruleset = load_one(tmp_path, text)

    def rule_at(at):
        return decide_both(ruleset, {}, at=datetime.fromisoformat(at)).rule

    assert rule_at("2026-11-23T08:30:00+00:00") == "madrid-only"  # 09:30 Madrid
    assert rule_at("2026-11-23T10:00:00+00:00") == "both"
    assert rule_at("2026-11-23T16:30:00+00:00") == "london-only"  # 17:30 Madrid
    assert rule_at("2026-11-23T17:30:00+00:00") is None


def test_closed_dates_are_local_dates_of_the_schedules_zone(tmp_path):
    schedule = (
        'timezone: America/New_York\nweekly:\n  mon-sun: ["00:00-24:00"]\nclosed: ["2026-11-24"]\n'
    )
    check(
        tmp_path,
        schedule,
        [
            ("2026-11-24T03:00:00+00:00", True),  # 22:00 on the 23rd in New York
            ("2026-11-24T06:00:00+00:00", False),  # 01:00 on the 24th
            ("2026-11-25T04:59:00+00:00", False),  # 23:59 on the 24th
            ("2026-11-25T05:00:00+00:00", True),  # 00:00 on the 25th
        ],
    )


# --- DST changeover days in Europe/London: wall-clock rules --------------------------------------

SUNDAY_DAY = 'weekly:\n  sun: ["08:00-18:00"]\n'


def test_spring_forward_day_uses_wall_clock_hours(tmp_path):
    check(
        tmp_path,
        SUNDAY_DAY,
        [  # 2026-03-29: 01:00 GMT becomes 02:00 BST
            ("2026-03-29T06:59:00+00:00", False),  # 07:59 BST
            ("2026-03-29T07:00:00+00:00", True),  # 08:00 BST
            ("2026-03-29T16:59:00+00:00", True),  # 17:59 BST
            ("2026-03-29T17:00:00+00:00", False),  # 18:00 BST
            ("2026-03-29T17:30:00+00:00", False),
        ],
    )


def test_fall_back_day_uses_wall_clock_hours(tmp_path):
    check(
        tmp_path,
        SUNDAY_DAY,
        [  # 2026-10-25: 02:00 BST becomes 01:00 GMT
            ("2026-10-25T07:30:00+00:00", False),  # 07:30 GMT
            ("2026-10-25T08:00:00+00:00", True),
            ("2026-10-25T17:59:00+00:00", True),
            ("2026-10-25T18:00:00+00:00", False),
        ],
    )


def test_the_hour_that_does_not_exist_is_never_open(tmp_path):
    check(
        tmp_path,
        'weekly:\n  sun: ["01:00-02:00"]\n',
        [
            ("2026-03-29T00:59:00+00:00", False),  # 00:59 GMT
            ("2026-03-29T01:00:00+00:00", False),  # 02:00 BST: the hour was skipped
            ("2026-03-22T01:30:00+00:00", True),  # a normal sunday
        ],
    )


def test_a_range_across_the_spring_gap(tmp_path):
    check(
        tmp_path,
        'weekly:\n  sun: ["00:30-03:00"]\n',
        [
            ("2026-03-29T00:45:00+00:00", True),  # 00:45 GMT
            ("2026-03-29T01:30:00+00:00", True),  # 02:30 BST
            ("2026-03-29T02:00:00+00:00", False),  # 03:00 BST
        ],
    )


def test_the_repeated_hour_is_open_both_times(tmp_path):
    check(
        tmp_path,
        'weekly:\n  sun: ["01:00-02:00"]\n',
        [
            ("2026-10-24T23:59:00+00:00", False),  # 00:59 BST
            ("2026-10-25T00:30:00+00:00", True),  # 01:30 BST
            ("2026-10-25T01:30:00+00:00", True),  # 01:30 GMT
            ("2026-10-25T02:00:00+00:00", False),  # 02:00 GMT
        ],
    )


def test_an_overnight_range_across_the_changeover(tmp_path):
    check(
        tmp_path,
        'weekly:\n  sat: ["22:00-06:00"]\n',
        [
            ("2026-03-28T22:00:00+00:00", True),  # saturday 22:00 GMT
            ("2026-03-29T04:59:00+00:00", True),  # sunday 05:59 BST
            ("2026-03-29T05:00:00+00:00", False),  # 06:00 BST
            ("2026-10-25T05:59:00+00:00", True),  # 05:59 GMT
            ("2026-10-25T06:00:00+00:00", False),
        ],
    )


def test_a_naive_time_is_read_in_the_rulesets_zone(tmp_path):
    ruleset = schedule_ruleset(tmp_path, 'weekly:\n  mon: ["08:00-18:00"]\n')
    # 2026-07-06 is a Monday in British Summer Time (UTC+1)
    assert is_open(ruleset, "2026-07-06T07:30:00") is False  # read as UTC it would be open
    assert is_open(ruleset, "2026-07-06T17:30:00") is True  # read as UTC it would be shut
    assert is_open(ruleset, "2026-07-06T07:30:00+00:00") is True
    assert is_open(ruleset, "2026-07-06T17:30:00+00:00") is False


def test_a_naive_time_in_another_ruleset_zone(tmp_path):
    ruleset = schedule_ruleset(tmp_path, 'weekly:\n  mon: ["08:00-18:00"]\n', timezone="Asia/Tokyo")
    assert is_open(ruleset, "2026-11-23T08:00:00") is True  # 08:00 in Tokyo
    assert is_open(ruleset, "2026-11-23T07:59:00") is False
    assert is_open(ruleset, "2026-11-23T08:00:00+00:00") is True  # 17:00 in Tokyo
    assert is_open(ruleset, "2026-11-23T09:00:00+00:00") is False  # 18:00 in Tokyo


@pytest.mark.parametrize("keyword", ["during", "outside"])
def test_during_and_outside_alone(tmp_path, keyword):
    text = (
        "timezone: UTC\nschedules:\n  office: {weekly: {mon-fri: ['08:00-18:00']}}\n"
        f"rules:\n  - id: r\n    when: {{{keyword}: office}}\n    route: {{queue: q}}\n"
        "default: {queue: d}\n"
    )
    ruleset = load_one(tmp_path, text)
    inside = decide_both(ruleset, {}, at=datetime.fromisoformat("2026-11-23T10:00:00+00:00"))
    outside = decide_both(ruleset, {}, at=datetime.fromisoformat("2026-11-23T20:00:00+00:00"))
    assert (inside.rule == "r") is (keyword == "during")
    assert (outside.rule == "r") is (keyword == "outside")


def test_no_at_means_now(tmp_path):
    ruleset = schedule_ruleset(tmp_path, 'weekly:\n  mon-sun: ["00:00-24:00"]\n')
    assert decide_both(ruleset, {}).rule == "open"
    never = schedule_ruleset(tmp_path, "weekly: {}\n")
    assert decide_both(never, {}).rule == "shut"


def test_a_range_ending_where_it_starts_runs_a_full_day(tmp_path):
    check(
        tmp_path,
        'weekly:\n  mon: ["10:00-10:00"]\n',
        [
            ("2026-11-23T09:59:00+00:00", False),
            ("2026-11-23T10:00:00+00:00", True),
            ("2026-11-24T09:59:00+00:00", True),  # tuesday, still monday's range
            ("2026-11-24T10:00:00+00:00", False),
        ],
    )


_ZONES = ("Europe/London", "Asia/Kathmandu", "America/St_Johns", "Europe/Amsterdam", "UTC")


def _fresh_answer(schedule: Schedule, at: datetime) -> bool:
    """What ``schedule`` answers for ``at`` with nothing remembered."""
    return replace(schedule).is_open(at)


_EDGES = (time(8, 30), time(17, 45), time(22, 15), time(1, 30))


@settings(max_examples=150, deadline=None)
@given(
    zone_name=st.sampled_from(_ZONES),
    days=st.lists(st.dates(date(1850, 1, 1), date(2100, 1, 1)), min_size=1, max_size=4),
    edge=st.sampled_from(_EDGES),
    shifts=st.lists(st.integers(-150, 150), min_size=1, max_size=8),
)
def test_the_answer_remembered_per_minute_is_the_answer_worked_out(
    zone_name: str, days: list[date], edge: time, shifts: list[int]
) -> None:
    """Each schedule remembers its last UTC minute's answer: asked again within the same
    minute, in the next, around an opening or closing time, or in a zone whose offset then
    was not whole minutes (Amsterdam before 1937, Kathmandu's +05:30 → +05:45), it answers
    what a fresh schedule works out."""
    zone = ZoneInfo(zone_name)
    weekday = (parse_hours("08:30-17:45"),)
    weekly = (weekday,) * 5 + ((parse_hours("22:15-01:30"),), ())
    schedule = Schedule("desk", zone, weekly, frozenset(), {})
    for day in days:
        for shift in shifts:
            local = datetime.combine(day, edge) + timedelta(seconds=shift)
            start = local.replace(tzinfo=zone).astimezone(UTC).replace(second=0)
            for second in range(60):  # every second of that UTC minute, in order
                at = start + timedelta(seconds=second)
                assert schedule.is_open(at) is _fresh_answer(schedule, at), at
