"""The PolyAI client against a fake PolyAI on loopback: URLs, statuses, retries, bodies."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import aiohttp
import pytest

from router.budget import Deadline
from router.facts.polyai import PolyAIClient, _retry_after
from router.settings import Settings
from tests.fakes.polyai import SAMPLE_CONVERSATION, FakePolyAI, Reply

CID = "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"
SID = "CA5f1e6c2d0b8a4f3e9d7c6b5a4f3e2d1c"


@pytest.fixture
def client(make_settings: Callable[..., Settings], session: aiohttp.ClientSession) -> PolyAIClient:
    return PolyAIClient(make_settings(), session)


def budget(ms: float = 2000) -> Deadline:
    return Deadline.start(ms)


async def test_handoff_by_conversation_id_sends_contract_url_and_key(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "ok"
    assert answer.body is not None
    assert answer.body["id"] == CID
    assert answer.body["data"]["handoff_reason"] == "refund"
    (seen,) = fake.calls("handoff")
    assert seen.path == "/v1/ACCOUNT-acme/PROJECT-support/handoff_state"
    assert seen.query == {"id": CID}
    assert seen.headers["x-api-key"] == fake.api_key


async def test_handoff_by_shared_id_only_uses_shared_id_query(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    answer = await client.handoff_state(shared_id=SID, deadline=budget())
    assert answer.result == "ok"
    assert fake.calls("handoff")[0].query == {"shared_id": SID}


async def test_conversation_record_url_and_key(client: PolyAIClient, fake: FakePolyAI) -> None:
    answer = await client.conversation(CID, deadline=budget())
    assert answer.result == "ok"
    assert answer.body is not None
    assert answer.body["state"] == SAMPLE_CONVERSATION["state"]
    (seen,) = fake.calls("conversation")
    assert seen.path == f"/v1/agents/{fake.agent_id}/conversations/{CID}"
    assert seen.headers["x-api-key"] == fake.api_key


@pytest.mark.parametrize("conversation_id", ["a/b", "..", "x?y=1#z"])
async def test_ids_cannot_escape_their_path_segment(
    client: PolyAIClient, fake: FakePolyAI, conversation_id: str
) -> None:
    answer = await client.conversation(conversation_id, deadline=budget())
    assert answer.result == "ok"
    (seen,) = fake.calls("conversation")
    assert seen.path.startswith(f"/v1/agents/{fake.agent_id}/conversations/")
    assert seen.path.count("/") == 5
    assert seen.query == {}


async def test_agent_id_defaults_to_project_id(
    make_settings: Callable[..., Settings], session: aiohttp.ClientSession, fake: FakePolyAI
) -> None:
    client = PolyAIClient(make_settings(POLYAI_AGENT_ID=""), session)
    assert client.conversation_url("c1").path == f"/v1/agents/{fake.project_id}/conversations/c1"


async def test_404_is_not_found_not_an_error(client: PolyAIClient, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.not_found())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "not_found"
    assert fake.handoff_calls == 1


async def test_a_404_keeps_the_connection_for_the_next_lookup(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.streamed(404))
    for _ in range(3):
        assert (await client.handoff_state(conversation_id=CID, deadline=budget())).result == (
            "not_found"
        )
    peers = {seen.peer for seen in fake.calls("handoff")}
    assert len(peers) == 1


@pytest.mark.parametrize("status", [500, 502, 504, 400, 401, 302])
async def test_other_statuses_are_errors_and_not_retried(
    client: PolyAIClient, fake: FakePolyAI, status: int
) -> None:
    fake.set_handoff(Reply.with_status(status), Reply.ok())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"
    assert answer.status == status
    assert fake.handoff_calls == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_503_are_retried_once(
    client: PolyAIClient, fake: FakePolyAI, status: int
) -> None:
    fake.set_handoff(Reply.with_status(status), Reply.ok())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "ok"
    assert answer.tries == 2
    assert fake.handoff_calls == 2


async def test_a_second_429_is_an_error_with_no_third_try(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(429), Reply.with_status(503), Reply.ok())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"
    assert answer.status == 503
    assert fake.handoff_calls == 2


async def test_retry_waits_for_a_retry_after_shorter_than_what_is_left(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(429, retry_after="0.2"), Reply.ok())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget(2000))
    assert answer.result == "ok"
    assert fake.handoff_calls == 2


async def test_no_retry_when_retry_after_exceeds_the_budget(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    fake.set_handoff(Reply.with_status(503, retry_after="30"), Reply.ok())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget(2000))
    assert answer.result == "error"
    assert "no time left" in answer.reason
    assert fake.handoff_calls == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after("-3") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert _retry_after("soon") is None
    assert _retry_after(None) is None


async def test_malformed_json_is_an_error(client: PolyAIClient, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.malformed())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"
    assert "not JSON" in answer.reason


@pytest.mark.parametrize(
    "body",
    [["not", "an", "object"], {"id": "x", "data": ["a"]}, {"id": 7, "data": {}}, "text"],
)
async def test_handoff_of_the_wrong_shape_is_an_error(
    client: PolyAIClient, fake: FakePolyAI, body: object
) -> None:
    fake.set_handoff(Reply.json(body))
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"


@pytest.mark.parametrize("body", [[1, 2], {"conversationId": "c", "state": "gold"}])
async def test_record_of_the_wrong_shape_is_an_error(
    client: PolyAIClient, fake: FakePolyAI, body: object
) -> None:
    fake.set_conversation(Reply.json(body))
    answer = await client.conversation(CID, deadline=budget())
    assert answer.result == "error"


async def test_missing_data_and_state_read_as_empty(client: PolyAIClient, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.json({"id": CID, "extra": 1}))
    fake.set_conversation(Reply.json({"conversationId": CID, "state": None}))
    handoff = await client.handoff_state(conversation_id=CID, deadline=budget())
    record = await client.conversation(CID, deadline=budget())
    assert handoff.result == "ok"
    assert handoff.body == {"id": CID, "shared_id": None, "data": {}}
    assert record.result == "ok"
    assert record.body == {"conversationId": CID, "state": {}}


@pytest.mark.parametrize("chunked", [True, False])
async def test_a_10_mb_body_is_an_error_and_is_not_read_to_the_end(
    client: PolyAIClient, fake: FakePolyAI, chunked: bool
) -> None:
    fake.set_handoff(Reply.huge(10 * 1024 * 1024, chunked=chunked))
    answer = await client.handoff_state(conversation_id=CID, deadline=budget(5000))
    assert answer.result == "error"
    assert "ROUTER_UPSTREAM_MAX_BYTES" in answer.reason


async def test_an_endless_body_is_cut_off_not_read_until_the_deadline(
    client: PolyAIClient, fake: FakePolyAI
) -> None:
    # Reading to the end would only stop at the deadline ("timeout"); a bounded read
    # gives up as soon as the limit is passed ("error").
    fake.set_conversation(Reply.huge(1 << 40))
    answer = await client.conversation(CID, deadline=budget(3000))
    assert answer.result == "error"
    assert "ROUTER_UPSTREAM_MAX_BYTES" in answer.reason


async def test_body_limit_counts_bytes_exactly(
    make_settings: Callable[..., Settings], session: aiohttp.ClientSession, fake: FakePolyAI
) -> None:
    body = b'{"id": "c", "data": {}}'
    fake.set_handoff(Reply.raw(body))
    exact = PolyAIClient(make_settings(ROUTER_UPSTREAM_MAX_BYTES=len(body)), session)
    short = PolyAIClient(make_settings(ROUTER_UPSTREAM_MAX_BYTES=len(body) - 1), session)
    assert (await exact.handoff_state(conversation_id="c", deadline=budget())).result == "ok"
    assert (await short.handoff_state(conversation_id="c", deadline=budget())).result == "error"


async def test_gzip_body_is_inflated(client: PolyAIClient, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.gzip_json({"id": CID, "data": {"a": "b"}}))
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "ok"
    assert answer.body is not None
    assert answer.body["data"] == {"a": "b"}


async def test_gzip_bomb_is_cut_at_the_byte_limit(client: PolyAIClient, fake: FakePolyAI) -> None:
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))
    assert len(bomb) < 1_048_576
    fake.set_handoff(Reply.raw(bomb, headers={"Content-Encoding": "gzip"}))
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"
    assert "ROUTER_UPSTREAM_MAX_BYTES" in answer.reason


async def test_connection_reset_is_an_error(client: PolyAIClient, fake: FakePolyAI) -> None:
    fake.set_handoff(Reply.reset())
    answer = await client.handoff_state(conversation_id=CID, deadline=budget())
    assert answer.result == "error"
    assert answer.reason == "ServerDisconnectedError"
    # aiohttp itself resends an idempotent request once when the connection drops
    # before any answer (RFC 9112 §9.3.1: a stale keep-alive connection); never more.
    assert fake.handoff_calls <= 2


@pytest.mark.parametrize("reply", [Reply.hang(), Reply.stall_body(), Reply.slow(2.0)])
async def test_hang_stall_and_slow_answers_time_out(
    client: PolyAIClient, fake: FakePolyAI, reply: Reply
) -> None:
    fake.set_conversation(reply)
    answer = await client.conversation(CID, deadline=budget(200))
    assert answer.result == "timeout"


async def test_no_call_is_made_when_no_time_is_left(client: PolyAIClient, fake: FakePolyAI) -> None:
    answer = await client.conversation(CID, deadline=Deadline.start(5))  # all reserve
    assert answer.result == "timeout"
    assert fake.conversation_calls == 0


async def test_connection_refused_is_an_error(
    make_settings: Callable[..., Settings], session: aiohttp.ClientSession, fake: FakePolyAI
) -> None:
    url = fake.url
    await fake.close()
    client = PolyAIClient(make_settings(POLYAI_DATA_URL=url), session)
    answer = await client.conversation(CID, deadline=budget())
    assert answer.result == "error"
