"""Operations endpoints: /healthz, /readyz, /metrics, /openapi.json, /v1/rulesets (§2.2, §2.4)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from router.http.models import ReadyResponse, RulesetsResponse
from tests.http.conftest import AUTH, MakeClient
from tests.rules import write_rules


async def test_healthz(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_readyz_when_rules_are_loaded(client: Any) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    ReadyResponse.model_validate(body)
    assert body["status"] == "ready"
    assert body["store"] == "memory"
    assert body["reason"] is None
    assert body["rulesets"]["default"].startswith("sha256:")


async def test_readyz_is_503_with_no_valid_ruleset(make_client: MakeClient) -> None:
    empty = Path(__import__("tempfile").mkdtemp())
    client = await make_client(ROUTER_RULES=str(empty))
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    ReadyResponse.model_validate(body)
    assert body["status"] == "not_ready"
    assert body["rulesets"] == {}
    assert "no valid ruleset" in body["reason"]


async def test_readyz_stays_200_when_a_new_rule_file_is_invalid(
    make_client: MakeClient, rules_dir: Path
) -> None:
    """One typo in a new file must not take every replica out of the load balancer (v1.2)."""
    write_rules(rules_dir, "broken.yaml", "ruleset: broken\nrules: [\n")
    client = await make_client()
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["reason"] is None
    rulesets = await (await client.get("/v1/rulesets", headers=AUTH)).json()
    assert rulesets["last_reload_error"]["file"] == str(rules_dir / "broken.yaml")
    # the valid ruleset still routes
    route = await client.post(
        "/v1/route", json={"conversation_id": "c", "handoff": {}, "state": {}}, headers=AUTH
    )
    assert route.status == 200


async def test_rulesets_lists_what_is_served(client: Any, rules_dir: Path) -> None:
    resp = await client.get("/v1/rulesets", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    RulesetsResponse.model_validate(body)
    [info] = body["rulesets"]
    assert info["name"] == "default"
    assert info["rules"] == 2
    assert info["source"] == str(rules_dir / "default.yaml")
    assert info["version"].startswith("sha256:")
    assert datetime.fromisoformat(info["loaded_at"]).tzinfo is not None
    assert body["last_reload_error"] is None


async def test_rulesets_shows_the_last_reload_error(
    make_client: MakeClient, rules_dir: Path
) -> None:
    write_rules(rules_dir, "broken.yaml", "ruleset: broken\nrules: [\n")
    client = await make_client()
    body = await (await client.get("/v1/rulesets", headers=AUTH)).json()
    error = body["last_reload_error"]
    assert error["file"] == str(rules_dir / "broken.yaml")
    assert error["message"]
    assert datetime.fromisoformat(error["at"])


async def test_metrics_parse_and_hold_no_conversation_id(client: Any) -> None:
    secret_cid = "cid-that-must-not-be-a-label"
    await client.post(
        "/v1/route",
        json={"conversation_id": secret_cid, "state": {"customer_tier": "platinum-secret"}},
        headers=AUTH,
    )
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "router_decisions",
        "router_decision_duration_seconds",
        "router_upstream_requests",
        "router_upstream_duration_seconds",
        "router_rules_reloads",
        "router_ruleset_info",
        "router_breaker_open",
    ):
        assert name in families, name
    assert all(
        name.startswith("router_")
        for name in families
        if not name.startswith(("python_", "process_"))
    )
    decision_samples = [
        s for s in families["router_decisions"].samples if s.name == "router_decisions_total"
    ]
    assert {"ruleset", "rule", "outcome"} <= set(decision_samples[0].labels)
    assert secret_cid not in text
    assert "platinum-secret" not in text


async def test_openapi_is_served(client: Any) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/route" in doc["paths"]


async def test_security_headers_on_success(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Frame-Options"] == "DENY"
