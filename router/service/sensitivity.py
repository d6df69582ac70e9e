"""Which facts are sensitive for a decision, and for the store (contract §8).

A ruleset's own paths (its ``sensitive:`` list and ``context.ani``) plus
``ROUTER_SENSITIVE_PATHS``, for one decision; the union over every ruleset loaded now, for
what is kept regardless of ruleset (pushes, cached lookups). Both are compiled once per
ruleset version / per reload and then looked up per call.
"""

from __future__ import annotations

from router.engine.decide import RuleSet
from router.rules_registry import RulesRegistry, RulesSnapshot
from router.sensitive import SensitivePaths


class Sensitivity:
    """The sensitive paths of each ruleset being served, and of all of them together."""

    __slots__ = ("_extra", "_of", "_rules", "_union")

    def __init__(self, rules: RulesRegistry, extra: SensitivePaths) -> None:
        self._rules = rules
        self._extra = extra
        self._of: dict[str, tuple[RuleSet, SensitivePaths]] = {}
        self._union: tuple[RulesSnapshot, SensitivePaths] | None = None

    def of(self, ruleset: RuleSet) -> SensitivePaths:
        """``ruleset``'s paths and ``ROUTER_SENSITIVE_PATHS``."""
        known = self._of.get(ruleset.name)
        if known is not None and known[0] is ruleset:
            return known[1]
        paths = ruleset.sensitive.union(self._extra)
        self._of[ruleset.name] = (ruleset, paths)
        return paths

    def everywhere(self) -> SensitivePaths:
        """Every loaded ruleset's paths and ``ROUTER_SENSITIVE_PATHS`` (pushes, the lookup
        cache: they serve whichever ruleset routes the call)."""
        snapshot = self._rules.snapshot
        union = self._union
        if union is not None and union[0] is snapshot:
            return union[1]
        paths = self._extra
        for loaded in snapshot.rulesets.values():
            paths = paths.union(loaded.ruleset.sensitive)
        self._union = (snapshot, paths)
        return paths
