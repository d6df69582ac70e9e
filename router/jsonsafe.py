"""Any JSON-ish value in a form orjson can always write: bounded, lossless where possible.

Facts come from callers, pushes and PolyAI, so they can hold what orjson refuses or
mangles: integers beyond 64 bits (refused), NaN and the infinities (written as ``null``),
nesting deeper than its limit of 254 levels (refused), keys that are not strings. A
value that cannot be written must never turn an answer or a log line into a failure, so
:func:`dumps` tries orjson as it is (the common case pays nothing more) and only when
that fails writes :func:`jsonable` of the value instead:

- an integer orjson refuses stays an exact JSON number (written from its decimal text);
- NaN, ``Infinity`` and ``-Infinity`` become those strings;
- a container deeper than ``max_depth`` becomes the string :data:`TOO_DEEP`;
- with ``max_string`` (logs and traces only), a longer string is cut and marked;
- a mapping's keys become strings; a dataclass becomes its fields; anything else orjson
  cannot write becomes its ``repr``.

    >>> dumps({"n": 2**70, "x": float("nan")})
    b'{"n":1180591620717411303424,"x":"NaN"}'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import orjson

MAX_DEPTH = 200
"""Containers nested deeper than this are replaced (orjson's own limit is 254 levels)."""

TOO_DEEP = "[nested too deep]"
"""What stands for a container nested deeper than the limit."""

CUT_MARK = "…[cut]"
"""Ends a string cut to ``max_string`` characters."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def dumps(value: Any, *, max_depth: int = MAX_DEPTH, max_string: int | None = None) -> bytes:
    """``value`` as JSON bytes; never raises for a value built of JSON-ish parts.

    orjson first, as it is; on failure, :func:`jsonable` of ``value``. ``max_string`` (cut
    long strings) applies only on that second path, unless :func:`jsonable` is called first.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(
            jsonable(value, max_depth=max_depth, max_string=max_string), default=_as_text
        )


def jsonable(value: Any, *, max_depth: int = MAX_DEPTH, max_string: int | None = None) -> Any:
    """A copy of ``value`` that orjson writes without failing (see the module's notes)."""
    return _walk(value, max_depth, max_string, 0)


def _walk(value: Any, max_depth: int, max_string: int | None, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        if max_string is not None and len(value) > max_string:
            return value[:max_string] + CUT_MARK
        return value
    if value is None or kind is bool:
        return value
    if isinstance(value, int):  # bool was handled above
        if _INT_MIN <= value <= _INT_MAX:
            return int(value)
        return orjson.Fragment(_int_text(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, Mapping | list | tuple) or _is_dataclass(value):
        if depth >= max_depth:
            return TOO_DEEP
        depth += 1
        if isinstance(value, Mapping):
            return {_key(k): _walk(v, max_depth, max_string, depth) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_walk(v, max_depth, max_string, depth) for v in value]
        return {
            f.name: _walk(getattr(value, f.name), max_depth, max_string, depth)
            for f in dataclasses.fields(value)
        }
    return value  # orjson's own types (datetime, UUID, enum …); anything else: repr


def _is_dataclass(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _key(key: object) -> str:
    return key if type(key) is str else str(key)


def _int_text(value: int) -> bytes:
    try:
        return str(value).encode()
    except ValueError:  # more digits than Python converts by default
        return b'"[integer too long]"'


def _as_text(value: Any) -> str:
    return repr(value)
