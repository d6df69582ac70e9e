"""Rule-engine benchmark: router's engine against a naive scan, zen-engine and rule-engine.

Generates contact-centre-shaped rulesets (10 … 10,000 rules), writes each to a
YAML file in a temporary folder, and times one decision at a time over the same
random inputs for every engine, checking that they all choose the same rule.
It also times loading a 10,000-rule file through ``load_rules`` against a bare
YAML parse of the same file, and the memory that ruleset keeps.

    python bench/rules_bench.py                   # full run (≈ 5 min on 2 cores)
    python bench/rules_bench.py --quick           # smoke test (seconds)
    python bench/rules_bench.py --sizes 100,1000 --inputs 2000 --json /tmp/r.json
    python bench/rules_bench.py --profile         # + pyinstrument on our decide loop
    python bench/rules_bench.py --sizes 10000 --engines none --load-size 0 \
        --baseline-src /tmp/before                # router against another version of it

Latencies are counted two ways: over every call of one pass (what a caller
sees) and over each input's best of the passes (best-of-N, filtering out the
moments another process held the CPU). ``--baseline-src DIR`` also times the
``router`` package in DIR (e.g. ``git archive <commit> router | tar -x -C DIR``)
side by side, taking turns with this one, so before/after share one run.

Peers cannot evaluate schedules in a time zone, so for them ``during: office``
becomes a boolean input field ``office_open``, computed before timing from the
same instant our engine is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

# --------------------------------------------------------------------------- the rules

TIMEZONE = "Europe/London"
LONDON = ZoneInfo(TIMEZONE)
CLOSED = (date(2026, 12, 25), date(2026, 12, 26))
SCHEDULES: dict[str, Any] = {
    "office": {
        "weekly": {"mon-fri": ["08:00-18:00"], "sat": ["09:00-12:30"]},
        "closed": [d.isoformat() for d in CLOSED],
    }
}

INTENT = "handoff.intent"
REASON = "handoff.handoff_reason"
TIER = "state.customer_tier"
BALANCE = "state.balance"
ACCOUNT = "state.account_type"
DNIS = "context.dnis"
#: Every path a generated rule reads, in the order of the zen decision table's columns.
PATHS = (INTENT, REASON, TIER, BALANCE, ACCOUNT, DNIS)

DOMAINS = ("billing", "account", "orders", "tech", "sales", "claims", "travel", "loyalty")
ACTIONS = ("refund", "dispute", "cancel", "upgrade", "outage", "status", "change", "complaint")
REASONS = ("escalation", "agent_request", "not_understood", "policy", "fraud", "repeat_caller")
TIERS = ("bronze", "silver", "gold", "platinum")
ACCOUNTS = ("personal", "business", "charity", "government")
THRESHOLDS = (100, 500, 1000, 5000)
RANGES = ((0, 99), (100, 999), (1000, 4999), (5000, 20000))
# `[+]` rather than `\+`: zen-engine's string literals keep backslashes, so keep them out.
DNIS_PATTERNS = ("^[+]44(20|161)", "^[+]1(212|646)", "^[+]353", "^[+]49(30|89)", "0000$")
DNIS_PREFIXES = ("+4420", "+44161", "+44113", "+1212", "+1646", "+1415", "+3531", "+4930", "+4989")


@dataclass(frozen=True, slots=True)
class Cond:
    """One condition of a generated rule: ``op`` is eq, in, gte, between or matches."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class SpecRule:
    """An engine-neutral rule, rendered to YAML, a zen table row and a rule-engine expression."""

    id: str
    conds: tuple[Cond, ...]
    schedule: str | None  # "during" | "outside" | None (always the schedule "office")
    route: dict[str, Any]


