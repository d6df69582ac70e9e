"""What of a decision's facts is recorded: everything but the sensitive values (contract §8).

:func:`recorded_facts` is the one place a decision's facts become recorded facts. It
removes every value at a sensitive path and says which paths it removed, so replay can
tell "this value was there but is not recorded" (an unknown that may change the outcome)
from "this value was never there" (which decides exactly as it did).

A sensitive path is exact (``state.card_number``) or ends in ``*``: ``context.sip.*`` is
everything under ``context.sip``, ``state.card_*`` every key of ``state`` starting with
``card_``. In the ``conversation`` namespace a key also matches by its snake_case name
(the engine reads ``fromNumber`` as ``from_number`` too).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.engine.values import snake_case

DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = ("context.ani",)
"""Paths no record ever holds, whatever the ruleset says (contract §8)."""

FactsIn = Mapping[str, Mapping[str, Any] | None]
"""A decision's facts: ``handoff``, ``state``, ``conversation``, ``context`` (``None``: the
source failed)."""


@dataclass(frozen=True, slots=True)
class SensitivePaths:
    """Sensitive paths compiled for matching (build with :func:`sensitive_paths`)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    """Every ``*`` path without its ``*`` (``context.sip.``, ``state.card_``)."""
    parents: frozenset[str]
    """Every proper ancestor of a pattern (``context`` for ``context.ani``): only those
    mappings are walked, so facts with nothing sensitive in them cost one set lookup."""

    def matches(self, path: str) -> bool:
        """Whether the value at ``path`` is sensitive."""
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))

    def walks(self, path: str) -> bool:
        """Whether something under ``path`` may be sensitive (a path under a ``*`` pattern's
        stem is matched, and removed, before it would be walked)."""
        return path in self.parents


@functools.lru_cache(maxsize=256)
def _compile(patterns: tuple[str, ...]) -> SensitivePaths:
    exact: set[str] = set()
    prefixes: list[str] = []
    parents: set[str] = set()
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if pattern.endswith("*"):
            stem = pattern[:-1]
            prefixes.append(stem)
            parts = stem.rstrip(".").split(".")
            parents.update(".".join(parts[:n]) for n in range(1, len(parts)))
            if stem.endswith("."):
                parents.add(stem[:-1])
        else:
            exact.add(pattern)
            parts = pattern.split(".")
            parents.update(".".join(parts[:n]) for n in range(1, len(parts)))
    return SensitivePaths(frozenset(exact), tuple(prefixes), frozenset(parents))


@functools.lru_cache(maxsize=256)
def sensitive_paths(*groups: tuple[str, ...]) -> SensitivePaths:
    """The compiled union of ``groups`` of path patterns (a ruleset's, the settings') and
    :data:`DEFAULT_SENSITIVE_PATHS`; cached, so a decision pays one dictionary lookup."""
    merged = {*DEFAULT_SENSITIVE_PATHS}
    for group in groups:
        merged.update(group)
    return _compile(tuple(sorted(merged)))


DEFAULT_SENSITIVE = sensitive_paths()


def recorded_facts(
    facts: FactsIn, paths: SensitivePaths = DEFAULT_SENSITIVE
) -> tuple[dict[str, Any], list[str]]:
    """``facts`` as a record keeps them, and the sensitive paths removed from them.

    The record has the four namespaces (a failed source as ``None``); a namespace with
    nothing sensitive in it is the caller's own mapping (not copied), one with something
    removed is a copy. ``removed`` lists the paths that held a value, in the order met.
    """
    removed: list[str] = []
    out: dict[str, Any] = {}
    for namespace in ("handoff", "state", "conversation", "context"):
        value = facts.get(namespace)
        if value is not None and namespace in paths.parents:
            value = _without(value, namespace, paths, removed, namespace == "conversation")
        out[namespace] = value
    return out, removed


def _without(
    value: Mapping[str, Any],
    path: str,
    paths: SensitivePaths,
    removed: list[str],
    snake: bool,
) -> Mapping[str, Any]:
    """``value`` (at ``path``) without its sensitive children; itself when it has none."""
    copy: dict[str, Any] | None = None
    for key, child in value.items():
        here = f"{path}.{key}"
        if paths.matches(here) or (
            snake and isinstance(key, str) and paths.matches(f"{path}.{snake_case(key)}")
        ):
            if copy is None:
                copy = dict(value)
            del copy[key]
            removed.append(here)
        elif isinstance(child, Mapping) and paths.walks(here):
            kept = _without(child, here, paths, removed, snake)
            if kept is not child:
                if copy is None:
                    copy = dict(value)
                copy[key] = kept
    return value if copy is None else copy
