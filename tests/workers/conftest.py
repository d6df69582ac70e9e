"""Fixtures: ``router serve --workers 2`` as a real subprocess over the shared Redis.

Several workers need a shared store, so these tests use the Redis on 127.0.0.1:6379
(``ROUTER_TEST_REDIS_URL`` overrides it), each under its own random key prefix whose keys
are deleted afterwards. Without Redis they fail, saying how to get one: they never skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.fakes.polyai import FakePolyAI
from tests.rules import RULES_YAML, write_rules
from tests.serving import ServeProcess

REDIS_URL = os.environ.get("ROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
READY_TIMEOUT_S = 40.0
"""Two workers start in fresh interpreters at once; on two busy cores that takes a while."""


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis; fail (never skip) when it cannot be reached."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"The worker tests need a Redis at {REDIS_URL} and cannot reach it "
            f"({exc.__class__.__name__}). Start one: `redis-server --daemonize yes --port 6379`, "
            "or point ROUTER_TEST_REDIS_URL at a Redis you may write to.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"router-test-workers:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def rules_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-rules-"))
    write_rules(folder, "default.yaml", RULES_YAML)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakePolyAI]:
    server = await FakePolyAI().start()
    yield server
    await server.close()


@dataclass
class Workers:
    """A running ``router serve --workers N`` and the pids of its first workers."""

    served: ServeProcess
    pids: list[int]

    @property
    def url(self) -> str:
        return self.served.url

    def seen_worker_pids(self) -> set[int]:
        """Every worker pid the supervisor has started so far (replacements included)."""
        return {e["pid"] for e in self.served.events if e.get("event") == "worker_started"}


StartWorkers = Callable[..., Awaitable[Workers]]


@pytest.fixture
async def start_workers(redis_url: str, prefix: str) -> AsyncIterator[StartWorkers]:
    """``await start_workers(rules, **env)``: ``router serve`` with two workers (unless
    ``ROUTER_WORKERS`` says otherwise) on the shared Redis, ready; every process it
    started is stopped at the end of the test, also when the test fails."""
    started: list[Workers] = []

    async def start(rules: Path, **env: str) -> Workers:
        settings = {
            "ROUTER_WORKERS": "2",
            "ROUTER_STORE": redis_url,
            "ROUTER_STORE_PREFIX": prefix,
            **env,
        }
        served = await ServeProcess.start(rules, **settings)
        workers = Workers(served, [])
        started.append(workers)
        ready = await served.wait_for("workers_ready", READY_TIMEOUT_S)
        workers.pids = list(ready["pids"])
        return workers

    yield start
    for workers in started:
        await stop(workers)


async def stop(workers: Workers) -> None:
    """SIGTERM the supervisor; kill it and any worker left when that does not work."""
    served = workers.served
    if served.process.returncode is None:
        served.send(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await served.exit_code(within=15)
    await served.kill()
    for pid in workers.seen_worker_pids():
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (and is not a zombie we could not see reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True
