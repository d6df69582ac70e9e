"""``router serve --workers N``: N processes on one port, sharing the Redis store.

Each test runs the real command as a subprocess with two workers. Which worker takes a
connection is the kernel's choice, so the tests open a new connection per request and
send them in concurrent batches until every worker has answered.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.polyai import FakePolyAI, Reply
from tests.rules import ruleset_yaml, write_rules
from tests.waiting import eventually
from tests.workers.conftest import StartWorkers, Workers, alive

WORKER_HEADER = "X-Router-Worker"
BATCH = 10
MEMORY_REFUSAL = (
    "workers would not share pushed state, the lookup cache or decisions; "
    "use ROUTER_STORE=redis://… or --workers 1"
)


def new_connection_each_time() -> aiohttp.ClientSession:
    """A client that opens a fresh connection per request (so any worker may take it)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def route(
    http: aiohttp.ClientSession,
    url: str,
    conversation_id: str,
    *,
    lookups: bool = False,
    **body: Any,
) -> tuple[int, dict[str, Any]]:
    """POST /v1/route, with inline facts unless ``lookups``: (worker pid, answer)."""
    inline: dict[str, Any] = {} if lookups else {"handoff": {}, "state": {}}
    payload = {"conversation_id": conversation_id, **inline, **body}
    async with http.post(f"{url}/v1/route", json=payload) as resp:
        assert resp.status == 200, await resp.text()
        return int(resp.headers[WORKER_HEADER]), await resp.json()


async def route_until_every_worker_answers(
    http: aiohttp.ClientSession, url: str, pids: Collection[int], *, at_least: int = 1, **body: Any
) -> list[tuple[int, dict[str, Any]]]:
    """Route in concurrent batches until each of ``pids`` answered ``at_least`` times."""
    answers: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + 20
    while True:
        batch = await asyncio.gather(
            *(route(http, url, f"c-{len(answers) + i}", **body) for i in range(BATCH))
        )
        answers.extend(batch)
        counts = Counter(pid for pid, _ in answers)
        if all(counts[pid] >= at_least for pid in pids):
            return answers
        assert time.monotonic() < deadline, f"not every worker answered: {counts}, want {pids}"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decisions_total(text: str) -> float:
    return sum(v for (name, _), v in samples(text).items() if name == "router_decisions_total")


async def metrics_from_every_worker(
    http: aiohttp.ClientSession, url: str, pids: Collection[int]
) -> dict[int, list[str]]:
    """``/metrics`` read until each of ``pids`` has answered it: pid -> the texts it gave."""
    texts: dict[int, list[str]] = {}
    deadline = time.monotonic() + 20
    while not set(pids) <= set(texts):
        assert time.monotonic() < deadline, f"/metrics answered only by {sorted(texts)}"

        async def scrape() -> tuple[int, str]:
            async with http.get(f"{url}/metrics") as resp:
                assert resp.status == 200
                return int(resp.headers[WORKER_HEADER]), await resp.text()

        for pid, text in await asyncio.gather(*(scrape() for _ in range(BATCH))):
            texts.setdefault(pid, []).append(text)
    return texts


def folder_exists(path: str) -> bool:
    return Path(path).is_dir()


def events_of(workers: Workers, event: str, *, after: int = 0) -> list[dict[str, Any]]:
    return [e for e in workers.served.events[after:] if e.get("event") == event]


# One port, every worker ------------------------------------------------------------------


async def test_both_workers_answer_on_one_port(
    start_workers: StartWorkers, rules_dir: Path
) -> None:
    workers = await start_workers(rules_dir)
    assert len(set(workers.pids)) == 2
    assert os.getpid() not in workers.pids
    async with new_connection_each_time() as http:
        answers = await route_until_every_worker_answers(http, workers.url, workers.pids)
    assert {pid for pid, _ in answers} == set(workers.pids)
    listening = events_of(workers, "listening")
    assert {e["worker"] for e in listening} == set(workers.pids)
    assert {e["port"] for e in listening} == {workers.served.port}


