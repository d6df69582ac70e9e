"""Whatever JSON a fact holds, no endpoint answers 5xx and no log line fails (issue 14, 5).

Facts arrive inline, by push and from PolyAI; each may hold integers beyond 64 bits,
NaN and the infinities, nesting up to its parser's limit, huge strings and any unicode.
They are quoted by the explain trace, logged with ``ROUTER_LOG_STATE=true`` and kept
with the decision, so each of those paths must write them in some bounded form.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.http.app import create_app
from router.jsonsafe import TOO_DEEP, dumps, jsonable
from router.observe import configure_logging, flush_logs, remove_logging_handler
from router.settings import load_settings
from tests.fakes.polyai import FakePolyAI, Reply
from tests.http.conftest import API_KEY, AUTH
from tests.rules import write_rules

READING_RULES = """\
ruleset: default
rules:
  - id: reads-state
    when: {state.v: {gte: 10}}
    route: {queue: q-state, label: "S {state.v}", attributes: {a: "{state.v}"}}
  - id: reads-handoff
    when: {handoff.v: {contains: "x"}}
    route: {queue: q-handoff, label: "H {handoff.v}"}
  - id: reads-conversation
    when: {conversation.v: {eq: 3}}
    route: {queue: q-conv}
  - id: reads-context
    when: {context.v: {in: [1, "a"]}}
    route: {queue: q-ctx, label: "C {context.v}"}