def generate_rules(n: int, rng: random.Random) -> list[SpecRule]:
    """``n`` rules shaped like a large contact-centre ruleset.

    Each rule keys on an intent or a handoff reason (≈ 0.8 distinct values per
    rule, so some values carry several rules told apart by state), adds one or
    two state conditions (tier, balance threshold or range, account type, a
    regex on the dialled number), and ≈ 5 % keep to office hours. A handful of
    rules (1 per 2,000, at least one) name no intent or reason: VIP overrides on
    tier, balance and dialled number, some of them out of hours.
    """
    n_intent = max(1, round(n * 0.6))
    intents = [f"{rng.choice(DOMAINS)}.{rng.choice(ACTIONS)}_{k}" for k in range(max(4, n_intent))]
    reasons = [f"{rng.choice(REASONS)}_{k}" for k in range(max(4, n - n_intent))]
    pools = {
        INTENT: intents[: max(2, int(len(intents) * 0.8))],
        REASON: reasons[: max(2, int(len(reasons) * 0.8))],
    }
    unkeyed = set(rng.sample(range(n), max(1, n // 2000)))
    rules: list[SpecRule] = []
    seen: set[tuple[Any, ...]] = set()
    for _ in range(n * 100):
        index = len(rules)
        if index == n:
            return rules
        if index in unkeyed:
            conds, schedule = _unkeyed_conditions(rng)
        else:
            conds, schedule = _keyed_conditions(rng, pools)
        signature = (conds, schedule)
        if signature in seen:  # a duplicate `when` would only draw an "unreachable" warning
            continue
        seen.add(signature)
        rules.append(SpecRule(f"r{index:05d}", conds, schedule, _route(rng, index)))
    raise RuntimeError(f"could not draw {n} rules with distinct conditions")


def _keyed_conditions(
    rng: random.Random, pools: dict[str, list[str]]
) -> tuple[tuple[Cond, ...], str | None]:
    key = INTENT if rng.random() < 0.6 else REASON
    if rng.random() < 0.15:
        first = Cond(key, "in", tuple(sorted(rng.sample(pools[key], min(3, len(pools[key]))))))
    else:
        first = Cond(key, "eq", rng.choice(pools[key]))
    kinds = rng.sample(("tier", "tier", "balance", "range", "account", "dnis"), 2)
    extra = [_state_condition(rng, kind) for kind in kinds[: 1 if rng.random() < 0.6 else 2]]
    by_path = {c.path: c for c in extra}  # one condition per path keeps peers' columns simple
    conds = (first, *sorted(by_path.values(), key=lambda c: PATHS.index(c.path)))
    return conds, ("during" if rng.random() < 0.05 else None)


def _unkeyed_conditions(rng: random.Random) -> tuple[tuple[Cond, ...], str | None]:
    tier = Cond(TIER, "eq", "platinum")
    if rng.random() < 0.5:
        return (tier, Cond(BALANCE, "gte", rng.randrange(20, 1000) * 1000)), None
    return (
        tier,
        Cond(BALANCE, "gte", rng.randrange(1, 50) * 1000),
        Cond(DNIS, "matches", rng.choice(DNIS_PATTERNS)),
    ), "outside"


def _state_condition(rng: random.Random, kind: str) -> Cond:
    if kind == "tier":
        return Cond(TIER, "eq", rng.choice(TIERS))
    if kind == "balance":
        return Cond(BALANCE, "gte", rng.choice(THRESHOLDS))
    if kind == "range":
        return Cond(BALANCE, "between", rng.choice(RANGES))
    if kind == "account":
        if rng.random() < 0.3:
            return Cond(ACCOUNT, "in", tuple(sorted(rng.sample(ACCOUNTS, 2))))
        return Cond(ACCOUNT, "eq", rng.choice(ACCOUNTS))
    return Cond(DNIS, "matches", rng.choice(DNIS_PATTERNS))


def _route(rng: random.Random, index: int) -> dict[str, Any]:
    queue = f"q-{rng.choice(DOMAINS)}-{index % 37}"
    roll = rng.random()
    if roll < 0.02:
        return {
            "split": [
                {"weight": 90, "queue": queue},
                {"weight": 10, "queue": f"{queue}-pilot", "label": "Pilot"},
            ]
        }
    route: dict[str, Any] = {"queue": queue}
    if roll < 0.35:
        route["label"] = "Transfer · {state.customer_tier|unknown tier}"
    else:
        route["label"] = f"Transfer {index}"
    if roll < 0.15:
        route["priority"] = rng.randint(1, 10)
        route["skills"] = [rng.choice(DOMAINS)]
    if roll < 0.08:
        route["attributes"] = {"x_tier": "{state.customer_tier}", "x_reason": "{handoff.intent}"}
    return route


# --------------------------------------------------------------------------- renderings


def ruleset_document(rules: Sequence[SpecRule], name: str) -> dict[str, Any]:
    """The rule file (contract §3) for ``rules``."""
    return {
        "ruleset": name,
        "description": f"Generated benchmark ruleset ({len(rules)} rules)",
        "timezone": TIMEZONE,
        "schedules": SCHEDULES,
        "rules": [{"id": r.id, "when": _when(r), "route": r.route} for r in rules],
        "default": {"queue": "general", "label": "General enquiry"},
        "fallback": {"queue": "general", "label": "Transferred · details unavailable"},
    }


def _when(rule: SpecRule) -> dict[str, Any]:
    when: dict[str, Any] = {}
    if rule.schedule is not None:
        when[rule.schedule] = "office"
    for c in rule.conds:
        if c.op == "eq":
            when[c.path] = c.value
        elif c.op == "in":
            when[c.path] = list(c.value)
        elif c.op == "between":
            when[c.path] = {"between": list(c.value)}
        else:
            when[c.path] = {c.op: c.value}
    return when


def write_ruleset(rules: Sequence[SpecRule], folder: Path, name: str) -> Path:
    """Write the rule file ``folder/name.yaml``, in the block style ops would write."""
    path = folder / f"{name}.yaml"
    text = yaml.dump(
        ruleset_document(rules, name),
        Dumper=yaml.CSafeDumper,
        sort_keys=False,
        allow_unicode=True,
        width=120,
    )
    path.write_text(text, encoding="utf-8")
    return path


def zen_document(rules: Sequence[SpecRule]) -> dict[str, Any]:
    """A JDM graph: input → one decision table (hit policy "first") → output ``{"rule": id}``.

    Cells are zen unary expressions on ``$``; cells that compare or regex-match
    are guarded with ``$ != null`` because zen raises on ``null >= 1`` instead of
    failing the cell. A table with no matching row answers ``{}`` (our default).
    """
    columns = [*PATHS, "office_open"]
    inputs = [
        {"id": f"c{k}", "name": p, "type": "expression", "field": p} for k, p in enumerate(columns)
    ]
    rows: list[dict[str, str]] = []
    for r in rules:
        row = {"_id": r.id, **{f"c{k}": "" for k in range(len(columns))}, "out": json.dumps(r.id)}
        for c in r.conds:
            row[f"c{columns.index(c.path)}"] = _zen_cell(c)
        if r.schedule is not None:
            row[f"c{columns.index('office_open')}"] = "true" if r.schedule == "during" else "false"
        rows.append(row)
    return _zen_graph(inputs, rows)


def _zen_graph(inputs: list[dict[str, str]], rows: list[dict[str, str]]) -> dict[str, Any]:
    at = {"x": 0, "y": 0}
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": at},
            {
                "id": "rules",
                "type": "decisionTableNode",
                "name": "Rules",
                "position": at,
                "content": {
                    "hitPolicy": "first",
                    "inputs": inputs,
                    "outputs": [
                        {"id": "out", "name": "rule", "type": "expression", "field": "rule"}
                    ],
                    "rules": rows,
                },
            },
            {"id": "response", "type": "outputNode", "name": "Response", "position": at},
        ],
        "edges": [
            {"id": "e1", "type": "edge", "sourceId": "request", "targetId": "rules"},
            {"id": "e2", "type": "edge", "sourceId": "rules", "targetId": "response"},
        ],
    }


def _zen_cell(c: Cond) -> str:
    if c.op == "eq":
        return json.dumps(c.value)
    if c.op == "in":
        return ", ".join(json.dumps(v) for v in c.value)
    if c.op == "gte":
        return f"$ != null and $ >= {c.value}"
    if c.op == "between":
        return f"$ != null and $ >= {c.value[0]} and $ <= {c.value[1]}"
    assert "\\" not in c.value, "zen string literals keep backslashes"
    return f"$ != null and matches($, {json.dumps(c.value)})"


def rule_engine_text(rule: SpecRule) -> str:
    """The rule as one rule-engine expression.

    Item access (``state['balance']``) rather than attribute access: on a mapping,
    rule-engine tries attributes first and computes spelling suggestions when that
    fails, about 8× slower. ``&[`` and ``!= null`` guard missing values, which
    rule-engine would otherwise refuse to compare.
    """
    parts: list[str] = []
    for c in rule.conds:
        namespace, key = c.path.split(".", 1)
        safe, plain = f"{namespace}&['{key}']", f"{namespace}['{key}']"
        if c.op == "eq":
            parts.append(f"{safe} == {_quote(c.value)}")
        elif c.op == "in":
            parts.append(f"{safe} in [{', '.join(_quote(v) for v in c.value)}]")
        elif c.op == "gte":
            parts.append(f"{safe} != null and {plain} >= {c.value}")
        elif c.op == "between":
            lo, hi = c.value
            parts.append(f"{safe} != null and {plain} >= {lo} and {plain} <= {hi}")
        else:  # `=~~` searches anywhere in the string, as `matches` does
            parts.append(f"{safe} != null and {plain} =~~ {_quote(c.value)}")
    if rule.schedule is not None:
        parts.append("office_open" if rule.schedule == "during" else "not office_open")
    return " and ".join(parts)


def _quote(value: str) -> str:
    assert "'" not in value, value
    assert "\\" not in value, value
    return f"'{value}'"


# --------------------------------------------------------------------------- the inputs


@dataclass(frozen=True, slots=True)
class Case:
    """One decision: the facts our engine sees, the same facts plus ``office_open`` for peers."""

    facts: dict[str, dict[str, Any]]
    peer_facts: dict[str, Any]
    conversation_id: str
    at: datetime


def office_open(at: datetime) -> bool:
    """The ``office`` schedule, computed independently of the engine (for the peers)."""
    local = at.astimezone(LONDON)
    if local.date() in CLOSED:
        return False
    minutes = local.hour * 60 + local.minute
    if local.weekday() < 5:
        return 8 * 60 <= minutes < 18 * 60
    return local.weekday() == 5 and 9 * 60 <= minutes < 12 * 60 + 30


def generate_cases(rules: Sequence[SpecRule], n: int, rng: random.Random) -> list[Case]:
    """``n`` inputs: 60 % built to satisfy a random rule (an earlier rule may still win),
    20 % with a rule's key but random state, 20 % with an intent no rule knows; some
    with fields or whole namespaces missing, at instants spread over Nov-Dec 2026
    (so office hours, evenings, weekends and closed days all occur)."""
    keys = sorted(
        {
            v
            for r in rules
            for c in r.conds
            if c.path in (INTENT, REASON)
            for v in (c.value if c.op == "in" else (c.value,))
        }
    )
    cases: list[Case] = []
    for _ in range(n):
        values = _random_values(rng, keys)
        roll = rng.random()
        rule = rng.choice(rules)
        wants_office: bool | None = None
        if roll < 0.6:
            for c in rule.conds:
                values[c.path] = _satisfying(rng, c)
            wants_office = {"during": True, "outside": False}.get(rule.schedule or "")
        elif roll < 0.8:
            for c in rule.conds[:1]:
                values[c.path] = _satisfying(rng, c)
        else:
            values[INTENT] = f"unknown.intent_{rng.randrange(10**6)}"
            values[REASON] = f"unknown_reason_{rng.randrange(10**6)}"
        at = _instant(rng, wants_office)
        facts: dict[str, dict[str, Any]] = {}
        for path, value in values.items():
            if value is not None:
                namespace, key = path.split(".", 1)
                facts.setdefault(namespace, {})[key] = value
        if rng.random() < 0.05:
            facts.pop("state", None)
        if rng.random() < 0.1:
            facts.pop("context", None)
        peer = {**facts, "office_open": office_open(at)}
        cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cases.append(Case(facts, peer, cid, at))
    return cases


def _random_values(rng: random.Random, keys: Sequence[str]) -> dict[str, Any]:
    # Balances are numbers, not the numeric strings voice agents often store: our engine
    # reads both, but the peers cannot compare "1500" with 1000.
    balance = int(rng.lognormvariate(6.5, 1.5))
    return {
        INTENT: rng.choice(keys),
        REASON: rng.choice(keys),
        TIER: rng.choice(TIERS),
        BALANCE: None if rng.random() < 0.05 else balance,
        ACCOUNT: rng.choice(ACCOUNTS),
        DNIS: rng.choice(DNIS_PREFIXES) + f"{rng.randrange(10**7):07d}",
    }


def _satisfying(rng: random.Random, c: Cond) -> Any:
    if c.op == "eq":
        return c.value
    if c.op == "in":
        return rng.choice(c.value)
    if c.op == "gte":
        return c.value + rng.randrange(5000)
    if c.op == "between":
        return rng.randint(*c.value)
    prefix = {
        "^[+]44(20|161)": "+4420",
        "^[+]1(212|646)": "+1646",
        "^[+]353": "+3531",
        "^[+]49(30|89)": "+4989",
        "0000$": "+4411300",
    }[c.value]
    return prefix + ("0000" if c.value == "0000$" else f"{rng.randrange(10**7):07d}")


def _instant(rng: random.Random, office: bool | None) -> datetime:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    while True:
        at = start + timedelta(minutes=rng.randrange(60 * 24 * 60))
        if office is None or office_open(at) == office:
            return at


# --------------------------------------------------------------------------- timing


@dataclass
class Engine:
    """One way to decide: ``prepare`` (untimed) turns a case into the argument of ``call``
    (timed), and ``rule_of`` (untimed) reads the chosen rule id from its answer."""

    name: str
    note: str
    call: Callable[[Any], Any]
    prepare: Callable[[Case], Any]
    rule_of: Callable[[Any], str | None]
    setup_s: float = 0.0
    compared: bool = True  # False for floors: they choose nothing
    core_us: Callable[[Any], float] | None = None  # the engine's own timing of a call, if any


@dataclass
class Timing:
    """Latencies (ns) of one engine over the inputs, and the rule each input chose.

    ``passes[k][i]`` is the k-th timing of input i; later passes may cover fewer
    inputs. Two ways of counting: ``pass_*`` over every call of the first pass (what a
    caller sees, including the moments another process held the CPU), and ``best_*``
    over each input's best pass (filters those moments out; best-of-N).
    """

    engine: Engine
    passes: list[list[int]]
    chosen: list[str | None]
    cut_short: bool
    core_p50_us: float | None = None

    def stats(self) -> dict[str, Any]:
        first = self.passes[0]
        one_pass = sorted(first)
        best = sorted(min(p[i] for p in self.passes if i < len(p)) for i in range(len(first)))
        n = len(best)
        return {
            "n": n,
            "passes": len(self.passes),
            "pass_p50_us": _percentile(one_pass, 0.50) / 1000,
            "pass_p99_us": _percentile(one_pass, 0.99) / 1000,
            "pass_mean_us": sum(one_pass) / n / 1000,
            "each_pass_p99_us": [_percentile(sorted(p), 0.99) / 1000 for p in self.passes],
            "best_p50_us": _percentile(best, 0.50) / 1000,
            "best_p99_us": _percentile(best, 0.99) / 1000,
            "best_mean_us": sum(best) / n / 1000,
            "max_us": one_pass[-1] / 1000,
        }


def _percentile(ordered: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


REWARM = 20
"""Untimed calls an engine makes at the start of each turn (see :func:`run_engines`)."""


def run_engines(
    engines: Sequence[Engine], cases: Sequence[Case], opts: argparse.Namespace
) -> list[Timing]:
    """Warm every engine up, then time them in passes over the inputs, taking turns.

    Within a pass the engines take turns every ``opts.turn`` inputs, so a burst of
    load from another process (milliseconds) lands on all of them rather than on one:
    even one-pass figures of two engines in the same run compare fairly. An engine
    starts each turn with ``REWARM`` untimed calls on the inputs just before it, so no
    engine pays in its timed calls for the CPU caches the previous one's turn cooled
    (as if each ran its pass alone). Each call is timed alone (``perf_counter_ns``), gc
    off during a pass. Each engine has
    ``opts.budget_s`` of timed calls over all its passes; the first pass times at least
    ``opts.min_inputs`` inputs, and an engine out of time stops (inputs are in random
    order, so it has still timed a random sample).
    """
    clock = time.perf_counter_ns
    budget_ns = int(opts.budget_s * 1e9)
    args = [[e.prepare(c) for c in cases] for e in engines]
    for engine, arg in zip(engines, args, strict=True):
        warm_until = clock() + budget_ns // 10
        for a in arg[: opts.warmup]:
            engine.call(a)
            if clock() > warm_until:
                break
    passes: list[list[list[int]]] = [[] for _ in engines]
    answers: list[list[Any]] = [[] for _ in engines]
    spent = [0] * len(engines)
    for k in range(opts.passes):
        running = [
            i
            for i in range(len(engines))
            if spent[i] < budget_ns and not (passes[i] and len(passes[i][-1]) < len(cases))
        ]
        for i in running:
            passes[i].append([])
        minimum = opts.min_inputs if k == 0 else 0
        stopped: set[int] = set()
        gc.collect()
        gc.disable()
        try:
            for start in range(0, len(cases), opts.turn):
                for i in running:
                    if i in stopped:
                        continue
                    call, times = engines[i].call, passes[i][-1]
                    results = answers[i] if k == 0 else None
                    before = args[i][max(0, start - REWARM) : start] or args[i][-REWARM:]
                    for arg in before:
                        call(arg)
                    for arg in args[i][start : start + opts.turn]:
                        t0 = clock()
                        result = call(arg)
                        t1 = clock()
                        times.append(t1 - t0)
                        spent[i] += t1 - t0
                        if results is not None:
                            results.append(result)
                        if spent[i] > budget_ns and len(times) >= minimum:
                            stopped.add(i)
                            break
        finally:
            gc.enable()
    timings: list[Timing] = []
    for engine, timed, results in zip(engines, passes, answers, strict=True):
        chosen = [engine.rule_of(r) for r in results]
        timing = Timing(engine, timed, chosen, len(timed[0]) < len(cases))
        if engine.core_us is not None:
            core = sorted(engine.core_us(r) for r in results)
            timing.core_p50_us = core[(len(core) - 1) // 2]
        timings.append(timing)
    return timings


# --------------------------------------------------------------------------- the engines


def _same(value: Any) -> Any:
    return value


def _peer_facts(c: Case) -> dict[str, Any]:
    return c.peer_facts


def router_engines(path: Path) -> tuple[list[Engine], Any]:
    """Our engine, indexed (``RuleSet.decide``) and as a naive in-order scan of the same rules."""
    from router import load_rules
    from router.engine import decide_by_scan

    t0 = time.perf_counter()
    (ruleset,) = load_rules(path).values()
    setup = time.perf_counter() - t0
    decide = ruleset.decide

    def indexed(c: Case) -> Any:
        return decide(c.facts, conversation_id=c.conversation_id, at=c.at)

    def scan(c: Case) -> Any:
        return decide_by_scan(ruleset, c.facts, conversation_id=c.conversation_id, at=c.at)

    def rule(decision: Any) -> str | None:
        return decision.rule  # type: ignore[no-any-return]

    engines = [
        Engine("router", "RuleSet.decide: indexed first match", indexed, _same, rule, setup),
        Engine("router-scan", "decide_by_scan: every rule in order", scan, _same, rule, setup),
    ]
    return engines, ruleset


def baseline_engine(source: Path, path: Path) -> Engine:
    """``RuleSet.decide`` of another version of router, for before/after in one run.

    ``source`` is a folder holding that version's ``router`` package (e.g. from
    ``git archive <commit> router | tar -x -C /tmp/before``). Its modules are imported
    and the ruleset loaded with that folder first on ``sys.path``; then this version's
    modules are put back, so the two never mix (each function keeps its own module's
    globals).
    """
    ours = {n: m for n, m in sys.modules.items() if n == "router" or n.startswith("router.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(source))
    try:
        import importlib

        other = importlib.import_module("router")
        t0 = time.perf_counter()
        (ruleset,) = other.load_rules(path).values()
        setup = time.perf_counter() - t0
    finally:
        sys.path.remove(str(source))
        for name in [n for n in sys.modules if n == "router" or n.startswith("router.")]:
            del sys.modules[name]
        sys.modules.update(ours)
    decide = ruleset.decide

    def indexed(c: Case) -> Any:
        return decide(c.facts, conversation_id=c.conversation_id, at=c.at)

    def rule(decision: Any) -> str | None:
        return decision.rule  # type: ignore[no-any-return]

    return Engine("router-before", f"RuleSet.decide from {source}", indexed, _same, rule, setup)


def router_floor_engine(folder: Path) -> Engine:
    """Our fixed cost per decision: a ruleset with no rules (facts in, default decision out)."""
    from router import load_rules

    (ruleset,) = load_rules(write_ruleset((), folder, "bench-floor")).values()
    decide = ruleset.decide

    def nothing_to_match(c: Case) -> Any:
        return decide(c.facts, conversation_id=c.conversation_id, at=c.at)

    return Engine(
        "router floor",
        "no rules: RuleSet.decide straight to the default",
        nothing_to_match,
        _same,
        _same,
        compared=False,
    )


_DURATION = re.compile(r"([0-9.]+)\s*(ns|µs|us|ms|s)")
_UNIT_US = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def _zen_rule(response: Any) -> str | None:
    return response["result"].get("rule")  # type: ignore[no-any-return]


def _zen_core_us(response: Any) -> float:
    """zen's own timing of the evaluation, from its ``performance`` field ("12.3µs")."""
    match = _DURATION.match(response["performance"])
    return float(match[1]) * _UNIT_US[match[2]] if match else float("nan")


def zen_engines(rules: Sequence[SpecRule], *, floor: bool = False) -> list[Engine]:
    """zen-engine two ways, both created once before timing.

    ``zen``: ``ZenEngine.evaluate(key)`` with a static loader, which compiles the
    graph on first use and reuses it. ``zen-decision``: ``create_decision(content)``
    then ``decision.evaluate(input)``, as zen's README shows; in the installed
    version that pays a large cost on every call (see gorules/zen#441), so it is
    reported apart. With ``floor``, the same graph with an empty table: the
    fixed cost of one call (conversion of input and output, graph walk).
    """
    import zen

    document = zen_document(() if floor else rules)
    probe = {"handoff": {"intent": "probe"}, "office_open": False}

    t0 = time.perf_counter()
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {"rules": document}}})
    engine.evaluate("rules", probe)  # the first call loads and compiles the graph
    keyed_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    decision = engine.create_decision(json.dumps(document))
    decision.evaluate(probe)
    decision_setup = time.perf_counter() - t0

    def keyed(facts: dict[str, Any]) -> Any:
        return engine.evaluate("rules", facts)

    suffix, what = (" floor", "empty table, ") if floor else ("", "")
    common: dict[str, Any] = {
        "prepare": _peer_facts,
        "rule_of": _zen_rule,
        "compared": not floor,
        "core_us": _zen_core_us,
    }
    return [
        Engine(
            name=f"zen{suffix}",
            note=f"{what}ZenEngine.evaluate(key), static loader",
            call=keyed,
            setup_s=keyed_setup,
            **common,
        ),
        Engine(
            name=f"zen-decision{suffix}",
            note=f"{what}create_decision(content).evaluate(input)",
            call=decision.evaluate,
            setup_s=decision_setup,
            **common,
        ),
    ]


def rule_engine_engine(rules: Sequence[SpecRule]) -> Engine:
    """rule-engine: one compiled ``Rule`` per rule, tried in order, the first match wins."""
    import rule_engine

    t0 = time.perf_counter()
    context = rule_engine.Context(default_value=None)
    compiled = [
        (r.id, rule_engine.Rule(rule_engine_text(r), context=context).matches) for r in rules
    ]
    setup = time.perf_counter() - t0

    def first_match(facts: dict[str, Any]) -> str | None:
        for rule_id, matches in compiled:
            if matches(facts):
                return rule_id
        return None

    return Engine(
        "rule-engine",
        "one Rule per rule, first match in order",
        first_match,
        _peer_facts,
        _same,
        setup,
    )


def harness_engine() -> Engine:
    """A call that does nothing: what the timing loop itself adds to every measurement."""

    def nothing(_: Case) -> None:
        return None

    return Engine("harness", "no-op call: timer and loop", nothing, _same, _same, compared=False)


# --------------------------------------------------------------------------- load and memory


def measure_load(path: Path, repeats: int) -> dict[str, Any]:
    """``load_rules`` (file on disk → ready RuleSet) against ``yaml.load`` (libyaml) of the file."""
    from router import load_rules

    yaml_s: list[float] = []
    load_s: list[float] = []
    warnings = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        yaml_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rulesets = load_rules(path)
        load_s.append(time.perf_counter() - t0)
        warnings = sum(len(rs.warnings) for rs in rulesets.values())
        del rulesets
    yaml_peak, yaml_kept = _traced(lambda: yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader))
    load_peak, load_kept = _traced(lambda: load_rules(path))
    return {
        "file_bytes": path.stat().st_size,
        "repeats": repeats,
        "yaml_s": sorted(yaml_s),
        "load_s": sorted(load_s),
        "warnings": warnings,
        "yaml_peak_bytes": yaml_peak,
        "yaml_retained_bytes": yaml_kept,
        "load_peak_bytes": load_peak,
        "load_retained_bytes": load_kept,
    }


def _traced(build: Callable[[], Any]) -> tuple[int, int]:
    """(peak, retained) bytes allocated by ``build()``; retained = still live after a gc."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        kept = build()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return peak - base, current - base


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        names = [
            ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")
        ]
        cpu = names[0] if names else cpu
    except (OSError, subprocess.CalledProcessError):
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "zen-engine": version("zen-engine"),
        "rule-engine": version("rule-engine"),
        "PyYAML": version("PyYAML"),
        "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
        "loadavg_at_start": _loadavg(),
    }


def _loadavg() -> str:
    """The 1/5/15-minute load averages: how busy the (shared) machine was."""
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        return "  " + "  ".join(cells)

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _num(x: float) -> str:
    """Three significant figures or so: 0.07, 12.3, 1,234."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def report_size(
    size: int, timings: Sequence[Timing], cases: Sequence[Case], verbose: bool
) -> list[dict[str, Any]]:
    """Print one size's table; return its rows for the JSON file."""
    ours = next(t for t in timings if t.engine.name == "router")
    base = ours.stats()
    hits = Counter(ours.chosen)
    defaults = hits.pop(None, 0)
    print(
        f"\n{size:,} rules · {len(cases):,} inputs: {len(cases) - defaults:,} matched a rule "
        f"({len(hits):,} different rules), {defaults:,} fell to the default"
    )
    rows: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    notes: list[str] = []
    for t in timings:
        s = t.stats()
        bad = [i for i, (a, b) in enumerate(zip(ours.chosen, t.chosen, strict=False)) if a != b]
        disagree = len(bad) if t.engine.compared else None
        lines.append(
            [
                t.engine.name,
                f"{s['n']:,}" + ("*" if t.cut_short else "") + f" ×{s['passes']}",
                _num(s["pass_p50_us"]),
                _num(s["pass_p99_us"]),
                _num(s["best_p50_us"]),
                _num(s["best_p99_us"]),
                _num(s["pass_mean_us"]),
                _num(s["pass_p50_us"] / base["pass_p50_us"]),
                _num(s["pass_p99_us"] / base["pass_p99_us"]),
                "-" if disagree is None else str(disagree),
                "" if t.core_p50_us is None else _num(t.core_p50_us),
            ]
        )
        if verbose and disagree:
            notes += [
                f"  input {i}: router → {ours.chosen[i]}, {t.engine.name} → {t.chosen[i]}; "
                f"{cases[i].peer_facts} at {cases[i].at.isoformat()}"
                for i in bad[:5]
            ]
        rows.append(
            {
                "size": size,
                "engine": t.engine.name,
                "how": t.engine.note,
                **s,
                "cut_short": t.cut_short,
                "setup_s": t.engine.setup_s,
                "disagree": disagree,
                "core_p50_us": t.core_p50_us,
            }
        )
    headers = [
        "engine",
        "inputs ×passes",
        "p50 µs",
        "p99 µs",
        "p50 best",
        "p99 best",
        "mean µs",
        "p50 ×ours",
        "p99 ×ours",
        "disagree",
        "own p50",
    ]
    print(table(headers, lines))
    if any(t.cut_short for t in timings):
        print("  * over the time budget: measured on the first inputs only (a random sample)")
    for line in notes:
        print(line)
    return rows


