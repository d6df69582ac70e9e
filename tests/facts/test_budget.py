"""The request deadline: what is left, and what upstream calls may use of it."""

from __future__ import annotations

import time

import pytest

from router.budget import Deadline, reserve_for


@pytest.mark.parametrize(
    ("budget_ms", "reserve_ms"),
    [(100, 10), (200, 10), (500, 25), (1000, 50), (5000, 50)],
)
def test_reserve_is_five_percent_clamped_to_10_to_50_ms(budget_ms: int, reserve_ms: int) -> None:
    assert reserve_for(budget_ms / 1000) == pytest.approx(reserve_ms / 1000)
    assert Deadline.start(budget_ms).reserve_s == pytest.approx(reserve_ms / 1000)


def test_upstream_timeout_is_remaining_minus_reserve() -> None:
    deadline = Deadline.start(500)
    remaining, upstream = deadline.remaining(), deadline.upstream_timeout()
    assert 0.45 < remaining <= 0.5
    assert upstream == pytest.approx(remaining - 0.025, abs=0.005)
    assert upstream < remaining


def test_budget_runs_from_arrival_not_from_start_call() -> None:
    arrived = time.monotonic() - 0.3
    deadline = Deadline.start(500, started_at=arrived)
    assert deadline.remaining() <= 0.2
    assert deadline.elapsed() >= 0.3


def test_nothing_is_ever_negative_once_expired() -> None:
    deadline = Deadline.start(100, started_at=time.monotonic() - 10)
    assert deadline.remaining() == 0.0
    assert deadline.upstream_timeout() == 0.0
    assert deadline.expired()


def test_a_budget_smaller_than_the_reserve_leaves_upstream_nothing() -> None:
    deadline = Deadline.start(5)
    assert deadline.upstream_timeout() == 0.0
    assert deadline.remaining() > 0.0


def test_reserve_can_be_overridden() -> None:
    deadline = Deadline.start(1000, reserve_ms=200)
    assert deadline.upstream_expires_at == pytest.approx(deadline.started_at + 0.8)
