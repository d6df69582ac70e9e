"""Where a matched rule sends the call: queue, label, priority, skills, attributes, splits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.engine.template import Template

LABEL_LIMIT = 120
ATTRIBUTE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Target:
    """One concrete destination; templates render per decision."""

    queue: str
    label: Template | None
    priority: int | None
    skills: tuple[str, ...]
    attributes: tuple[tuple[str, Template], ...]

    def render(
        self, facts: Mapping[str, Mapping[str, Any] | None]
    ) -> tuple[str | None, dict[str, str]]:
        label = None if self.label is None else self.label.render(facts)
        return label, {name: template.render(facts) for name, template in self.attributes}


@dataclass(frozen=True, slots=True)
class Route:
    """A rule's route: one target, or a deterministic split between several.

    ``split`` holds ``(upper_bucket, target)`` pairs in listed order: with
    weights ``[90, 10]`` buckets 0–89 go to the first, 90–99 to the second.
    """

    owner: str  # rule id (or "default"/"fallback"): part of the split hash
    target: Target | None
    split: tuple[tuple[int, Target], ...] = ()

    def choose(self, key: str) -> Target:
        if not self.split:
            assert self.target is not None
            return self.target
        bucket = split_bucket(self.owner, key)
        for upper, target in self.split:
            if bucket < upper:
                return target
        return self.split[-1][1]


def split_bucket(rule_id: str, key: str) -> int:
    """The contract's stable bucket 0–99 for a rule and a conversation key."""
    digest = hashlib.sha256(f"{rule_id}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100
