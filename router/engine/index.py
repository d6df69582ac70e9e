"""The candidate index: which rules can possibly match, without testing every rule.

Most routing rules pin a fact to a value (``handoff.intent: refund`` or
``handoff.handoff_reason: [billing_dispute, refund]``). A rule whose
top-level conditions include such an ``eq``/``in`` can only match when the
fact has one of those values, so we file the rule under each value. A
decision reads each indexed fact once, gathers the rules filed under its
value plus the rules with no indexable condition, and tests just those, in
file order. The keys use the same readings as the operators (values.py),
so the index and a plain scan always agree; a property test proves it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from router.engine.compile import All, Leaf, Node, Scope
from router.engine.values import MISSING, as_bool, as_number, as_text, lookup


@dataclass(frozen=True, slots=True)
class _PathIndex:
    namespace: str
    keys: tuple[str, ...]
    texts: dict[str, tuple[int, ...]]
    folded: dict[str, tuple[int, ...]]
    numbers: dict[float, tuple[int, ...]]
    booleans: dict[bool, tuple[int, ...]]
    key: str | None = field(init=False)
    """The one key under the namespace, or ``None`` for a nested path."""
    text_only: bool = field(init=False)
    """Only case-sensitive text values are filed here: a text fact needs one lookup."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.keys[0] if len(self.keys) == 1 else None)
        only = not (self.folded or self.numbers or self.booleans)
        object.__setattr__(self, "text_only", only)

    def hits(self, value: Any) -> list[tuple[int, ...]]:
        found: list[tuple[int, ...]] = []
        text = as_text(value)
        if text is not None:
            if (rules := self.texts.get(text)) is not None:
                found.append(rules)
            if self.folded and (rules := self.folded.get(text.casefold())) is not None:
                found.append(rules)
        if self.numbers and type(value) is not bool:
            number = as_number(value)
            if number is not None and (rules := self.numbers.get(number)) is not None:
                found.append(rules)
        if self.booleans:
            flag = as_bool(value)
            if flag is not None and (rules := self.booleans.get(flag)) is not None:
                found.append(rules)
        return found


def _indexable(node: Node | None) -> list[Leaf]:
    """The top-level conjuncts of ``node`` that are a single eq/in on a path."""
    conjuncts: Sequence[Node] = (
        () if node is None else node.children if isinstance(node, All) else (node,)
    )
    return [
        child
        for child in conjuncts
        if isinstance(child, Leaf) and len(child.ops) == 1 and child.ops[0].name in ("eq", "in")
    ]


class CandidateIndex:
    """Rule positions worth testing for a given input, in file order."""

    __slots__ = ("_always", "_paths", "filed")

    def __init__(self, conditions: Sequence[Node | None]) -> None:
        options = [_indexable(node) for node in conditions]
        # Prefer the path with the most distinct values: it splits the rules finest.
        distinct: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for leaves in options:
            for leaf in leaves:
                for value in _values(leaf):
                    if (leaf.path, repr(value)) not in seen:
                        seen.add((leaf.path, repr(value)))
                        distinct[leaf.path] += 1
        always: list[int] = []
        buckets: dict[str, dict[str, defaultdict[Any, list[int]]]] = {}
        origin: dict[str, Leaf] = {}
        filed: list[Leaf | None] = []
        for position, leaves in enumerate(options):
            if not leaves:
                always.append(position)
                filed.append(None)
                continue
            leaf = max(leaves, key=lambda item: distinct[item.path])
            filed.append(leaf)
            origin.setdefault(leaf.path, leaf)
            maps = buckets.setdefault(
                leaf.path, {kind: defaultdict(list) for kind in ("t", "f", "n", "b")}
            )
            for value in _values(leaf):
                if type(value) is bool:
                    maps["b"][value].append(position)
                elif type(value) is int or type(value) is float:
                    maps["n"][value].append(position)
                elif leaf.ignore_case:
                    maps["f"][value.casefold()].append(position)
                else:
                    maps["t"][value].append(position)
        self._always = tuple(always)
        self.filed = tuple(filed)
        """The condition each rule is filed under (``None``: tested for every input)."""
        self._paths = tuple(
            _PathIndex(
                origin[path].namespace,
                origin[path].keys,
                *({k: _dedupe(v) for k, v in maps[kind].items()} for kind in ("t", "f", "n", "b")),
            )
            for path, maps in buckets.items()
        )

    def candidates(self, scope: Scope) -> Sequence[int]:
        found: list[tuple[int, ...]] = []
        facts = scope.facts
        for path in self._paths:
            namespace = facts[path.namespace]
            if namespace is None:
                continue
            key = path.key
            value = namespace.get(key, MISSING) if key is not None else lookup(namespace, path.keys)
            if value is MISSING:
                continue
            if path.text_only and type(value) is str:
                rules = path.texts.get(value)
                if rules is not None:
                    found.append(rules)
            else:
                found.extend(path.hits(value))
        if not found:
            return self._always
        if self._always:
            found.append(self._always)
        if len(found) == 1:
            return found[0]
        # A few short sorted runs: sorting them together beats a heap merge.
        return sorted(chain.from_iterable(found))


def _values(leaf: Leaf) -> tuple[Any, ...]:
    expected = leaf.ops[0].expected
    return tuple(expected) if isinstance(expected, tuple) else (expected,)


def _dedupe(positions: list[int]) -> tuple[int, ...]:
    return tuple(sorted(set(positions)))
