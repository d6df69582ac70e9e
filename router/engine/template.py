"""Label and attribute templates: ``{path}``, ``{path|text if missing}``, ``{{`` and ``}}``.

Nothing else is evaluated: no format specs, no indexing, no attribute
access. A template is parsed once, when the rules load, into literal text
and path lookups; rendering only reads values and sanitises them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.engine.problems import did_you_mean
from router.engine.values import MISSING, lookup, number_text, sanitise

NAMESPACES = ("handoff", "state", "conversation", "context")


class TemplateError(ValueError):
    """A template that cannot be parsed; ``offset`` is where in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Ref:
    namespace: str
    keys: tuple[str, ...]
    default: str


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; ``render`` turns facts into sanitised text of at most ``limit``."""

    parts: tuple[str | Ref, ...]
    limit: int
    paths: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The dotted paths this template substitutes (``("state.customer_tier",)``)."""

    def __post_init__(self) -> None:
        paths = tuple(
            ".".join((part.namespace, *part.keys)) for part in self.parts if isinstance(part, Ref)
        )
        object.__setattr__(self, "paths", paths)

    def render(self, facts: Mapping[str, Mapping[str, Any] | None]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            namespace = facts.get(part.namespace)
            value = MISSING if namespace is None else lookup(namespace, part.keys)
            out.append(render_value(value, part.default))
        return "".join(out)[: self.limit]


def render_value(value: Any, default: str) -> str:
    """One substituted value: scalars as JSON scalars, sanitised; lists and maps empty."""
    if value is MISSING or value is None or value == "":
        return default
    kind = type(value)
    if kind is str:
        return sanitise(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return number_text(value)
    return ""


def parse_template(text: str, limit: int) -> Template:
    """Parse ``text``; :class:`TemplateError` says what is wrong and where."""
    parts: list[str | Ref] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateError("'{' is not closed; write '{{' for a literal brace", i)
            inner = text[i + 1 : end]
            if "{" in inner:
                raise TemplateError("'{' inside a placeholder; write '{{' for a literal brace", i)
            if literal:
                parts.append(sanitise("".join(literal)))
                literal = []
            parts.append(_parse_ref(inner, i))
            i = end + 1
        elif char == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateError("'}' without '{'; write '}}' for a literal brace", i)
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append(sanitise("".join(literal)))
    return Template(tuple(parts), limit)


def _parse_ref(inner: str, offset: int) -> Ref:
    path, bar, default = inner.partition("|")
    path = path.strip()
    pieces = path.split(".")
    if not path or len(pieces) < 2 or not all(_is_key(p) for p in pieces[1:]):
        raise TemplateError(
            f"'{{{inner}}}' is not a placeholder: use {{namespace.key}} or "
            "{namespace.key|text if missing}, e.g. {state.customer_tier}",
            offset,
        )
    if pieces[0] not in NAMESPACES:
        raise TemplateError(
            f"unknown namespace '{pieces[0]}' in '{{{inner}}}'"
            f"{did_you_mean(pieces[0], NAMESPACES)}; use one of {', '.join(NAMESPACES)}",
            offset,
        )
    return Ref(pieces[0], tuple(pieces[1:]), sanitise(default) if bar else "")


_KEY = re.compile(r"[\w-]+\Z")


def _is_key(piece: str) -> bool:
    """Letters, digits, ``_`` and ``-`` (what a path key may hold)."""
    return _KEY.match(piece) is not None
