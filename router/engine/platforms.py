"""Per-platform queue ids in a rule file (``platforms:``, contract §7 "Queue ids").

A rule file may map the queue names its routes produce to each platform's own queue ids
(an Amazon Connect queue ARN, a Twilio TaskQueue SID and the TaskRouter workflow, a Genesys
queue id). :func:`read_platforms` checks the block against the file's routes and returns
the maps a :class:`~router.engine.decide.RuleSet` keeps; the platform endpoints put the
mapped id in their answers, or ``""`` when there is none::

    platforms:
      twilio:
        workflow: WW0123456789abcdef0123456789abcdef
        queues: {fraud-24x7: WQ0123456789abcdef0123456789abcdef}

What ``router check`` reports here, each at ``file:line:col``: an id of the wrong shape
(error), a queue name over 64 characters in a file that maps ``twilio`` (error: Twilio's
own queue names are at most that long), and, per platform the file maps, every queue a
route, split, ``default`` or ``fallback`` can produce that the map lacks, every mapped name
no route produces, and every route attribute name the platform's flat answer cannot take
(warnings). Only the raw document and its marks are read, so this check does not depend on
how the rest of the file compiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from router.engine.model import PlatformsModel
from router.engine.problems import Problem, Severity, did_you_mean
from router.engine.yamlsrc import Marks

CONNECT = "amazon-connect"
TWILIO = "twilio"
GENESYS = "genesys"
PLATFORMS = (CONNECT, TWILIO, GENESYS)
"""The platforms a rule file can map, by the name ``platforms:`` and the endpoints use."""

TWILIO_QUEUE_NAME_LIMIT = 64
"""Twilio's own queue names (``<Enqueue>name</Enqueue>``) are at most this long."""

ATTRIBUTE_NAMES: Mapping[str, re.Pattern[str]] = {
    CONNECT: re.compile(r"[A-Za-z0-9_-]{1,127}"),
    TWILIO: re.compile(r"[A-Za-z_][A-Za-z0-9_]*"),
}
"""Attribute names each platform's flat answer can lift to its top level (``fullmatch``).
Genesys takes attributes only inside its ``attributes`` text, so any name will do there."""

RESERVED_KEYS: Mapping[str, frozenset[str]] = {
    CONNECT: frozenset(
        {
            "queue",
            "queue_arn",
            "label",
            "priority",
            "skills",
            "rule",
            "outcome",
            "degraded",
            "decision_id",
            "ruleset",
            "ruleset_version",
            "card_url",
        }
    ),
    TWILIO: frozenset(
        {
            # task attributes
            "router_queue",
            "router_queue_sid",
            "call_type",
            "skills",
            "priority",
            "rule",
            "decision_id",
            "degraded",
            # the Studio answer
            "queue",
            "queue_sid",
            "workflow_sid",
            "label",
            "outcome",
            "task_attributes",
            "card_url",
        }
    ),
}
"""The fixed keys of each platform's flat answer: an attribute of the same name is not
lifted (the fixed key wins)."""

_NAME_RULE = {
    CONNECT: "1 to 127 letters, digits, '_' and '-'",
    TWILIO: "letters, digits and '_', not starting with a digit",
}
_ID_FIELD = {CONNECT: "queue_arn", TWILIO: "router_queue_sid", GENESYS: "queue_id"}
_ID_SHAPE = {
    CONNECT: "an Amazon Connect queue ARN "
    "(arn:aws:connect:<region>:<account>:instance/<instance id>/queue/<queue id>) "
    "or queue id (a UUID)",
    TWILIO: "a TaskRouter TaskQueue SID (WQ followed by 32 hex digits)",
    GENESYS: "a Genesys Cloud queue id (a UUID such as 6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01)",
}
_WORKFLOW_SHAPE = "a TaskRouter workflow SID (WW followed by 32 hex digits)"
_PLATFORM_KEYS = {CONNECT: ("queues",), TWILIO: ("workflow", "queues"), GENESYS: ("queues",)}
_QUOTE_LIMIT = 80

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PlatformMap:
    """One platform's ids for a ruleset's queues (read-only once built)."""

    queues: Mapping[str, str] = field(default_factory=dict)
    workflow: str = ""
    """Twilio only: the TaskRouter workflow SID (``""``: none mapped)."""


