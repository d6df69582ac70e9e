"""Replay benchmark: recorded decisions decided again per second, per core, on the bundled rules.

Makes N decision records the way the service does (the bundled rules decide varied
facts at instants spread over a year, the caller's number removed as a sensitive path),
writes them to a record file, then times, on one core (process CPU time):

  (file)     ``router replay``'s work: read the file, decode each line, decide again
  (memory)   the same from records already in memory (what ``POST /v1/replay`` does
             with the ring)
  (changed)  the same with a candidate that moves a fifth of the calls (grouping cost)
  (uncertain) the same with a candidate whose first rule reads the removed number
             (every record takes the slower, fully scanned, uncertainty-aware path)

and, for recording itself, the CPU a routed call spends building its record (facts
without sensitive paths, encoded) and putting it in the ring.

    python bench/replay_bench.py                 # 50,000 records, best of 3 (≈ 30 s)
    python bench/replay_bench.py --records 5000 --repeat 1     # smoke run
    python bench/replay_bench.py --json /tmp/replay.json

Results and how to read them: docs/benchmarks.md, "Decision records and replay".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.engine import RuleSet, load_rules  # noqa: E402
from router.ids import new_id  # noqa: E402
from router.records import Replay, encode_record, recorded_facts, sensitive_paths  # noqa: E402
from router.records.record import file_line  # noqa: E402
from router.records.sources import replay_file  # noqa: E402

TARGET_PER_S = 20_000
REASONS = [
    "refund", "billing_dispute", "fraud", "lost_card", "stolen_card", "complaint",
    "technical", "tech_support", "identity", "payment", "other", "",
]  # fmt: skip
TIERS = ["gold", "platinum", "silver", "standard", None]
LANGUAGES = ["en", "cy", "es", "fr"]


def facts(rng: random.Random) -> dict[str, Any]:
    """One call's facts, shaped like the bundled rules' inputs."""
    handoff: dict[str, Any] | None = {
        "handoff_reason": rng.choice(REASONS),
        "intent": rng.choice(["card", "refund", "broadband", "general"]),
    }
    state: dict[str, Any] | None = {
        "customer_tier": rng.choice(TIERS),
        "balance": str(rng.randint(0, 20_000)),
        "verified": rng.choice(["true", "false"]),
        "complaint_count": rng.randint(0, 4),
    }
    if rng.random() < 0.02:
        state = None  # a failed source: the fallback route
    if rng.random() < 0.01:
        handoff = None
    return {
        "handoff": handoff,
        "state": state,
        "conversation": {"language": rng.choice(LANGUAGES), "fromNumber": "+44 20 7946 0000"},
        "context": {
            "ani": f"+447700{rng.randint(100000, 999999)}",
            "dnis": rng.choice(["+442071234567", "+442079460000"]),
            "ivr_choice": rng.choice(["1", "2", "3"]),
        },
    }


def make_records(rules: dict[str, RuleSet], n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    paths = sensitive_paths()
    names = sorted(rules)
    bodies: list[bytes] = []
    for _ in range(n):
        ruleset = rules[names[0] if rng.random() < 0.8 else names[-1]]
        given = facts(rng)
        at = start + timedelta(seconds=rng.randint(0, 365 * 86400))
        cid = new_id()
        decision = ruleset.decide(given, conversation_id=cid, at=at)
        kept, removed = recorded_facts(given, paths)
        bodies.append(
            encode_record(
                decision_id=new_id(),
                conversation_id=cid,
                shared_id=None,
                ruleset=decision.ruleset,
                ruleset_version=decision.ruleset_version,
                at=at,
                facts=kept,
                removed=removed,
                rule=decision.rule,
                queue=decision.queue,
                outcome=decision.outcome,
            )
        )
    return bodies


def cpu_timed(work: Callable[[], Replay], repeat: int) -> tuple[float, Replay]:
    """The least process CPU time of ``repeat`` runs, and the last run's replay."""
    best = float("inf")
    replay = None
    for _ in range(repeat):
        began = time.process_time()
        replay = work()
        best = min(best, time.process_time() - began)
    assert replay is not None
    return best, replay


