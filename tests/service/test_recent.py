"""The ops page's in-process view of traffic: a bounded ring and per-minute queue counts."""

from __future__ import annotations

from router.service import Answer
from router.service.recent import TRAFFIC_MINUTES, RecentDecisions


def answer(decision_id: str, queue: str) -> Answer:
    return Answer(
        decision_id=decision_id,
        conversation_id="c",
        shared_id=None,
        ruleset="default",
        ruleset_version="sha256:0",
        queue=queue,
        label=None,
        priority=None,
        skills=(),
        attributes={},
        rule=None,
        outcome="default",
        degraded=False,
        sources={},
        elapsed_ms=1.0,
    )


def test_latest_is_newest_first_and_bounded() -> None:
    recent = RecentDecisions(3, clock=lambda: 1_000_000.0)
    for i in range(5):
        recent.add(answer(f"d{i}", "q"))
    assert [r.answer.decision_id for r in recent.latest(10)] == ["d4", "d3", "d2"]
    assert [r.answer.decision_id for r in recent.latest(1)] == ["d4"]


def test_traffic_counts_per_queue_per_minute_for_the_last_hour_only() -> None:
    now = [60.0 * 10_000]
    recent = RecentDecisions(clock=lambda: now[0])
    recent.add(answer("a", "billing"))
    now[0] += 60
    recent.add(answer("b", "billing"))
    recent.add(answer("c", "general"))
    traffic = recent.traffic()
    assert len(traffic.minutes) == TRAFFIC_MINUTES
    assert traffic.counts["billing"][-2:] == (1, 1)
    assert traffic.counts["general"][-2:] == (0, 1)
    now[0] += 60 * TRAFFIC_MINUTES
    recent.add(answer("d", "general"))
    assert recent.traffic().counts == {"general": (0,) * (TRAFFIC_MINUTES - 1) + (1,)}
