"""How stored values become bytes and back, the same for every store.

Compact JSON (orjson), copied out of orjson's working buffer (at least 4 KiB, whatever the
value's size) so a kept value costs only its own length. A request may carry numbers that
orjson cannot write exactly: integers beyond 64 bits (it refuses them) and NaN or the
infinities (it would write ``null``). Those values are written by the standard library's
encoder instead, which keeps them, behind a one-byte mark (:data:`_EXACT`) that no JSON text
starts with, so :func:`loads` reads them back with the decoder that understands them. No
format that can run code on reading (pickle) is ever used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

_EXACT = b"J"
"""Marks a body written by the standard library's encoder (NaN, infinities, big integers)."""


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON bytes that :func:`loads` turns back into an equal value."""
    try:
        body = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits (or a type JSON has no word for)
        return _exact(value)
    if b"null" in body and _holds_non_finite(value):
        return _exact(value)
    return bytes(memoryview(body))


def dumps_trusted(value: Any) -> bytes:
    """:func:`dumps` for a value that cannot hold NaN or an infinity, skipping the search for
    them (a walk of the whole value): a decision the router made itself (its only float is
    the finite ``elapsed_ms``) or an upstream answer orjson parsed (orjson refuses those
    literals). An integer beyond 64 bits still goes the exact way."""
    try:
        return bytes(memoryview(orjson.dumps(value)))
    except TypeError:
        return _exact(value)


def loads(body: bytes) -> Any:
    """The value :func:`dumps` wrote (raises ``ValueError`` for bytes it did not write)."""
    if body[:1] == _EXACT:
        return json.loads(body[1:])
    return orjson.loads(body)


def plain(body: bytes) -> bytes:
    """A body :func:`dumps` wrote as JSON text alone (without the mark of an exact body), for
    readers that know no mark (a JSON-lines file). The standard library's decoder reads it."""
    return body[1:] if body[:1] == _EXACT else body


def _exact(value: Any) -> bytes:
    # Raises TypeError for what JSON cannot hold at all, as orjson would have.
    return _EXACT + json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _holds_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_holds_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_non_finite(item) for item in value)
    return False
