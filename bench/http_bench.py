"""HTTP benchmark: ``router serve`` under ``wrk`` against a bare aiohttp baseline, one run.

Cases, each against a fresh server process, 200 connections by default:

  (a)  a bare aiohttp JSON endpoint (bench/http/baseline_server.py): the baseline
  (b)  POST /v1/route with ``handoff`` + ``state`` inline (no lookups)
  (b+log) the same with the default info-level JSON logs written to a file
  (c)  POST /v1/route with lookups against a fake PolyAI answering in 20 ms
  (d)  the same with the fake hanging, ``budget_ms`` 100 (default circuit breaker)
  (d-nb) the same with the breaker out of the way: every request waits out its budget
  (d-nb@20) the same at 20 connections, a load the router's CPU can carry
  (a2) the baseline again, to see how much the shared machine drifted during the run

then one request at a time (``wrk -c 1``) against (a), (b) and (c), for the latency a
lookup adds, and a memory phase: distinct conversation ids with inline facts through
/v1/route, the router's RSS read every 10,000 decisions. With ``--profile``, (b), (c) and
(d-nb) run again under py-spy and the samples are summarised by where the time goes.

    python bench/http_bench.py                       # full run, ≈ 4 min on 2 cores
    python bench/http_bench.py --quick               # smoke run (≈ 1 min)
    python bench/http_bench.py --duration 20 --connections 100
    python bench/http_bench.py --profile --json /tmp/http.json

``--scale`` runs instead the scale-out cases, each against a fresh server: the baseline (a),
then /v1/route with inline facts and (s1) the memory store, 1 worker, (s2) Redis
(``--redis``, loopback by default), 1 worker, (s3) Redis, ``--workers 2``; ``--rounds N``
repeats s1-s3. Each Redis case writes under its own ``ROUTER_STORE_PREFIX`` (deleted
afterwards) and is checked: answers sampled after the run must say ``sources.store: ok``,
the router's log must show no store faults (beyond 1 %) and no open breaker, and Redis must
hold one decision key per decision. Besides req/s and latency it reports the CPU time per
request of the router (all its processes), of Redis and of wrk, and the store round trips
per decision from the router's ``/metrics``.

    python bench/http_bench.py --scale --rounds 3 --json /tmp/scale.json   # ≈ 3.5 min

``--record-max 0`` runs every router without decision records (replay), so a run with and
one without show what recording costs per routed call (docs/benchmarks.md, "Decision
records and replay").

``--platforms`` runs instead /v1/route and each platform endpoint (Amazon Connect, Twilio
voice, Twilio Studio, Genesys) on the same call, each in its platform's request shape
(bench/http/platforms.lua), against one router with lookups off (no ``POLYAI_API_KEY``:
every endpoint skips them alike and keeps the decision). The shared machine's speed
drifts, so each round runs /v1/route between every two platform endpoints and compares each
endpoint's router CPU per request with the mean of the two /v1/route runs beside it
(target ≤ 1.15); it reports the median of ``--rounds`` rounds and checks every endpoint
made the same decision.

    python bench/http_bench.py --platforms --rounds 5 --duration 5   # ≈ 5 min

Needs ``wrk`` (Debian: ``apt-get update && apt-get install -y wrk``) and, for
``--profile``, py-spy (``pip install py-spy``). Every server listens on a free loopback
port and every process started here is stopped at the end, Ctrl-C or failure included.
Results and how to read them: docs/benchmarks.md, sections "HTTP service" and "Scale-out:
store and workers".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "bench" / "http"
LUA = HELPERS / "route.lua"
PLATFORM_LUA = HELPERS / "platforms.lua"
RULES = ROOT / "rules"

POLYAI_KEY = "bench-polyai-key"
ROUTER_KEY = "bench-router-key"
UPSTREAM_DELAY_MS = 20.0
HANG_BUDGET_MS = 100
BUDGET_SLACK_MS = 25.0
LOOKUP_BUDGET_MS = 500
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 12.0
INSTALL_WRK = "apt-get update && apt-get install -y wrk   (Debian/Ubuntu; sudo unless root)"

# --------------------------------------------------------------------------- processes


class Processes:
    """Every process this run started, stopped in reverse order by :meth:`stop_all`."""

    def __init__(self) -> None:
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        stderr: int | IO[bytes] | None = subprocess.DEVNULL,
        cpus: str | None = None,
    ) -> subprocess.Popen[bytes]:
        if cpus and shutil.which("taskset"):
            argv = ["taskset", "-c", cpus, *argv]
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
        )
        self._running.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
        """Signal ``proc`` (SIGTERM by default), wait, SIGKILL if it does not go."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        self._running = [(n, p) for n, p in self._running if p is not proc]
        return proc.returncode

    def stop_all(self) -> None:
        for _, proc in reversed(list(self._running)):
            self.stop(proc)


def free_port() -> int:
    """A free loopback port, found by binding port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_line(proc: subprocess.Popen[bytes], prefix: str, timeout_s: float) -> str:
    """The first stdout line of ``proc`` starting with ``prefix``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline().decode(errors="replace").strip()
            if line.startswith(prefix):
                return line
    raise RuntimeError(f"{proc.args!r} did not print {prefix!r} (exit status {proc.poll()})")


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _parents() -> dict[int, int]:
    """pid → parent pid of every process."""
    out: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            out[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    return out


def tree_pids(root: int) -> list[int]:
    """``root`` and its live descendants (a ``--workers N`` supervisor and its workers)."""
    parents = _parents()
    pids, todo = [root], [root]
    while todo:
        parent = todo.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        pids += kids
        todo += kids
    return pids


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and of each live descendant (their own, not reaped children's)."""
    return {pid: cpu_seconds(pid) for pid in tree_pids(root)}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds each process used between two :func:`tree_cpu` readings (new ones: all)."""
    return {pid: after[pid] - before.get(pid, 0.0) for pid in after}


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) clock ticks of all CPUs together, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal, sum(fields)


def children_cpu_seconds() -> float:
    """User + system CPU of this process's children reaped so far (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_pid(parent: int, timeout_s: float = 10.0) -> int:
    """The pid of the (first) child of ``parent`` (py-spy launches the router as one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    return int(stat.parent.name)
        time.sleep(0.05)
    raise RuntimeError(f"process {parent} started no child")


# --------------------------------------------------------------------------- HTTP helpers


def http_full(
    url: str, body: dict[str, Any] | None = None, timeout_s: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: status, headers, body."""
    headers = {"Authorization": f"Bearer {ROUTER_KEY}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def http(url: str, body: dict[str, Any] | None = None, timeout_s: float = 5.0) -> tuple[int, bytes]:
    status, _, raw = http_full(url, body, timeout_s)
    return status, raw


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} at start")
        with contextlib.suppress(OSError):
            if http(url + "/readyz", timeout_s=1.0)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {START_TIMEOUT_S:.0f} s")


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|[+-]Inf)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(url: str) -> dict[str, Any]:
    """The numbers of ``/metrics`` this benchmark reads."""
    status, raw = http(url + "/metrics")
    if status != 200:
        return {}
    decisions = 0.0
    upstream: dict[str, float] = collections.defaultdict(float)
    buckets: dict[str, float] = {}
    count = 0.0
    store: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"count": 0.0, "sum": 0.0})
    store_breaker = 0.0
    pipelines = 0.0
    for line in raw.decode().splitlines():
        match = _METRIC.match(line)
        if not match:
            continue
        name, labels_text, value = match.group(1), match.group(2) or "", float(match.group(3))
        labels = dict(_LABEL.findall(labels_text))
        if name == "router_decisions_total":
            decisions += value
        elif name == "router_upstream_requests_total":
            upstream[f"{labels['source']}:{labels['result']}"] += value
        elif name == "router_decision_duration_seconds_bucket":
            buckets[labels["le"]] = value
        elif name == "router_decision_duration_seconds_count":
            count = value
        elif name == "router_store_duration_seconds_count":
            store[labels["operation"]]["count"] = value
        elif name == "router_store_duration_seconds_sum":
            store[labels["operation"]]["sum"] = value
        elif name == "router_breaker_open" and labels.get("source") == "store":
            store_breaker = value
        elif name == "router_store_round_trips_total":
            pipelines = value
    return {
        "decisions": decisions,
        "upstream": dict(upstream),
        "buckets": buckets,
        "count": count,
        "store": dict(store),
        "store_breaker_open": store_breaker,
        "pipelines": pipelines,
    }


def metrics_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    if not before or not after:
        return {}
    upstream = {
        k: int(v - before["upstream"].get(k, 0))
        for k, v in after["upstream"].items()
        if v - before["upstream"].get(k, 0)
    }
    buckets = {le: int(v - before["buckets"].get(le, 0)) for le, v in after["buckets"].items()}
    total = int(after["count"] - before["count"])
    store: dict[str, dict[str, float]] = {}
    for operation, now in after["store"].items():
        then = before["store"].get(operation, {"count": 0.0, "sum": 0.0})
        calls = int(now["count"] - then["count"])
        if calls:
            mean_ms = 1000 * (now["sum"] - then["sum"]) / calls
            store[operation] = {"calls": calls, "mean_ms": round(mean_ms, 2)}
    return {
        "decisions": int(after["decisions"] - before["decisions"]),
        "upstream": upstream,
        "over_100ms": total - buckets.get("0.1", 0),
        "over_250ms": total - buckets.get("0.25", 0),
        "over_500ms": total - buckets.get("0.5", 0),
        "store": store,
        "store_breaker_open_after": after["store_breaker_open"],
        "pipelines": int(after.get("pipelines", 0) - before.get("pipelines", 0)),
    }


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    ids: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    cpu_s: float = 0.0
    """wrk's own CPU time (user + system), when run by :func:`run_wrk`."""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def non_2xx(self) -> int:
        return self.errors["status"]

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "distinct_ids": self.ids,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "errors": self.errors,
            "latency_ms": self.latency_ms,
            "client_cpu_s": round(self.cpu_s, 2),
        }


