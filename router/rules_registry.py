"""The rulesets being served, by name, swapped whole so no reader sees a half-update.

A request looks its ruleset up once (:meth:`RulesRegistry.get`) and keeps that immutable
object to the end, so a reload in the meantime never changes a decision half-way: the
request finishes on the version it started with. :mod:`router.reload` is the only writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from router import RuleSet


@dataclass(frozen=True, slots=True)
class LoadedRuleset:
    """A ruleset being served, the rule file it came from, and when it was activated."""

    ruleset: RuleSet
    file: str
    """The path the reloader read (the key it tracks the file by)."""
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class ReloadError:
    """Why the last rejected rule file was rejected (shown by ``GET /v1/rulesets``)."""

    file: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RulesSnapshot:
    """Everything the registry holds, as of one reload."""

    rulesets: Mapping[str, LoadedRuleset]
    files_without_version: tuple[str, ...]
    """Rule files present that serve no ruleset (rejected, refused, in conflict, or not
    settled yet). Informational: they do not fail readiness."""
    last_reload_error: ReloadError | None
    served_since_start: frozenset[str] = frozenset()
    """Every ruleset name served at some point since start-up, this snapshot's included."""

    @property
    def lost(self) -> tuple[str, ...]:
        """Rulesets that served since start-up and are served no longer, sorted."""
        return tuple(sorted(self.served_since_start - self.rulesets.keys()))


_EMPTY = RulesSnapshot(MappingProxyType({}), (), None)


class RulesRegistry:
    """Holds the current :class:`RulesSnapshot`; replacing it is one reference assignment.

    ``default_ruleset`` (``ROUTER_DEFAULT_RULESET``) is the ruleset readiness depends on.
    """

    def __init__(self, default_ruleset: str = "default") -> None:
        self.default_ruleset = default_ruleset
        self._snapshot = _EMPTY

    def get(self, name: str) -> RuleSet | None:
        """The ruleset served under ``name`` now, or ``None``."""
        loaded = self._snapshot.rulesets.get(name)
        return loaded.ruleset if loaded is not None else None

    @property
    def snapshot(self) -> RulesSnapshot:
        """The whole current state (rulesets, files without a version, last error)."""
        return self._snapshot

    def publish(
        self,
        rulesets: Mapping[str, LoadedRuleset],
        *,
        files_without_version: tuple[str, ...],
        last_reload_error: ReloadError | None,
    ) -> None:
        """Replace the state at once (the reloader's job)."""
        served = self._snapshot.served_since_start | rulesets.keys()
        self._snapshot = RulesSnapshot(
            MappingProxyType(dict(rulesets)),
            files_without_version,
            last_reload_error,
            frozenset(served),
        )

    def not_ready_reason(self) -> str | None:
        """Why the service is not ready to route, or ``None`` when it is.

        Ready means the default ruleset is serving and no ruleset that served since
        start-up has been lost. A rule file that has never been valid does not count: one
        typo in a new file must not take every replica out of the load balancer.
        """
        snapshot = self._snapshot  # one read: the reasons below agree with each other
        reasons: list[str] = []
        if not snapshot.rulesets:
            reasons.append("no valid ruleset is loaded")
        elif self.default_ruleset not in snapshot.rulesets:
            reasons.append(f"the default ruleset '{self.default_ruleset}' is not loaded")
        lost = [name for name in snapshot.lost if name != self.default_ruleset]
        if lost:
            reasons.append("no longer served since start-up: " + ", ".join(lost))
        return "; ".join(reasons) or None
