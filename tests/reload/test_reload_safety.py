"""Reload safety and readiness (contract §2.4 and §3 "Reload safety", v1.2).

Rule edits and hostile files must not hurt routing: a typo in a new file keeps replicas
ready, a file still being written is never activated part-way, a delete-and-recreate never
drops a ruleset, and a symlink out of the rules folder is never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from router.reload import QUOTE_LIMIT, RulesReloader, cap_quotes
from router.rules_registry import RulesRegistry
from tests.reload.conftest import WATCH_DEADLINE_S, FakeClock, Watching
from tests.rules import ruleset_yaml, write_rules
from tests.waiting import eventually


def version_of(registry: RulesRegistry, name: str = "main") -> str | None:
    ruleset = registry.get(name)
    return ruleset.version if ruleset is not None else None


def queue_of(registry: RulesRegistry, name: str = "main") -> str | None:
    ruleset = registry.get(name)
    return ruleset.decide({}, conversation_id="c").queue if ruleset is not None else None


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("router_rules_reloads_total", {"result": result}) or 0.0


def many_rules(name: str, count: int, *, queue: str = "q") -> str:
    """A ruleset whose every prefix cut after a rule is itself a valid ruleset."""
    head = f"ruleset: {name}\ndefault: {{queue: {queue}-default}}\nrules:\n"
    return head + "".join(
        f"  - id: r{i}\n    when: {{handoff.reason: reason-{i}}}\n"
        f"    route: {{queue: {queue}{i}}}\n"
        for i in range(count)
    )


# 1. Readiness ---------------------------------------------------------------------------


def test_a_new_invalid_file_does_not_fail_readiness(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=0)
    reloader.reload()
    errors_before = reloads("error")
    write_rules(rules_dir, "typo.yaml", "ruleset: typo\nrules: [\n")
    reloader.reload()
    assert registry.not_ready_reason() is None
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert Path(error.file).name == "typo.yaml"
    assert reloads("error") == errors_before + 1


def test_readiness_needs_the_default_ruleset(rules_dir: Path) -> None:
    registry = RulesRegistry("main")
    write_rules(rules_dir, "other.yaml", ruleset_yaml("other", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=0)
    reloader.reload()
    assert registry.not_ready_reason() == "the default ruleset 'main' is not loaded"
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader.reload()
    assert registry.not_ready_reason() is None


def test_the_default_ruleset_is_named_default_unless_told(rules_dir: Path) -> None:
    registry = RulesRegistry()
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    RulesReloader(registry, rules_dir).reload()
    assert registry.not_ready_reason() == "the default ruleset 'default' is not loaded"


def test_no_valid_file_is_not_ready_until_a_valid_version_loads(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", "ruleset: main\nrules: [\n")
    reloader = RulesReloader(registry, rules_dir, settle_ms=0)
    reloader.reload()
    assert registry.not_ready_reason() == "no valid ruleset is loaded"
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader.reload()
    assert registry.not_ready_reason() is None


def test_a_ruleset_lost_since_start_up_fails_readiness(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    write_rules(rules_dir, "extra.yaml", ruleset_yaml("extra", "q2"))
    reloader = RulesReloader(registry, rules_dir, remove_grace_s=10, clock=clock)
    reloader.reload()
    (rules_dir / "extra.yaml").unlink()
    reloader.reload()
    assert registry.not_ready_reason() is None  # still serving through the grace
    clock.advance(10)
    reloader.reload()
    assert registry.get("extra") is None
    assert registry.not_ready_reason() == "no longer served since start-up: extra"
    write_rules(rules_dir, "extra.yaml", ruleset_yaml("extra", "q2"))
    clock.advance(0.5)
    reloader.reload()
    clock.advance(0.5)
    reloader.reload()
    assert registry.not_ready_reason() is None


# 2. Settling ----------------------------------------------------------------------------


def test_a_changed_file_is_activated_only_once_settled(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, clock=clock)
    reloader.reload()
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q2"))
    report = reloader.reload()
    assert report.unsettled == [str(rules_dir / "main.yaml")]
    assert report.recheck_at == clock.now + 0.5
    assert queue_of(registry) == "q1"
    clock.advance(0.499)
    assert reloader.reload().activated == []
    assert queue_of(registry) == "q1"
    clock.advance(0.001)
    assert reloader.reload().activated == ["main"]
    assert queue_of(registry) == "q2"


def test_a_file_written_in_two_halves_never_serves_its_first_half(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, clock=clock)
    reloader.reload()
    first = version_of(registry)
    text = many_rules("main", 20)
    half = text[: text.index("  - id: r10\n")]  # a valid ruleset of 10 rules
    target = rules_dir / "main.yaml"
    with target.open("w", encoding="utf-8") as handle:
        handle.write(half)
        handle.flush()
        reloader.reload()
        clock.advance(0.4)
        reloader.reload()
        assert version_of(registry) == first
        handle.write(text[len(half) :])
    clock.advance(0.4)
    reloader.reload()  # the whole file is first seen now: its settle time starts again
    assert version_of(registry) == first
    clock.advance(0.4)
    reloader.reload()
    assert version_of(registry) == first
    clock.advance(0.1)
    reloader.reload()
    served = registry.get("main")
    assert served is not None
    assert len(served.rules) == 20


def test_a_new_file_settles_before_it_serves(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, clock=clock)
    reloader.reload()
    (rules_dir / "big.yaml").write_text(many_rules("big", 3), encoding="utf-8")
    reloader.reload()
    assert registry.get("big") is None
    clock.advance(0.5)
    reloader.reload()
    assert registry.get("big") is not None


def test_start_up_and_a_forced_pass_read_files_as_they_are(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, clock=clock)
    assert reloader.reload().activated == ["main"]  # start-up: no wait
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q2"))
    assert reloader.reload(force=True).activated == ["main"]  # SIGHUP: no wait
    assert queue_of(registry) == "q2"


async def test_a_settled_file_is_activated_with_no_further_file_event(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = await watching(settle_ms=300)
    passes = reloader.passes
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q2"))
    await eventually(lambda: queue_of(registry) == "q2", WATCH_DEADLINE_S)
    assert reloader.passes >= passes + 2  # the change, then the scheduled re-check


# 3. Delete and recreate -----------------------------------------------------------------


def test_delete_and_recreate_keeps_the_ruleset_serving(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, remove_grace_s=10, clock=clock)
    reloader.reload()
    (rules_dir / "main.yaml").unlink()
    report = reloader.reload()
    assert report.kept_while_gone == ["main"]
    assert report.recheck_at == clock.now + 10
    assert queue_of(registry) == "q1"
    clock.advance(0.3)
    (rules_dir / "main.yaml").write_text(ruleset_yaml("main", "q2"), encoding="utf-8")
    assert reloader.reload().removed == []
    assert queue_of(registry) == "q1"  # the new file has not settled yet
    clock.advance(0.5)
    assert reloader.reload().activated == ["main"]
    assert queue_of(registry) == "q2"
    clock.advance(20)
    assert reloader.reload().removed == []
    assert queue_of(registry) == "q2"
    assert registry.not_ready_reason() is None


def test_a_ruleset_moved_to_another_file_keeps_serving(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    reloader = RulesReloader(registry, rules_dir, settle_ms=500, remove_grace_s=10, clock=clock)
    reloader.reload()
    os.rename(rules_dir / "main.yaml", rules_dir / "renamed.yaml")
    reloader.reload()
    assert queue_of(registry) == "q1"
    clock.advance(0.5)
    reloader.reload()
    assert registry.snapshot.rulesets["main"].file == str(rules_dir / "renamed.yaml")


def test_the_grace_is_measured_from_when_the_file_went(
    registry: RulesRegistry, rules_dir: Path, clock: FakeClock
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    write_rules(rules_dir, "gone.yaml", ruleset_yaml("gone", "q9"))
    reloader = RulesReloader(registry, rules_dir, remove_grace_s=10, clock=clock)
    reloader.reload()
    (rules_dir / "gone.yaml").unlink()
    reloader.reload()
    clock.advance(9.9)
    assert reloader.reload().recheck_at == pytest.approx(clock.now + 0.1)
    assert registry.get("gone") is not None
    clock.advance(0.1)
    assert reloader.reload().removed == ["gone"]


async def test_removal_happens_after_the_grace_with_no_further_file_event(
    watching: Watching, registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    write_rules(rules_dir, "gone.yaml", ruleset_yaml("gone", "q9"))
    reloader = await watching(remove_grace_s=0.5)
    (rules_dir / "gone.yaml").unlink()
    await eventually(
        lambda: reloader.last_report is not None and reloader.last_report.kept_while_gone,
        WATCH_DEADLINE_S,
    )
    # the file event's pass kept it; only the scheduled re-check can remove it now
    await eventually(lambda: registry.get("gone") is None, WATCH_DEADLINE_S)
    assert registry.get("main") is not None


# 4. Hostile files -----------------------------------------------------------------------

SECRET_LINES = (
    "root:$6$saltsalt$Zk2pWQ0hashhashhashhashhashhashhashhashhash:19000:0:99999:7:::\n"
    "daemon:*:19000:0:99999:7:::\n"
)


def test_a_symlink_out_of_the_rules_folder_is_refused(
    registry: RulesRegistry, rules_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET_LINES, encoding="utf-8")
    (outside / "valid.yaml").write_text(ruleset_yaml("sneaky", "q9"), encoding="utf-8")
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q1"))
    (rules_dir / "shadow.yaml").symlink_to(outside / "shadow")
    (rules_dir / "sneaky.yaml").symlink_to(outside / "valid.yaml")
    with capture_logs() as logs:
        report = RulesReloader(registry, rules_dir).reload()
    assert report.activated == ["main"]
    assert registry.get("sneaky") is None  # a valid ruleset, but outside: never read
    assert sorted(Path(p).name for p in report.rejected) == ["shadow.yaml", "sneaky.yaml"]
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "outside the rules folder" in error.message
    assert "saltsalt" not in repr(logs)
    assert "daemon:*" not in repr(logs)
    assert registry.not_ready_reason() is None


def test_a_symlink_inside_the_rules_folder_is_read(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    (rules_dir / "versions").mkdir()
    (rules_dir / "versions" / "main-v2.yaml").write_text(
        ruleset_yaml("main", "q2"), encoding="utf-8"
    )
    (rules_dir / "main.yaml").symlink_to("versions/main-v2.yaml")
    RulesReloader(registry, rules_dir).reload()
    assert queue_of(registry) == "q2"


def test_a_rules_path_naming_one_file_is_read_wherever_it_links(
    registry: RulesRegistry, tmp_path: Path
) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "main.yaml").write_text(ruleset_yaml("main", "q1"), "utf-8")
    (tmp_path / "rules").mkdir()
    named = tmp_path / "rules" / "main.yaml"
    named.symlink_to(tmp_path / "versions" / "main.yaml")
    RulesReloader(registry, named).reload()  # the operator chose this very file
    assert queue_of(registry) == "q1"


def test_a_rules_path_that_is_not_a_regular_file_is_not_read(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    fifo = rules_dir / "main.yaml"
    os.mkfifo(fifo)  # reading it would block the reloader for ever
    RulesReloader(registry, fifo).reload()
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "not a regular file" in error.message


def test_rejection_messages_quote_at_most_80_characters_of_the_file(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    keys = [letter * 60 for letter in "ABCDE"]
    text = "ruleset: main\n" + "".join(f"{key}: 1\n" for key in keys) + "default: {queue: q}\n"
    write_rules(rules_dir, "main.yaml", text)
    with capture_logs() as logs:
        RulesReloader(registry, rules_dir).reload()
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "unknown key 'AAAAA" in error.message
    quoted = sum(error.message.count(letter) for letter in "ABCDE")
    assert quoted <= QUOTE_LIMIT
    [rejected] = [entry for entry in logs if entry["event"] == "ruleset_rejected"]
    assert rejected["message"] == error.message


def test_a_failing_test_message_quotes_little_of_the_file(
    registry: RulesRegistry, rules_dir: Path
) -> None:
    write_rules(rules_dir, "main.yaml", ruleset_yaml("main", "q" * 200, test_queue="x" * 200))
    RulesReloader(registry, rules_dir).reload()
    error = registry.snapshot.last_reload_error
    assert error is not None
    assert "tests failed" in error.message
    assert error.message.count("q") + error.message.count("x") <= QUOTE_LIMIT


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("unknown key 'short'", "unknown key 'short'"),
        ("unknown key '" + "a" * 100 + "'", "unknown key '" + "a" * 80 + "…'"),
        ("unknown key 'it's " + "b" * 90 + "'", "unknown key 'it's " + "b" * 75 + "…'"),
        (
            "key '" + "c" * 50 + "': x; key '" + "d" * 50 + "'",
            "key '" + "c" * 50 + "': x; key '" + "d" * 30 + "…'",
        ),
        ("expected {'queue': '" + "e" * 90 + "'}", "expected {'queue': '" + "e" * 75 + "…'}"),
    ],
)
def test_cap_quotes_shares_80_characters_between_the_quoted_spans(
    message: str, expected: str
) -> None:
    assert cap_quotes(message) == expected