def wrk_argv(
    url: str,
    mode: str,
    tag: str,
    *,
    threads: int,
    connections: int,
    duration_s: int,
    budget_ms: int | None,
    script: Path = LUA,
) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        mode,
        tag,
        "" if budget_ms is None else str(budget_ms),
        ROUTER_KEY,
    ]


def parse_wrk(stdout: str, stderr: str = "") -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON ") :])
            latency = {k: round(v / 1000.0, 2) for k, v in raw["latency_us"].items()}
            return WrkResult(
                requests=raw["requests"],
                duration_s=raw["duration_us"] / 1e6,
                ids=raw["ids"],
                errors=raw["errors"],
                latency_ms=latency,
            )
    raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")


def run_wrk(procs: Processes, argv: list[str], cpus: str | None) -> WrkResult:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # wrk is the only child reaped meanwhile (taskset execs it): its CPU is the difference.
        reaped_before = children_cpu_seconds()
        proc = procs.start("wrk", argv, stdout=out, stderr=err, cpus=cpus)
        proc.wait()
        procs.stop(proc)
        out.seek(0)
        err.seek(0)
        result = parse_wrk(out.read().decode(), err.read().decode())
        result.cpu_s = children_cpu_seconds() - reaped_before
        return result


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    pid: int
    url: str
    log_path: Path | None = None


@dataclass
class Fake:
    proc: subprocess.Popen[bytes]
    handoff_url: str
    data_url: str