def report_setup(rows: Sequence[dict[str, Any]]) -> None:
    """Time to make each engine ready, per size (for context; our load is measured below)."""
    sizes = sorted({r["size"] for r in rows})
    names = [
        n
        for n in ("router", "zen", "zen-decision", "rule-engine")
        if any(r["engine"] == n for r in rows)
    ]
    setup = {(r["size"], r["engine"]): r["setup_s"] for r in rows}
    print(
        "\nSetup, seconds (router: load_rules from the file; zen: JSON → compiled graph on first "
        "call; rule-engine: parse every rule)"
    )
    print(
        table(
            ["rules", *names], [[f"{s:,}", *(f"{setup[s, n]:.3f}" for n in names)] for s in sizes]
        )
    )


def report_load(load: dict[str, Any]) -> None:
    y, r = load["yaml_s"], load["load_s"]
    mid = len(r) // 2
    mib = 2**20
    print(
        f"\nLoad and check: {load['size']:,}-rule file ({load['file_bytes'] / 1e6:.1f} MB), "
        f"best and median of {load['repeats']}"
    )
    print(
        table(
            ["", "best s", "median s", "peak MiB", "retained MiB"],
            [
                [
                    "yaml.load (CSafeLoader)",
                    f"{y[0]:.3f}",
                    f"{y[mid]:.3f}",
                    f"{load['yaml_peak_bytes'] / mib:.1f}",
                    f"{load['yaml_retained_bytes'] / mib:.1f}",
                ],
                [
                    "load_rules → RuleSet",
                    f"{r[0]:.3f}",
                    f"{r[mid]:.3f}",
                    f"{load['load_peak_bytes'] / mib:.1f}",
                    f"{load['load_retained_bytes'] / mib:.1f}",
                ],
            ],
        )
    )
    print(
        f"  load_rules = {r[mid] / y[mid]:.1f}× the bare YAML parse (target: < 2 s); "
        f"{load['load_retained_bytes'] / load['size'] / 1024:.1f} KiB retained per rule; "
        f"{load['warnings']} warnings"
    )