async def test_metrics_from_any_worker_add_up_every_worker(
    start_workers: StartWorkers, rules_dir: Path
) -> None:
    workers = await start_workers(rules_dir)
    async with new_connection_each_time() as http:
        answers = await route_until_every_worker_answers(
            http, workers.url, workers.pids, at_least=3
        )
        sent = len(answers)
        texts = await metrics_from_every_worker(http, workers.url, workers.pids)
    for pid, scraped in texts.items():
        for text in scraped:
            assert decisions_total(text) == sent, f"worker {pid}"
            values = samples(text)
            version = answers[0][1]["ruleset_version"]
            info = ("router_ruleset_info", (("ruleset", "default"), ("version", version)))
            assert values[info] == 1  # one series for all workers, not one per worker
            counted = ("router_decision_duration_seconds_count", ())
            assert values[counted] == sent


# Refusals --------------------------------------------------------------------------------


def serve_command(rules: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "serve", "--rules", str(rules), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROUTER_STORE": "memory", **env},
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--workers", "2"), {}), ((), {"ROUTER_WORKERS": "3"})],
    ids=["flag", "environment"],
)
def test_several_workers_over_the_memory_store_refuse_to_start(
    rules_dir: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = serve_command(rules_dir, *args, **env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("router serve: refusing ")
    assert MEMORY_REFUSAL in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--workers", "0"), {}, "--workers"),
        (("--workers", "two"), {}, "--workers"),
        ((), {"ROUTER_WORKERS": "0"}, "ROUTER_WORKERS"),
    ],
    ids=["zero-flag", "word-flag", "zero-environment"],
)
def test_fewer_than_one_worker_is_a_usage_error(
    rules_dir: Path, args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    result = serve_command(rules_dir, *args, **env)
    assert result.returncode == 2
    assert named in result.stderr


# Signals ---------------------------------------------------------------------------------


async def test_sighup_makes_every_worker_serve_the_new_version(
    start_workers: StartWorkers,
) -> None:
    # ROUTER_RULES is a symlink to a file in another folder: the watchers do not see that
    # folder, so only SIGHUP can bring the new version in.
    base = Path(tempfile.mkdtemp(prefix="router-workers-hup-"))
    (base / "versions").mkdir()
    (base / "rules").mkdir()
    write_rules(base / "versions", "main.yaml", ruleset_yaml("main", "q1"))
    (base / "rules" / "main.yaml").symlink_to(base / "versions" / "main.yaml")
    workers = await start_workers(base / "rules" / "main.yaml")

    async def queues_by_worker(http: aiohttp.ClientSession) -> dict[int, set[str]]:
        answers = await route_until_every_worker_answers(
            http, workers.url, workers.pids, at_least=3, ruleset="main"
        )
        by_worker: dict[int, set[str]] = {}
        for pid, answer in answers:
            by_worker.setdefault(pid, set()).add(answer["queue"])
        return by_worker

    async with new_connection_each_time() as http:
        assert await queues_by_worker(http) == {pid: {"q1"} for pid in workers.pids}
        write_rules(base / "versions", "main.yaml", ruleset_yaml("main", "q2"))
        await asyncio.sleep(2.5)  # well past the watchers' debounce: they saw nothing
        assert await queues_by_worker(http) == {pid: {"q1"} for pid in workers.pids}

        mark = len(workers.served.events)
        workers.served.send(signal.SIGHUP)

        def every_worker_reloaded() -> bool:
            forced = [e for e in events_of(workers, "rules_reloaded", after=mark) if e["forced"]]
            return {e["worker"] for e in forced} == set(workers.pids)

        await eventually(every_worker_reloaded, within=20)
        assert await queues_by_worker(http) == {pid: {"q2"} for pid in workers.pids}
    forwarded = events_of(workers, "signal_forwarded", after=mark)
    assert [(e["signal"], e["workers"]) for e in forwarded] == [("SIGHUP", 2)]


async def test_sigterm_drains_every_worker_and_all_processes_exit_0(
    start_workers: StartWorkers, rules_dir: Path, fake: FakePolyAI
) -> None:
    gate = asyncio.Event()
    fake.set_handoff(Reply.held(gate))
    fake.set_conversation(Reply.held(gate))
    workers = await start_workers(
        rules_dir,
        POLYAI_API_KEY=fake.api_key,
        POLYAI_ACCOUNT_ID=fake.account_id,
        POLYAI_PROJECT_ID=fake.project_id,
        POLYAI_AGENT_ID=fake.agent_id,
        POLYAI_HANDOFF_URL=fake.url,
        POLYAI_DATA_URL=fake.url,
        ROUTER_MAX_BUDGET_MS="20000",  # the facts come when the test says, not by a deadline
    )
    metrics_dir = events_of(workers, "workers_starting")[0]["metrics_dir"]
    assert folder_exists(metrics_dir)
    in_flight = 8
    async with new_connection_each_time() as http:
        requests = [
            asyncio.create_task(
                route(http, workers.url, f"c-drain-{i}", lookups=True, budget_ms=20_000)
            )
            for i in range(in_flight)
        ]
        await eventually(lambda: fake.in_flight == 2 * in_flight, within=10)
        workers.served.send(signal.SIGTERM)
        started = time.monotonic()
        await workers.served.wait_for("shutting_down", 10)

        async def refused() -> bool:
            try:
                async with http.get(
                    f"{workers.url}/healthz", timeout=aiohttp.ClientTimeout(total=0.5)
                ):
                    return False
            except (aiohttp.ClientConnectionError, TimeoutError):
                return True

        while not await refused():
            assert time.monotonic() - started < 5
        assert not any(r.done() for r in requests)  # it stopped accepting before they ended
        gate.set()  # their facts arrive only now, while the workers drain
        answers = await asyncio.gather(*requests)
    for _, answer in answers:
        assert answer["rule"] == "vip-billing"  # each finished with its facts, not cut short
        assert answer["degraded"] is False
    assert {pid for pid, _ in answers} <= set(workers.pids)
    assert await workers.served.exit_code(within=10) == 0
    assert time.monotonic() - started < 10
    stopped = events_of(workers, "worker_stopped")
    assert sorted((e["pid"], e["exit_code"]) for e in stopped) == sorted(
        (pid, 0) for pid in workers.pids
    )
    assert workers.served.events[-1]["event"] == "workers_stopped"
    assert not any(alive(pid) for pid in workers.pids)
    assert not folder_exists(metrics_dir)


# Failures ----------------------------------------------------------------------------------


async def test_a_killed_worker_is_replaced_and_its_counts_kept(
    start_workers: StartWorkers, rules_dir: Path
) -> None:
    workers = await start_workers(rules_dir)
    victim, survivor = workers.pids
    async with new_connection_each_time() as http:
        before = await route_until_every_worker_answers(http, workers.url, workers.pids)
        mark = len(workers.served.events)
        os.kill(victim, signal.SIGKILL)
        died = await workers.served.wait_for("worker_died", 10, after=mark)
        assert (died["pid"], died["exit_code"], died["served"]) == (victim, -signal.SIGKILL, True)
        started = await workers.served.wait_for("worker_started", 10, after=mark)
        replacement = started["pid"]
        assert replacement not in workers.pids
        await workers.served.wait_for("listening", 40, after=mark)
        after = await route_until_every_worker_answers(http, workers.url, [survivor, replacement])
        assert victim not in {pid for pid, _ in after}
        texts = await metrics_from_every_worker(http, workers.url, [survivor, replacement])
    for scraped in texts.values():
        for text in scraped:  # the dead worker's decisions are still counted
            assert decisions_total(text) == len(before) + len(after)


@pytest.mark.slow
def test_workers_that_keep_dying_at_start_stop_the_service_with_exit_1(
    rules_dir: Path, prefix: str
) -> None:
    # redis-py cannot use this URL (a cluster has only database 0): every worker dies
    # while it opens the store.
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--rules", str(rules_dir), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=90,
        env={
            **os.environ,
            "ROUTER_WORKERS": "2",
            "ROUTER_STORE": "redis+cluster://127.0.0.1:6379/3",
            "ROUTER_STORE_PREFIX": prefix,
            "ROUTER_LOG_FORMAT": "json",
        },
    )
    assert result.returncode == 1
    assert '"event":"workers_keep_failing"' in result.stdout
    assert '"event":"worker_died"' in result.stdout
    assert "Redis Cluster has only database 0" in result.stderr


async def test_workers_stop_when_the_supervisor_is_killed(
    start_workers: StartWorkers, rules_dir: Path
) -> None:
    workers = await start_workers(rules_dir)
    metrics_dir = events_of(workers, "workers_starting")[0]["metrics_dir"]
    try:
        workers.served.send(signal.SIGKILL)
        await workers.served.exit_code(within=10)
        await eventually(lambda: not any(alive(pid) for pid in workers.pids), within=20)
    finally:
        shutil.rmtree(metrics_dir)  # nobody was left to remove it
