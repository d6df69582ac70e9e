"""A loaded ruleset and the decisions it makes: first match, splits, default, fallback, trace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from router.engine.compile import NAMESPACES, All, AnyOf, Leaf, Node, Not, Scope, Test, always
from router.engine.index import CandidateIndex
from router.engine.platforms import NO_PLATFORMS, PlatformMaps
from router.engine.problems import Problem
from router.engine.routes import Route
from router.engine.values import MISSING, snake_case_aliases

Outcome = Literal["matched", "default", "fallback"]

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a call goes and why. ``trace`` is set only by :meth:`RuleSet.explain`."""

    ruleset: str
    ruleset_version: str
    queue: str
    label: str | None
    priority: int | None
    skills: tuple[str, ...]
    attributes: Mapping[str, str]
    rule: str | None
    outcome: Outcome
    degraded: bool
    trace: tuple[dict[str, Any], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the decision fields of the HTTP answer; ``trace`` if explained)."""
        out: dict[str, Any] = {
            "ruleset": self.ruleset,
            "ruleset_version": self.ruleset_version,
            "queue": self.queue,
            "label": self.label,
            "priority": self.priority,
            "skills": list(self.skills),
            "attributes": dict(self.attributes),
            "rule": self.rule,
            "outcome": self.outcome,
            "degraded": self.degraded,
        }
        if self.trace is not None:
            out["trace"] = list(self.trace)
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``when`` is ``None`` for a rule with no conditions."""

    id: str
    description: str | None
    when: Node | None
    route: Route
    line: int


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One immutable, compiled ruleset; safe to share between threads and tasks."""

    name: str
    version: str
    source: str
    description: str | None
    timezone: str
    tz: ZoneInfo = field(repr=False)
    rules: tuple[Rule, ...] = field(repr=False)
    default: Route = field(repr=False)
    fallback: Route | None = field(repr=False)
    warnings: tuple[Problem, ...] = field(repr=False)
    tests: tuple[Any, ...] = field(repr=False)
    index: CandidateIndex = field(repr=False, compare=False)
    checks: tuple[Test, ...] = field(repr=False, compare=False)
    platforms: PlatformMaps = field(default=NO_PLATFORMS, repr=False)
    """Each platform's ids for this ruleset's queues (the file's ``platforms:``)."""

    # --- public API -------------------------------------------------------------------

    def decide(
        self,
        facts: Mapping[str, Mapping[str, Any] | None],
        *,
        conversation_id: str | None = None,
        shared_id: str | None = None,
        at: datetime | None = None,
    ) -> Decision:
        """The decision for ``facts``: the first rule (in file order) whose ``when`` holds."""
        scope, degraded = self._scope(facts, at)
        tests = self.checks
        for position in self.index.candidates(scope):
            if tests[position](scope) is True:
                return self._decision(scope, position, degraded, conversation_id, shared_id)
        return self._decision(scope, None, degraded, conversation_id, shared_id)

    def explain(
        self,
        facts: Mapping[str, Mapping[str, Any] | None],
        *,
        conversation_id: str | None = None,
        shared_id: str | None = None,
        at: datetime | None = None,
    ) -> Decision:
        """Like :meth:`decide`, plus a trace: for every rule, matched or not, and why not."""
        scope, degraded = self._scope(facts, at)
        trace: list[dict[str, Any]] = []
        chosen: int | None = None
        for position, rule in enumerate(self.rules):
            result, failure = _explain(rule.when, scope)
            selected = result is True and chosen is None
            if selected:
                chosen = position
            trace.append(
                {
                    "rule": rule.id,
                    "line": rule.line,
                    "matched": result is True,
                    "result": "matched" if result else "unknown" if result is None else "no_match",
                    "selected": selected,
                    "condition": failure,
                }
            )
        decision = self._decision(scope, chosen, degraded, conversation_id, shared_id)
        return _with_trace(decision, tuple(trace))

    # --- internals --------------------------------------------------------------------

    def _scope(
        self, facts: Mapping[str, Mapping[str, Any] | None], at: datetime | None
    ) -> tuple[Scope, bool]:
        given: dict[str, Mapping[str, Any] | None] = dict.fromkeys(NAMESPACES, _EMPTY)
        degraded = False
        for namespace, value in facts.items():
            if namespace not in given:
                continue
            if value is None:
                given[namespace] = None
                degraded = True
            elif type(value) is dict or isinstance(value, Mapping):
                given[namespace] = (
                    snake_case_aliases(value) if namespace == "conversation" else value
                )
            else:
                raise TypeError(f"facts[{namespace!r}] must be a mapping or None")
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=self.tz)
        return Scope(given, at), degraded

    def _decision(
        self,
        scope: Scope,
        position: int | None,
        degraded: bool,
        conversation_id: str | None,
        shared_id: str | None,
    ) -> Decision:
        outcome: Outcome
        if position is not None:
            rule = self.rules[position]
            route, rule_id, outcome = rule.route, rule.id, "matched"
        elif degraded:
            route, rule_id, outcome = self.fallback or self.default, None, "fallback"
        else:
            route, rule_id, outcome = self.default, None, "default"
        target = route.choose(conversation_id or shared_id or "")
        label, attributes = target.render(scope.facts)
        return Decision(
            ruleset=self.name,
            ruleset_version=self.version,
            queue=target.queue,
            label=label,
            priority=target.priority,
            skills=target.skills,
            attributes=attributes,
            rule=rule_id,
            outcome=outcome,
            degraded=degraded,
        )


