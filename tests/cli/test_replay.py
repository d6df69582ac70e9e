"""``router replay CANDIDATE --from SOURCE``: exit codes, the report, bad input, Redis."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis

from router.records.record import file_line
from tests.cli._run import router
from tests.records._records import RULES, record, ruleset, write_file
from tests.store.conftest import SHARED_REDIS_URL, delete_prefixed

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def setup(tmp_path: Path) -> tuple[Path, Path, list[bytes]]:
    rules = ruleset()
    bodies = [
        record(rules, {"state": {"tier": "gold"}}, at=NOON, conversation_id="c-1"),
        record(rules, {"state": {"tier": "gold"}}, at=NOON, conversation_id="c-2"),
        record(rules, {}, at=NOON, conversation_id="c-3"),
        record(rules, {"context": {"ani": "+447700900123"}}, at=NOON, conversation_id="c-4"),
    ]
    candidate = tmp_path / "default.yaml"
    candidate.write_text(RULES.replace("route: {queue: vip}", "route: {queue: vip-2}"))
    return candidate, write_file(tmp_path / "records.jsonl", bodies), bodies


def test_json_report_is_the_contract_object(tmp_path: Path) -> None:
    candidate, records, bodies = setup(tmp_path)
    done = router("replay", candidate, "--from", records, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ids = [json.loads(body)["decision_id"] for body in bodies]
    assert {k: report[k] for k in ("replayed", "changed", "unchanged", "uncertain", "skipped")} == {
        "replayed": 4,
        "changed": 2,
        "unchanged": 1,
        "uncertain": 1,
        "skipped": 0,
    }
    assert report["changes"] == [
        {
            "from": {"rule": "vip", "queue": "vip"},
            "to": {"rule": "vip", "queue": "vip-2"},
            "count": 2,
            "examples": ids[:2],
        }
    ]
    assert report["uncertain_examples"] == [ids[3]]


def test_text_report_for_a_person(tmp_path: Path) -> None:
    candidate, records, _ = setup(tmp_path)
    done = router("replay", candidate, "--from", records, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "replayed 4 recorded decisions with default" in done.stdout
    assert "  changed    2" in done.stdout
    assert "  uncertain  1" in done.stdout
    assert "rule vip   queue vip → vip-2" in done.stdout


def test_bad_lines_are_named_on_stderr_and_the_rest_replayed(tmp_path: Path) -> None:
    candidate, records, bodies = setup(tmp_path)
    with records.open("ab") as handle:
        handle.write(b"garbage\n")
        handle.write(file_line(bodies[0])[:40])
    done = router("replay", candidate, "--from", records, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0
    assert f"{records}:5: skipped: not JSON" in done.stderr
    assert f"{records}:6: skipped: truncated" in done.stderr
    report = json.loads(done.stdout)
    assert (report["replayed"], report["skipped"]) == (4, 2)
    assert [u["where"] for u in report["unreadable"]] == [f"{records}:5", f"{records}:6"]


def test_a_candidate_that_fails_check_exits_1_with_its_problems(tmp_path: Path) -> None:
    _, records, _ = setup(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("ruleset: default\nrules:\n  - id: x\n    when: {state.t: {eqq: 1}}\n")
    done = router("replay", broken, "--from", records, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"{broken}:4:" in done.stderr
    assert "does not pass router check" in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    candidate, records, _ = setup(tmp_path)
    missing = router("replay", candidate, "--from", tmp_path / "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such record file" in missing.stderr
    since = router("replay", candidate, "--from", records, "--since", "soon", cwd=tmp_path)
    assert since.returncode == 2
    assert "--since" in since.stderr
    assert router("replay", candidate, cwd=tmp_path).returncode == 2


def test_since_leaves_out_older_records(tmp_path: Path) -> None:
    candidate, records, _ = setup(tmp_path)  # recorded on 2026-11-23
    done = router(
        "replay", candidate, "--from", records, "--since", "1h", "--format", "json", cwd=tmp_path
    )
    assert json.loads(done.stdout)["replayed"] == (4 if datetime.now(UTC) < NOON else 0)


def test_replays_the_stream_every_replica_records_to(tmp_path: Path) -> None:
    candidate, _, bodies = setup(tmp_path)
    prefix = f"router-test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        for body in bodies:
            client.xadd(f"{prefix}records", {b"r": body})
        done = router(
            "replay",
            candidate,
            "--from",
            SHARED_REDIS_URL,
            "--format",
            "json",
            cwd=tmp_path,
            env={"ROUTER_STORE_PREFIX": prefix},
        )
    finally:
        client.close()
        delete_prefixed(SHARED_REDIS_URL, prefix)
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["replayed"], json.loads(done.stdout)["changed"]) == (4, 2)
