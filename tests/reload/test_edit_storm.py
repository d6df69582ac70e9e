"""Routing through the real app while rule files are edited the ways tools edit them.

Files are written in place in parts, saved by rename, deleted and recreated, swapped the
way a Kubernetes ConfigMap volume swaps them, dropped in with a typo, and a large file is
streamed slowly, while calls are routed at a steady rate and ``/readyz`` is polled. Every
call must be answered 200 by a complete version of its ruleset (never a prefix, never a
404), and ``/readyz`` must stay 200 throughout (contract §2.4 and §3 "Reload safety").
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.http.app import create_app
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.settings import load_settings
from tests.reload.conftest import WATCH_DEADLINE_S, watcher_sees
from tests.waiting import eventually

API_KEY = "storm-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SETTLE_MS = 1500
"""Far above the writers' pauses (at most 40 ms), so even a loaded machine does not make
a half-written file look settled."""
PAUSE_S = (0.005, 0.04)
"""How long a writer pauses between the parts of one file."""
BIG_RULES = 1500
BIG_PADDING = 80
"""Comment lines after each rule of the big file: about 12 MB in all, under the loader's
16 MiB limit, yet quick to load."""
ROUNDS = 3

AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def rules_text(name: str, rules: int, tag: str, *, padding: int = 0) -> str:
    """A ruleset whose every prefix cut after a rule is itself a valid ruleset."""
    pad = ("  # " + "padding " * 11 + "\n") * padding
    head = f"ruleset: {name}\ndefault: {{queue: {tag}-default}}\nrules:\n"
    return head + "".join(
        f"  - id: r{i}\n    when: {{handoff.reason: r{i}}}\n    route: {{queue: {tag}-{i}}}\n" + pad
        for i in range(rules)
    )


def version(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def rule_cuts(text: str, parts: int) -> list[int]:
    """Offsets that split ``text`` at rule boundaries into about ``parts`` pieces."""
    starts = [match.start() for match in re.finditer(r"^  - id: ", text, re.MULTILINE)]
    step = max(1, len(starts) // parts)
    return [starts[i] for i in range(step, len(starts), step)]


@dataclass
class Storm:
    """What the writers published and what the callers saw."""

    folder: Path
    registry: RulesRegistry
    complete: dict[str, set[str]] = field(default_factory=dict)
    """Every complete version written, by ruleset."""
    final: dict[str, str] = field(default_factory=dict)
    bad_calls: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    readyz: list[int] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def published(self, name: str, text: str) -> None:
        self.complete.setdefault(name, set()).add(version(text))
        self.final[name] = version(text)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*PAUSE_S))

    async def dwell(self, name: str) -> None:
        """Either rewrite soon (before the file settles), or wait until it is live."""
        if self.rng.random() < 0.3:
            await self.pause()
            return
        await eventually(
            lambda: (
                (ruleset := self.registry.get(name)) is not None
                and ruleset.version == self.final[name]
            ),
            WATCH_DEADLINE_S,
        )

    async def write_in_parts(self, path: Path, text: str, parts: int) -> None:
        """Rewrite ``path`` in place: truncate, then write piece by piece."""
        cuts = [0, *rule_cuts(text, parts), len(text)]
        with path.open("w", encoding="utf-8") as handle:
            for start, end in itertools.pairwise(cuts):
                handle.write(text[start:end])
                handle.flush()
                await self.pause()


async def in_place(storm: Storm) -> None:
    path = storm.folder / "default.yaml"
    for round_ in range(1, ROUNDS + 1):
        text = rules_text("default", 10 + round_, f"in-place-{round_}")
        storm.published("default", text)
        await storm.write_in_parts(path, text, parts=3)
        await storm.dwell("default")


async def by_rename(storm: Storm) -> None:
    for round_ in range(1, ROUNDS + 1):
        text = rules_text("renamed", 5 + round_, f"rename-{round_}")
        storm.published("renamed", text)
        temporary = storm.folder / ".renamed.yaml.swp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, storm.folder / "renamed.yaml")
        await storm.dwell("renamed")


async def delete_then_create(storm: Storm) -> None:
    path = storm.folder / "recreated.yaml"
    for round_ in range(1, ROUNDS + 1):
        path.unlink()
        await asyncio.sleep(storm.rng.uniform(0.1, 0.7))
        text = rules_text("recreated", 5 + round_, f"recreate-{round_}")
        storm.published("recreated", text)
        await storm.write_in_parts(path, text, parts=2)
        await storm.dwell("recreated")


async def configmap_swap(storm: Storm) -> None:
    """Kubernetes' atomic writer: a new ``..<timestamp>`` folder, then ``..data`` swapped."""
    folder = storm.folder
    for round_ in range(1, ROUNDS + 1):
        old = os.readlink(folder / "..data")
        fresh = folder / f"..2026_12_07_10_00_0{round_}.{round_}"
        fresh.mkdir()
        text = rules_text("configmap", 5 + round_, f"configmap-{round_}")
        storm.published("configmap", text)
        (fresh / "configmap.yaml").write_text(text, encoding="utf-8")
        (folder / "..data_tmp").symlink_to(fresh.name)
        os.replace(folder / "..data_tmp", folder / "..data")
        shutil.rmtree(folder / old)
        await storm.dwell("configmap")


