"""Sensitive paths: which facts never leave the process (contract §8), compiled once.

A rule file's ``sensitive:`` list, ``ROUTER_SENSITIVE_PATHS`` and the built-in
``context.ani`` name paths such as ``state.card_number`` (that value, whatever it holds),
``context.sip.*`` (everything under ``context.sip``) or ``state.card_*`` (every key of
``state`` whose name starts with ``card_``). :class:`SensitivePaths` compiles them into a
small tree walked once per fact map, so masking a decision's facts costs a few dict
lookups, and a map with nothing sensitive in it is returned as it is (not copied).

The engine uses this to check rule files and to render a stored decision's label without
the values it must not keep; everything else reaches it through :mod:`router.sensitive`.

    >>> paths = SensitivePaths.compile(["state.card_*"])
    >>> paths.mask({"state": {"card_number": "4111", "tier": "gold"}})
    {'state': {'card_number': '***', 'tier': 'gold'}}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router.engine.problems import did_you_mean
from router.engine.values import snake_case

NAMESPACES = ("handoff", "state", "conversation", "context")
MASK = "***"
"""What a sensitive value is shown as wherever it is shown at all."""
ALWAYS_SENSITIVE = ("context.ani", "context.sip_from")
"""Paths sensitive in every ruleset whatever its file says: the caller's number, as a
number (``ani``) and as the SIP URI a Twilio SIP call gives it in (``sip_from``)."""

_KEY = re.compile(r"[\w-]+\Z")
_LAST = re.compile(r"[\w-]*\*?\Z")

Rewrite = Callable[[str, Any], Any]
"""Given a sensitive value's dotted path and the value: what to keep instead
(:data:`DROP` to leave the key out)."""
DROP: Any = object()
"""Returned by a :data:`Rewrite` to remove the key."""


class PathError(ValueError):
    """A sensitive path that is not ``namespace.key[.key…]`` with an optional trailing ``*``."""


def parse_path(text: str) -> tuple[str, tuple[str, ...]]:
    """``"state.card_*"`` → ``("state", ("card_*",))``; :class:`PathError` says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("a sensitive path is text such as state.card_number or context.sip.*")
    namespace, *keys = text.strip().split(".")
    if namespace not in NAMESPACES:
        raise PathError(
            f"unknown namespace '{namespace}' in '{text}'{did_you_mean(namespace, NAMESPACES)}; "
            f"paths start with {', '.join(NAMESPACES)}"
        )
    if not keys:
        raise PathError(
            f"'{text}' names a whole namespace: write '{namespace}.*' to mark all of it"
        )
    if not all(_KEY.match(key) for key in keys[:-1]) or not (
        _LAST.match(keys[-1]) and keys[-1] != ""
    ):
        raise PathError(
            f"'{text}' is not a sensitive path: keys are letters, digits, '_' and '-', "
            "joined by '.'; only the last may end with '*' (state.card_*, context.sip.*)"
        )
    return namespace, tuple(keys)


@dataclass(slots=True)
class _Node:
    """One level of the compiled tree: keys sensitive whole, name prefixes, and deeper levels."""

    whole: set[str] = field(default_factory=set)
    prefixes: list[str] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)

    def hides(self, key: str) -> bool:
        if key in self.whole:
            return True
        prefixes = self.prefixes
        return bool(prefixes) and key.startswith(tuple(prefixes))


