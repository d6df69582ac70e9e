"""Key roles (contract §8): every endpoint checks its role; scoped keys learn nothing of
other rulesets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from router.http.keys import SERVICE
from router.rules_registry import ReloadError
from router.settings import SettingsError, load_settings, parse_api_keys
from tests.http.conftest import MakeClient
from tests.rules import OTHER_YAML, write_rules

ROUTE = {"conversation_id": "c-roles", "handoff": {}, "state": {}}
KEYS = ",".join(
    [
        "k-all",
        "k-platform;roles=route",
        "k-desk;roles=read",
        "k-ops;roles=ops|explain",
        "k-push;roles=push",
        "k-other=other",
    ]
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def roles_client(make_client: MakeClient, rules_dir: Any) -> Any:
    write_rules(rules_dir, "other.yaml", OTHER_YAML)
    client = await make_client(ROUTER_API_KEYS=KEYS)
    assert (await client.post("/v1/route", json=ROUTE, headers=bearer("k-all"))).status == 200
    return client


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/v1/route", ROUTE, "route"),
    ("POST", "/v1/explain", ROUTE, "explain"),
    ("GET", "/v1/decisions/c-roles", None, "read"),
    ("GET", "/v1/decisions?shared_id=s", None, "read"),
    ("GET", "/v1/rulesets", None, "ops"),
    ("POST", "/v1/events/polyai", {"id": "c-roles", "state": {}}, "push"),
]
HOLDERS = {
    "route": {"k-all", "k-platform"},
    "explain": {"k-all", "k-ops"},
    "read": {"k-all", "k-desk"},
    "ops": {"k-all", "k-ops"},
    "push": {"k-all", "k-push"},
}


@pytest.mark.parametrize(("method", "path", "body", "role"), ENDPOINTS)
@pytest.mark.parametrize("key", ["k-all", "k-platform", "k-desk", "k-ops", "k-push"])
async def test_every_endpoint_needs_its_role(
    roles_client: Any, method: str, path: str, body: Any, role: str, key: str
) -> None:
    resp = await roles_client.request(method, path, json=body, headers=bearer(key))
    if key in HOLDERS[role]:
        assert resp.status in (200, 202, 404), await resp.text()
    else:
        assert resp.status == 403
        error = (await resp.json())["error"]
        assert error["code"] == "forbidden_role"
        assert f"'{role}'" in error["message"]


async def test_scoped_key_cannot_tell_another_rulesets_decision_from_none(
    roles_client: Any,
) -> None:
    other = await roles_client.get("/v1/decisions/c-roles", headers=bearer("k-other"))
    missing = await roles_client.get("/v1/decisions/c-nothing", headers=bearer("k-other"))
    assert other.status == missing.status == 403
    assert await other.json() == await missing.json()
    by_shared = await roles_client.get("/v1/decisions?shared_id=nope", headers=bearer("k-other"))
    assert await by_shared.json() == await missing.json()
    # An unscoped key still learns that nothing is there.
    assert (
        await roles_client.get("/v1/decisions/c-nothing", headers=bearer("k-all"))
    ).status == 404


async def test_scoped_key_reads_its_own_rulesets_decisions(roles_client: Any) -> None:
    body = {**ROUTE, "conversation_id": "c-mine", "ruleset": "other"}
    assert (
        await roles_client.post("/v1/route", json=body, headers=bearer("k-other"))
    ).status == 200
    resp = await roles_client.get("/v1/decisions/c-mine", headers=bearer("k-other"))
    assert resp.status == 200
    assert (await resp.json())["ruleset"] == "other"


async def test_scoped_key_cannot_push(roles_client: Any) -> None:
    resp = await roles_client.post(
        "/v1/events/polyai", json={"id": "c", "state": {}}, headers=bearer("k-other")
    )
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["code"] == "forbidden_role"
    assert "limited to rulesets cannot push" in error["message"]


async def test_scoped_key_sees_only_its_rulesets_and_their_reload_errors(
    roles_client: Any,
) -> None:
    service = roles_client.app[SERVICE]
    snapshot = service.rules.snapshot
    listed = await (await roles_client.get("/v1/rulesets", headers=bearer("k-other"))).json()
    assert [r["name"] for r in listed["rulesets"]] == ["other"]
    default_file = snapshot.rulesets["default"].file
    other_file = snapshot.rulesets["other"].file
    for file, seen in ((default_file, False), (other_file, True), ("/rules/new.yaml", False)):
        service.rules.publish(
            snapshot.rulesets,
            files_without_version=(),
            last_reload_error=ReloadError(file, "1:1: broken", snapshot_time()),
        )
        scoped = await (await roles_client.get("/v1/rulesets", headers=bearer("k-other"))).json()
        everyone = await (await roles_client.get("/v1/rulesets", headers=bearer("k-all"))).json()
        assert (scoped["last_reload_error"] is not None) is seen
        assert everyone["last_reload_error"]["file"] == file


def snapshot_time() -> datetime:
    return datetime.now(UTC)


def test_keys_without_roles_keep_every_role_and_old_syntax_still_parses() -> None:
    all_key, scoped, limited = parse_api_keys("a,b=x|y,c=x;roles=read|explain")
    assert all_key.roles == {"route", "push", "read", "explain", "ops"}
    assert scoped.rulesets == {"x", "y"}
    assert scoped.roles == {"route", "read", "explain", "ops"}  # never push: see docs/api.md
    assert (limited.rulesets, limited.roles) == ({"x"}, {"read", "explain"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a;roles=root", "unknown role 'root'"),
        ("a;scope=x", "only 'roles=role|role'"),
        ("a=x;roles=push", "cannot have the push role"),
        ("a;roles=", "names no role"),
    ],
)
def test_bad_roles_stop_the_start_naming_the_variable_not_the_key(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ROUTER_API_KEYS=value)
    text = str(caught.value)
    assert text.startswith("ROUTER_API_KEYS")
    assert message in text
