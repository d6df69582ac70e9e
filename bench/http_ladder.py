"""Where a ``/v1/route`` request's CPU goes: the router built up one step at a time.

Runs, in one run and in turn, the bare aiohttp endpoint of bench/http/baseline_server.py
and ``router serve`` with its route handler cut short after each stage
(bench/http/ladder_server.py): 0 the app with a fixed answer, 1 + validation, 2 + facts,
3 + the rules, 4 + the store write, 5h + records, metrics and the log line (the real
handler), all through aiohttp's request handling; then 5, the route as ``router serve``
answers it, on the express lane (router/http/route_lane.py), and two variants of it. Each
stage runs ``--rounds`` times, interleaved, so that drift of the shared machine lands on
every stage alike; the table gives the median server CPU time per request and what each
step adds to the one before.

    python bench/http_ladder.py                 # ≈ 4 min: 3 rounds × 10 servers × 6 s
    python bench/http_ladder.py --stages a,5    # the target alone: the lane vs the baseline
    python bench/http_ladder.py --rounds 5 --duration 8 --pin

Needs wrk. The servers run at ``ROUTER_LOG_LEVEL=info`` with stdout to /dev/null (the log
line is part of the cost under study), the memory store, no PolyAI credentials and an API
key, as in bench/http_bench.py. "server CPU µs/req" is the server process's user + system
CPU time over the measured run divided by the requests wrk completed. Results and how to
read them: docs/benchmarks.md, "Where the time goes".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

from http_bench import (
    HELPERS,
    ROOT,
    ROUTER_KEY,
    Processes,
    cpu_seconds,
    free_port,
    read_line,
    run_wrk,
    wait_ready,
    wrk_argv,
)

STAGES = (
    ("a", "bare aiohttp JSON endpoint (baseline)"),
    ("0", "router app (middleware, auth, headers), fixed answer"),
    ("1", "+ body validated (pydantic), ruleset picked, budget started"),
    ("2", "+ facts gathered (memory store read, inline facts)"),
    ("3", "+ rules run, decision id, answer serialised"),
    ("4", "+ decision saved (memory store)"),
    ("5h", "+ record, masking, recent ring, metrics, log line = /v1/route by aiohttp's handler"),
    ("5", "/v1/route as served: the express lane (ROUTER_ROUTE_LANE=true, the default)"),
    ("5w", "/v1/route at ROUTER_LOG_LEVEL=warning (no log line)"),
    ("5n", "/v1/route with ROUTER_RECORD_MAX=0 (no decision records)"),
)
_SIDE_STAGES = ("5", "5w", "5n")
"""Variants of the full route: compared with stage 5, not a step after it."""


def _versus(stage: str) -> str:
    """The stage a side stage is compared with: the lane with the handler, its variants
    with the lane."""
    return "5h" if stage == "5" else "5"


def start(
    procs: Processes, stage: str, cpus: str | None
) -> tuple[int, str, subprocess.Popen[bytes]]:
    if stage == "a":
        proc = procs.start(
            "baseline",
            [sys.executable, str(HELPERS / "baseline_server.py")],
            stdout=subprocess.PIPE,
            cpus=cpus,
        )
        port = int(read_line(proc, "PORT ", 15).split()[1])
        url = f"http://127.0.0.1:{port}"
        return proc.pid, url, proc
    port = free_port()
    env = {
        **os.environ,
        "ROUTER_PORT": str(port),
        "ROUTER_RULES": str(ROOT / "rules"),
        "ROUTER_API_KEYS": ROUTER_KEY,
        "ROUTER_LOG_LEVEL": "warning" if stage == "5w" else "info",
        "ROUTER_BENCH_STAGE": stage.rstrip("hwn"),
        # Stages 0-4 cut the aiohttp handler short, so the lane (which would answer their
        # calls itself) is off for them, and for 5h, the handler's own full answer.
        "ROUTER_ROUTE_LANE": "true" if stage in ("5", "5w", "5n") else "false",
    }
    if stage == "5n":
        env["ROUTER_RECORD_MAX"] = "0"
    for name in ("POLYAI_API_KEY", "ROUTER_STORE"):
        env.pop(name, None)
    proc = procs.start(
        f"stage {stage}",
        [sys.executable, str(HELPERS / "ladder_server.py")],
        env=env,
        cpus=cpus,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc.pid, url, proc


def measure(procs: Processes, stage: str, args: argparse.Namespace) -> dict[str, float]:
    server_cpus, client_cpus = ("0", "1") if args.pin else (None, None)
    pid, url, proc = start(procs, stage, server_cpus)
    common = {"threads": args.threads, "connections": args.connections, "budget_ms": None}
    tag = uuid.uuid4().hex[:8]
    run_wrk(procs, wrk_argv(url, "inline", f"w{tag}", duration_s=1, **common), client_cpus)
    before = cpu_seconds(pid)
    result = run_wrk(
        procs, wrk_argv(url, "inline", f"m{tag}", duration_s=args.duration, **common), client_cpus
    )
    used = cpu_seconds(pid) - before
    procs.stop(proc)
    bad = result.non_2xx + result.socket_errors
    if bad:
        raise RuntimeError(f"stage {stage}: {bad} failed requests")
    return {"rps": result.rps, "cpu_us": used / max(result.requests, 1) * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of every stage (3)")
    parser.add_argument("--duration", type=int, default=6, help="seconds per run (6)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, wrk on CPU 1")
    parser.add_argument(
        "--stages",
        default=",".join(stage for stage, _ in STAGES),
        help="comma-separated stages to run (all; 'a' is always run)",
    )
    args = parser.parse_args()
    wanted = {"a", *args.stages.split(",")}
    stages = [(stage, label) for stage, label in STAGES if stage in wanted]
    procs = Processes()
    runs: dict[str, list[dict[str, float]]] = {stage: [] for stage, _ in stages}
    began = time.monotonic()
    try:
        for round_no in range(1, args.rounds + 1):
            for stage, _ in stages:
                row = measure(procs, stage, args)
                runs[stage].append(row)
                print(
                    f"  round {round_no} stage {stage:>2}: {row['rps']:8.0f} req/s "
                    f"{row['cpu_us']:6.1f} µs/req",
                    flush=True,
                )
    except KeyboardInterrupt:
        return 130
    finally:
        procs.stop_all()
    cpu = {stage: statistics.median(r["cpu_us"] for r in rows) for stage, rows in runs.items()}
    rps = {stage: statistics.median(r["rps"] for r in rows) for stage, rows in runs.items()}
    print(
        f"\n== medians of {args.rounds} rounds, {args.connections} connections, "
        f"{args.duration} s each, {time.monotonic() - began:.0f} s"
        f"{', pinned' if args.pin else ''}"
    )
    print("| stage | what answers | req/s | × (a) | server CPU µs/req | step adds µs |")
    print("|---|---|---:|---:|---:|---:|")
    previous: float | None = None
    for stage, label in stages:
        step = (
            f"{cpu[stage] - cpu[_versus(stage)]:+.0f} vs {_versus(stage)}"
            if stage in _SIDE_STAGES and _versus(stage) in cpu
            else ""
            if previous is None
            else f"{cpu[stage] - previous:+.0f}"
        )
        print(
            f"| {stage} | {label} | {rps[stage]:,.0f} | {rps[stage] / rps['a']:.2f} | "
            f"{cpu[stage]:.0f} | {step} |"
        )
        if stage not in _SIDE_STAGES:
            previous = cpu[stage]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
