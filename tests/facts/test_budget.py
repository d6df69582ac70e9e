"""The request deadline: what is left, and what upstream calls may use of it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import router.budget
from router.budget import Deadline, reserve_for
from tests.fakes.clock import ManualClock


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> ManualClock:
    """``router.budget`` reads ``time.monotonic`` from ``clock``, which moves only when told:
    what a deadline says is then exact, however long the test takes between two reads."""
    monkeypatch.setattr(router.budget, "time", SimpleNamespace(monotonic=clock))
    return clock


@pytest.mark.parametrize(
    ("budget_ms", "reserve_ms"),
    [(100, 10), (200, 10), (500, 25), (1000, 50), (5000, 50)],
)
def test_reserve_is_five_percent_clamped_to_10_to_50_ms(budget_ms: int, reserve_ms: int) -> None:
    assert reserve_for(budget_ms / 1000) == pytest.approx(reserve_ms / 1000)
    assert Deadline.start(budget_ms).reserve_s == pytest.approx(reserve_ms / 1000)


def test_upstream_timeout_is_remaining_minus_reserve(frozen: ManualClock) -> None:
    deadline = Deadline.start(500)
    assert deadline.remaining() == pytest.approx(0.5)
    assert deadline.upstream_timeout() == pytest.approx(0.475)
    frozen.advance(0.2)
    assert deadline.remaining() == pytest.approx(0.3)
    assert deadline.upstream_timeout() == pytest.approx(0.275)
    assert deadline.elapsed() == pytest.approx(0.2)


def test_budget_runs_from_arrival_not_from_start_call(frozen: ManualClock) -> None:
    deadline = Deadline.start(500, started_at=frozen() - 0.3)
    assert deadline.remaining() == pytest.approx(0.2)
    assert deadline.elapsed() == pytest.approx(0.3)


def test_nothing_is_ever_negative_once_expired(frozen: ManualClock) -> None:
    deadline = Deadline.start(100)
    frozen.advance(10)
    assert deadline.remaining() == 0.0
    assert deadline.upstream_timeout() == 0.0
    assert deadline.expired()


def test_upstream_calls_stop_a_reserve_before_the_answer_is_due(frozen: ManualClock) -> None:
    deadline = Deadline.start(200)  # reserve 10 ms
    frozen.advance(0.185)
    assert not deadline.expired()
    frozen.advance(0.01)
    assert deadline.expired()
    assert deadline.remaining() == pytest.approx(0.005)


def test_a_budget_smaller_than_the_reserve_leaves_upstream_nothing(frozen: ManualClock) -> None:
    deadline = Deadline.start(5)
    assert deadline.upstream_timeout() == 0.0
    assert deadline.remaining() == pytest.approx(0.005)


def test_reserve_can_be_overridden() -> None:
    deadline = Deadline.start(1000, reserve_ms=200)
    assert deadline.upstream_expires_at == pytest.approx(deadline.started_at + 0.8)
