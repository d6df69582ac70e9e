"""Hot reload of the rules folder (contract §3 "Reload")."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from prometheus_client import REGISTRY

from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from tests.reload.conftest import WATCH_DEADLINE_S, FakeClock, Watching
from tests.rules import ruleset_yaml, write_rules
from tests.waiting import eventually


def queue_of(registry: RulesRegistry, name: str = "main") -> str | None:
    ruleset = registry.get(name)
    if ruleset is None:
        return None
    return ruleset.decide({}, conversation_id="c").queue


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("router_rules_reloads_total", {"result": result}) or 0.0


def ruleset_info(name: str, version: str) -> float | None:
    return REGISTRY.get_sample_value("router_ruleset_info", {"ruleset": name, "version": version})


def test_start_loads_every_valid_file(registry: RulesRegistry, rules_dir: Path) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    write_rules(rules_dir, "second.yml", ruleset_yaml("second", "q2"))
    write_rules(rules_dir, "notes.txt", "not a rule file")
    report = RulesReloader(registry, rules_dir).reload()
    assert sorted(report.activated) == ["main", "second"]
    assert queue_of(registry) == "q1"
    assert registry.not_ready_reason() is None
    version = registry.snapshot.rulesets["main"].ruleset.version
    assert ruleset_info("main", version) == 1


def test_a_single_file_can_be_the_rules_path(registry: RulesRegistry, rules_dir: Path) -> None:
    path = write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    RulesReloader(registry, path).reload()
    assert queue_of(registry) == "q1"


def test_no_valid_file_starts_not_ready(registry: RulesRegistry, rules_dir: Path) -> None:
    write_rules(rules_dir, "main.yaml", "rules: [\n")
    RulesReloader(registry, rules_dir).reload()
    assert registry.get("main") is None
    assert registry.not_ready_reason() == "no valid ruleset is loaded"
    assert registry.snapshot.last_reload_error is not None


def test_missing_rules_path_is_not_ready(registry: RulesRegistry, rules_dir: Path) -> None:
    RulesReloader(registry, rules_dir / "absent").reload()
    assert registry.not_ready_reason() is not None


def test_unchanged_files_are_not_reloaded_unless_forced(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir)
    reloader.reload()
    loaded_at = registry.snapshot.rulesets["main"].loaded_at
    before = reloads("ok")
    reloader.reload()
    assert reloads("ok") == before
    reloader.reload(force=True)
    assert reloads("ok") == before + 1
    assert registry.snapshot.rulesets["main"].loaded_at == loaded_at  # same version kept


def test_two_files_naming_one_ruleset_are_rejected(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "a.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=0)
    reloader.reload()
    write_rules(rules_dir, "b.yaml", ruleset_yaml("main", "q2"))
    report = reloader.reload()
    assert sorted(Path(p).name for p in report.rejected) == ["b.yaml"]
    assert queue_of(registry) == "q1"  # the last good version keeps serving
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "more than one file" in error.message
    (rules_dir / "b.yaml").unlink()
    reloader.reload()
    assert registry.snapshot.last_reload_error is None


def test_a_deleted_file_stops_being_served_after_the_grace(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    write_rules(rules_dir, "gone.yaml", ruleset_yaml("gone", "q9"))
    reloader = RulesReloader(registry, rules_dir, remove_grace_s=10, clock=clock)
    reloader.reload()
    (rules_dir / "gone.yaml").unlink()
    assert reloader.reload().removed == []
    clock.advance(10)
    assert reloader.reload().removed == ["gone"]
    assert registry.get("gone") is None
    assert registry.get("main") is not None


async def test_rewrite_activates_the_new_version(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    await watching()
    before = reloads("ok")
    (rules_dir / "main.yaml").write_text(ruleset_yaml("main", "q2"), encoding="utf-8")
    await eventually(lambda: queue_of(registry) == "q2", WATCH_DEADLINE_S)
    assert reloads("ok") >= before + 1


async def test_invalid_file_keeps_the_last_good_version(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = await watching()
    before = reloads("error")
    write_rules(rules_dir, "main.yaml", "ruleset: main\nrules:\n  - id: x\n    when: {nope: }\n")
    await eventually(lambda: registry.snapshot.last_reload_error is not None, WATCH_DEADLINE_S)
    assert queue_of(registry) == "q1"
    assert reloads("error") == before + 1
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert error.file == str(rules_dir / "main.yaml")
    assert registry.not_ready_reason() is None  # still serving a valid version
    assert reloader.passes >= 2


async def test_failing_tests_keep_the_last_good_version(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    await watching()
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q2", test_queue="q-expected"))
    await eventually(lambda: registry.snapshot.last_reload_error is not None, WATCH_DEADLINE_S)
    assert queue_of(registry) == "q1"
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "tests failed" in error.message
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q3"))
    await eventually(lambda: queue_of(registry) == "q3", WATCH_DEADLINE_S)
    assert registry.snapshot.last_reload_error is None


async def test_editor_rename_save_is_seen(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    await watching()
    swap = rules_dir / ".main.yaml.swp"
    swap.write_text(ruleset_yaml("main", "q2"), encoding="utf-8")
    os.replace(swap, rules_dir / "main.yaml")
    await eventually(lambda: queue_of(registry) == "q2", WATCH_DEADLINE_S)


async def test_half_written_file_ends_on_the_complete_version(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = await watching()
    text = ruleset_yaml("main", "q2")
    cut = text.index("route:") + 8  # mid flow-mapping: invalid YAML
    passes = reloader.passes
    with (rules_dir / "main.yaml").open("w", encoding="utf-8") as handle:
        handle.write(text[:cut])
        handle.flush()
        os.fsync(handle.fileno())
        await eventually(
            lambda: reloader.passes > passes, WATCH_DEADLINE_S
        )  # the watcher saw the half file
        assert queue_of(registry) == "q1"
        handle.write(text[cut:])
    await eventually(lambda: queue_of(registry) == "q2", WATCH_DEADLINE_S)
    await eventually(lambda: registry.snapshot.last_reload_error is None, WATCH_DEADLINE_S)


async def test_configmap_data_symlink_swap_is_seen(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    # Kubernetes' layout: main.yaml -> ..data/main.yaml, ..data -> ..<timestamp>/
    first = rules_dir / "..2026_11_29_10_00_00.1"
    first.mkdir()
    (first / "main.yaml").write_text(ruleset_yaml("main", "q1"), encoding="utf-8")
    (rules_dir / "..data").symlink_to(first.name)
    (rules_dir / "main.yaml").symlink_to("..data/main.yaml")
    reloader = await watching()
    assert queue_of(registry) == "q1"
    assert registry.snapshot.last_reload_error is None  # ..data is not read twice

    second = rules_dir / "..2026_11_29_10_05_00.2"
    second.mkdir()
    (second / "main.yaml").write_text(ruleset_yaml("main", "q2"), encoding="utf-8")
    (rules_dir / "..data_tmp").symlink_to(second.name)
    os.replace(rules_dir / "..data_tmp", rules_dir / "..data")
    for child in first.iterdir():
        child.unlink()
    first.rmdir()
    await eventually(lambda: queue_of(registry) == "q2", WATCH_DEADLINE_S)
    assert [Path(s).name for s in registry.snapshot.files_without_version] == []
    assert reloader.passes >= 2


async def test_request_reload_forces_a_pass(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = await watching()
    passes, before = reloader.passes, reloads("ok")
    reloader.request_reload(force=True)
    await eventually(lambda: reloader.passes > passes, WATCH_DEADLINE_S)
    assert reloads("ok") == before + 1


async def test_rules_folder_created_after_start_is_picked_up(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    late = rules_dir / "later"
    reloader = RulesReloader(registry, late, step_ms=50, debounce_ms=200, settle_ms=100)
    reloader.reload()
    stop = asyncio.Event()
    task = asyncio.create_task(reloader.watch(stop))
    try:
        late.mkdir()
        write_rules(late, "main.yaml", ruleset_yaml("main", "q1"))
        await eventually(lambda: queue_of(registry) == "q1", WATCH_DEADLINE_S)
    finally:
        stop.set()
        await asyncio.wait_for(task, WATCH_DEADLINE_S)
