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
    """Rule files present whose ruleset has no valid version (they keep /readyz at 503)."""
    last_reload_error: ReloadError | None


_EMPTY = RulesSnapshot(MappingProxyType({}), (), None)


class RulesRegistry:
    """Holds the current :class:`RulesSnapshot`; replacing it is one reference assignment."""

    def __init__(self) -> None:
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
        self._snapshot = RulesSnapshot(
            MappingProxyType(dict(rulesets)), files_without_version, last_reload_error
        )

    def not_ready_reason(self) -> str | None:
        """Why the service is not ready to route, or ``None`` when it is."""
        snapshot = self._snapshot
        if not snapshot.rulesets:
            return "no valid ruleset is loaded"
        if snapshot.files_without_version:
            return "no valid version yet for: " + ", ".join(snapshot.files_without_version)
        return None