@dataclass(frozen=True, slots=True)
class PlatformMaps:
    """The ``platforms:`` block of a ruleset: each mapped platform's :class:`PlatformMap`."""

    maps: Mapping[str, PlatformMap] = field(default_factory=dict)

    def queue_id(self, platform: str, queue: str) -> str:
        """The platform's id for ``queue``, or ``""`` when the file maps none."""
        mapped = self.maps.get(platform)
        return "" if mapped is None else mapped.queues.get(queue, "")

    def workflow(self, platform: str) -> str:
        """The platform's workflow (Twilio's TaskRouter workflow SID), or ``""``."""
        mapped = self.maps.get(platform)
        return "" if mapped is None else mapped.workflow


NO_PLATFORMS = PlatformMaps()


def read_platforms(
    data: Mapping[str, Any], marks: Marks, filename: str
) -> tuple[PlatformMaps, list[Problem]]:
    """The ``platforms:`` block of a parsed rule file, and every problem it has.

    ``data`` is the whole document (its routes are read for the cross-checks), ``marks``
    where each part of it is. Never raises for anything in the file.
    """
    checker = _Checker(filename, marks)
    raw = data.get("platforms")
    if raw is None:
        return NO_PLATFORMS, []
    maps = checker.validate(raw)
    if maps.maps:
        checker.cross_check(maps, data)
    return maps, checker.problems


# --- internals ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Produced:
    """Where a rule file produces a queue name or an attribute name."""

    name: str
    loc: Loc


class _Checker:
    def __init__(self, filename: str, marks: Marks) -> None:
        self.filename = filename
        self.marks = marks
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, severity: Severity, *, at_key: bool = False) -> None:
        line, col = self.marks.key(loc) if at_key else self.marks.value(loc)
        self.problems.append(Problem(self.filename, line, col, severity, message))

    # the block itself

    def validate(self, raw: Any) -> PlatformMaps:
        base: Loc = ("platforms",)
        if not isinstance(raw, dict):
            self.add(
                base,
                "'platforms' is a mapping of platform name (amazon-connect, twilio, genesys) "
                "to that platform's queue ids",
                "error",
            )
            return NO_PLATFORMS
        try:
            model = PlatformsModel.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._model_problem((*base, *err["loc"]), err)
            return NO_PLATFORMS
        maps: dict[str, PlatformMap] = {}
        if model.amazon_connect is not None:
            maps[CONNECT] = PlatformMap(dict(model.amazon_connect.queues))
        if model.twilio is not None:
            maps[TWILIO] = PlatformMap(dict(model.twilio.queues), model.twilio.workflow or "")
        if model.genesys is not None:
            maps[GENESYS] = PlatformMap(dict(model.genesys.queues))
        return PlatformMaps(maps)

    def _model_problem(self, loc: Loc, err: Any) -> None:
        kind = err["type"]
        depth = len(loc)
        if kind == "extra_forbidden" and depth == 2:
            name = str(loc[1])
            hint = did_you_mean(name, PLATFORMS)
            self.add(
                loc,
                f"unknown platform '{name}'{hint}: platforms are " + ", ".join(PLATFORMS),
                "error",
                at_key=True,
            )
        elif kind == "extra_forbidden" and depth == 3:
            platform, name = str(loc[1]), str(loc[2])
            allowed = _PLATFORM_KEYS.get(platform, ())
            hint = did_you_mean(name, allowed)
            self.add(
                loc,
                f"unknown key '{name}' under {platform}{hint} (it takes "
                + ", ".join(allowed)
                + ")",
                "error",
                at_key=True,
            )
        elif kind == "string_pattern_mismatch" and depth == 3:
            self.add(loc, f"{_quote(err['input'])} is not {_WORKFLOW_SHAPE}: the workflow", "error")
        elif kind == "string_pattern_mismatch":
            platform, queue = str(loc[1]), str(loc[-1])
            self.add(
                loc,
                f"{_quote(err['input'])} is not {_ID_SHAPE[platform]}: the {platform} id "
                f"of queue '{queue}'",
                "error",
            )
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            what = (
                "a mapping of queue name to id"
                if loc[-1] == "queues"
                else "a mapping with " + " and ".join(_PLATFORM_KEYS.get(str(loc[-1]), ("queues",)))
            )
            self.add(loc, f"'{_dotted(loc)}' should be {what}", "error")
        elif kind == "string_type":
            self.add(loc, f"'{_dotted(loc)}': expected text (put the id in quotes)", "error")
        else:
            self.add(loc, f"'{_dotted(loc)}': {err['msg']}", "error")

    # against the routes

    def cross_check(self, maps: PlatformMaps, data: Mapping[str, Any]) -> None:
        queues = _first_of_each(_queues(data))
        attributes = _first_of_each(_attribute_names(data))
        produced = {item.name for item in queues}
        for platform in PLATFORMS:
            mapped = maps.maps.get(platform)
            if mapped is None:
                continue
            id_field = _ID_FIELD[platform]
            for item in queues:
                if item.name not in mapped.queues:
                    self.add(
                        item.loc,
                        f"queue '{item.name}' has no {platform} id in "
                        f"platforms.{platform}.queues: its {platform} answers carry an empty "
                        f"{id_field}",
                        "warning",
                    )
            for name in mapped.queues:
                if name not in produced:
                    self.add(
                        ("platforms", platform, "queues", name),
                        f"platforms.{platform}.queues maps '{name}', a queue no route "
                        f"produces{did_you_mean(name, produced)}",
                        "warning",
                        at_key=True,
                    )
            self._attribute_names(platform, attributes)
        if TWILIO in maps.maps:
            for item in queues:
                if len(item.name) > TWILIO_QUEUE_NAME_LIMIT:
                    self.add(
                        item.loc,
                        f"queue name {_quote(item.name)} is {len(item.name)} characters: "
                        f"Twilio queue names are at most {TWILIO_QUEUE_NAME_LIMIT} "
                        "(this file maps twilio)",
                        "error",
                    )

    def _attribute_names(self, platform: str, attributes: list[_Produced]) -> None:
        pattern = ATTRIBUTE_NAMES.get(platform)
        if pattern is None:
            return
        reserved = RESERVED_KEYS[platform]
        for item in attributes:
            if not pattern.fullmatch(item.name):
                self.add(
                    item.loc,
                    f"attribute '{item.name}' cannot be a {platform} attribute name "
                    f"({_NAME_RULE[platform]}): {platform} answers leave it out",
                    "warning",
                    at_key=True,
                )
            elif item.name in reserved:
                self.add(
                    item.loc,
                    f"attribute '{item.name}' has the name of a fixed key of {platform} "
                    "answers: the fixed key wins and the attribute is not lifted",
                    "warning",
                    at_key=True,
                )