async def service_cost(inputs: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    """CPU per ``DecisionService.decide`` (memory store, inline facts), with decision
    records (``ROUTER_RECORD_MAX`` default) and without (0), taking turns, best of
    ``repeat`` turns each."""
    from router.observe import configure_logging
    from router.reload import RulesReloader
    from router.rules_registry import RulesRegistry
    from router.service import DecisionRequest, open_service
    from router.settings import load_settings

    registry = RulesRegistry()
    RulesReloader(registry, ROOT / "rules").reload()
    best = {"off": float("inf"), "on": float("inf")}
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 - a sink for the log lines
        for _ in range(max(repeat, 3)):
            for mode, record_max in (("off", "0"), ("on", "100000")):
                settings = load_settings(
                    ROUTER_RULES=str(ROOT / "rules"), ROUTER_RECORD_MAX=record_max
                )
                configure_logging(settings, stream=sink)
                async with open_service(settings, registry) as service:
                    requests = [
                        DecisionRequest(
                            conversation_id=new_id(),
                            handoff=given["handoff"] or {},
                            state=given["state"] or {},
                            context=given["context"],
                        )
                        for given in inputs
                    ]
                    began = time.process_time()
                    for request in requests:
                        await service.decide(request)
                    spent = time.process_time() - began
                best[mode] = min(best[mode], spent / len(inputs) * 1e6)
    return {mode: round(value, 1) for mode, value in best.items()}


def candidate_from(text: str, tmp: Path, name: str) -> dict[str, RuleSet]:
    folder = tmp / name
    folder.mkdir()
    (folder / "default.yaml").write_text(text, encoding="utf-8")
    return load_rules(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    served = load_rules(ROOT / "rules")
    default_text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    sizes = ", ".join(
        f"{name} ({len(rules.rules)} rules)" for name, rules in sorted(served.items())
    )
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.2f}; rules: {sizes}"
    )
    began = time.process_time()
    bodies = make_records(served, args.records, args.seed)
    made_s = time.process_time() - began
    results: dict[str, Any] = {"records": len(bodies), "repeat": args.repeat, "cases": {}}

    with tempfile.TemporaryDirectory(prefix="replay_bench-") as tmp_name:
        tmp = Path(tmp_name)
        record_file = tmp / "records.jsonl"
        record_file.write_bytes(b"".join(file_line(body) for body in bodies))
        moved = candidate_from(
            default_text.replace("queue: billing\n", "queue: billing-new\n", 1).replace(
                "queue: general", "queue: general-new", 1
            ),
            tmp,
            "moved",
        )
        first_rule = default_text.index("  - id: ")
        reads_ani = candidate_from(
            default_text[:first_rule]
            + '  - id: uk-mobile\n    when: {context.ani: {starts_with: "+4479"}}\n'
            "    route: {queue: mobile}\n" + default_text[first_rule:],
            tmp,
            "ani",
        )

        def from_file() -> Replay:
            replay = Replay(served)
            replay_file(replay, record_file)
            return replay

        def from_memory(candidates: dict[str, RuleSet]) -> Callable[[], Replay]:
            def run() -> Replay:
                replay = Replay(candidates)
                for body in bodies:
                    replay.feed("r", body)
                return replay

            return run

        cases = (
            ("file", "from the record file, same rules", from_file),
            ("memory", "from memory, same rules", from_memory(served)),
            ("changed", "from memory, a candidate moving some calls", from_memory(moved)),
            ("uncertain", "from memory, a candidate reading the removed number",
             from_memory(reads_ani)),
        )  # fmt: skip
        print(
            f"\n{len(bodies):,} records ({record_file.stat().st_size / len(bodies):.0f} B a line)"
        )
        for key, title, work in cases:
            seconds, replay = cpu_timed(work, args.repeat)
            report = replay.report()
            rate = len(bodies) / seconds
            results["cases"][key] = {
                "title": title,
                "cpu_s": round(seconds, 4),
                "per_s": round(rate),
                "us_per_record": round(seconds / len(bodies) * 1e6, 2),
                "replayed": report.replayed,
                "changed": report.changed,
                "uncertain": report.uncertain,
                "skipped": report.skipped,
            }
            print(
                f"  {key:<9} {rate:>9,.0f} records/s per core ({seconds / len(bodies) * 1e6:5.1f} "
                f"µs each)  replayed {report.replayed:,}, changed {report.changed:,}, "
                f"uncertain {report.uncertain:,}, skipped {report.skipped:,}  — {title}"
            )
        assert results["cases"]["memory"]["changed"] == 0, "same rules must change nothing"
        assert results["cases"]["memory"]["uncertain"] == 0

    # Recording: what a routed call spends on its record (memory store: into the ring).
    rng = random.Random(args.seed)
    inputs = [facts(rng) for _ in range(min(args.records, 20_000))]
    ring: deque[bytes] = deque(maxlen=100_000)
    ruleset = served["default"]
    paths = sensitive_paths()
    at = datetime.now(UTC)
    best = float("inf")
    for _ in range(args.repeat):
        began = time.process_time()
        for given in inputs:
            kept, removed = recorded_facts(given, paths)
            ring.append(
                encode_record(
                    decision_id="0bba04d7-38b3-4fd3-a1a8-329c34517fc1",
                    conversation_id="c",
                    shared_id=None,
                    ruleset=ruleset.name,
                    ruleset_version=ruleset.version,
                    at=at,
                    facts=kept,
                    removed=removed,
                    rule="refund-request",
                    queue="refunds",
                    outcome="matched",
                )
            )
        best = min(best, time.process_time() - began)
    record_us = best / len(inputs) * 1e6
    results["record_us_per_call"] = round(record_us, 2)
    print(f"\nrecording: {record_us:.1f} µs of CPU per routed call (facts masked, encoded, ring)")
    service_us = asyncio.run(service_cost(inputs[:5000], args.repeat))
    results["service_us_per_call"] = service_us
    added = service_us["on"] - service_us["off"]
    print(
        f"the decision service (memory store, inline facts, info logs to /dev/null): "
        f"{service_us['off']:.1f} µs of CPU per call without records, {service_us['on']:.1f} "
        f"µs with: +{added:.1f} µs"
    )
    target_met = results["cases"]["file"]["per_s"] >= TARGET_PER_S
    results["target"] = {
        "target": f"replay ≥ {TARGET_PER_S:,} records/s per core (from the record file)",
        "measured": results["cases"]["file"]["per_s"],
        "met": target_met,
    }
    print(
        f"\ntarget: [{'met' if target_met else 'NOT MET'}] {results['target']['target']}: "
        f"{results['cases']['file']['per_s']:,}  (records made in {made_s:.1f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
