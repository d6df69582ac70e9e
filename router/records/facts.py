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
from typing import Any

from router.sensitive import DEFAULT_PATHS, DROP, SensitivePaths

FactsIn = Mapping[str, Mapping[str, Any] | None]
"""A decision's facts: ``handoff``, ``state``, ``conversation``, ``context`` (``None``: the
source failed)."""

NAMESPACES = ("handoff", "state", "conversation", "context")


@functools.lru_cache(maxsize=256)
def sensitive_paths(*groups: tuple[str, ...]) -> SensitivePaths:
    """The compiled union of ``groups`` of path patterns and the paths always sensitive
    (``context.ani``): the same :class:`router.sensitive.SensitivePaths` the service masks
    with, cached."""
    return SensitivePaths.compile(path for group in groups for path in group)


def recorded_facts(
    facts: FactsIn, paths: SensitivePaths = DEFAULT_PATHS
) -> tuple[dict[str, Any], list[str]]:
    """``facts`` as a record keeps them, and the sensitive paths removed from them.

    The record has the four namespaces (a failed source as ``None``); ``removed`` lists the
    paths that held a value, so replay can tell a value that was there but is not recorded
    from one that was never there.
    """
    removed: list[str] = []

    def drop(path: str, value: Any) -> Any:
        removed.append(path)
        return DROP

    kept = paths.rewrite({name: facts.get(name) for name in NAMESPACES}, drop)
    return kept, removed
