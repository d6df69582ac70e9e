"""``router serve``: refuses an open bind without keys; SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.serve import run
from router.settings import load_settings
from tests.fakes.polyai import FakePolyAI, Reply
from tests.serving import ServeProcess
from tests.waiting import eventually

KEY = "serve-test-key"


def test_refuses_a_non_loopback_host_without_api_keys(
    capsys: pytest.CaptureFixture[str], rules_dir: Path
) -> None:
    settings = load_settings(ROUTER_HOST="0.0.0.0", ROUTER_API_KEYS="", ROUTER_RULES=str(rules_dir))
    assert run(settings) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ROUTER_API_KEYS" in err


def test_refuses_several_workers_over_the_memory_store(
    capsys: pytest.CaptureFixture[str], rules_dir: Path
) -> None:
    settings = load_settings(ROUTER_RULES=str(rules_dir), ROUTER_STORE="memory", ROUTER_WORKERS=2)
    assert run(settings) == 2
    assert "workers would not share pushed state" in capsys.readouterr().err


def test_cli_exits_2_on_an_open_bind_without_keys(rules_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--rules", str(rules_dir), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "ROUTER_API_KEYS": ""},
    )
    assert result.returncode == 2
    assert "ROUTER_API_KEYS" in result.stderr


@pytest.fixture
async def served(fake: FakePolyAI, rules_dir: Path) -> AsyncIterator[ServeProcess]:
    process = await ServeProcess.start(
        rules_dir,
        ROUTER_API_KEYS=KEY,
        POLYAI_API_KEY=fake.api_key,
        POLYAI_ACCOUNT_ID=fake.account_id,
        POLYAI_PROJECT_ID=fake.project_id,
        POLYAI_AGENT_ID=fake.agent_id,
        POLYAI_HANDOFF_URL=fake.url,
        POLYAI_DATA_URL=fake.url,
        ROUTER_MAX_BUDGET_MS="20000",  # so a held upstream answer outlasts no deadline
    )
    yield process
    await process.kill()


async def test_sigterm_drains_in_flight_requests_and_exits_0(
    served: ServeProcess, fake: FakePolyAI
) -> None:
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))
    async with aiohttp.ClientSession(headers={"X-API-Key": KEY}) as http:
        in_flight = asyncio.create_task(
            http.post(
                f"{served.url}/v1/route", json={"conversation_id": "c-drain", "budget_ms": 20_000}
            )
        )
        await eventually(lambda: fake.in_flight == 2, within=20)  # both lookups are waiting
        served.send(signal.SIGTERM)
        await served.wait_for("shutting_down", 20)
        started = time.monotonic()
        with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting
            await http.get(f"{served.url}/healthz")
        assert not in_flight.done()
        gate.set()  # the facts arrive only now, while the server drains
        resp = await in_flight
        assert resp.status == 200
        body = await resp.json()
        assert body["rule"] == "vip-billing"  # it finished with its facts, not cut short
        assert body["degraded"] is False
    assert await served.exit_code(within=10) == 0
    assert time.monotonic() - started < 10
    assert served.events[-1]["event"] == "stopped"


async def test_every_stdout_line_is_json_with_request_ids(served: ServeProcess) -> None:
    async with aiohttp.ClientSession(headers={"X-API-Key": KEY}) as http:
        resp = await http.post(
            f"{served.url}/v1/route",
            json={"conversation_id": "c-json", "handoff": {}, "state": {"pin": "PIN-4321"}},
            headers={"X-Request-ID": "rid-serve"},
        )
        assert resp.status == 200
    await served.wait_for("decision")
    served.send(signal.SIGINT)
    assert await served.exit_code(within=10) == 0
    assert len(served.events) == len(served.raw_lines)  # nothing but JSON on stdout
    decision = next(e for e in served.events if e["event"] == "decision")
    assert decision["request_id"] == "rid-serve"
    assert not any(b"PIN-4321" in line for line in served.raw_lines)


async def test_metrics_in_multiprocess_mode(rules_dir: Path) -> None:
    metrics_dir = Path(tempfile.mkdtemp(prefix="router-prom-"))
    served = await ServeProcess.start(
        rules_dir, ROUTER_API_KEYS=KEY, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    try:
        async with aiohttp.ClientSession(headers={"X-API-Key": KEY}) as http:
            route = {"conversation_id": "c-mp", "handoff": {}, "state": {}}
            assert (await http.post(f"{served.url}/v1/route", json=route)).status == 200
            text = await (await http.get(f"{served.url}/metrics")).text()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        key = (
            "router_decisions_total",
            (("outcome", "default"), ("platform", "api"), ("rule", ""), ("ruleset", "default")),
        )
        assert samples[key] == 1
        assert any(name.endswith(".db") for name in os.listdir(metrics_dir))
        served.send(signal.SIGTERM)
        assert await served.exit_code(within=10) == 0
    finally:
        await served.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def test_a_port_in_use_is_one_clear_line_and_exit_2(rules_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "router", "serve", "--rules", str(rules_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "ROUTER_PORT": str(port)},
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"router serve: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert "Unclosed" not in result.stdout + result.stderr
