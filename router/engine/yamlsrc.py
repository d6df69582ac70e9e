"""Safe YAML reading that remembers where every key and value came from.

Rule files are parsed with libyaml's event stream (no object construction,
so no tags can run code) and composed here, iteratively, into plain Python
values. Alongside the data we keep the line and column of every key and
value so that later checks can point at the exact spot. Anchors and aliases
are refused (a "billion laughs" file is an error, not an out-of-memory), as
are explicit tags, several documents, duplicate keys and nesting deeper
than :data:`MAX_DEPTH`.

Plain scalars follow the YAML 1.2 core schema: only ``true``/``false`` are
booleans (``no``, ``on`` and ``NO`` — Norway — stay strings), ``18:00`` is a
string rather than a base-60 number, and dates stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events

from router.engine.problems import Problem

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")


@dataclass(slots=True)
class Marks:
    """1-based (line, col) of values and of mapping keys, by path from the root."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` starts (or the nearest enclosing value)."""
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: Path) -> tuple[int, int]:
        """Where the key of the mapping entry at ``path`` starts."""
        return self.keys.get(path) or self.value(path)


class YamlProblem(Exception):
    """Raised internally to stop composing at the first structural problem."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


def _resolve(value: str) -> Any:
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    first = value[0]
    if first.isdigit() or first in "+-.":
        if _INT.match(value):
            return int(value)
        if _OCT.match(value):
            return int(value[2:], 8)
        if _HEX.match(value):
            return int(value[2:], 16)
        if _FLOAT.match(value):
            return float(value)
        if _INF.match(value):
            return float("-inf") if first == "-" else float("inf")
        if _NAN.match(value):
            return float("nan")
    return value


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _compose(text: str) -> tuple[Any, Marks]:
    marks = Marks()
    # Each frame: [container, path, pending key or None, key mark]
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0
    have_root = False

    def place(value: Any, start: tuple[int, int]) -> Path | None:
        nonlocal root, have_root
        if not stack:
            root, have_root = value, True
            marks.values[()] = start
            return ()
        frame = stack[-1]
        container, path = frame[0], frame[1]
        if isinstance(container, list):
            child: Path = (*path, len(container))
            container.append(value)
            marks.values[child] = start
            return child
        if frame[2] is None:  # this is a key
            if not isinstance(value, str):
                raise YamlProblem(*start, "mapping keys must be plain text")
            if value in container:
                raise YamlProblem(*start, f"duplicate key '{value}'")
            frame[2], frame[3] = value, start
            return None
        key = frame[2]
        child = (*path, key)
        container[key] = value
        marks.values[child] = start
        marks.keys[child] = frame[3]
        frame[2] = None
        return child

    def is_key_position() -> bool:
        return bool(stack) and isinstance(stack[-1][0], dict) and stack[-1][2] is None

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, events.ScalarEvent):
                start = _pos(event.start_mark)
                if event.anchor is not None:
                    raise YamlProblem(*start, _ANCHOR_MESSAGE)
                if event.tag is not None and event.tag != "!":
                    raise YamlProblem(*start, _TAG_MESSAGE)
                if is_key_position():
                    value: Any = event.value
                elif not event.style and event.implicit[0] and event.tag is None:
                    try:
                        value = _resolve(event.value)
                    except ValueError:
                        raise YamlProblem(*start, "number too large") from None
                else:
                    value = event.value
                place(value, start)
            elif isinstance(event, events.MappingStartEvent | events.SequenceStartEvent):
                start = _pos(event.start_mark)
                if event.anchor is not None:
                    raise YamlProblem(*start, _ANCHOR_MESSAGE)
                if event.tag is not None and not event.implicit:
                    raise YamlProblem(*start, _TAG_MESSAGE)
                if is_key_position():
                    raise YamlProblem(*start, "mapping keys must be plain text")
                if len(stack) >= MAX_DEPTH:
                    raise YamlProblem(*start, f"nesting deeper than {MAX_DEPTH} levels")
                container: Any = {} if isinstance(event, events.MappingStartEvent) else []
                child_path = place(container, start)
                assert child_path is not None
                stack.append([container, child_path, None, None])
            elif isinstance(event, events.MappingEndEvent | events.SequenceEndEvent):
                stack.pop()
            elif isinstance(event, events.AliasEvent):
                raise YamlProblem(*_pos(event.start_mark), _ANCHOR_MESSAGE)
            elif isinstance(event, events.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        *_pos(event.start_mark),
                        "a rule file holds one YAML document; remove the second '---'",
                    )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(line, col, f"YAML syntax: {what}{_hint(text, what, mark)}") from None
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry a position too
        position = getattr(exc, "position", None)
        line, col = _line_col(text, position) if isinstance(position, int) else (1, 1)
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise YamlProblem(line, col, f"YAML syntax: {reason}") from None
    return (root if have_root else None), marks


_ANCHOR_MESSAGE = (
    "YAML anchors and aliases (&name, *name) are not allowed in rule files; "
    "write the value out (schedules can be shared by name)"
)
_TAG_MESSAGE = "YAML tags (!tag, !!type) are not allowed in rule files"


def _hint(text: str, problem: str, mark: Any) -> str:
    """A plain-words suggestion for the YAML mistakes people make most."""
    index = getattr(mark, "index", None)
    char = text[index] if isinstance(index, int) and 0 <= index < len(text) else ""
    if char == "\t" or "found character '\\t'" in problem:
        return " (a tab: YAML is indented with spaces, never tabs)"
    if "mapping values are not allowed" in problem:
        return " (a value that contains ': ' must be put in quotes, e.g. label: \"Billing: gold\")"
    if "could not find expected ':'" in problem:
        return " (check the indentation of this line and the one before)"
    return ""


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _decode(raw: bytes) -> str:
    """UTF-8 (a BOM is allowed); raise :class:`YamlProblem` at the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8-sig", errors="replace")
        line, col = _line_col(good, len(good))
        raise YamlProblem(line, col, "file is not UTF-8 text (save it as UTF-8)") from None


def read_yaml(raw: bytes, filename: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse one rule file's bytes into ``(data, marks, problems)``.

    On a problem ``data`` is ``None`` and ``problems`` holds one error.
    """
    try:
        if len(raw) > MAX_FILE_BYTES:
            raise YamlProblem(
                1, 1, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it"
            )
        if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            index = raw.index(b"\x00")
            before = raw[:index].decode("utf-8", errors="replace")
            line, col = _line_col(before, len(before))
            raise YamlProblem(line, col, "file is binary, not YAML text")
        text = _decode(raw)
        data, marks = _compose(text)
    except YamlProblem as problem:
        return (
            None,
            Marks(),
            [Problem(filename, problem.line, problem.col, "error", problem.message)],
        )
    except RecursionError:  # defensive: composing is iterative, libyaml is not recursive
        return None, Marks(), [Problem(filename, 1, 1, "error", "YAML nested too deeply")]
    return data, marks, []
