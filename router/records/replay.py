"""Replay: decide recorded decisions again with candidate rules, and say what would change.

Each record is decided again by the candidate ruleset of the same name, at its recorded
instant and with its recorded conversation and shared ids (so splits pick the same
side), and compared with what was decided then by rule and queue. A value that was
removed from the record (a sensitive path) is put back as
:data:`~router.engine.values.UNRECORDED`, which every condition reads as unknown: a
decision that such an unknown could have changed is counted ``uncertain``, never
``changed`` or ``unchanged``. Records of a ruleset the candidate does not define, and
records that cannot be read, are ``skipped``.

    replay = Replay(load_rules("candidate.yaml"))
    for where, body in records:
        replay.feed(where, body)
    report = replay.report()  # .to_dict() is the JSON object of contract §8
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from router.engine import UNRECORDED, Decision, RuleSet, decide_replayed, paths_read
from router.engine.values import snake_case
from router.records.record import BadRecord, Record, decode_record

EXAMPLES = 5
"""Decision ids shown per group of changes."""
MAX_UNREADABLE = 100
"""Unreadable records listed by place (all are counted)."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST_S = 10 * 366 * 86400


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` or a sum of them (``1h30m``); ``ValueError`` else."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text.strip():
        raise ValueError(f"'{text[:40]}' is not a duration such as 90s, 15m, 24h, 7d or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > _LONGEST_S:
        raise ValueError("a duration longer than 10 years (records are not kept that long)")
    return timedelta(seconds=seconds)


@dataclass(slots=True)
class ChangeGroup:
    """Decisions that moved from one (rule, queue) to another."""

    from_rule: str | None
    from_queue: str
    to_rule: str | None
    to_queue: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": {"rule": self.from_rule, "queue": self.from_queue},
            "to": {"rule": self.to_rule, "queue": self.to_queue},
            "count": self.count,
            "examples": list(self.examples),
        }


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record replay could not use: where it was (``file:line`` or a stream entry), why."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay found (contract §8's object, plus where and why records were skipped)."""

    replayed: int
    changed: int
    unchanged: int
    uncertain: int
    skipped: int
    changes: tuple[ChangeGroup, ...]
    other_ruleset: int
    unreadable_count: int
    unreadable: tuple[Unreadable, ...]
    uncertain_examples: tuple[str, ...]
    candidates: tuple[tuple[str, str], ...]
    """``(name, version)`` of each candidate ruleset."""
    stopped: str | None = None
    """Why the replay stopped before the last record (a time limit), if it did."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``router replay --format json`` and ``POST /v1/replay`` answer."""
        document: dict[str, Any] = {
            "replayed": self.replayed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "uncertain": self.uncertain,
            "skipped": self.skipped,
            "changes": [group.to_dict() for group in self.changes],
            "skipped_reasons": {
                "other_ruleset": self.other_ruleset,
                "unreadable": self.unreadable_count,
            },
            "unreadable": [{"where": u.where, "reason": u.reason} for u in self.unreadable],
            "uncertain_examples": list(self.uncertain_examples),
            "candidate": [
                {"ruleset": name, "version": version} for name, version in self.candidates
            ],
        }
        if self.stopped is not None:
            document["stopped"] = self.stopped
        return document


class Replay:
    """Replays records, one at a time, against ``candidates`` (name → ruleset).

    ``since``: records decided before it are passed over (not counted at all).
    """

    def __init__(self, candidates: Mapping[str, RuleSet], *, since: datetime | None = None):
        self._candidates = dict(candidates)
        self._since = since
        self._reads: dict[str, frozenset[str]] = {
            name: paths_read(ruleset) for name, ruleset in self._candidates.items()
        }
        self.replayed = 0
        self.unchanged = 0
        self.uncertain = 0
        self.other_ruleset = 0
        self.unreadable_count = 0
        self._unreadable: list[Unreadable] = []
        self._uncertain_examples: list[str] = []
        self._changes: dict[tuple[str | None, str, str | None, str], ChangeGroup] = {}
        self.stopped: str | None = None

    # Feeding -------------------------------------------------------------------------

    def feed(self, where: str, body: bytes) -> None:
        """Replay one stored record (its bytes); an unreadable one is skipped, noting
        ``where`` it was and why."""
        try:
            record = decode_record(body)
        except BadRecord as exc:
            self.skip_unreadable(where, str(exc))
            return
        self.add(record)

    def skip_unreadable(self, where: str, reason: str) -> None:
        """Count a record that could not be read, and say where and why (the first
        :data:`MAX_UNREADABLE` are listed)."""
        self.unreadable_count += 1
        if len(self._unreadable) < MAX_UNREADABLE:
            self._unreadable.append(Unreadable(where, reason))

    def add(self, record: Record) -> None:
        """Decide ``record`` again and count how it compares."""
        ruleset = self._candidates.get(record.ruleset)
        if ruleset is None:
            self.other_ruleset += 1
            return
        if self._since is not None and record.at < self._since:
            return
        decision, uncertain = self.decide(ruleset, record)
        self.replayed += 1
        if uncertain:
            self.uncertain += 1
            if len(self._uncertain_examples) < EXAMPLES:
                self._uncertain_examples.append(record.decision_id)
            return
        if decision.rule == record.rule and decision.queue == record.queue:
            self.unchanged += 1
            return
        key = (record.rule, record.queue, decision.rule, decision.queue)
        group = self._changes.get(key)
        if group is None:
            group = self._changes[key] = ChangeGroup(*key)
        group.count += 1
        if len(group.examples) < EXAMPLES:
            group.examples.append(record.decision_id)

    def decide(self, ruleset: RuleSet, record: Record) -> tuple[Decision, bool]:
        """``ruleset``'s decision for ``record``, and whether a value the record does not
        hold could have changed it."""
        unknown = _read_removed(record.removed, self._reads[ruleset.name])
        if not unknown:
            decision = ruleset.decide(
                record.facts,
                conversation_id=record.conversation_id,
                shared_id=record.shared_id,
                at=record.at,
            )
            return decision, False
        return decide_replayed(
            ruleset,
            with_unrecorded(record.facts, unknown),
            conversation_id=record.conversation_id,
            shared_id=record.shared_id,
            at=record.at,
        )

    # Reporting -----------------------------------------------------------------------

    @property
    def changed(self) -> int:
        return sum(group.count for group in self._changes.values())

    def report(self) -> ReplayReport:
        """What was found so far; changes grouped, the largest groups first."""
        changes = sorted(
            self._changes.values(),
            key=lambda g: (-g.count, g.from_rule or "", g.from_queue, g.to_rule or "", g.to_queue),
        )
        return ReplayReport(
            replayed=self.replayed,
            changed=self.changed,
            unchanged=self.unchanged,
            uncertain=self.uncertain,
            skipped=self.other_ruleset + self.unreadable_count,
            changes=tuple(changes),
            other_ruleset=self.other_ruleset,
            unreadable_count=self.unreadable_count,
            unreadable=tuple(self._unreadable),
            uncertain_examples=tuple(self._uncertain_examples),
            candidates=tuple(
                (name, ruleset.version) for name, ruleset in sorted(self._candidates.items())
            ),
            stopped=self.stopped,
        )


def _read_removed(removed: tuple[str, ...], read: frozenset[str]) -> list[str]:
    """The removed paths some condition of the ruleset reads (at or under them)."""
    if not removed:
        return []
    hit = []
    for path in removed:
        forms = {path}
        if path.startswith("conversation."):
            namespace, _, rest = path.partition(".")
            forms.add(namespace + "." + ".".join(snake_case(key) for key in rest.split(".")))
        if any(p == form or p.startswith(form + ".") for form in forms for p in read):
            hit.append(path)
    return hit


def with_unrecorded(
    facts: Mapping[str, Mapping[str, Any] | None], paths: list[str]
) -> dict[str, Mapping[str, Any] | None]:
    """``facts`` with :data:`UNRECORDED` at each of ``paths`` whose parent is there (the
    mappings on the way are copied; ``facts`` is left as it is)."""
    out: dict[str, Any] = dict(facts)
    for path in paths:
        namespace, *keys = path.split(".")
        if not keys or not isinstance(out.get(namespace), Mapping):
            continue
        parent = out[namespace] = dict(out[namespace])
        for key in keys[:-1]:
            child = parent.get(key)
            if not isinstance(child, Mapping):
                break
            parent[key] = dict(child)
            parent = parent[key]
        else:
            parent[keys[-1]] = UNRECORDED
    return out


def render_text(report: ReplayReport) -> str:
    """The report for a person in a terminal: totals, then each group of changes with its
    count and a few decision ids, the largest first."""
    lines: list[str] = []
    names = ", ".join(f"{name} ({version[:19]}…)" for name, version in report.candidates)
    lines.append(f"replayed {report.replayed:,} recorded decisions with {names}")
    width = len(f"{max(report.replayed, report.skipped, 1):,}")
    lines.append(f"  unchanged  {report.unchanged:>{width},}")
    lines.append(f"  changed    {report.changed:>{width},}")
    uncertain = f"  uncertain  {report.uncertain:>{width},}"
    if report.uncertain:
        uncertain += "  (a value not recorded, e.g. a sensitive one, could change these)"
    lines.append(uncertain)
    skipped = f"  skipped    {report.skipped:>{width},}"
    if report.skipped:
        skipped += (
            f"  ({report.other_ruleset:,} of another ruleset, "
            f"{report.unreadable_count:,} unreadable)"
        )
    lines.append(skipped)
    if report.stopped is not None:
        lines.append(f"stopped early: {report.stopped}")
    if report.changes:
        lines.append("")
        lines.append("changes (old rule → new rule, old queue → new queue):")
        count_width = len(f"{report.changes[0].count:,}")
        for group in report.changes:
            rules = (
                f"rule {_rule(group.from_rule)}"
                if group.from_rule == group.to_rule
                else f"rule {_rule(group.from_rule)} → {_rule(group.to_rule)}"
            )
            queues = (
                f"queue {group.from_queue}"
                if group.from_queue == group.to_queue
                else f"queue {group.from_queue} → {group.to_queue}"
            )
            lines.append(f"  {group.count:>{count_width},}  {rules}   {queues}")
            lines.append(f"  {'':>{count_width}}  e.g. {', '.join(group.examples)}")
    if report.uncertain_examples:
        lines.append("")
        lines.append(f"uncertain, e.g. {', '.join(report.uncertain_examples)}")
    return "\n".join(lines) + "\n"


def _rule(rule: str | None) -> str:
    return rule if rule is not None else "(default/fallback)"
