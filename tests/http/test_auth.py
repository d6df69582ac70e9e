"""API keys (Bearer or X-API-Key), ruleset scoping, public paths (contract §2)."""

from __future__ import annotations

from typing import Any

import pytest

from router.http.middlewares import find_key
from router.settings import ApiKey
from tests.http.conftest import API_KEY, SCOPED_KEY, MakeClient
from tests.rules import OTHER_YAML, write_rules

ROUTE = {"conversation_id": "c-auth", "handoff": {}, "state": {}}


async def test_no_key_is_401(client: Any) -> None:
    resp = await client.post("/v1/route", json=ROUTE)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "missing_api_key"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_wrong_key_is_401(client: Any) -> None:
    resp = await client.post("/v1/route", json=ROUTE, headers={"X-API-Key": "nope"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {API_KEY}"},
        {"Authorization": f"bearer {API_KEY}"},
        {"X-API-Key": API_KEY},
    ],
)
async def test_key_as_bearer_or_header(client: Any, headers: dict[str, str]) -> None:
    assert (await client.post("/v1/route", json=ROUTE, headers=headers)).status == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_operational_paths_need_no_key(client: Any, path: str) -> None:
    assert (await client.get(path)).status == 200


async def test_other_paths_need_a_key(client: Any) -> None:
    assert (await client.get("/v1/rulesets")).status == 401
    assert (await client.get("/v1/decisions/c")).status == 401


async def test_scoped_key_is_403_for_other_rulesets(client: Any) -> None:
    resp = await client.post("/v1/route", json=ROUTE, headers={"X-API-Key": SCOPED_KEY})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "ruleset_forbidden"
    resp = await client.post("/v1/explain", json=ROUTE, headers={"X-API-Key": SCOPED_KEY})
    assert resp.status == 403


async def test_scoped_key_may_use_its_ruleset(make_client: MakeClient, rules_dir: Any) -> None:
    write_rules(rules_dir, "other.yaml", OTHER_YAML)
    client = await make_client()
    body = {**ROUTE, "ruleset": "other"}
    resp = await client.post("/v1/route", json=body, headers={"X-API-Key": SCOPED_KEY})
    assert resp.status == 200
    assert (await resp.json())["queue"] == "other-queue"
    listed = await (await client.get("/v1/rulesets", headers={"X-API-Key": SCOPED_KEY})).json()
    assert [r["name"] for r in listed["rulesets"]] == ["other"]


async def test_scoped_key_cannot_read_other_rulesets_decisions(client: Any) -> None:
    await client.post("/v1/route", json=ROUTE, headers={"X-API-Key": API_KEY})
    resp = await client.get("/v1/decisions/c-auth", headers={"X-API-Key": SCOPED_KEY})
    assert resp.status == 403


async def test_no_keys_configured_means_auth_is_off(make_client: MakeClient) -> None:
    client = await make_client(ROUTER_API_KEYS="")
    assert (await client.post("/v1/route", json=ROUTE)).status == 200


def test_find_key_compares_against_every_key() -> None:
    keys = (ApiKey("alpha", None), ApiKey("beta", frozenset({"x"})))
    assert find_key(keys, "beta") is keys[1]
    assert find_key(keys, "gamma") is None
    assert find_key(keys, "bét") is None  # non-ASCII input is compared, not an error
