"""Flat answers (contract §7): strings only, lifted attributes, and size limits met by
leaving attributes out whole, last first, never by cutting a value."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from router.platforms.flat import (
    CONNECT_MAX_BYTES,
    TASK_ATTRIBUTES_MAX_CHARS,
    connect_answer,
    genesys_answer,
    lifted_attributes,
    studio_answer,
    task_attributes,
)
from router.service import Answer, PlatformAnswer
from tests.platforms.conftest import AUTH, FORM
from tests.rules import write_rules

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
VALUES = st.text(max_size=256)  # the engine cuts an attribute at 256 characters
PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def decided(
    attributes: dict[str, str],
    skills: tuple[str, ...] = (),
    label: str | None = "Label",
    priority: int | None = 5,
) -> PlatformAnswer:
    answer = Answer(
        decision_id="5b0e6c1e-2d4f-4c71-9a39-0f1e2d3c4b5a",
        conversation_id="c",
        shared_id=None,
        ruleset="default",
        ruleset_version="sha256:00",
        queue="general",
        label=label,
        priority=priority,
        skills=skills,
        attributes=attributes,
        rule=None,
        outcome="default",
        degraded=False,
        sources={"handoff": "ok", "state": "ok"},
        elapsed_ms=1.0,
    )
    return PlatformAnswer(answer, queue_id="", workflow="WW0123456789abcdef0123456789abcdef")


def assert_prefix_kept_whole(kept: dict[str, Any], offered: list[tuple[str, str]]) -> int:
    """The kept attributes are the first ones offered, with their values whole."""
    names = [name for name, _ in offered]
    kept_names = [name for name in kept if name in dict(offered)]
    assert kept_names == names[: len(kept_names)]
    for name in kept_names:
        assert kept[name] == dict(offered)[name]
    return len(kept_names)


@PROPERTIES
@given(st.dictionaries(NAMES, VALUES, max_size=200), st.lists(st.text(max_size=40), max_size=5))
@example({f"a{n}": "\U0001f419" * 256 for n in range(30)}, ["fraud"])  # 12 bytes escaped each
@example({f"a{n}": "x" * 256 for n in range(200)}, [])
def test_connect_answer_stays_under_32_kb_dropping_whole_attributes(
    attributes: dict[str, str], skills: list[str]
) -> None:
    answer = decided(attributes, tuple(skills))

    body = json.loads(connect_answer(answer))

    escaped = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    assert len(escaped) < CONNECT_MAX_BYTES
    assert all(type(value) is str for value in body.values())
    offered = lifted_attributes(attributes, "amazon-connect")
    kept = assert_prefix_kept_whole(body, offered)
    if kept < len(offered):  # the next one would not have fitted
        name, value = offered[kept]
        grown = json.dumps({**body, name: value}, ensure_ascii=True, separators=(",", ":"))
        assert len(grown) >= CONNECT_MAX_BYTES


@PROPERTIES
@given(st.dictionaries(NAMES, VALUES, max_size=30), st.lists(st.text(max_size=40), max_size=5))
def test_task_attributes_stay_within_1024_characters_dropping_whole_attributes(
    attributes: dict[str, str], skills: list[str]
) -> None:
    answer = decided(attributes, tuple(skills))

    text = task_attributes(answer).decode()

    assert len(text) <= TASK_ATTRIBUTES_MAX_CHARS
    body = json.loads(text)
    assert body["skills"] == skills  # fixed keys are never dropped while attributes can be
    offered = lifted_attributes(attributes, "twilio")
    kept = assert_prefix_kept_whole(body, offered)
    if kept < len(offered):  # the next one would not have fitted
        name, value = offered[kept]
        grown = json.dumps({**body, name: value}, ensure_ascii=False, separators=(",", ":"))
        assert len(grown) > TASK_ATTRIBUTES_MAX_CHARS


def test_skills_go_last_first_when_attributes_alone_are_not_enough() -> None:
    skills = tuple(f"skill-{n:03d}-" + "s" * 40 for n in range(40))

    body = json.loads(task_attributes(decided({"x": "y"}, skills)))

    assert "x" not in body
    assert 0 < len(body["skills"]) < len(skills)
    assert body["skills"] == list(skills[: len(body["skills"])])


def test_no_nulls_anywhere() -> None:
    answer = decided({}, label=None, priority=None)

    for body in (connect_answer(answer), studio_answer(answer), genesys_answer(answer)):
        assert None not in json.loads(body).values()
    assert json.loads(genesys_answer(answer))["priority"] == 0
    assert json.loads(connect_answer(answer))["priority"] == ""
    assert json.loads(task_attributes(answer))["priority"] == 0


def test_only_names_valid_for_the_platform_and_not_fixed_keys_are_lifted() -> None:
    attributes = {
        "x_tier": "1",
        "X-Header": "2",
        "9lives": "3",
        "queue": "4",
        "call_type": "5",
        "a" * 128: "6",
        "ok-" + "b" * 120: "7",
    }

    assert [n for n, _ in lifted_attributes(attributes, "amazon-connect")] == [
        "x_tier",
        "X-Header",
        "9lives",
        "call_type",
        "ok-" + "b" * 120,
    ]
    assert [n for n, _ in lifted_attributes(attributes, "twilio")] == ["x_tier", "a" * 128]


# --- through the server -------------------------------------------------------------------


def big_rules(count: int, size: int) -> str:
    attributes = "\n".join(f'        attr_{n:03d}: "{"é" * size}"' for n in range(count))
    return f"""\
ruleset: big
rules: []
default:
  queue: general
  label: "Big · ünïcödé"
  skills: [a, b]
  attributes:
{attributes}
"""


async def test_connect_over_32_kb_through_the_server(make_client: Any, rules_dir: Any) -> None:
    write_rules(rules_dir, "big.yaml", big_rules(count=60, size=256))
    client = await make_client()

    body = await (
        await client.post("/v1/platforms/amazon-connect?ruleset=big", json={}, headers=AUTH)
    ).json()

    lifted = [k for k in body if k.startswith("attr_")]
    assert 0 < len(lifted) < 60
    assert lifted == [f"attr_{n:03d}" for n in range(len(lifted))]
    assert all(body[k] == "é" * 256 for k in lifted)
    assert len(json.dumps(body, ensure_ascii=True, separators=(",", ":"))) < CONNECT_MAX_BYTES


async def test_task_attributes_over_1024_through_the_server(
    make_client: Any, rules_dir: Any
) -> None:
    write_rules(rules_dir, "big.yaml", big_rules(count=10, size=200))
    client = await make_client()

    studio = await (
        await client.post(
            "/v1/platforms/twilio/studio?ruleset=big",
            data=b"call_sid=CA1",
            headers={**AUTH, **FORM},
        )
    ).json()

    text = studio["task_attributes"]
    assert len(text) <= TASK_ATTRIBUTES_MAX_CHARS
    attributes = json.loads(text)
    lifted = [k for k in attributes if k.startswith("attr_")]
    assert lifted == [f"attr_{n:03d}" for n in range(len(lifted))]
    assert 0 < len(lifted) < 10
    assert all(attributes[k] == "é" * 200 for k in lifted)
    assert attributes["call_type"] == "Big · ünïcödé"
    assert all(studio[f"attr_{n:03d}"] == "é" * 200 for n in range(10))  # the flat map keeps all