async def stream_big_file(storm: Storm) -> None:
    text = rules_text("big", BIG_RULES, "big-2", padding=BIG_PADDING)
    storm.published("big", text)
    await storm.write_in_parts(storm.folder / "big.yaml", text, parts=60)
    await storm.dwell("big")


async def drop_a_typo(storm: Storm) -> None:
    await asyncio.sleep(0.5)
    (storm.folder / "typo.yaml").write_text("ruleset: typo\nrules: [\n", encoding="utf-8")


async def route_steadily(storm: Storm, client: TestClient[Any, Any], stop: asyncio.Event) -> None:
    names = sorted(storm.complete)
    number = 0
    while not stop.is_set():
        name = names[number % len(names)]
        number += 1
        body = {"conversation_id": f"c-{number}", "ruleset": name, "handoff": {}, "state": {}}
        resp = await client.post("/v1/route", json=body, headers=AUTH)
        answer = await resp.json()
        storm.calls[name] = storm.calls.get(name, 0) + 1
        if resp.status != 200:
            storm.bad_calls.append(f"{name}: {resp.status} {answer}")
        elif answer["ruleset_version"] not in storm.complete[name]:
            storm.bad_calls.append(f"{name}: served a version never written whole")
        await asyncio.sleep(0.005)


async def poll_readyz(storm: Storm, client: TestClient[Any, Any], stop: asyncio.Event) -> None:
    while not stop.is_set():
        resp = await client.get("/readyz")
        storm.readyz.append(resp.status)
        await asyncio.sleep(0.05)


def first_versions(storm: Storm) -> None:
    """The files as they are before the storm (each a complete version)."""
    folder = storm.folder
    for name in ("default", "renamed", "recreated"):
        text = rules_text(name, 3, f"{name}-0")
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        storm.published(name, text)
    big = rules_text("big", 3, "big-1")
    (folder / "big.yaml").write_text(big, encoding="utf-8")
    storm.published("big", big)
    first = folder / "..2026_12_07_09_00_00.0"
    first.mkdir()
    configmap = rules_text("configmap", 3, "configmap-0")
    (first / "configmap.yaml").write_text(configmap, encoding="utf-8")
    storm.published("configmap", configmap)
    (folder / "..data").symlink_to(first.name)
    (folder / "configmap.yaml").symlink_to("..data/configmap.yaml")


async def test_calls_are_answered_by_complete_versions_through_an_edit_storm(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    registry = RulesRegistry("default")
    storm = Storm(folder, registry)
    first_versions(storm)
    settings = load_settings(ROUTER_RULES=str(folder), ROUTER_API_KEYS=API_KEY)
    reloader = RulesReloader(
        registry, folder, settle_ms=SETTLE_MS, remove_grace_s=10, step_ms=50, debounce_ms=200
    )
    reloader.reload()
    assert sorted(registry.snapshot.rulesets) == sorted(storm.complete)
    client = await aiohttp_client(create_app(settings, rules_registry=registry))
    stop_watching, stop_calling = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(reloader.watch(stop_watching))
    await watcher_sees(reloader, folder)
    callers = [
        asyncio.create_task(route_steadily(storm, client, stop_calling)),
        asyncio.create_task(route_steadily(storm, client, stop_calling)),
        asyncio.create_task(poll_readyz(storm, client, stop_calling)),
    ]
    try:
        writers = (in_place, by_rename, delete_then_create, configmap_swap, stream_big_file)
        await asyncio.gather(*(writer(storm) for writer in writers), drop_a_typo(storm))
        for name, final in storm.final.items():
            await eventually(
                lambda n=name, f=final: (r := registry.get(n)) is not None and r.version == f,
                WATCH_DEADLINE_S,
            )
    finally:
        stop_calling.set()
        await asyncio.gather(*callers)
        stop_watching.set()
        await asyncio.wait_for(watcher, WATCH_DEADLINE_S)
    print("DEBUG", storm.calls, len(storm.readyz), reloader.passes)
    assert storm.bad_calls == []
    assert set(storm.readyz) == {200}
    assert len(storm.readyz) >= 10
    assert min(storm.calls.values()) >= 20, storm.calls
    big = registry.get("big")
    assert big is not None
    assert len(big.rules) == BIG_RULES
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert error.file == str(folder / "typo.yaml")
