"""A conversation record under the size limit costs bounded work, however many keys it has."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from router.budget import Deadline
from router.engine.values import MAX_ALIASED_KEYS, RECORD_FIELDS, snake_case_aliases
from router.facts import FactGatherer
from router.facts.gather import conversation_namespace
from tests.fakes.polyai import FakePolyAI, Reply

CID = "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"


def camel_record(keys: int) -> dict[str, Any]:
    record: dict[str, Any] = {f"f{n}Ab": n for n in range(keys)}  # ~700 KB, under 1 MiB
    record.update(channel="voice", fromNumber="+447700900123", state={"tier": "gold"})
    return record


def test_only_a_bounded_number_of_keys_get_an_alias() -> None:
    record = camel_record(40_000)
    aliased = snake_case_aliases(record)
    assert len(aliased) - len(record) <= MAX_ALIASED_KEYS + len(RECORD_FIELDS)
    assert aliased["from_number"] == "+447700900123"  # PolyAI's own fields keep theirs
    assert aliased["f0_ab"] == 0
    assert "f39999_ab" not in aliased
    assert aliased["f39999Ab"] == 39_999  # still readable under its own name


def test_a_usual_record_keeps_every_alias() -> None:
    namespace = conversation_namespace({"fromNumber": "+44", "handoffReason": "refund"})
    assert namespace["from_number"] == "+44"
    assert namespace["handoff_reason"] == "refund"


async def test_a_40000_key_record_is_gathered_well_inside_its_budget(
    make_settings: Callable[..., Any], session: Any, fake: FakePolyAI
) -> None:
    record = camel_record(40_000)
    record.update(id=CID)
    fake.set_conversation(Reply.json(record))
    gatherer = FactGatherer(make_settings(), _memory(), session)
    started = time.process_time()
    got = await gatherer.gather(conversation_id=CID, deadline=Deadline.start(5_000))
    cpu = time.process_time() - started
    assert got.sources["state"] == "ok"
    assert got.facts["state"] == {"tier": "gold"}
    conversation = got.facts["conversation"]
    assert conversation is not None
    assert conversation["from_number"] == "+447700900123"
    # CPU time of this process, not wall time: a loaded machine does not inflate it much.
    # Before the bound, aliasing alone took 0.5 s of CPU.
    assert cpu < 0.25


def _memory() -> Any:
    from router.store import MemoryStore

    return MemoryStore(100)