def decide_by_scan(
    ruleset: RuleSet,
    facts: Mapping[str, Mapping[str, Any] | None],
    *,
    conversation_id: str | None = None,
    shared_id: str | None = None,
    at: datetime | None = None,
) -> Decision:
    """The same decision as :meth:`RuleSet.decide`, testing every rule in order (no index).

    The reference the index is proven against, and a baseline for benchmarks.
    """
    scope, degraded = ruleset._scope(facts, at)
    for position, check in enumerate(ruleset.checks):
        if check(scope) is True:
            return ruleset._decision(scope, position, degraded, conversation_id, shared_id)
    return ruleset._decision(scope, None, degraded, conversation_id, shared_id)


def rule_check(node: Node | None) -> Test:
    """The closure a decision runs for a rule's ``when``."""
    return always if node is None else node.test


def _with_trace(decision: Decision, trace: tuple[dict[str, Any], ...]) -> Decision:
    from dataclasses import replace

    return replace(decision, trace=trace)


def _actual(value: Any) -> dict[str, Any]:
    if value is MISSING:
        return {"actual": None, "missing": True}
    return {"actual": value}


def _explain(node: Node | None, scope: Scope) -> tuple[bool | None, dict[str, Any] | None]:
    """Evaluate ``node`` slowly, saying which condition failed first and what it saw."""
    if node is None:
        return True, None
    if isinstance(node, Leaf):
        if scope.facts[node.namespace] is None:
            op = node.ops[0]
            return None, {
                "path": node.path,
                "op": op.name,
                "expected": _plain(op.expected),
                "actual": None,
                "reason": f"source '{node.namespace}' failed",
            }
        value = node.read(scope)
        for op in node.ops:
            if not op.check(value):
                failure: dict[str, Any] = {
                    "path": node.path,
                    "op": op.name,
                    "expected": _plain(op.expected),
                    **_actual(value),
                }
                if node.ignore_case:
                    failure["ignore_case"] = True
                return False, failure
        return True, None
    if isinstance(node, All):
        unknown: dict[str, Any] | None = None
        for child in node.children:
            result, reason = _explain(child, scope)
            if result is False:
                return False, reason
            if result is None and unknown is None:
                unknown = reason
        return (None, unknown) if unknown is not None else (True, None)
    if isinstance(node, AnyOf):
        branches: list[dict[str, Any] | None] = []
        saw_unknown = False
        for child in node.children:
            result, reason = _explain(child, scope)
            if result is True:
                return True, None
            saw_unknown = saw_unknown or result is None
            branches.append(reason)
        summary = {
            "path": None,
            "op": "any",
            "expected": None,
            "actual": None,
            "branches": branches,
        }
        return (None if saw_unknown else False), summary
    if isinstance(node, Not):
        result, _ = _explain(node.child, scope)
        if result is None:
            return None, {
                "path": None,
                "op": "not",
                "expected": None,
                "actual": None,
                "reason": "inner condition is unknown (a source failed)",
            }
        if result:
            return False, {
                "path": None,
                "op": "not",
                "expected": False,
                "actual": True,
                "reason": "inner condition held",
            }
        return True, None
    is_open = scope.is_open(node.schedule)
    held = is_open != node.outside
    if held:
        return True, None
    return False, {
        "path": None,
        "op": "outside" if node.outside else "during",
        "expected": node.schedule.name,
        "actual": ("open" if is_open else "closed")
        + " at "
        + node.schedule.local_time(scope.now()),
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
