"""The circuit breaker (of a fact source or the store): open, half-open probe, close."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from router.breaker import Breaker
from tests.fakes.clock import ManualClock


def gauge(source: str) -> float | None:
    return REGISTRY.get_sample_value("router_breaker_open", {"source": source})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(clock: ManualClock, failures: int = 3, reset_s: float = 10) -> Breaker:
    return Breaker("unit-test", failures=failures, reset_s=reset_s, clock=clock)


def fail(breaker: Breaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record(permit, failed=True)


def test_opens_after_n_consecutive_failures(clock: ManualClock) -> None:
    breaker = make(clock, failures=3)
    fail(breaker, 2)
    states = [breaker.state]
    assert gauge("unit-test") == 0
    fail(breaker, 1)
    states.append(breaker.state)
    assert states == ["closed", "open"]
    assert breaker.acquire() is None
    assert gauge("unit-test") == 1


def test_a_success_resets_the_consecutive_count(clock: ManualClock) -> None:
    breaker = make(clock, failures=3)
    fail(breaker, 2)
    permit = breaker.acquire()
    assert permit is not None
    breaker.record(permit, failed=False)
    fail(breaker, 2)
    assert breaker.state == "closed"


def test_stays_open_until_reset_then_lets_exactly_one_probe_through(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, reset_s=10)
    fail(breaker, 1)
    clock.advance(9.9)
    assert breaker.acquire() is None
    clock.advance(0.1)
    assert breaker.state == "half_open"
    probe = breaker.acquire()
    assert probe is not None
    assert probe.probe
    assert breaker.acquire() is None  # the probe is in flight: nobody else
    assert breaker.acquire() is None


def test_probe_success_closes(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, reset_s=10)
    fail(breaker, 1)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, failed=False)
    assert breaker.state == "closed"
    assert gauge("unit-test") == 0
    assert breaker.acquire() is not None


def test_probe_failure_reopens_for_another_reset_period(clock: ManualClock) -> None:
    breaker = make(clock, failures=3, reset_s=10)
    fail(breaker, 3)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, failed=True)  # one failure is enough while half-open
    assert breaker.state == "open"
    clock.advance(9)
    assert breaker.acquire() is None
    clock.advance(1)
    assert breaker.acquire() is not None


def test_an_abandoned_probe_lets_the_next_caller_probe(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, reset_s=10)
    fail(breaker, 1)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    breaker.abandon(probe)
    assert breaker.acquire() is not None


def test_late_results_of_calls_started_before_opening_change_nothing(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, reset_s=10)
    early = breaker.acquire()
    assert early is not None
    fail(breaker, 1)
    breaker.record(early, failed=False)
    assert breaker.state == "open"
    assert breaker.acquire() is None
