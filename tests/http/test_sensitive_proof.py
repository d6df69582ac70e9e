"""The proof that sensitive values stay in the process (contract §8, issue 12).

Distinctive values (a phone number, an e-mail, a card-like number) go in through every
door: a push, the PolyAI lookups and inline facts. Every endpoint is driven (route,
explain, read-back, push, errors including a 422, metrics, rulesets, readiness) with
``ROUTER_LOG_STATE=true`` and debug logs, on the memory store and on a real Redis (with
and without ``ROUTER_STORE_SECRET``). Then everything the process let out is searched:
what it wrote to stdout and stderr, every response body and header (the route answer's
rendered label and attributes excepted: they are the one place a sensitive value may go,
to the caller), and every key and value under the test's prefix in Redis, whatever its
type (strings, hashes, lists, sets, sorted sets, streams). Zero hits.

Redis runs fail, never skip, when no Redis can be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiohttp.test_utils import TestClient

from router.http.keys import SETTINGS
from router.observe import configure_logging, flush_logs
from router.store.redis.url import redact
from tests.fakes.polyai import FakePolyAI, Reply
from tests.http.conftest import AUTH, MakeClient
from tests.rules import write_rules
from tests.store.conftest import SHARED_REDIS_URL, delete_prefixed

PHONE = "+447700900461"
EMAIL = "jo.secret.caller@example.org"
CARD = "4929118123456781"
SECRETS = (PHONE, EMAIL, CARD)
"""Each must appear nowhere the process let out (but the route answer's label/attributes)."""

READ_KEY = "desk-key-read-only"

RULES = """
ruleset: default
sensitive:
  - state.card_number
  - state.email
  - handoff.callback_*
  - conversation.from_number
  - context.sip.*
rules:
  - id: amex
    when: {state.card_number: {starts_with: "3"}}
    route: {queue: amex}
  - id: calling-from-abroad
    when:
      any:
        - context.ani: {starts_with: "+1"}
        - conversation.from_number: {starts_with: "+1"}
        - handoff.callback_number: {starts_with: "+1"}
    route: {queue: abroad}
  - id: card
    when: {state.card_number: {starts_with: "4"}}
    route:
      queue: cards
      label: "Card call for {state.email}"
      attributes: {x_callback: "{handoff.callback_number}", x_tier: "{state.tier|none}"}
  - id: vip
    when: {state.email: {ends_with: "@vip.example"}}
    route: {queue: vip}
default: {queue: general, label: "General enquiry"}
"""

SENSITIVE_STATE = {"card_number": CARD, "email": EMAIL, "tier": "gold"}
SENSITIVE_HANDOFF = {"callback_number": PHONE, "handoff_reason": "card_problem"}


class Emitted:
    """Everything the process let out, as text to search."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str | bytes) -> None:
        self.texts.append(
            (where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
        )

    def hits(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for secret in SECRETS:
                for form in (secret, secret.replace("@", "%40"), secret.replace("+", "%2B")):
                    if form in text:
                        found.append(f"{secret!r} in {where}: …{_around(text, form)}…")
        return found


def _around(text: str, needle: str) -> str:
    at = text.index(needle)
    return text[max(0, at - 80) : at + len(needle) + 40]


async def call(
    emitted: Emitted,
    client: TestClient[Any, Any],
    method: str,
    path: str,
    *,
    route_answer: bool = False,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One request; its whole answer (headers and body) goes to ``emitted``, except a route
    answer's ``label`` and ``attributes``."""
    resp = await client.request(method, path, **kwargs)
    body = await resp.read()
    emitted.add(f"{method} {path} headers", "\n".join(f"{k}: {v}" for k, v in resp.headers.items()))
    parsed: Any = None
    if resp.content_type == "application/json":
        parsed = orjson.loads(body)
    if route_answer and resp.status == 200:
        shown = {k: v for k, v in parsed.items() if k not in ("label", "attributes")}
        emitted.add(f"{method} {path} body (label and attributes left out)", orjson.dumps(shown))
    else:
        emitted.add(f"{method} {path} body", body)
    return resp.status, parsed


def redis_contents(url: str, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every key under ``prefix`` and everything in it, whatever its type."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            name = key.decode("utf-8", "replace")
            yield f"redis key name {name}", key
            kind = client.type(key).decode()
            parts: list[Any]
            if kind == "string":
                parts = [client.get(key)]
            elif kind == "hash":
                parts = [item for pair in client.hgetall(key).items() for item in pair]
            elif kind == "list":
                parts = list(client.lrange(key, 0, -1))
            elif kind == "set":
                parts = list(client.smembers(key))
            elif kind == "zset":
                parts = list(client.zrange(key, 0, -1))
            elif kind == "stream":
                parts = [
                    item
                    for _, fields in client.xrange(key, "-", "+")
                    for pair in fields.items()
                    for item in pair
                ]
            else:
                raise AssertionError(f"unexpected Redis type {kind} at {name}")
            for part in parts:
                if part is not None:
                    yield f"redis {kind} {name}", part
    finally:
        client.close()


def reachable_redis() -> str:
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"This test needs a Redis at {redact(SHARED_REDIS_URL)} ({exc.__class__.__name__}): "
            "start one with `redis-server --daemonize yes --port 6379`, or point "
            "ROUTER_TEST_REDIS_URL at one you may write to.",
            pytrace=False,
        )
    finally:
        client.close()
    return SHARED_REDIS_URL


STORES = ["memory", "redis-encrypted", "redis-without-secret"]


@pytest.mark.parametrize("store", STORES)
async def test_no_sensitive_value_leaves_the_process_but_in_the_route_answer(
    store: str,
    make_client: MakeClient,
    fake: FakePolyAI,
    rules_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    write_rules(rules_dir, "default.yaml", RULES)
    settings: dict[str, Any] = {
        "ROUTER_LOG_STATE": "true",
        "ROUTER_LOG_LEVEL": "debug",
        "ROUTER_API_KEYS": f"{AUTH['Authorization'].split()[1]},{READ_KEY};roles=read",
    }
    prefix = f"router-test:{uuid.uuid4().hex}:"
    url = ""
    if store != "memory":
        url = reachable_redis()
        settings |= {"ROUTER_STORE": url, "ROUTER_STORE_PREFIX": prefix}
        settings["ROUTER_STORE_TIMEOUT_MS"] = "5000"
        if store == "redis-encrypted":
            settings["ROUTER_STORE_SECRET"] = "a-long-random-test-secret-0123456789"
    # The lookups answer with the sensitive values too.
    fake.set_handoff(
        Reply.json({"id": "conv-lookup", "shared_id": "sh-lookup", "data": SENSITIVE_HANDOFF})
    )
    fake.set_conversation(
        Reply.json(
            {
                "conversationId": "conv-lookup",
                "fromNumber": PHONE,
                "channel": "voice",
                "state": SENSITIVE_STATE,
            }
        )
    )
    emitted = Emitted()
    try:
        client = await make_client(**settings)
        configure_logging(client.app[SETTINGS])
        capfd.readouterr()
        answers = await drive_every_endpoint(client, emitted)
        flush_logs()
    finally:
        if url:
            for where, value in redis_contents(url, prefix):
                emitted.add(where, value)
            delete_prefixed(url, prefix)
    captured = capfd.readouterr()
    emitted.add("stdout", captured.out)
    emitted.add("stderr", captured.err)

    assert emitted.hits() == []

    # Rules matched on the real values; the route answer alone shows them to the caller.
    inline, looked_up, pushed = answers
    assert inline["rule"] == "card"
    assert inline["label"] == f"Card call for {EMAIL}"
    assert inline["attributes"]["x_callback"] == PHONE
    assert looked_up["rule"] == "card"
    if store == "redis-without-secret":
        # Not kept in Redis at all: read back (as another replica would) it is missing.
        assert pushed["rule"] is None
        assert pushed["queue"] == "general"
    else:
        assert pushed["rule"] == "card"
        assert pushed["label"] == f"Card call for {EMAIL}"
    # The logs were written, at debug level, with the facts (masked).
    decision_lines = [
        orjson.loads(line)
        for line in captured.out.splitlines()
        if line.startswith("{") and '"event":"decision"' in line
    ]
    assert len(decision_lines) == 3
    assert all(line["facts"]["state"]["card_number"] == "***" for line in decision_lines[:2])
    assert decision_lines[0]["label"] == "Card call for ***"


async def drive_every_endpoint(
    client: TestClient[Any, Any], emitted: Emitted
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every endpoint, with the sensitive values in pushes, lookups and inline facts."""
    # Inline facts (and the caller's context: its ANI, its SIP headers).
    inline_body = {
        "conversation_id": "conv-inline",
        "shared_id": "sh-inline",
        "state": SENSITIVE_STATE,
        "handoff": SENSITIVE_HANDOFF,
        "context": {"ani": PHONE, "sip": {"x_card": CARD, "x_mail": EMAIL}, "dnis": "+4420"},
    }
    status, inline = await call(
        emitted, client, "POST", "/v1/route", json=inline_body, headers=AUTH, route_answer=True
    )
    assert status == 200
    # Lookups (the fake PolyAI answers with the values).
    lookup_body = {"conversation_id": "conv-lookup", "context": {"ani": PHONE}}
    status, looked_up = await call(
        emitted, client, "POST", "/v1/route", json=lookup_body, headers=AUTH, route_answer=True
    )
    assert status == 200
    # A push, then a routed call that reads it.
    push = {
        "id": "conv-push",
        "shared_id": "sh-push",
        "data": SENSITIVE_HANDOFF,
        "state": SENSITIVE_STATE,
        "conversation": {"fromNumber": PHONE, "channel": "voice"},
    }
    status, _ = await call(emitted, client, "POST", "/v1/events/polyai", json=push, headers=AUTH)
    assert status == 202
    status, pushed = await call(
        emitted,
        client,
        "POST",
        "/v1/route",
        json={"conversation_id": "conv-push", "context": {"ani": PHONE}},
        headers=AUTH,
        route_answer=True,
    )
    assert status == 200
    # Explain each (inline, cached lookups, pushed): traces show "***".
    for body in (inline_body, lookup_body, {"conversation_id": "conv-push"}):
        status, explained = await call(
            emitted, client, "POST", "/v1/explain", json=body, headers=AUTH
        )
        assert status == 200
        if body is lookup_body:  # cached, or looked up again: never cached without them
            assert explained["rule"] == "card"
        if body is inline_body:
            amex = explained["trace"][0]["condition"]
            assert amex == {
                "path": "state.card_number",
                "op": "starts_with",
                "expected": "3",
                "actual": "***",
            }
            assert explained["label"] == "Card call for ***"
    # Read-back, by both ids, by the agent desktop's read-only key too.
    desk = {"Authorization": f"Bearer {READ_KEY}"}
    for path in (
        "/v1/decisions/conv-inline",
        "/v1/decisions/conv-lookup",
        "/v1/decisions/conv-push",
        "/v1/decisions?shared_id=sh-inline",
    ):
        status, _ = await call(emitted, client, "GET", path, headers=desk)
        assert status == 200
    status, read_back = await call(
        emitted, client, "GET", "/v1/decisions/conv-inline", headers=AUTH
    )
    assert read_back["label"] == "Card call for ***"
    # Errors: a 422 with values in the body, malformed JSON, a wrong type in a push, a key
    # without the role, a bad signature.
    status, _ = await call(
        emitted,
        client,
        "POST",
        "/v1/route",
        json={"conversation_id": "c-bad", "state": SENSITIVE_STATE, "budget_ms": EMAIL},
        headers=AUTH,
    )
    assert status == 422
    status, _ = await call(
        emitted,
        client,
        "POST",
        "/v1/route",
        json={"conversation_id": "c-bad", "context": {"ani": PHONE}, "extra": CARD},
        headers=AUTH,
    )
    assert status == 422
    status, _ = await call(
        emitted,
        client,
        "POST",
        "/v1/route",
        data=f'{{"conversation_id": "c-bad", "state": {{"card_number": "{CARD}"'.encode(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert status == 400
    status, _ = await call(
        emitted,
        client,
        "POST",
        "/v1/events/polyai",
        json={"id": "conv-push", "state": EMAIL, "data": [CARD]},
        headers=AUTH,
    )
    assert status == 422
    status, _ = await call(emitted, client, "POST", "/v1/route", json=inline_body, headers=desk)
    assert status == 403
    status, _ = await call(
        emitted,
        client,
        "POST",
        "/v1/events/polyai",
        json=push,
        headers={"X-Router-Signature": f"t=1,sha256={CARD}"},
    )
    assert status == 401
    # Operations.
    for path in ("/metrics", "/v1/rulesets", "/readyz", "/healthz"):
        status, _ = await call(emitted, client, "GET", path, headers=AUTH)
        assert status == 200
    return inline, looked_up, pushed