def _routes(data: Mapping[str, Any]) -> Iterator[tuple[Loc, dict[str, Any]]]:
    """Every route of the document, in file order, with where it is."""
    rules = data.get("rules")
    if isinstance(rules, list):
        for i, rule in enumerate(rules):
            route = rule.get("route") if isinstance(rule, dict) else None
            if isinstance(route, dict):
                yield ("rules", i, "route"), route
    for key in ("default", "fallback"):
        route = data.get(key)
        if isinstance(route, dict):
            yield (key,), route


def _shares(route: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    split = route.get("split")
    if isinstance(split, list):
        for j, share in enumerate(split):
            if isinstance(share, dict):
                yield j, share


def _queues(data: Mapping[str, Any]) -> Iterator[_Produced]:
    """Every queue name a route or split share can produce, where it is written."""
    for loc, route in _routes(data):
        own = route.get("queue")
        shares = list(_shares(route))
        if isinstance(own, str) and own and not shares:
            yield _Produced(own, (*loc, "queue"))
        for j, share in shares:
            queue = share.get("queue")
            if isinstance(queue, str) and queue:
                yield _Produced(queue, (*loc, "split", j, "queue"))
            elif isinstance(own, str) and own:
                yield _Produced(own, (*loc, "queue"))


def _attribute_names(data: Mapping[str, Any]) -> Iterator[_Produced]:
    """Every route attribute name, where it is written."""
    for loc, route in _routes(data):
        parts: list[tuple[Loc, dict[str, Any]]] = [(loc, route)]
        parts.extend(((*loc, "split", j), share) for j, share in _shares(route))
        for where, part in parts:
            attributes = part.get("attributes")
            if isinstance(attributes, dict):
                for name in attributes:
                    if isinstance(name, str):
                        yield _Produced(name, (*where, "attributes", name))


def _first_of_each(items: Iterator[_Produced]) -> list[_Produced]:
    seen: dict[str, _Produced] = {}
    for item in items:
        seen.setdefault(item.name, item)
    return list(seen.values())


def _quote(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…")


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)
