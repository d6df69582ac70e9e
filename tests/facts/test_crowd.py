"""The crowd: upstream waits of requests due together end early enough to all answer."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from router.budget import Crowd, Deadline
from router.ids import new_id


def test_a_crowd_staggers_cutoffs_by_one_answer_each() -> None:
    crowd = Crowd(answer_cost_s=0.002, clock=lambda: 0.0)
    deadlines = [Deadline(started_at=0.0, budget_s=0.3, reserve_s=0.015) for _ in range(5)]
    crowd._waiting = [crowd_entry(d) for d in deadlines]
    cutoffs = crowd._cutoffs()
    # five answers due together: the first must stop waiting five answers before the
    # reserve, the last one answer before it
    assert cutoffs == pytest.approx([0.285 - 0.002 * k for k in (5, 4, 3, 2, 1)])


def test_a_lone_request_keeps_nearly_its_whole_upstream_time() -> None:
    crowd = Crowd(answer_cost_s=0.002, clock=lambda: 0.0)
    crowd._waiting = [crowd_entry(Deadline(started_at=0.0, budget_s=0.3, reserve_s=0.015))]
    assert crowd._cutoffs() == pytest.approx([0.283])


def crowd_entry(deadline: Deadline) -> object:
    from router.budget import _Waiting

    return _Waiting(deadline)


async def test_waits_due_together_end_before_their_reserve_and_in_deadline_order() -> None:
    crowd = Crowd(answer_cost_s=0.004)
    ended: list[int] = []

    async def wait(n: int, deadline: Deadline) -> None:
        with pytest.raises(TimeoutError):
            async with deadline.upstream_window():
                await asyncio.Event().wait()  # an upstream that never answers
        ended.append(n)
        crowd.answered(deadline)

    deadlines = [Deadline.start(400, reserve_ms=20, crowd=crowd) for _ in range(20)]
    await asyncio.wait_for(
        asyncio.gather(*(wait(n, d) for n, d in enumerate(deadlines))), timeout=10
    )
    assert sorted(ended) == list(range(20))
    assert len(crowd) == 0
    # it measured how long those 20 answers took (nearly nothing here) and learnt from it
    assert crowd.answer_cost_s < 0.004


async def test_a_cut_request_cannot_start_a_new_wait() -> None:
    crowd = Crowd(answer_cost_s=0.01)
    deadline = Deadline.start(50, reserve_ms=10, crowd=crowd)
    with pytest.raises(TimeoutError):
        async with deadline.upstream_window():
            await asyncio.Event().wait()  # an upstream that never answers
    with pytest.raises(TimeoutError):
        async with deadline.upstream_window():
            await asyncio.Event().wait()  # an upstream that never answers


async def test_a_wait_that_ends_in_time_leaves_the_crowd() -> None:
    crowd = Crowd()
    deadline = Deadline.start(5000, crowd=crowd)
    async with deadline.upstream_window():
        assert len(crowd) == 1
        await asyncio.sleep(0)
    assert len(crowd) == 0


def test_ids_are_uuid4_text_and_do_not_repeat() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