def profile_decide(ruleset: Any, cases: Sequence[Case]) -> str:
    """pyinstrument over our decide loop (three passes over the inputs); the text report."""
    from pyinstrument import Profiler

    decide = ruleset.decide
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(3):
        for c in cases:
            decide(c.facts, conversation_id=c.conversation_id, at=c.at)
    profiler.stop()
    return str(profiler.output_text(unicode=True, color=False, show_all=False))


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Rule-engine benchmark (see bench/README.md).")
    parser.add_argument(
        "--sizes", default="10,100,1000,10000", help="ruleset sizes, comma-separated"
    )
    parser.add_argument("--inputs", type=int, default=10_000, help="random inputs per size")
    parser.add_argument("--quick", action="store_true", help="small sizes and inputs (smoke test)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=25.0,
        help="timed seconds per engine and size before a slow peer is cut short",
    )
    parser.add_argument("--min-inputs", type=int, default=300, help="inputs timed even over budget")
    parser.add_argument(
        "--passes", type=int, default=3, help="timed passes over the inputs (best pass per input)"
    )
    parser.add_argument("--warmup", type=int, default=500, help="untimed calls before timing")
    parser.add_argument(
        "--turn", type=int, default=500, help="inputs an engine runs before the next takes a turn"
    )
    parser.add_argument(
        "--load-size", type=int, default=10_000, help="rules in the load test (0: skip)"
    )
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument our decide loop at the largest size"
    )
    parser.add_argument(
        "--engines",
        default="",
        help="only these engines besides router, comma-separated (e.g. router-scan,zen; "
        "default: all)",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        metavar="DIR",
        help="also time router-before: the router package in DIR (another version), "
        "side by side in the same run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated rule files")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print inputs engines disagree on"
    )
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.sizes, opts.inputs, opts.budget_s, opts.min_inputs = "10,100", 1000, 2.0, 100
        opts.warmup, opts.load_size, opts.load_repeats = 100, 1000, 1
    opts.size_list = [int(s) for s in opts.sizes.split(",") if s.strip()]
    opts.engine_list = {e.strip() for e in opts.engines.split(",") if e.strip()}
    if opts.baseline_src:
        opts.engine_list |= {"router-before"} if opts.engine_list else set()
    return opts


