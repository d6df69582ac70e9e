"""A loaded ruleset and the decisions it makes: first match, splits, default, fallback, trace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from router.engine.compile import (
    NAMESPACES,
    All,
    AnyOf,
    Leaf,
    Node,
    Not,
    Scope,
    Test,
    Why,
    always,
    always_why,
    deferring,
)
from router.engine.index import CandidateIndex
from router.engine.platforms import NO_PLATFORMS, PlatformMaps
from router.engine.problems import Problem
from router.engine.routes import Route, Target
from router.engine.sensitive import DEFAULT_PATHS, SensitivePaths
from router.engine.values import snake_case_aliases

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
    """One immutable, compiled ruleset; safe to share between threads and tasks.

    ``decide`` and ``explain`` run the same compiled conditions (``checks``): explain
    adds each rule's ``why`` (compile.py), whose result is that rule's check.
    """

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
    show: tuple[str, ...] = field(default=(), repr=False)
    """Fact paths the agent card shows (the file's ``show:``)."""
    sensitive: SensitivePaths = field(default=DEFAULT_PATHS, repr=False)
    """The file's ``sensitive:`` paths and the built-in ones (``context.ani``)."""
    platforms: PlatformMaps = field(default=NO_PLATFORMS, repr=False)
    """Each platform's ids for this ruleset's queues (the file's ``platforms:``)."""
    index: CandidateIndex = field(init=False, repr=False, compare=False)
    checks: tuple[Test, ...] = field(init=False, repr=False, compare=False)
    whys: tuple[Why, ...] = field(init=False, repr=False, compare=False)
    _by_id: Mapping[str, Rule] = field(init=False, repr=False, compare=False)
    _shown: dict[tuple[int, int], tuple[SensitivePaths, bool]] = field(
        init=False, repr=False, compare=False
    )
    """Per (target, paths): whether a template of that target shows one of those paths."""

    def __post_init__(self) -> None:
        index = CandidateIndex([rule.when for rule in self.rules])
        # A rule the index offers almost always meets the condition it is filed under:
        # its other conditions go first (the result does not depend on the order).
        rules = tuple(
            rule if leaf is None else replace(rule, when=deferring(rule.when, leaf))
            for rule, leaf in zip(self.rules, index.filed, strict=True)
        )
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "checks", tuple(rule_check(rule.when) for rule in rules))
        object.__setattr__(self, "whys", tuple(rule_why(rule.when) for rule in rules))
        object.__setattr__(self, "_by_id", {rule.id: rule for rule in rules})
        object.__setattr__(self, "_shown", {})

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
        return self._decision(scope, self._first(scope), degraded, conversation_id, shared_id)

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
        chosen = self._first(scope)
        trace: list[dict[str, Any]] = []
        for position, (rule, why) in enumerate(zip(self.rules, self.whys, strict=True)):
            result, failure = why(scope)
            trace.append(
                {
                    "rule": rule.id,
                    "line": rule.line,
                    "matched": result is True,
                    "result": "matched" if result else "unknown" if result is None else "no_match",
                    "selected": position == chosen,
                    "condition": failure,
                }
            )
        decision = self._decision(scope, chosen, degraded, conversation_id, shared_id)
        return replace(decision, trace=tuple(trace))

    def mask_rendering(
        self,
        decision: Decision,
        facts: Mapping[str, Mapping[str, Any] | None],
        paths: SensitivePaths | None = None,
        *,
        conversation_id: str | None = None,
        shared_id: str | None = None,
    ) -> Decision:
        """``decision`` (made by this ruleset on ``facts``) with its label and attributes
        rendered as if each sensitive value were ``"***"``: what may be kept or shown
        anywhere but the route answer itself. ``paths`` defaults to :attr:`sensitive`.

        The same object comes back when none of its templates shows a sensitive path
        (the common case: a few dict lookups)."""
        paths = self.sensitive if paths is None else paths
        target = self._target(decision, conversation_id or shared_id or "")
        if target is None or not self._shows_any(target, paths):
            return decision
        scope, _ = self._scope(paths.mask(facts), None)
        label, attributes = target.render(scope.facts)
        return replace(decision, label=label, attributes=attributes)

    # --- internals --------------------------------------------------------------------

    def _shows_any(self, target: Target, paths: SensitivePaths) -> bool:
        """:func:`_shows_any`, worked out once per target and paths (the targets are this
        ruleset's own; the paths object is kept with the answer, so an id is never
        mistaken for another's)."""
        key = (id(target), id(paths))
        known = self._shown.get(key)
        if known is not None and known[0] is paths:
            return known[1]
        shows = _shows_any(target, paths)
        if len(self._shown) < _SHOWN_MAX:
            self._shown[key] = (paths, shows)
        return shows

    def _target(self, decision: Decision, key: str) -> Target | None:
        """The target ``decision`` rendered (its rule's, or the default's or fallback's)."""
        if decision.rule is not None:
            rule = self._by_id.get(decision.rule)
            route = None if rule is None else rule.route
        elif decision.outcome == "fallback":
            route = self.fallback or self.default
        else:
            route = self.default
        return None if route is None else route.choose(key)

    def _first(self, scope: Scope) -> int | None:
        """The position of the first rule that holds (the one both decide and explain pick)."""
        checks = self.checks
        for position in self.index.candidates(scope):
            if checks[position](scope) is True:
                return position
        return None

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
        # Positional, in field order: keywords cost a frozen dataclass ~0.5 µs per decision.
        return Decision(
            self.name,  # ruleset
            self.version,  # ruleset_version
            target.queue,
            label,
            target.priority,
            target.skills,
            attributes,
            rule_id,  # rule
            outcome,
            degraded,
        )


