"""SIGHUP forces a reload of every rule file in a running ``router serve``."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.rules import ruleset_yaml, write_rules
from tests.serving import ServeProcess


async def reloads_ok(http: aiohttp.ClientSession, url: str) -> float:
    text = await (await http.get(f"{url}/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "router_rules_reloads_total" and sample.labels == {"result": "ok"}:
                return sample.value
    return 0.0


async def test_sighup_forces_a_reload(rules_dir: Path) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    served = await ServeProcess.start(rules_dir, ROUTER_DEFAULT_RULESET="main")
    try:
        async with aiohttp.ClientSession() as http:
            assert await reloads_ok(http, served.url) == 1
            mark = len(served.events)
            served.send(signal.SIGHUP)
            reloaded = await served.wait_for("rules_reloaded", after=mark)
            assert reloaded["forced"] is True
            assert await reloads_ok(http, served.url) == 2
            ready = await (await http.get(f"{served.url}/readyz")).json()
            assert ready["status"] == "ready"  # "main" is the default ruleset
        served.send(signal.SIGTERM)
        assert await served.exit_code(within=10) == 0
    finally:
        await served.kill()