def wanted(opts: argparse.Namespace, *names: str) -> bool:
    """Whether any of these engines is to run (``--engines``; all when it is empty)."""
    return not opts.engine_list or any(name in opts.engine_list for name in names)


LEGEND = """\
One decision per call, timed alone (perf_counter_ns), gc off, after a warm-up; the engines
take turns every 500 inputs (--turn) and all get the same rules and inputs (peers read
`during: office` as a boolean input `office_open` computed beforehand, since they have no
time zones). p50/p99/mean µs: over every call of the first pass (what a caller sees, moments
another process held the CPU included); p50/p99 best: over the inputs, each at its best of
the passes (filters those moments out). ×ours: ratio to router's one-pass figure. disagree:
inputs where the engine chose another rule than router. own p50: the engine's self-reported
time (zen: the Rust core alone, without the Python <-> Rust conversion). Floors: the same
call with no rules (router: an empty rule list; zen: an empty table), i.e. the fixed cost
of a decision. harness: a no-op call (what the timing loop itself adds)."""


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="router-rules-bench-"))
    info = machine()
    print(
        f"Rule-engine benchmark · {info['cpu']}, {info['nproc']} CPUs · Python {info['python']} · "
        f"zen-engine {info['zen-engine']} · rule-engine {info['rule-engine']}"
    )
    print(f"Load average {info['loadavg_at_start']}. Rules written to {folder}.\n{LEGEND}")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    largest: tuple[Any, list[Case]] | None = None
    for size in opts.size_list:
        rng = random.Random(opts.seed + size)
        rules = generate_rules(size, rng)
        cases = generate_cases(rules, opts.inputs, rng)
        path = write_ruleset(rules, folder, f"bench-{size}")
        ours, ruleset = router_engines(path)
        engines = [*ours]
        if opts.baseline_src:
            engines.append(baseline_engine(opts.baseline_src, path))
        if wanted(opts, "zen", "zen-decision"):
            engines += zen_engines(rules)
        if wanted(opts, "rule-engine"):
            engines.append(rule_engine_engine(rules))
        if size == opts.size_list[0]:
            engines.append(router_floor_engine(folder))
            if wanted(opts, "zen floor", "zen-decision floor"):
                engines += zen_engines((), floor=True)
            engines.append(harness_engine())
        engines = [e for e in engines if e.name == "router" or wanted(opts, e.name)]
        timings = run_engines(engines, cases, opts)
        rows += report_size(size, timings, cases, opts.verbose)
        largest = (ruleset, cases)
    report_setup(rows)

    load: dict[str, Any] | None = None
    if opts.load_size:
        rules = generate_rules(opts.load_size, random.Random(opts.seed + opts.load_size))
        path = write_ruleset(rules, Path(tempfile.mkdtemp(dir=folder)), f"bench-{opts.load_size}")
        load = {"size": opts.load_size, **measure_load(path, opts.load_repeats)}
        report_load(load)

    profile = None
    if opts.profile and largest is not None:
        size, cases = opts.size_list[-1], largest[1]
        print(f"\npyinstrument: RuleSet.decide, 3 × {len(cases):,} inputs at {size:,} rules")
        profile = profile_decide(*largest)
        print(profile)

    disagreements = sum(r["disagree"] or 0 for r in rows)
    elapsed = time.perf_counter() - started
    verdict = (
        "All engines chose the same rule for every input they ran."
        if not disagreements
        else f"ENGINES DISAGREE on {disagreements} decisions (rerun with -v to see them)."
    )
    print(f"\n{verdict} Total {elapsed:.0f} s; load average now {_loadavg()}.")
    if opts.json:
        args = {k: v for k, v in vars(opts).items() if k != "json"}
        results = {
            "machine": info,
            "args": args,
            "decisions": rows,
            "load": load,
            "profile": profile,
            "loadavg_at_end": _loadavg(),
            "disagreements": disagreements,
            "elapsed_s": elapsed,
        }
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"Saved to {opts.json}")
    if not opts.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