_SHOWN_MAX = 4096
"""Most (target, paths) answers remembered per ruleset."""


def _shows_any(target: Target, paths: SensitivePaths) -> bool:
    """Whether a template of ``target`` substitutes a sensitive path."""
    templates = [t for _, t in target.attributes]
    if target.label is not None:
        templates.append(target.label)
    return any(paths.covers(path) for t in templates for path in t.paths)


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


def decide_replayed(
    ruleset: RuleSet,
    facts: Mapping[str, Mapping[str, Any] | None],
    *,
    conversation_id: str | None = None,
    shared_id: str | None = None,
    at: datetime | None = None,
) -> tuple[Decision, bool]:
    """:func:`decide_by_scan`, and whether a value not recorded could have changed it.

    ``facts`` hold :data:`~router.engine.values.UNRECORDED` where a recorded decision's
    value was removed. The decision is uncertain when a rule tested before the chosen one
    (or any rule, when none is chosen) was unknown after reading such a value: with the
    real value it might have matched. A rule that holds, or fails, whatever the value
    (three-valued logic) leaves the decision certain.
    """
    scope, degraded = ruleset._scope(facts, at)
    uncertain = False
    for position, check in enumerate(ruleset.checks):
        scope.unrecorded = False
        result = check(scope)
        if result is True:
            decision = ruleset._decision(scope, position, degraded, conversation_id, shared_id)
            return decision, uncertain
        if result is None and scope.unrecorded:
            uncertain = True
    return ruleset._decision(scope, None, degraded, conversation_id, shared_id), uncertain


def paths_read(ruleset: RuleSet) -> frozenset[str]:
    """Every fact path the ruleset's conditions read (``state.tier`` …)."""
    found: set[str] = set()
    pending: list[Node] = [rule.when for rule in ruleset.rules if rule.when is not None]
    while pending:
        node = pending.pop()
        if isinstance(node, Leaf):
            found.add(node.path)
        elif isinstance(node, All | AnyOf):
            pending.extend(node.children)
        elif isinstance(node, Not):
            pending.append(node.child)
    return frozenset(found)


def rule_check(node: Node | None) -> Test:
    """The closure a decision runs for a rule's ``when``."""
    return always if node is None else node.test


def rule_why(node: Node | None) -> Why:
    """The closure ``explain`` runs for a rule's ``when``: its check's result, and why."""
    return always_why if node is None else node.why