@dataclass
class Bench:
    args: argparse.Namespace
    procs: Processes
    workdir: Path
    server_cpus: str | None
    client_cpus: str | None
    run_tag: str = field(default_factory=lambda: f"r{int(time.time()) % 100000}")
    results: dict[str, Any] = field(default_factory=dict)
    watched: dict[str, int] = field(default_factory=dict)
    """Other processes (name → pid) whose CPU time each measured run records (Redis)."""

    # -- starting and stopping --------------------------------------------------

    def start_fake(self, *, hang: bool) -> Fake:
        argv = [sys.executable, str(HELPERS / "fake_polyai.py"), "--api-key", POLYAI_KEY]
        argv += ["--hang"] if hang else ["--delay-ms", str(UPSTREAM_DELAY_MS)]
        with (self.workdir / "fake.err").open("ab") as err:
            proc = self.procs.start(
                "fake", argv, stdout=subprocess.PIPE, stderr=err, cpus=self.client_cpus
            )
        _, handoff_port, data_port = read_line(proc, "PORTS ", START_TIMEOUT_S).split()
        return Fake(proc, f"http://127.0.0.1:{handoff_port}", f"http://127.0.0.1:{data_port}")

    def stop_fake(self, fake: Fake) -> dict[str, Any]:
        self.procs.stop(fake.proc)
        assert fake.proc.stdout is not None
        for line in fake.proc.stdout.read().decode().splitlines():
            if line.startswith("{"):
                stats: dict[str, Any] = json.loads(line)
                return stats
        return {}

    def start_baseline(self) -> Server:
        argv = [sys.executable, str(HELPERS / "baseline_server.py")]
        with (self.workdir / "baseline.err").open("ab") as err:
            proc = self.procs.start(
                "baseline", argv, stdout=subprocess.PIPE, stderr=err, cpus=self.server_cpus
            )
        port = read_line(proc, "PORT ", START_TIMEOUT_S).split()[1]
        server = Server("baseline", proc, proc.pid, f"http://127.0.0.1:{port}")
        time.sleep(0.2)
        return server

    def router_env(
        self, *, log_level: str, fake: Fake | None, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "POLYAI_"))}
        env.update(
            ROUTER_LOG_LEVEL=log_level,
            ROUTER_LOG_FORMAT="json",
            ROUTER_API_KEYS=ROUTER_KEY,
            POLYAI_API_KEY=POLYAI_KEY,
            POLYAI_ACCOUNT_ID="ACCOUNT-acme",
            POLYAI_PROJECT_ID="PROJECT-support",
            POLYAI_AGENT_ID="agent-1",
            # Unused when every lookup is skipped; an address nothing listens on otherwise.
            POLYAI_HANDOFF_URL=fake.handoff_url if fake else "http://127.0.0.1:9",
            POLYAI_DATA_URL=fake.data_url if fake else "http://127.0.0.1:9",
        )
        if self.args.record_max is not None:  # decision records for replay (0: none)
            env["ROUTER_RECORD_MAX"] = str(self.args.record_max)
        env.update(extra or {})
        return env

    def start_router(
        self,
        name: str,
        *,
        log_level: str = "warning",
        fake: Fake | None = None,
        extra_env: dict[str, str] | None = None,
        profile_to: Path | None = None,
        workers: int = 1,
        cpus: str | None = "default",
    ) -> Server:
        port = free_port()
        log_path = self.workdir / f"router-{name}.log"
        argv = [sys.executable, "-m", "router", "serve", "--rules", str(RULES)]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        cpus = self.server_cpus if cpus == "default" else cpus
        if profile_to is not None:
            argv = [py_spy_path() or "py-spy", "record", "--nonblocking", "-r", "100"]
            argv += ["-f", "raw", "-o", str(profile_to), "--", *argv_router(port)]
            cpus = None  # let the sampler run beside the router, not on its core
        with log_path.open("wb") as log:
            proc = self.procs.start(
                f"router-{name}",
                argv,
                env=self.router_env(log_level=log_level, fake=fake, extra=extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cpus=cpus,
            )
        pid = child_pid(proc.pid) if profile_to is not None else proc.pid
        server = Server(name, proc, pid, f"http://127.0.0.1:{port}", log_path)
        wait_ready(server.url, proc)
        if workers > 1:
            wait_workers(server, workers)
        return server

    def stop_server(self, server: Server) -> None:
        if server.pid != server.proc.pid:  # under py-spy: stop the router, py-spy follows
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(STOP_TIMEOUT_S + 10)
        code = self.procs.stop(server.proc)
        if code not in (0, None) and server.name != "baseline":
            print(f"  ! {server.name}: exited with status {code}", file=sys.stderr)

    # -- one measured case ------------------------------------------------------

    def wrk(
        self,
        server: Server,
        mode: str,
        tag: str,
        *,
        duration_s: int,
        connections: int | None = None,
        threads: int | None = None,
        budget_ms: int | None = None,
        script: Path = LUA,
    ) -> WrkResult:
        connections = connections or self.args.connections
        threads = min(threads or self.args.threads, connections)
        argv = wrk_argv(
            server.url,
            mode,
            f"{self.run_tag}-{tag}",
            threads=threads,
            connections=connections,
            duration_s=duration_s,
            budget_ms=budget_ms,
            script=script,
        )
        return run_wrk(self.procs, argv, self.client_cpus)

    def measure(
        self,
        key: str,
        title: str,
        server: Server,
        mode: str,
        *,
        budget_ms: int | None = None,
        expect_sources: set[str] | None = None,
        connections: int | None = None,
        check_after: int = 0,
        script: Path = LUA,
        warmup: bool = True,
    ) -> dict[str, Any]:
        """Sample answer, warm-up, then the measured run, with RSS, CPU and /metrics around it.

        ``check_after``: that many answers sampled after the run (:meth:`check_answers`).
        ``script``: the wrk script (``PLATFORM_LUA``: ``mode`` names an endpoint).
        ``warmup``: run ``--warmup`` seconds first (off when the caller warmed the server).
        """
        args = self.args
        connections = connections or args.connections
        sample = (
            platform_sample(server.url, mode, self.run_tag)
            if script == PLATFORM_LUA
            else self.sample_answer(server, mode, budget_ms)
        )
        if expect_sources is not None and sample.get("sources"):
            seen = set(sample["sources"].values())
            if not seen <= expect_sources:
                print(f"  ! {key}: sources {sample['sources']}, expected {expect_sources}")
        if args.warmup and warmup:
            self.wrk(
                server,
                mode,
                f"{key}-warm",
                duration_s=args.warmup,
                budget_ms=budget_ms,
                connections=connections,
                script=script,
            )
        is_router = server.name != "baseline"
        before = scrape(server.url) if is_router else {}
        log_bytes = server.log_path.stat().st_size if server.log_path else 0
        rss_before = sum(rss_kb(pid) for pid in tree_pids(server.pid))
        cpu_before = tree_cpu(server.pid)
        watched_before = {name: cpu_seconds(pid) for name, pid in self.watched.items()}
        jiffies_before = machine_jiffies()
        result = self.wrk(
            server,
            mode,
            key,
            duration_s=args.duration,
            budget_ms=budget_ms,
            connections=connections,
            script=script,
        )
        jiffies = [b - a for a, b in zip(jiffies_before, machine_jiffies(), strict=True)]
        by_process = cpu_delta(cpu_before, tree_cpu(server.pid))
        cpu = sum(by_process.values())
        watched = {
            name: round(cpu_seconds(pid) - watched_before[name], 2)
            for name, pid in self.watched.items()
        }
        rss_after = sum(rss_kb(pid) for pid in tree_pids(server.pid))
        after = scrape(server.url) if is_router else {}
        ncpu = os.cpu_count() or 1
        row: dict[str, Any] = {
            "key": key,
            "title": title,
            "connections": connections,
            **result.as_dict(),
            "rss_mb": [round(rss_before / 1024, 1), round(rss_after / 1024, 1)],
            "server_cpu_s": round(cpu, 2),
            "server_cpu_pct": round(100 * cpu / result.duration_s, 1),
            "cpu_us_per_request": round(1e6 * cpu / max(result.requests, 1), 1),
            "server_cpu_by_process_s": {str(k): round(v, 2) for k, v in by_process.items()},
            "watched_cpu_s": watched,
            # Every CPU of the machine over the run, in cores busy (ncpu at most); "steal"
            # is time the hypervisor gave to other VMs.
            "machine_cores_busy": round(ncpu * jiffies[0] / max(jiffies[2], 1), 2),
            "machine_cores_stolen": round(ncpu * jiffies[1] / max(jiffies[2], 1), 2),
            "sample": sample,
        }
        if is_router:
            row["metrics"] = metrics_delta(before, after)
        if server.log_path is not None:
            row["log_bytes_per_request"] = round(
                (server.log_path.stat().st_size - log_bytes) / max(result.requests, 1), 1
            )
            row["log_events"], row["log_examples"] = log_events(server.log_path, log_bytes)
        if check_after:
            row["after"] = self.check_answers(server, check_after)
        self.results.setdefault("cases", {})[key] = row
        print_row(row)
        return row

    def sample_answer(self, server: Server, mode: str, budget_ms: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversation_id": f"{self.run_tag}-sample-{mode}-{time.monotonic_ns()}",
            "context": {"dnis": "+442071234567", "ivr_choice": "2"},
        }
        if mode == "inline":
            body["handoff"] = {"handoff_reason": "refund", "intent": "billing.refund_status"}
            body["state"] = {"customer_tier": "gold", "balance": "1500"}
        if budget_ms is not None:
            body["budget_ms"] = budget_ms
        began = time.monotonic()
        status, raw = http(server.url + "/v1/route", body)
        took = (time.monotonic() - began) * 1000
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = {}
        picked = {k: answer.get(k) for k in ("queue", "rule", "outcome", "degraded", "sources")}
        return {"status": status, "took_ms": round(took, 1), **picked}

    def check_answers(self, server: Server, count: int) -> dict[str, Any]:
        """``count`` inline decisions, each on a new connection: statuses, stores, workers."""
        statuses: collections.Counter[str] = collections.Counter()
        stores: collections.Counter[str] = collections.Counter()
        workers: collections.Counter[str] = collections.Counter()
        for n in range(count):
            body = {
                "conversation_id": f"{self.run_tag}-check-{time.monotonic_ns()}-{n}",
                "context": {"dnis": "+442071234567", "ivr_choice": "2"},
                "handoff": {"handoff_reason": "refund", "intent": "billing.refund_status"},
                "state": {"customer_tier": "gold", "balance": "1500"},
            }
            status, headers, raw = http_full(server.url + "/v1/route", body)
            statuses[str(status)] += 1
            with contextlib.suppress(ValueError, AttributeError):
                stores[str(json.loads(raw).get("sources", {}).get("store", "-"))] += 1
            workers[headers.get("X-Router-Worker", "-")] += 1
        return {"status": dict(statuses), "store": dict(stores), "workers": dict(workers)}

    def probe(self, key: str, server: Server, mode: str) -> dict[str, Any]:
        """One request at a time: latency without queueing."""
        result = self.wrk(
            server, mode, f"{key}-c1", duration_s=self.args.probe, connections=1, threads=1
        )
        row = {"key": key, **result.as_dict()}
        self.results.setdefault("one_at_a_time", {})[key] = row
        lat = result.latency_ms
        print(
            f"  {key} one at a time: {result.rps:8.0f} req/s  p50 {lat['p50']:.2f} ms  "
            f"p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms"
        )
        return row


def wait_workers(server: Server, workers: int, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until ``workers`` distinct workers have answered (``X-Router-Worker``)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < workers and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, headers, _ = http_full(server.url + "/readyz", timeout_s=1.0)
            if status == 200 and "X-Router-Worker" in headers:
                seen.add(headers["X-Router-Worker"])
        time.sleep(0.02)
    if len(seen) < workers:
        raise RuntimeError(f"{server.name}: {len(seen)} of {workers} workers answered")


def log_events(path: Path, offset: int) -> tuple[dict[str, int], dict[str, list[str]]]:
    """How many lines of each ``event`` the router's JSON log got past ``offset``, and the
    first three lines of each."""
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    with path.open("rb") as log:
        log.seek(offset)
        for line in log:
            try:
                event = str(json.loads(line).get("event", "?"))
            except (ValueError, AttributeError):
                event = "(not JSON)"
            counts[event] += 1
            if len(examples[event]) < 3:
                examples[event].append(line.decode(errors="replace").strip()[:400])
    return dict(counts), dict(examples)


def argv_router(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "router",
        "serve",
        "--rules",
        str(RULES),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def py_spy_path() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# --------------------------------------------------------------------------- phases


def main_cases(bench: Bench) -> None:
    args = bench.args
    print(f"\n== {args.connections} connections, {args.duration} s each ==")
    baseline = bench.start_baseline()
    try:
        bench.measure("a", "bare aiohttp JSON endpoint (baseline)", baseline, "inline")
        bench.probe("a", baseline, "inline")
    finally:
        bench.stop_server(baseline)

    router = bench.start_router("b")
    try:
        bench.measure(
            "b",
            "/v1/route, facts inline",
            router,
            "inline",
            expect_sources={"inline", "skipped"},
        )
        bench.probe("b", router, "inline")
    finally:
        bench.stop_server(router)

    router = bench.start_router("b+log", log_level="info")
    try:
        bench.measure(
            "b+log", "/v1/route, facts inline, info-level JSON logs to a file", router, "inline"
        )
    finally:
        bench.stop_server(router)

    fake = bench.start_fake(hang=False)
    fake_cpu = cpu_seconds(fake.proc.pid)
    row: dict[str, Any] = {}
    try:
        router = bench.start_router("c", fake=fake)
        try:
            row = bench.measure(
                "c",
                f"/v1/route, 2 lookups, fake answers in {UPSTREAM_DELAY_MS:.0f} ms",
                router,
                "lookup",
                budget_ms=LOOKUP_BUDGET_MS,
                expect_sources={"ok"},
            )
            bench.probe("c", router, "lookup")
        finally:
            bench.stop_server(router)
    finally:
        row["fake_cpu_s"] = round(cpu_seconds(fake.proc.pid) - fake_cpu, 2)
        row["fake"] = bench.stop_fake(fake)

    no_breaker = {"ROUTER_BREAKER_FAILURES": "1000000000"}
    for key, extra, title, connections in (
        ("d", {}, "default breaker", None),
        ("d-nb", no_breaker, "breaker never opens", None),
        (f"d-nb@{args.light}", no_breaker, f"breaker never opens, {args.light} conns", args.light),
    ):
        fake = bench.start_fake(hang=True)
        row = {}
        try:
            router = bench.start_router(key, fake=fake, extra_env=extra)
            try:
                row = bench.measure(
                    key,
                    f"/v1/route, fake hangs, budget {HANG_BUDGET_MS} ms, {title}",
                    router,
                    "lookup",
                    budget_ms=HANG_BUDGET_MS,
                    expect_sources={"timeout", "circuit_open", "skipped"},
                    connections=connections,
                )
            finally:
                bench.stop_server(router)
        finally:
            row["fake"] = bench.stop_fake(fake)

    baseline = bench.start_baseline()
    try:
        bench.measure("a2", "baseline again (drift check)", baseline, "inline")
    finally:
        bench.stop_server(baseline)


# --------------------------------------------------------------------------- platforms

PLATFORM_MODES = ("route", "amazon-connect", "twilio-voice", "twilio-studio", "genesys")
"""The endpoints --platforms compares: /v1/route, then each platform endpoint."""
PLATFORM_TITLES = {
    "route": "POST /v1/route",
    "amazon-connect": "POST /v1/platforms/amazon-connect (Lambda event in, flat map out)",
    "twilio-voice": "POST /v1/platforms/twilio/voice (SIP webhook form in, TwiML out)",
    "twilio-studio": "POST /v1/platforms/twilio/studio (widget form in, flat JSON out)",
    "genesys": "POST /v1/platforms/genesys (data action JSON in, fixed keys out)",
}
PLATFORM_STORE_CAP = 20_000
"""ROUTER_MEMORY_MAX_ENTRIES of the --platforms router: reached while warming up."""
PLATFORM_CPU_TARGET = 1.15
"""Each platform endpoint costs at most this many times the CPU per request of /v1/route."""
_ANI, _DNIS = "+447700900123", "+442071234567"


def platform_request(mode: str, conversation_id: str) -> tuple[str, bytes, str]:
    """(path, body, content type) of one call in ``mode``'s shape: the bodies
    bench/http/platforms.lua sends, byte for byte."""
    cid = conversation_id
    if mode == "route":
        body = (
            f'{{"conversation_id":"{cid}","context":{{"ani":"{_ANI}","dnis":"{_DNIS}",'
            f'"call_id":"CA{cid}"}}}}'
        )
        return "/v1/route", body.encode(), "application/json"
    if mode == "amazon-connect":
        body = (
            '{"Details":{"ContactData":{"Attributes":{},"Channel":"VOICE",'
            f'"ContactId":"4a573372-1f28-4e26-b97b-{cid}",'
            f'"CustomerEndpoint":{{"Address":"{_ANI}","Type":"TELEPHONE_NUMBER"}},'
            f'"InitialContactId":"4a573372-1f28-4e26-b97b-{cid}",'
            '"InitiationMethod":"INBOUND",'
            '"InstanceARN":"arn:aws:connect:eu-west-2:111122223333:instance/'
            '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",'
            f'"PreviousContactId":"4a573372-1f28-4e26-b97b-{cid}","Queue":null,'
            f'"SystemEndpoint":{{"Address":"{_DNIS}","Type":"TELEPHONE_NUMBER"}}}},'
            f'"Parameters":{{"conversation_id":"{cid}"}}}},"Name":"ContactFlowEvent"}}'
        )
        return "/v1/platforms/amazon-connect", body.encode(), "application/json"
    quote = functools.partial(urllib.parse.quote, safe="-_.~")
    sip_from = quote(f"sip:{_ANI}@203.0.113.10")
    sip_to = quote(f"sip:{_DNIS}@example.sip.twilio.com")
    form = "application/x-www-form-urlencoded"
    if mode == "twilio-voice":
        body = (
            "AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&ApiVersion=2010-04-01"
            f"&CallSid=CA{quote(cid)}&CallStatus=ringing&Called={sip_to}"
            f"&Caller={sip_from}&Direction=inbound&From={sip_from}"
            f"&SipCallId={quote(cid + '@203.0.113.10')}"
            "&SipDomain=example.sip.twilio.com&SipDomainSid=SDXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
            f"&SipHeader_X-Conversation-Id={quote(cid)}"
            f"&SipSourceIp=203.0.113.10&To={sip_to}"
        )
        return "/v1/platforms/twilio/voice", body.encode(), form
    if mode == "twilio-studio":
        body = (
            f"conversation_id={quote(cid)}&shared_id=&call_sid=CA{quote(cid)}"
            f"&from={sip_from}&to={sip_to}"
        )
        return "/v1/platforms/twilio/studio", body.encode(), form
    body = (
        f'{{"conversation_id": "{cid}", "shared_id": "", "genesys_conversation_id": "{cid}", '
        f'"ani": "{_ANI}", "dnis": "{_DNIS}"}}'
    )
    return "/v1/platforms/genesys", body.encode(), "application/json"


def platform_sample(url: str, mode: str, tag: str) -> dict[str, Any]:
    """One call in ``mode``'s shape: its status and the decision it names (queue, rule)."""
    path, body, content_type = platform_request(mode, f"{tag}-sample-{time.monotonic_ns()}")
    request = urllib.request.Request(
        url + path,
        data=body,
        headers={"Authorization": f"Bearer {ROUTER_KEY}", "Content-Type": content_type},
    )
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=5.0) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    took = round((time.monotonic() - began) * 1000, 1)
    decided: dict[str, Any] = {}
    with contextlib.suppress(ValueError, AttributeError, TypeError, IndexError):
        if mode == "twilio-voice":
            text = raw.decode()
            task = text.split("<Task", 1)[1].split(">", 1)[1].split("</Task>", 1)[0]
            attributes = json.loads(
                task.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            )
            decided = {"queue": attributes["router_queue"], "rule": attributes["rule"] or None}
        else:
            answer = json.loads(raw)
            decided = {"queue": answer.get("queue"), "rule": answer.get("rule") or None}
            if mode == "route":
                decided["sources"] = answer.get("sources")
    return {"status": status, "took_ms": took, **decided}


def platforms_phase(bench: Bench) -> None:
    """/v1/route and each platform endpoint on the same call, against one router with
    lookups off (no POLYAI_API_KEY: every endpoint skips them alike and keeps the decision).

    The machine is shared, so its speed drifts: each round runs /v1/route between every two
    platform endpoints (route, connect, route, voice, … route), and each endpoint is
    compared with the mean of the two /v1/route runs beside it. The memory store is held
    at a small cap (``PLATFORM_STORE_CAP``) and filled before measuring, so every run sees
    the same steady state (evicting as many decisions as it keeps).
    """
    args = bench.args
    print(
        f"\n== platforms: {args.connections} connections, {args.duration} s each, "
        f"{args.rounds} round(s), route between every two endpoints =="
    )
    extra = {"POLYAI_API_KEY": "", "ROUTER_MEMORY_MAX_ENTRIES": str(PLATFORM_STORE_CAP)}
    router = bench.start_router("platforms", extra_env=extra)
    try:
        for mode in PLATFORM_MODES:  # warm every path, and fill the store past its cap
            bench.wrk(
                router, mode, f"fill-{mode}", duration_s=max(args.warmup, 2), script=PLATFORM_LUA
            )
        for round_no in range(1, args.rounds + 1):
            order = ["route"]
            for mode in PLATFORM_MODES[1:]:
                order += [mode, "route"]
            for position, mode in enumerate(order):
                key = f"{mode}#{round_no}.{position}"
                row = bench.measure(
                    key, PLATFORM_TITLES[mode], router, mode, script=PLATFORM_LUA, warmup=False
                )
                row["mode"], row["round"], row["position"] = mode, round_no, position
    finally:
        bench.stop_server(router)
    decisions = {
        (row["sample"].get("queue"), row["sample"].get("rule"))
        for row in bench.results.get("cases", {}).values()
        if "mode" in row
    }
    bench.results["platform_decisions"] = sorted(map(str, decisions))
    if len(decisions) != 1:
        print(f"  ! the endpoints did not all make the same decision: {decisions}")


def platform_ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per platform endpoint: its CPU per request over the mean of the two /v1/route runs
    beside it, per round, and the median of the rounds."""
    rows = [row for row in results.get("cases", {}).values() if "mode" in row]
    by_place = {(row["round"], row["position"]): row for row in rows}
    ratios: dict[str, list[float]] = collections.defaultdict(list)
    for row in rows:
        if row["mode"] == "route":
            continue
        beside = [by_place.get((row["round"], row["position"] + d)) for d in (-1, 1)]
        route = [r["cpu_us_per_request"] for r in beside if r and r["mode"] == "route"]
        if route:
            ratios[row["mode"]].append(row["cpu_us_per_request"] / statistics.mean(route))
    return {
        mode: {
            "rounds": [round(r, 3) for r in ratios[mode]],
            "median": round(statistics.median(ratios[mode]), 3),
        }
        for mode in PLATFORM_MODES[1:]
        if ratios[mode]
    }


def platform_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for mode, ratio in platform_ratios(results).items():
        out.append(
            {
                "target": f"({mode}) CPU per request ≤ {PLATFORM_CPU_TARGET} × /v1/route's",
                "measured": f"{ratio['median']:.2f} × (median of rounds "
                + ", ".join(f"{r:.2f}" for r in ratio["rounds"])
                + ")",
                "met": ratio["median"] <= PLATFORM_CPU_TARGET,
            }
        )
    decisions = results.get("platform_decisions", [])
    out.append(
        {
            "target": "every endpoint made the same decision",
            "measured": "; ".join(decisions) or "-",
            "met": len(decisions) == 1,
        }
    )
    return out


def platform_table(results: dict[str, Any]) -> str:
    lines = [
        "| endpoint | round | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/req "
        "| × /v1/route beside it |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [row for row in results.get("cases", {}).values() if "mode" in row]
    by_place = {(row["round"], row["position"]): row for row in rows}
    for row in rows:
        lat = row["latency_ms"]
        ratio = ""
        if row["mode"] != "route":
            beside = [by_place.get((row["round"], row["position"] + d)) for d in (-1, 1)]
            route = [r["cpu_us_per_request"] for r in beside if r and r["mode"] == "route"]
            ratio = f"{row['cpu_us_per_request'] / statistics.mean(route):.3f}" if route else ""
        lines.append(
            f"| {row['mode']} | {row['round']} | {row['rps']:,.0f} | {lat['p50']:.1f} "
            f"| {lat['p99']:.1f} | {row['non_2xx']} | {row['cpu_us_per_request']:.0f} "
            f"| {ratio} |"
        )
    return "\n".join(lines)


def memory_phase(bench: Bench) -> None:
    """Distinct conversations through /v1/route (inline facts); RSS every ``--rss-every``."""
    args = bench.args
    target, every = args.conversations, args.rss_every
    extra = {"ROUTER_MEMORY_MAX_ENTRIES": str(args.max_entries)} if args.max_entries else {}
    cap = args.max_entries or 100_000
    print(
        f"\n== memory: {target:,} distinct conversations, inline facts, "
        f"ROUTER_MEMORY_MAX_ENTRIES={cap:,}{'' if args.max_entries else ' (default)'} =="
    )
    router = bench.start_router("rss", extra_env=extra)
    series: list[dict[str, Any]] = [{"decisions": 0, "rss_mb": round(rss_kb(router.pid) / 1024, 1)}]
    print(f"  {0:>9,} decisions  RSS {series[0]['rss_mb']:7.1f} MB")
    wrk_proc: subprocess.Popen[bytes] | None = None
    try:
        argv = wrk_argv(
            router.url,
            "inline",
            f"{bench.run_tag}-rss",
            threads=args.threads,
            connections=args.connections,
            duration_s=args.rss_seconds + 5,
            budget_ms=None,
        )
        with tempfile.TemporaryFile() as out:
            wrk_proc = bench.procs.start("wrk", argv, stdout=out, cpus=bench.client_cpus)
            began = time.monotonic()
            next_mark = every
            decisions = 0
            while decisions < target and time.monotonic() - began < args.rss_seconds:
                if wrk_proc.poll() is not None:
                    break
                time.sleep(0.1)
                decisions = int(scrape(router.url).get("decisions", 0))
                if decisions >= next_mark:
                    point = {
                        "decisions": decisions,
                        "rss_mb": round(rss_kb(router.pid) / 1024, 1),
                        "t_s": round(time.monotonic() - began, 1),
                    }
                    series.append(point)
                    print(f"  {decisions:>9,} decisions  RSS {point['rss_mb']:7.1f} MB")
                    while next_mark <= decisions:
                        next_mark += every
            bench.procs.stop(wrk_proc, signal.SIGINT)  # wrk prints its summary on SIGINT
            out.seek(0)
            result = parse_wrk(out.read().decode())
        final = int(scrape(router.url).get("decisions", 0))
        series.append({"decisions": final, "rss_mb": round(rss_kb(router.pid) / 1024, 1)})
        print(f"  {final:>9,} decisions  RSS {series[-1]['rss_mb']:7.1f} MB (end)")
    finally:
        if wrk_proc is not None:
            bench.procs.stop(wrk_proc)
        bench.stop_server(router)
    reached = final >= target
    rss = bench.results["rss"] = {
        "target": target,
        "max_entries": cap,
        "reached": reached,
        "series": series,
        "wrk": result.as_dict(),
    }
    before_cap = [p for p in series if 0 < p["decisions"] <= cap]
    after_cap = [p for p in series if p["decisions"] >= cap]
    if len(before_cap) >= 2:
        first, last = before_cap[0], before_cap[-1]
        per_10k = (last["rss_mb"] - first["rss_mb"]) / max(
            (last["decisions"] - first["decisions"]) / 10_000, 1e-9
        )
        rss["growth_mb_per_10k_before_cap"] = round(per_10k, 2)
    if len(after_cap) >= 2:
        rss["growth_mb_after_cap"] = round(after_cap[-1]["rss_mb"] - after_cap[0]["rss_mb"], 1)
        rss["decisions_after_cap"] = after_cap[-1]["decisions"] - after_cap[0]["decisions"]
    if not reached:
        print(f"  ! stopped at {final:,} decisions after {args.rss_seconds} s (--rss-seconds)")


# --------------------------------------------------------------------------- scale-out

SCALE_CASES: tuple[tuple[str, str, int], ...] = (
    ("s1", "memory", 1),
    ("s2", "redis", 1),
    ("s3", "redis", 2),
)
"""(key, store, workers) of ``--scale``: /v1/route with inline facts in each."""
SCALE_STORE_TIMEOUT_MS = 50
SCALE_BUDGET_MS = 500
STORE_FAULT_EVENTS = (
    "store_read_failed",
    "store_circuit_open",
    "decision_not_saved",
    "decision_queued",
    "lookup_cache_write_failed",
)
"""Warning-level log events that mean a decision did not use a healthy store."""
STORE_FAULTS_TOLERATED = 0.01
"""More store faults than this share of the decisions invalidates a Redis case (fewer are
reported): under 200 connections a request may spend its whole budget queued, and then
its store call has no time left."""


def redis_server_pid(url: str) -> int | None:
    """The pid of the Redis server ``url`` names, when it runs on this machine (else None).

    Raises (redis-py's ``ConnectionError``) when it does not answer.
    """
    import redis  # the router's own dependency; only --scale needs it here

    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        info = client.info("server")
    finally:
        client.close()
    pid = int(info.get("process_id", 0))
    host = urllib.parse.urlsplit(url).hostname or ""
    comm = Path(f"/proc/{pid}/comm")
    local = host in ("127.0.0.1", "localhost", "::1") and comm.exists()
    return pid if local and comm.read_text().startswith("redis") else None


def delete_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (bench/store_bench.py's helper); how many there were."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from store_bench import delete_prefixed
    finally:
        sys.path.pop(0)
    return asyncio.run(delete_prefixed(url, prefix))


def scale_phase(bench: Bench) -> None:
    """Baseline, then /v1/route inline: memory 1 worker, Redis 1 worker, Redis 2 workers."""
    args = bench.args
    url = args.redis
    try:
        redis_pid = redis_server_pid(url)
    except Exception as exc:  # any reason Redis cannot be used ends the run
        raise RuntimeError(f"--scale: Redis at {url} does not answer: {exc}") from None
    if redis_pid is not None:
        bench.watched["redis"] = redis_pid
    bench.results["scale"] = {
        "redis": url,
        "redis_pid": redis_pid,
        "store_timeout_ms": args.store_timeout_ms,
        "budget_ms": args.budget_ms,
        "rounds": args.rounds,
        "check_after": args.check,
    }
    print(
        f"\n== scale-out: {args.connections} connections, {args.duration} s each, "
        f"{args.rounds} round(s); Redis {url} (pid {redis_pid or 'not local: no CPU time'}), "
        f"ROUTER_STORE_TIMEOUT_MS={args.store_timeout_ms}, ROUTER_BUDGET_MS={args.budget_ms} =="
    )
    baseline = bench.start_baseline()
    try:
        bench.measure("a", "bare aiohttp JSON endpoint (baseline)", baseline, "inline")
    finally:
        bench.stop_server(baseline)
    for round_no in range(1, args.rounds + 1):
        for name, store, workers in SCALE_CASES:
            key = name if args.rounds == 1 else f"{name}.{round_no}"
            scale_case(bench, key, store, workers, round_no)


def scale_case(bench: Bench, key: str, store: str, workers: int, round_no: int) -> None:
    args = bench.args
    url = args.redis
    extra: dict[str, str] = {"ROUTER_BUDGET_MS": str(args.budget_ms)}
    prefix = None
    if store == "redis":
        prefix = f"bench-scale:{uuid.uuid4().hex[:12]}:{key}:"
        extra |= {
            "ROUTER_STORE": url,
            "ROUTER_STORE_PREFIX": prefix,
            "ROUTER_STORE_TIMEOUT_MS": str(args.store_timeout_ms),
        }
    title = f"/v1/route inline, {store} store, {workers} worker{'s' if workers > 1 else ''}"
    # With --pin, one worker runs on CPU 0 (wrk on the others); two workers need both CPUs.
    cpus = bench.server_cpus if workers == 1 else None
    row: dict[str, Any] = {}
    try:
        router = bench.start_router(key, extra_env=extra, workers=workers, cpus=cpus)
        try:
            row = bench.measure(
                key,
                title,
                router,
                "inline",
                expect_sources={"inline", "skipped"} | ({"ok"} if prefix else set()),
                check_after=args.check,
            )
            if round_no == 1 and args.probe:
                bench.probe(key.split(".")[0], router, "inline")
            row["decisions_total"] = int(scrape(router.url).get("decisions", 0))
        finally:
            bench.stop_server(router)
    finally:
        if prefix is not None:
            row["keys_deleted"] = delete_keys(url, prefix)
    row.update(store=store, workers=workers, round=round_no, case=key.split(".")[0])
    row["problems"], row["notes"] = scale_problems(row)
    print_scale_checks(row)


def scale_problems(row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Why a scale-out row's numbers cannot be trusted (empty: they can), and what else
    is worth knowing about the run."""
    problems: list[str] = []
    notes: list[str] = []
    if row["non_2xx"] or row["socket_errors"]:
        problems.append(f"non-2xx {row['non_2xx']}, socket errors {row['socket_errors']}")
    after = row.get("after", {})
    if set(after.get("status", {})) - {"200"}:
        problems.append(f"statuses after the run: {after['status']}")
    if row["workers"] > 1:
        # Checks on new connections, one at a time, may all land on one idle worker: the
        # CPU each worker used over the run says whether all of them served.
        used = sorted(row["server_cpu_by_process_s"].values(), reverse=True)[: row["workers"]]
        if min(used) < 0.25 * sum(used) / len(used):
            problems.append(f"the workers' CPU seconds were {used}: not all of them served")
    if row["store"] != "redis":
        return problems, notes
    if set(after.get("store", {})) != {"ok"}:
        problems.append(f"sources.store after the run: {after.get('store')}")
    events = row.get("log_events", {})
    if events.get("store_circuit_open") or row.get("metrics", {}).get("store_breaker_open_after"):
        problems.append("the store's circuit breaker opened")
    decisions = max(row.get("metrics", {}).get("decisions", 0), 1)
    faults = {e: n for e, n in events.items() if e in STORE_FAULT_EVENTS}
    if faults:
        share = sum(faults.values()) / decisions
        text = f"store faults logged: {faults} ({100 * share:.2f} % of {decisions} decisions)"
        (problems if share > STORE_FAULTS_TOLERATED else notes).append(text)
    if row.get("keys_deleted", 0) < row.get("decisions_total", 0):
        problems.append(
            f"{row['decisions_total']} decisions but {row['keys_deleted']} keys in Redis"
        )
    trips = round_trips(row)
    if trips and trips.get("save_decision", 0.0) < 0.95:
        notes.append(
            f"only {100 * trips.get('save_decision', 0.0):.0f} % of decisions saved by their "
            "own round trip; the rest queued behind the outbox (a save had timed out) and "
            f"went in batches ({trips.get('outbox_flush', 0.0):.3f} flushes per decision)"
        )
    return problems, notes


READ_OPERATIONS = ("read_known", "read_known_linked")
WRITE_OPERATIONS = ("save_decision", "outbox_flush", "cache_lookups")


def round_trips(row: dict[str, Any]) -> dict[str, float]:
    """Store round trips per decision, by operation, over the measured run."""
    metrics = row.get("metrics", {})
    decisions = metrics.get("decisions") or 0
    if not decisions:
        return {}
    return {op: v["calls"] / decisions for op, v in metrics.get("store", {}).items()}


def scale_numbers(row: dict[str, Any]) -> dict[str, float]:
    """Per-request CPU of each party and cores busy, for the scale-out table."""
    requests = max(row["requests"], 1)
    seconds = row["duration_s"] or 1.0
    redis_s = row["watched_cpu_s"].get("redis", 0.0)
    own = row["server_cpu_s"] + row["client_cpu_s"] + redis_s
    by_process = sorted(row["server_cpu_by_process_s"].values(), reverse=True)
    busiest = by_process[: row.get("workers", 1)]
    return {
        "router_us": 1e6 * row["server_cpu_s"] / requests,
        "redis_us": 1e6 * redis_s / requests,
        "wrk_us": 1e6 * row["client_cpu_s"] / requests,
        "router_cores": row["server_cpu_s"] / seconds,
        "redis_cores": redis_s / seconds,
        "wrk_cores": row["client_cpu_s"] / seconds,
        "other_cores": max(row["machine_cores_busy"] - own / seconds, 0.0),
        "busiest_worker_share": max(busiest) / max(sum(busiest), 1e-9),
    }


def print_scale_checks(row: dict[str, Any]) -> None:
    n = scale_numbers(row)
    trips = round_trips(row)
    after = row.get("after", {})
    line = (
        f"      CPU µs/req: router {n['router_us']:.0f}, Redis {n['redis_us']:.0f}, wrk "
        f"{n['wrk_us']:.0f}; cores: router {n['router_cores']:.2f}, Redis "
        f"{n['redis_cores']:.2f}, wrk {n['wrk_cores']:.2f}, other {n['other_cores']:.2f}"
    )
    if row["workers"] > 1:
        line += f"; busiest worker {100 * n['busiest_worker_share']:.0f} % of the workers' CPU"
    print(line)
    if trips:
        mean = {op: v["mean_ms"] for op, v in row["metrics"]["store"].items()}
        calls = sum(v["calls"] for v in row["metrics"]["store"].values())
        pipelines = row["metrics"].get("pipelines", 0)
        print(
            "      store round trips per decision: "
            + ", ".join(f"{op} {v:.2f} (mean {mean[op]:.2f} ms)" for op, v in trips.items())
            + (f"; {calls / pipelines:.1f} calls per pipeline" if pipelines else "")
        )
    print(
        f"      after the run: status {after.get('status')}, sources.store "
        f"{after.get('store')}, workers {after.get('workers')}"
        + (
            f"; keys {row['keys_deleted']} for {row['decisions_total']} decisions (deleted)"
            if "keys_deleted" in row
            else ""
        )
    )
    for note in row["notes"]:
        print(f"      note: {note}")
    for problem in row["problems"]:
        print(f"  ! ({row['key']}) INVALID: {problem}")


# --------------------------------------------------------------------------- profile

# Where a sample's time goes: the innermost frame matching one of these decides.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # send() on a loopback socket wakes the peer (wrk, the fake), which may then take the CPU:
    # samples here are partly the router waiting to run again, not work of its own.
    (
        "socket writes: send() (server answers and client requests)",
        ("StreamWriter._writelines (aiohttp/", "StreamWriter._write (aiohttp/"),
    ),
    ("pydantic: request validation (JSON parse included)", ("pydantic/", "pydantic_core")),
    ("structlog / logging", ("structlog/", "router/observe.py", "logging/__init__.py")),
    ("prometheus metrics", ("prometheus_client/",)),
    ("rule engine", ("router/engine/", "re2/")),
    ("store (memory)", ("router/store/",)),
    ("uuid4 (request + decision ids)", ("uuid.py",)),
    (
        "aiohttp client (lookups)",
        (
            "aiohttp/client",
            "aiohttp/connector",
            "aiohttp/tracing",
            "yarl/",
            "aiohttp/cookiejar",
            "aiohttp/helpers.py",
            "router/facts/polyai.py",
        ),
    ),
    ("facts gathering (gather, breaker, single-flight)", ("router/facts/",)),
    ("asyncio (tasks, timeouts, wait)", ("asyncio/",)),
    ("aiohttp server: parse request, build + write response", ("aiohttp/",)),
    ("router http layer (middlewares, handlers, orjson)", ("router/http/",)),
    ("router decision service", ("router/service/",)),
    ("event loop / I/O (uvloop, no Python frame)", ("Runner.run (asyncio/runners.py",)),
)
# Share of samples whose stack holds a frame containing the text (inclusive time).
INCLUSIVE: tuple[tuple[str, str], ...] = (
    ("aiohttp reads + parses the request (data_received)", "RequestHandler.data_received"),
    ("aiohttp writes the response (finish_response)", "RequestHandler.finish_response"),
    ("middlewares + handler (Application._handle)", "Application._handle"),
    ("  the router middleware (handle_request)", "handle_request (router/http/middlewares.py"),
    ("  parse_model: pydantic validate_json", "parse_model (router/http/body.py"),
    ("  DecisionService.decide: the whole decision", "decide (router/service/decisions.py"),
    ("  _gather: facts (store read, lookups)", "_gather (router/service/decisions.py"),
    ("  RuleSet.decide", "decide (router/engine/decide.py"),
    ("  _save: store write", "_save (router/service/decisions.py"),
    ("  observe_decision: decision metrics + log line", "observe_decision (router/service/"),
    ("  json_response: orjson + web.Response", "json_response (router/http/handlers.py"),
    ("  on_response_prepare: standard headers", "add_standard_headers"),
    ("all structlog frames", "structlog/"),
    ("all prometheus_client frames", "prometheus_client/"),
    ("all pydantic frames", "pydantic"),
)
_STARTUP = ("<frozen importlib", "_get_module_details", "RulesReloader")


def read_samples(path: Path) -> list[tuple[int, list[str]]]:
    samples: list[tuple[int, list[str]]] = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or any(s in stack for s in _STARTUP):
            continue
        if "Runner.run (asyncio/runners.py" not in stack:
            continue  # not the event loop's thread (the rules watcher, a worker thread)
        samples.append((int(count), frames))
    return samples


def summarise_profile(path: Path) -> dict[str, Any]:
    samples = read_samples(path)
    total = sum(n for n, _ in samples) or 1
    categories: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for count, frames in samples:
        leaves[frames[-1]] += count
        for frame in reversed(frames):
            name = next((c for c, marks in CATEGORIES if any(m in frame for m in marks)), None)
            if name is not None:
                categories[name] += count
                break
        else:
            categories["other"] += count
    inclusive = {
        label: round(100 * sum(n for n, f in samples if any(mark in x for x in f)) / total, 1)
        for label, mark in INCLUSIVE
    }
    return {
        "samples": total,
        "categories_pct": {k: round(100 * v / total, 1) for k, v in categories.most_common()},
        "inclusive_pct": inclusive,
        "top_leaf_frames_pct": {k: round(100 * v / total, 1) for k, v in leaves.most_common(15)},
    }


def profile_phase(bench: Bench) -> None:
    if py_spy_path() is None:
        print("\n! --profile needs py-spy: pip install py-spy (skipped)", file=sys.stderr)
        return
    duration = bench.args.profile_seconds
    print(f"\n== profile (py-spy, 100 Hz, non-blocking), {duration} s each ==")
    out: dict[str, Any] = bench.results.setdefault("profile", {})
    no_breaker = {"ROUTER_BREAKER_FAILURES": "1000000000"}
    for key, mode, fake_mode, budget_ms, extra in (
        ("b", "inline", None, None, {}),
        ("c", "lookup", "delay", LOOKUP_BUDGET_MS, {}),
        ("d-nb", "lookup", "hang", HANG_BUDGET_MS, no_breaker),
    ):
        fake = bench.start_fake(hang=fake_mode == "hang") if fake_mode else None
        path = bench.workdir / f"profile-{key}.txt"
        try:
            router = bench.start_router(
                f"profile-{key}", fake=fake, profile_to=path, extra_env=extra
            )
            try:
                if bench.args.warmup:
                    bench.wrk(router, mode, f"p{key}-warm", duration_s=1, budget_ms=budget_ms)
                result = bench.wrk(
                    router, mode, f"p{key}", duration_s=duration, budget_ms=budget_ms
                )
            finally:
                bench.stop_server(router)
        finally:
            if fake is not None:
                bench.stop_fake(fake)
        if not path.exists():
            print(f"  ! py-spy wrote no profile for ({key})")
            continue
        summary = summarise_profile(path)
        summary["rps_under_profiler"] = round(result.rps, 1)
        summary["raw"] = str(path)
        out[key] = summary
        print_profile(key, summary)


# --------------------------------------------------------------------------- report


def print_row(row: dict[str, Any]) -> None:
    lat = row["latency_ms"]
    rss = row["rss_mb"]
    print(
        f"  ({row['key']}) {row['rps']:8.0f} req/s  p50 {lat['p50']:7.2f}  p99 {lat['p99']:7.2f}"
        f"  max {lat['max']:7.2f} ms  non-2xx {row['non_2xx']}  sock err {row['socket_errors']}"
        f"  RSS {rss[0]:.0f}→{rss[1]:.0f} MB  CPU {row['server_cpu_pct']:.0f} %"
        f" {row['cpu_us_per_request'] or 0:.0f} µs/req   {row['title']}"
    )
    metrics = row.get("metrics", {})
    if metrics:
        print(
            f"      server: {metrics['decisions']} decisions, {metrics['over_100ms']} took over"
            f" 100 ms, {metrics['over_250ms']} over 250 ms; upstream {metrics['upstream'] or '-'}"
        )


def print_profile(key: str, summary: dict[str, Any]) -> None:
    print(
        f"  ({key}) {summary['samples']} samples, {summary['rps_under_profiler']:.0f} req/s"
        " under the profiler"
    )
    print("    by category (innermost matching frame):")
    for name, pct in summary["categories_pct"].items():
        print(f"      {pct:5.1f} %  {name}")
    print("    inclusive:")
    for name, pct in summary["inclusive_pct"].items():
        print(f"      {pct:5.1f} %  {name}")
    print("    top frames (self):")
    for name, pct in list(summary["top_leaf_frames_pct"].items())[:10]:
        print(f"      {pct:5.1f} %  {name}")


def baseline_rps(cases: dict[str, Any]) -> float:
    runs = [cases[k]["rps"] for k in ("a", "a2") if k in cases]
    return sum(runs) / len(runs) if runs else 0.0


def baseline_cpu(cases: dict[str, Any]) -> float:
    """CPU µs per request of the baseline (mean of its runs): less noisy than req/s."""
    runs = [cases[k]["cpu_us_per_request"] for k in ("a", "a2") if k in cases]
    return sum(runs) / len(runs) if runs else 0.0


def table(results: dict[str, Any]) -> str:
    cases = results.get("cases", {})
    base = baseline_rps(cases)
    lines = [
        "| case | req/s | × (a) | p50 ms | p99 ms | max ms | non-2xx | socket errors "
        "| RSS MB before → after | server CPU µs/req | × (a) by CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_cpu = baseline_cpu(cases)
    for key, row in cases.items():
        lat = row["latency_ms"]
        ratio = row["rps"] / base if base else 0.0
        rss = row["rss_mb"]
        lines.append(
            f"| ({key}) {row['title']} | {row['rps']:,.0f} | {ratio:.2f} | {lat['p50']:.1f} "
            f"| {lat['p99']:.1f} | {lat['max']:.1f} | {row['non_2xx']} | {row['socket_errors']} "
            f"| {rss[0]:.0f} → {rss[1]:.0f} | {row['cpu_us_per_request']:.0f} "
            f"| {base_cpu / row['cpu_us_per_request']:.2f} |"
        )
    return "\n".join(lines + probe_table(results))


def probe_table(results: dict[str, Any]) -> list[str]:
    """The one-request-at-a-time runs (``wrk -c 1``), as table lines (none: no lines)."""
    probes = results.get("one_at_a_time", {})
    if not probes:
        return []
    lines = [
        "",
        "| one request at a time (wrk -c 1) | req/s | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, row in probes.items():
        lat = row["latency_ms"]
        lines.append(
            f"| ({key}) | {row['rps']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} "
            f"| {lat['max']:.2f} |"
        )
    return lines


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    cases = results.get("cases", {})
    probes = results.get("one_at_a_time", {})
    base = baseline_rps(cases)
    out: list[dict[str, Any]] = []
    if base and "b" in cases:
        ratio = cases["b"]["rps"] / base
        by_cpu = baseline_cpu(cases) / cases["b"]["cpu_us_per_request"]
        out.append(
            {
                "target": "(b) throughput ≥ 0.85 × (a)",
                "measured": f"{ratio:.2f} × (a) in req/s, {by_cpu:.2f} × (a) in CPU per request",
                "met": ratio >= 0.85,
            }
        )
    if base and "b+log" in cases:
        ratio = cases["b+log"]["rps"] / base
        vs_b = cases["b+log"]["rps"] / cases["b"]["rps"] if "b" in cases else 0.0
        out.append(
            {
                "target": "(b+log) info logs to a file (no target; for the record)",
                "measured": f"{ratio:.2f} × (a), {vs_b:.2f} × (b)",
                "met": None,
            }
        )
    if "b" in probes and "c" in probes:
        added = probes["c"]["latency_ms"]["p50"] - probes["b"]["latency_ms"]["p50"]
        out.append(
            {
                "target": f"(c) adds ≈ one upstream round trip ({UPSTREAM_DELAY_MS:.0f} ms), "
                "not two: p50(c) − p50(b), one request at a time",
                "measured": f"{added:.1f} ms",
                "met": added < 1.5 * UPSTREAM_DELAY_MS,
            }
        )
    if "b" in cases and "c" in cases and base:
        out.append(
            {
                "target": f"(c) at {cases['c']['connections']} connections (no target; CPU-bound)",
                "measured": f"{cases['c']['rps'] / base:.2f} × (a), p50 "
                f"{cases['c']['latency_ms']['p50']:.0f} ms vs (b) "
                f"{cases['b']['latency_ms']['p50']:.0f} ms",
                "met": None,
            }
        )
    for key in [k for k in cases if k.startswith("d")]:
        if key in cases:
            row = cases[key]
            limit = HANG_BUDGET_MS + BUDGET_SLACK_MS
            met = (
                row["latency_ms"]["max"] <= limit
                and row["non_2xx"] == 0
                and (row["socket_errors"] == 0)
            )
            out.append(
                {
                    "target": f"({key}) every answer ≤ {limit:.0f} ms, non-2xx 0, socket errors 0 "
                    f"({row['connections']} connections)",
                    "measured": f"max {row['latency_ms']['max']:.1f} ms, p99 "
                    f"{row['latency_ms']['p99']:.1f} ms, non-2xx {row['non_2xx']}, "
                    f"socket errors {row['socket_errors']}",
                    "met": met,
                }
            )
    rss = results.get("rss")
    if rss and "growth_mb_after_cap" in rss:
        growth = rss["growth_mb_after_cap"]
        out.append(
            {
                "target": f"RSS plateaus once ROUTER_MEMORY_MAX_ENTRIES ({rss['max_entries']:,}) "
                "is reached",
                "measured": f"+{growth:.1f} MB over the {rss['decisions_after_cap']:,} "
                f"decisions after the cap; +{rss.get('growth_mb_per_10k_before_cap', 0):.1f} MB "
                "per 10k before it",
                "met": growth <= max(5.0, 0.05 * rss["series"][-1]["rss_mb"]),
            }
        )
    elif rss:
        out.append(
            {
                "target": "RSS plateaus",
                "met": False,
                "measured": "the run did not pass the cap (raise --conversations or lower "
                "--max-entries)",
            }
        )
    return out


def scale_ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per round: s2/s1 and s3/s2, by req/s and by CPU per request."""
    cases = results.get("cases", {})
    rounds: dict[int, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
    for row in cases.values():
        if "case" in row:
            rounds[row["round"]][row["case"]] = row
    out = []
    for round_no, by_case in sorted(rounds.items()):
        if not {"s1", "s2", "s3"} <= set(by_case):
            continue
        s1, s2, s3 = (scale_numbers(by_case[c]) for c in ("s1", "s2", "s3"))
        rps = {c: by_case[c]["rps"] for c in ("s1", "s2", "s3")}
        out.append(
            {
                "round": round_no,
                "s2/s1": rps["s2"] / rps["s1"],
                # Router CPU per request only, then with Redis's CPU per request added.
                "s2/s1 by router CPU": s1["router_us"] / s2["router_us"],
                "s2/s1 by router + Redis CPU": s1["router_us"] / (s2["router_us"] + s2["redis_us"]),
                "s3/s2": rps["s3"] / rps["s2"],
                "s3/s2 router cores": s3["router_cores"] / max(s2["router_cores"], 1e-9),
                # What two workers with a core each would give over one with a core, when
                # CPU per request is all that limits them: 2 × µs(s2) / µs(s3).
                "s3/s2 CPU-bound ceiling": 2 * s2["router_us"] / s3["router_us"],
                "valid": not any(by_case[c]["problems"] for c in ("s1", "s2", "s3")),
            }
        )
    return out


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} (median; {min(values):.2f}–{max(values):.2f})"


def scale_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    ratios = [r for r in scale_ratios(results) if r["valid"]]
    if not ratios:
        return [{"target": "scale-out", "measured": "no valid round", "met": False}]
    s2s1 = [r["s2/s1"] for r in ratios]
    s3s2 = [r["s3/s2"] for r in ratios]
    probes = results.get("one_at_a_time", {})
    added = ""
    if "s1" in probes and "s2" in probes:
        p50 = {k: probes[k]["latency_ms"]["p50"] for k in ("s1", "s2")}
        added = (
            f"; one request at a time, p50 {p50['s1']:.2f} ms (s1) → {p50['s2']:.2f} ms (s2): "
            f"+{p50['s2'] - p50['s1']:.2f} ms for the two round trips"
        )
    reads, writes, excess = 0.0, 0.0, 0.0
    for row in results["cases"].values():
        trips = round_trips(row)
        if row.get("store") == "redis" and trips:
            read = sum(trips.get(op, 0.0) for op in READ_OPERATIONS)
            write = sum(trips.get(op, 0.0) for op in WRITE_OPERATIONS)
            reads, writes = max(reads, read), max(writes, write)
            # Requests in flight when /metrics is read (one per connection at most) may
            # count their round trips on one side of it and their decision on the other.
            slack = row["connections"] / max(row["metrics"]["decisions"], 1)
            excess = max(excess, read - 1 - slack, write - 1 - slack)
    return [
        {
            "target": "Redis store ≤ 15 % below memory, inline facts: s2/s1 ≥ 0.85 (req/s)",
            "measured": f"{_spread(s2s1)}; by router CPU per request "
            f"{_spread([r['s2/s1 by router CPU'] for r in ratios])}, by router + Redis CPU "
            f"{_spread([r['s2/s1 by router + Redis CPU'] for r in ratios])}",
            "met": statistics.median(s2s1) >= 0.85,
        },
        {
            "target": "Redis costs at most one round trip per phase: ≤ 1 read and ≤ 1 "
            "write per decision (worst Redis case)",
            "measured": f"reads {reads:.3f}, writes {writes:.3f} per decision{added}",
            "met": reads > 0 and excess <= 0,
        },
        {
            "target": "2 workers ≥ 1.6 × 1 worker: s3/s2 ≥ 1.6 (req/s)",
            "measured": f"{_spread(s3s2)}; router cores used s3/s2 "
            f"{_spread([r['s3/s2 router cores'] for r in ratios])}; CPU-bound ceiling "
            f"2 × µs(s2)/µs(s3) {_spread([r['s3/s2 CPU-bound ceiling'] for r in ratios])}",
            "met": statistics.median(s3s2) >= 1.6,
        },
    ]


def scale_table(results: dict[str, Any]) -> str:
    cases = results.get("cases", {})
    lines = [
        "| case | req/s | p50 ms | p99 ms | max ms | non-2xx | CPU µs/req: router "
        "| Redis | wrk | cores busy: router / Redis / wrk / other "
        "| store round trips per decision: read + save + outbox flush | valid |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for key, row in cases.items():
        lat = row["latency_ms"]
        n = scale_numbers({"workers": 1, **row})
        trips = round_trips(row)
        rt = (
            f"{trips.get('read_known', 0):.2f} + {trips.get('save_decision', 0):.2f} + "
            f"{trips.get('outbox_flush', 0):.3f}"
            if trips
            else "—"
        )
        valid = "yes" if not row.get("problems") else "NO: " + "; ".join(row["problems"])
        lines.append(
            f"| ({key}) {row['title']} | {row['rps']:,.0f} | {lat['p50']:.1f} | {lat['p99']:.1f} "
            f"| {lat['max']:.1f} | {row['non_2xx'] + row['socket_errors']} "
            f"| {n['router_us']:.0f} | {n['redis_us']:.0f} | {n['wrk_us']:.0f} "
            f"| {n['router_cores']:.2f} / {n['redis_cores']:.2f} / {n['wrk_cores']:.2f} / "
            f"{n['other_cores']:.2f} | {rt} | {valid} |"
        )
    ratios = scale_ratios(results)
    if ratios:
        lines += [
            "",
            "| round | s2/s1 req/s | s2/s1 by router CPU | s2/s1 by router + Redis CPU "
            "| s3/s2 req/s | s3/s2 router cores | s3/s2 CPU-bound ceiling | valid |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in ratios:
            lines.append(
                f"| {r['round']} | {r['s2/s1']:.2f} | {r['s2/s1 by router CPU']:.2f} "
                f"| {r['s2/s1 by router + Redis CPU']:.2f} | {r['s3/s2']:.2f} "
                f"| {r['s3/s2 router cores']:.2f} | {r['s3/s2 CPU-bound ceiling']:.2f} "
                f"| {'yes' if r['valid'] else 'NO'} |"
            )
    return "\n".join(lines + probe_table(results))


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    wrk_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        first = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = (first.stdout or first.stderr).splitlines()[0].split(" Copyright")[0]
    versions = {}
    for dist in (
        "aiohttp",
        "uvloop",
        "pydantic",
        "structlog",
        "orjson",
        "prometheus-client",
        "redis",
        "hiredis",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version,
        "packages": versions,
        "loadavg_start": os.getloadavg(),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="HTTP benchmark of router serve under wrk (see docs/benchmarks.md).",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per case (15)")
    parser.add_argument("--connections", type=int, default=200, help="wrk -c (200)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--quick", action="store_true", help="a few seconds each: smoke run")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--profile", action="store_true", help="py-spy over (b), (c), (d-nb)")
    parser.add_argument("--profile-seconds", type=int, default=6)
    parser.add_argument(
        "--record-max",
        type=int,
        default=None,
        help="ROUTER_RECORD_MAX of every router (0: no decision records; default: the "
        "router's), to weigh what recording costs",
    )
    parser.add_argument(
        "--conversations",
        type=int,
        default=130_000,
        help="memory phase: distinct conversations (130,000; 0 skips)",
    )
    parser.add_argument("--rss-every", type=int, default=10_000)
    parser.add_argument(
        "--rss-seconds", type=int, default=120, help="memory phase: give up after this long (120)"
    )
    parser.add_argument(
        "--max-entries",
        type=int,
        default=0,
        help="ROUTER_MEMORY_MAX_ENTRIES for the memory phase (router default)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per case (1)")
    parser.add_argument("--probe", type=int, default=3, help="seconds of wrk -c 1 per probe (3)")
    parser.add_argument(
        "--light",
        type=int,
        default=20,
        help="connections of the light-load run of the hanging case (20)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the servers to CPU 0, wrk and the fake to the others (off by "
        "default: on a shared machine another tenant may own CPU 0)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and raw profiles")
    scale = parser.add_argument_group(
        "scale-out (--scale)",
        "instead of the cases above: the baseline, then /v1/route inline with the memory "
        "store (1 worker), Redis (1 worker) and Redis (2 workers)",
    )
    scale.add_argument("--scale", action="store_true", help="run the scale-out cases only")
    scale.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        metavar="URL",
        help="ROUTER_STORE of the Redis cases (redis://127.0.0.1:6379/0); keys go under a "
        "fresh ROUTER_STORE_PREFIX per case and are deleted afterwards",
    )
    scale.add_argument(
        "--store-timeout-ms",
        type=int,
        default=SCALE_STORE_TIMEOUT_MS,
        help=f"ROUTER_STORE_TIMEOUT_MS of the Redis cases ({SCALE_STORE_TIMEOUT_MS}, the "
        "router's default)",
    )
    scale.add_argument(
        "--budget-ms",
        type=int,
        default=SCALE_BUDGET_MS,
        help=f"ROUTER_BUDGET_MS of s1-s3 ({SCALE_BUDGET_MS}, the router's default)",
    )
    scale.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="s1, s2, s3 (or, with --platforms, every endpoint) this many times (1)",
    )
    scale.add_argument("--check", type=int, default=5, help="answers sampled after each run (5)")
    platforms = parser.add_argument_group(
        "platforms (--platforms)",
        "instead of the cases above: /v1/route and each platform endpoint on the same "
        "decision, against one router (lookups off, so every endpoint skips them alike), "
        "/v1/route run between every two endpoints, and each endpoint's CPU per request over "
        f"that of the /v1/route runs beside it (target ≤ {PLATFORM_CPU_TARGET})",
    )
    platforms.add_argument(
        "--platforms", action="store_true", help="run the platform comparison only"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 3)
        args.warmup = 1
        args.probe = 2
        args.profile_seconds = min(args.profile_seconds, 3)
        if args.conversations == 130_000:
            args.conversations = 12_000
            args.rss_every = 2_000
            args.max_entries = args.max_entries or 6_000
            args.rss_seconds = min(args.rss_seconds, 30)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            f"http_bench: wrk is not installed. Install it with:\n  {INSTALL_WRK}", file=sys.stderr
        )
        return 2
    pin = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    ncpu = os.cpu_count() or 1
    server_cpus, client_cpus = ("0", f"1-{ncpu - 1}") if pin else (None, None)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # even when started with SIGINT ignored (nohup, &)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="http_bench-"))
    bench = Bench(args, procs, workdir, server_cpus, client_cpus)
    info = machine()
    bench.results["machine"] = info
    bench.results["settings"] = {
        "duration_s": args.duration,
        "connections": args.connections,
        "threads": args.threads,
        "warmup_s": args.warmup,
        "pinned": pin,
        "server_cpus": server_cpus,
        "client_cpus": client_cpus,
        "upstream_delay_ms": UPSTREAM_DELAY_MS,
        "hang_budget_ms": HANG_BUDGET_MS,
        "quick": args.quick,
    }
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu_model']}, Python {info['python']}, "
        f"{info['wrk']}, load average {info['loadavg_start'][0]:.2f}"
    )
    if not pin:
        print("pinning: none (wrk and the servers share every CPU)")
    elif args.scale:
        print(
            "pinning: baseline and 1-worker routers on CPU 0, 2 workers on every CPU, "
            f"wrk on CPU {client_cpus}"
        )
    else:
        print(f"pinning: servers on CPU 0, wrk and the fake on CPU {client_cpus}")
    began = time.monotonic()
    try:
        if args.scale:
            scale_phase(bench)
        elif args.platforms:
            platforms_phase(bench)
        else:
            main_cases(bench)
            if args.conversations:
                memory_phase(bench)
            if args.profile:
                profile_phase(bench)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        bench.results["machine"]["loadavg_end"] = os.getloadavg()
        bench.results["elapsed_s"] = round(time.monotonic() - began, 1)
        chosen = scale_targets if args.scale else platform_targets if args.platforms else targets
        bench.results["targets"] = chosen(bench.results)
        if args.platforms:
            bench.results["platform_ratios"] = platform_ratios(bench.results)
        if args.json:
            args.json.write_text(json.dumps(bench.results, indent=2, ensure_ascii=False) + "\n")
        if not args.keep and not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.scale:
        print(f"\n== results ({bench.results['elapsed_s']:.0f} s)")
        print(scale_table(bench.results))
    elif args.platforms:
        print(f"\n== results ({bench.results['elapsed_s']:.0f} s)")
        print(platform_table(bench.results))
    else:
        print(
            f"\n== results ({bench.results['elapsed_s']:.0f} s; ratios to the mean of (a) and (a2))"
        )
        print(table(bench.results))
    rss = bench.results.get("rss")
    if rss:
        print(
            "\nRSS (MB) by decisions: "
            + ", ".join(f"{p['decisions'] // 1000}k {p['rss_mb']:.0f}" for p in rss["series"])
        )
    print("\ntargets:")
    for target in bench.results["targets"]:
        mark = {True: "met", False: "NOT MET", None: "-"}[target["met"]]
        print(f"  [{mark}] {target['target']}: {target['measured']}")
    if args.keep or args.profile:
        print(f"\nlogs and raw profiles: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
