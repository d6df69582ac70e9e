"""Every error status of contract §2 in the one error shape, with no stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from router import RuleSet
from router.http.models import ErrorResponse
from tests.http.conftest import AUTH, MakeClient


async def error_of(resp: Any, status: int) -> dict[str, Any]:
    """Assert the status and the error shape; return the ``error`` object."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    ErrorResponse.model_validate(body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


async def test_malformed_json_is_400(client: Any) -> None:
    resp = await client.post(
        "/v1/route",
        data=b'{"conversation_id": ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert (await error_of(resp, 400))["code"] == "malformed_json"


async def test_body_that_is_not_utf8_is_400(client: Any) -> None:
    resp = await client.post(
        "/v1/route",
        data=b'{"conversation_id": "\xff"}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert (await error_of(resp, 400))["code"] == "malformed_json"


async def test_wrong_content_type_is_415(client: Any) -> None:
    resp = await client.post(
        "/v1/route",
        data=b'{"conversation_id": "c"}',
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert (await error_of(resp, 415))["code"] == "unsupported_media_type"


async def test_missing_content_type_is_415(client: Any) -> None:
    resp = await client.post("/v1/route", data=b'{"conversation_id": "c"}', headers=AUTH)
    await error_of(resp, 415)


async def test_declared_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES=1024)
    big = {"conversation_id": "c", "context": {"pad": "x" * 2000}}
    resp = await client.post("/v1/route", json=big, headers=AUTH)
    error = await error_of(resp, 413)
    assert error["code"] == "body_too_large"
    assert error["details"][0]["max_bytes"] == 1024


async def test_chunked_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES=1024)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"conversation_id": "c", "context": {"pad": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}}'

    resp = await client.post(
        "/v1/route", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert (await error_of(resp, 413))["code"] == "body_too_large"


async def test_body_just_under_the_limit_is_read(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_MAX_BODY_BYTES=1024)
    body = {"conversation_id": "c", "handoff": {}, "state": {}, "context": {"pad": "x" * 900}}
    resp = await client.post("/v1/route", json=body, headers=AUTH)
    assert resp.status == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"conversation_id": "c", "budget_ms": -5}, "budget_ms"),
        ({"conversation_id": "c", "budget_ms": "soon"}, "budget_ms"),
        ({"conversation_id": "c", "budget_ms": True}, "budget_ms"),  # not 1 ms
        ({"conversation_id": "c", "budget_ms": "300"}, "budget_ms"),  # a string, not a number
        ({"conversation_id": "c", "budget_ms": 300.5}, "budget_ms"),
        ({"conversation_id": "c", "surprise": 1}, "surprise"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"conversation_id": "x" * 257}, "conversation_id"),
        ({"conversation_id": "bad\nid"}, "conversation_id"),
        ({"shared_id": 12}, "shared_id"),
        ({"ruleset": "default"}, "conversation_id"),
        ({"conversation_id": "c", "context": []}, "context"),
        ({"conversation_id": "c", "state": "gold"}, "state"),
    ],
)
async def test_invalid_fields_are_422_naming_the_path(
    client: Any, body: dict[str, Any], path: str
) -> None:
    error = await error_of(await client.post("/v1/route", json=body, headers=AUTH), 422)
    assert error["code"] == "validation_error"
    assert path in [d["path"] for d in error["details"]]
    assert all(d["message"] for d in error["details"])


async def test_422_lists_every_bad_field(client: Any) -> None:
    body = {"conversation_id": "c", "budget_ms": 0, "extra": True}
    error = await error_of(await client.post("/v1/route", json=body, headers=AUTH), 422)
    assert {d["path"] for d in error["details"]} == {"budget_ms", "extra"}


async def test_json_that_is_not_an_object_is_422(client: Any) -> None:
    await error_of(await client.post("/v1/route", json=[1, 2], headers=AUTH), 422)


async def test_unknown_path_is_404(client: Any) -> None:
    assert (await error_of(await client.get("/v2/nothing", headers=AUTH), 404))["code"] == (
        "not_found"
    )


async def test_wrong_method_is_405_with_allow(client: Any) -> None:
    resp = await client.get("/v1/route", headers=AUTH)
    assert (await error_of(resp, 405))["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


async def test_invalid_decision_path_id_is_422(client: Any) -> None:
    resp = await client.get("/v1/decisions/" + "x" * 300, headers=AUTH)
    error = await error_of(resp, 422)
    assert error["details"][0]["path"] == "conversation_id"


async def test_not_ready_is_503(make_client: MakeClient, rules_dir: Any) -> None:
    (rules_dir / "default.yaml").write_text("rules: [", encoding="utf-8")
    client = await make_client()
    resp = await client.post("/v1/route", json={"conversation_id": "c"}, headers=AUTH)
    assert (await error_of(resp, 503))["code"] == "not_ready"


async def test_an_unexpected_fault_is_500_without_a_stack_trace(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: RuleSet, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(RuleSet, "decide", broken)
    resp = await client.post(
        "/v1/route", json={"conversation_id": "c", "handoff": {}, "state": {}}, headers=AUTH
    )
    error = await error_of(resp, 500)
    text = await resp.text()
    assert error["code"] == "internal_error"
    assert "Traceback" not in text
    assert "internal detail" not in text