default: {queue: general}
"""

INLINE_DEPTH = 190
"""Nesting the request parser takes inside a fact (pydantic's JSON limit is about 200)."""
UPSTREAM_DEPTH = 1000
"""Nesting orjson reads in a PolyAI record (its limit is 1024)."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=10**300) | st.integers(max_value=-(2**63) - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.integers(min_value=5_000, max_value=20_000).map(lambda n: "é" * n),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any) -> str:
    """JSON text of ``leaf`` inside ``depth`` lists (built as text: no encoder's limit)."""
    return "[" * depth + _text(leaf) + "]" * depth


def _text(value: Any) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


@st.composite
def fact_texts(draw: st.DrawFn, max_depth: int) -> str:
    """The JSON text of one fact map: ``{"v": <value>, ...}``, the value sometimes deep."""
    value = draw(json_values)
    depth = draw(st.sampled_from([0, 0, 1, max_depth // 2, max_depth]))
    others = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3))
    others.pop("v", None)
    extra = "".join(f",{_text(k)}:{_text(v)}" for k, v in others.items())
    return '{"v":' + nested(depth, value) + extra + "}"


def test_arbitrary_facts_never_make_a_5xx_or_an_unhandled_error(tmp_path: Path) -> None:
    write_rules(tmp_path, "default.yaml", READING_RULES)
    out = io.StringIO()
    # Hypothesis runs synchronous examples: each one runs on this test's own loop, where
    # the real app and the fake PolyAI live for the whole test.
    with asyncio.Runner() as runner:
        fake, client = runner.run(_start(tmp_path, out))
        counter = iter(range(1_000_000))

        @settings(
            max_examples=100,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(
            inline=st.tuples(fact_texts(INLINE_DEPTH), fact_texts(INLINE_DEPTH), fact_texts(40)),
            pushed=st.tuples(fact_texts(INLINE_DEPTH), fact_texts(INLINE_DEPTH)),
            upstream=fact_texts(UPSTREAM_DEPTH),
            how=st.sampled_from(["inline", "pushed", "upstream"]),
        )
        def check(
            inline: tuple[str, str, str], pushed: tuple[str, str], upstream: str, how: str
        ) -> None:
            runner.run(_one_call(client, fake, f"c-{next(counter)}", inline, pushed, upstream, how))

        try:
            check()
        finally:
            runner.run(client.close())
            runner.run(fake.close())
            flush_logs()
            structlog.reset_defaults()
            remove_logging_handler()
    lines = [orjson.loads(line) for line in out.getvalue().split("\n") if line.strip()]
    assert any(line["event"] == "decision" and "facts" in line for line in lines)
    assert any(line["event"] == "pushed" for line in lines)
    assert not [line for line in lines if line.get("event") == "unhandled_error"]
    assert not [line for line in lines if "log_error" in line]


async def _start(rules: Path, out: io.StringIO) -> tuple[FakePolyAI, TestClient[Any, Any]]:
    fake = await FakePolyAI().start()
    settings = load_settings(
        ROUTER_RULES=str(rules),
        ROUTER_API_KEYS=API_KEY,
        ROUTER_WEBHOOK_SECRET="",
        ROUTER_LOG_STATE="true",
        ROUTER_LOG_LEVEL="debug",
        POLYAI_API_KEY=fake.api_key,
        POLYAI_ACCOUNT_ID=fake.account_id,
        POLYAI_PROJECT_ID=fake.project_id,
        POLYAI_AGENT_ID=fake.agent_id,
        POLYAI_HANDOFF_URL=fake.url,
        POLYAI_DATA_URL=fake.url,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    configure_logging(settings, stream=out)
    return fake, client


async def _one_call(
    client: TestClient[Any, Any],
    fake: FakePolyAI,
    conversation_id: str,
    inline: tuple[str, str, str],
    pushed: tuple[str, str],
    upstream: str,
    how: str,
) -> None:
    body = '{"conversation_id":' + _text(conversation_id)
    if how == "inline":
        body += f',"state":{inline[0]},"handoff":{inline[1]},"context":{inline[2]}'
    elif how == "pushed":
        push = (
            '{"id":' + _text(conversation_id) + f',"data":{pushed[0]},"state":{pushed[1]}'
            f',"conversation":{pushed[1]}}}'
        )
        resp = await client.post("/v1/events/polyai", data=push, headers=_json(AUTH))
        assert resp.status < 500, await resp.text()
    else:
        record = '{"id":"x","state":' + upstream + ',"v":' + nested(3, 10**30) + "}"
        fake.set_conversation(Reply.raw(record.encode()))
        fake.set_handoff(Reply.raw(('{"id":"x","data":' + upstream + "}").encode()))
    body += "}"
    for path in ("/v1/route", "/v1/explain"):
        resp = await client.post(path, data=body, headers=_json(AUTH))
        text = await resp.text()
        assert resp.status < 500, (path, text[:500])
        if resp.status == 200:
            orjson.loads(text)  # a JSON answer, whatever the facts
    resp = await client.get(f"/v1/decisions/{conversation_id}", headers=AUTH)
    assert resp.status in (200, 404), await resp.text()


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


# The module itself ---------------------------------------------------------------------


def test_big_integers_stay_exact_json_numbers() -> None:
    value = {"n": 2**100, "m": -(2**80), "small": 5}
    assert orjson.loads(dumps(value)) == {"n": float(2**100), "m": float(-(2**80)), "small": 5}
    assert json.loads(dumps(value)) == value  # exact, for a reader that keeps big integers


def test_non_finite_floats_become_strings_only_when_the_fast_path_fails() -> None:
    assert jsonable([math.nan, math.inf, -math.inf, 1.5]) == ["NaN", "Infinity", "-Infinity", 1.5]
    assert orjson.loads(dumps({"n": 2**70, "x": math.inf}))["x"] == "Infinity"


def test_nesting_past_the_limit_is_marked_not_an_error() -> None:
    deep: Any = "leaf"
    for _ in range(600):
        deep = [deep]
    written = orjson.loads(dumps({"d": deep}, max_depth=10))
    for _ in range(9):
        written = written[0] if isinstance(written, list) else written["d"]
    assert written == [TOO_DEEP]


def test_long_strings_are_cut_only_where_asked() -> None:
    assert jsonable("x" * 50, max_string=10).startswith("x" * 10 + "…")
    assert jsonable("x" * 50) == "x" * 50