class SensitivePaths:
    """A compiled, immutable set of sensitive paths; safe to share between tasks.

    Build with :meth:`compile` (which validates). :attr:`paths` lists them, sorted.
    """

    __slots__ = ("_covers", "_roots", "paths")

    def __init__(self, paths: tuple[str, ...], roots: dict[str, _Node]) -> None:
        self.paths = paths
        self._roots = roots
        self._covers: dict[str, bool] = {}

    @classmethod
    def compile(cls, texts: Iterable[str], *, defaults: bool = True) -> SensitivePaths:
        """Compile ``texts`` (plus :data:`ALWAYS_SENSITIVE` when ``defaults``); raises
        :class:`PathError` for the first bad one."""
        cleaned = {text.strip() for text in texts}
        if defaults:
            cleaned.update(ALWAYS_SENSITIVE)
        roots: dict[str, _Node] = {}
        for text in cleaned:
            namespace, keys = parse_path(text)
            node = roots.setdefault(namespace, _Node())
            for key in keys[:-1]:
                node = node.children.setdefault(key, _Node())
            last = keys[-1]
            if last.endswith("*"):
                node.prefixes.append(last[:-1])
            else:
                node.whole.add(last)
        return cls(tuple(sorted(cleaned)), roots)

    def union(self, other: SensitivePaths | Iterable[str]) -> SensitivePaths:
        """These paths and ``other``'s together."""
        more = other.paths if isinstance(other, SensitivePaths) else tuple(other)
        if set(more) <= set(self.paths):
            return self
        return SensitivePaths.compile((*self.paths, *more), defaults=False)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SensitivePaths) and other.paths == self.paths

    def __hash__(self) -> int:
        return hash(self.paths)

    def __repr__(self) -> str:
        return f"SensitivePaths({list(self.paths)!r})"

    # --- questions ----------------------------------------------------------------------

    def covers(self, path: str) -> bool:
        """Whether the value at ``path`` (``"state.card_number"``) is sensitive: the path
        itself, or one of its ancestors, is listed."""
        known = self._covers.get(path)
        if known is not None:
            return known
        namespace, *keys = path.split(".")
        node = self._roots.get(namespace)
        found = False
        for depth, key in enumerate(keys):
            if node is None:
                break
            if node.hides(key) or (
                depth == 0 and namespace == "conversation" and node.hides(snake_case(key))
            ):
                found = True
                break
            node = node.children.get(key)
        if len(self._covers) < 4096:
            self._covers[path] = found
        return found

    def touches(self, namespace: str) -> bool:
        """Whether any path lies in ``namespace`` (if not, its facts are kept as they are)."""
        return namespace in self._roots

    # --- rewriting facts ----------------------------------------------------------------

    def mask(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``facts`` (``{namespace: map}``) with each sensitive value ``"***"``."""
        return self.rewrite(facts, _masked)

    def strip(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``facts`` with each sensitive key removed (as if it was never there)."""
        return self.rewrite(facts, _dropped)

    def rewrite(self, facts: Mapping[str, Any], replace: Rewrite) -> dict[str, Any]:
        """A copy of ``facts`` with each sensitive value replaced by ``replace(path, value)``
        (or left out when it returns :data:`DROP`). A namespace given as ``None`` (its
        source failed) or holding nothing sensitive is kept as it is."""
        out = dict(facts)
        for namespace, value in facts.items():
            node = self._roots.get(namespace)
            if node is not None and isinstance(value, Mapping):
                out[namespace] = self.rewrite_namespace(namespace, value, replace)
        return out

    def rewrite_namespace(
        self, namespace: str, values: Mapping[str, Any], replace: Rewrite
    ) -> Mapping[str, Any]:
        """One namespace's map rewritten as :meth:`rewrite` does (the same object when
        nothing in it is sensitive)."""
        node = self._roots.get(namespace)
        if node is None:
            return values
        return _rewrite(node, values, namespace, replace, namespace == "conversation")

    def mask_value(self, path: str, value: Any) -> Any:
        """The value found at ``path``, as it may be shown: ``"***"`` when the path is
        sensitive, a map with its sensitive parts masked, else as it is (explain traces)."""
        if self.covers(path):
            return MASK
        if not isinstance(value, Mapping):
            return value
        namespace, *keys = path.split(".")
        node = self._roots.get(namespace)
        for key in keys:
            if node is None:
                return value
            node = node.children.get(key)
        if node is None:
            return value
        return _rewrite(node, value, path, _masked, False)


def _masked(path: str, value: Any) -> Any:
    return MASK


def _dropped(path: str, value: Any) -> Any:
    return DROP


def _rewrite(
    node: _Node, values: Mapping[str, Any], where: str, replace: Rewrite, aliases: bool
) -> Mapping[str, Any]:
    out: dict[str, Any] | None = None
    for key, value in values.items():
        if node.hides(key) or (aliases and node.hides(snake_case(key))):
            new = replace(f"{where}.{key}", value)
        else:
            child = node.children.get(key)
            if child is None and aliases:
                child = node.children.get(snake_case(key))
            if child is None or not isinstance(value, Mapping):
                continue
            new = _rewrite(child, value, f"{where}.{key}", replace, False)
            if new is value:
                continue
        if out is None:
            out = dict(values)
        if new is DROP:
            del out[key]
        else:
            out[key] = new
    return values if out is None else out


DEFAULT_PATHS = SensitivePaths.compile(())
"""Only :data:`ALWAYS_SENSITIVE`."""
