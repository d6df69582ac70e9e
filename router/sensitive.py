"""Sensitive facts, for every part of the router that shows or keeps facts (contract §8).

One place answers "may this value leave the process?": a ruleset's ``sensitive:`` paths,
``ROUTER_SENSITIVE_PATHS`` and ``context.ani``, compiled once into a
:class:`SensitivePaths` (the engine's, :mod:`router.engine.sensitive`). Logs, explain
traces, stored decisions, the shared store and decision records all go through it:

- :func:`mask` — a copy of the facts with each sensitive value ``"***"`` (logs, traces);
- :func:`strip` — a copy with each sensitive key removed (decision records for replay:
  a removed value reads as missing, which replay can tell from a real one);
- :func:`mask_trace` — an explain trace with the actual value of each sensitive path
  ``"***"`` (the operator and the expected value still shown).

    >>> paths = compile_paths(["state.card_number"])
    >>> strip({"state": {"card_number": "4111 1111", "tier": "gold"}}, paths)
    {'state': {'tier': 'gold'}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from router.engine.sensitive import (
    ALWAYS_SENSITIVE,
    DEFAULT_PATHS,
    DROP,
    MASK,
    PathError,
    SensitivePaths,
    parse_path,
)

__all__ = [
    "ALWAYS_SENSITIVE",
    "DEFAULT_PATHS",
    "DROP",
    "MASK",
    "PathError",
    "SensitivePaths",
    "compile_paths",
    "mask",
    "mask_trace",
    "parse_path",
    "split_setting",
    "strip",
]


def compile_paths(texts: Iterable[str]) -> SensitivePaths:
    """``texts`` and :data:`ALWAYS_SENSITIVE`, compiled (:class:`PathError` for a bad one)."""
    return SensitivePaths.compile(texts)


def split_setting(value: str) -> tuple[str, ...]:
    """The paths of a comma-separated ``ROUTER_SENSITIVE_PATHS`` value."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def mask(facts: Mapping[str, Any], paths: SensitivePaths) -> dict[str, Any]:
    """A copy of ``facts`` (``{namespace: map | None}``) with sensitive values ``"***"``."""
    return paths.mask(facts)


def strip(facts: Mapping[str, Any], paths: SensitivePaths) -> dict[str, Any]:
    """A copy of ``facts`` with sensitive keys removed; what a decision record keeps."""
    return paths.strip(facts)


def mask_trace(trace: Sequence[Mapping[str, Any]], paths: SensitivePaths) -> list[dict[str, Any]]:
    """An explain trace (one entry per rule) with each sensitive actual value ``"***"``.

    Each entry's ``condition`` is a failure ``{"path", "op", "expected", "actual", …}``, or
    an ``any`` whose ``branches`` are failures; only ``actual`` is rewritten, and only
    when the path is sensitive (or holds a map with sensitive parts).
    """
    out: list[dict[str, Any]] = []
    for entry in trace:
        condition = entry.get("condition")
        if isinstance(condition, Mapping):
            masked = _mask_failure(condition, paths)
            if masked is not condition:
                entry = {**entry, "condition": masked}
        out.append(dict(entry))
    return out


def _mask_failure(failure: Mapping[str, Any], paths: SensitivePaths) -> Mapping[str, Any]:
    result = failure
    path = failure.get("path")
    if isinstance(path, str) and failure.get("actual") is not None:
        shown = paths.mask_value(path, failure["actual"])
        if shown is not failure["actual"]:
            result = {**result, "actual": shown}
    branches = failure.get("branches")
    if isinstance(branches, list):
        masked = [_mask_failure(b, paths) if isinstance(b, Mapping) else b for b in branches]
        if any(new is not old for new, old in zip(masked, branches, strict=True)):
            result = {**result, "branches": masked}
    return result
