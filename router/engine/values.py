"""How facts are read: as numbers, booleans or text, the way voice agents store them.

PolyAI agents keep most state as strings (``"1500"``, ``"true"``), so the
operators read values leniently but predictably. These helpers are the one
place that decides what ``"3.0"`` or ``True`` means; the evaluator, the
candidate index and templates all use them, so they cannot disagree.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final


class _Missing:
    """The value of a path that is not there (distinct from ``None``/``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final[Any] = _Missing()


class _Unrecorded:
    """A value known to have been there but not recorded (a sensitive path, in replay)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unrecorded>"


UNRECORDED: Final[Any] = _Unrecorded()
"""Put where a replayed record's facts had a value that was not recorded: every condition
reading it is unknown (``None``), as one reading a failed source is."""

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_CONTROL = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SPACE = re.compile(r"\s+")
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_HUMP = re.compile(r"([a-z0-9])([A-Z])")


def as_number(value: Any) -> int | float | None:
    """``3``, ``2.5``, ``"1500"``, ``" 12.5 "`` as numbers; anything else (bools too): ``None``."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        text = value.strip()
        if len(text) > 64 or not _NUMBER.match(text):
            return None
        if "." in text or "e" in text or "E" in text:
            return float(text)
        return int(text)
    return None


def as_bool(value: Any) -> bool | None:
    """``True``/``False`` and the strings ``"true"``/``"false"`` in any case; else ``None``."""
    if value is True:
        return True
    if value is False:
        return False
    if type(value) is str:
        folded = value.strip().lower()
        if folded == "true":
            return True
        if folded == "false":
            return False
    return None


def number_text(value: int | float) -> str:
    """A number as plain decimal text: ``3`` for ``3`` and ``3.0``, ``2.5`` for ``2.5``."""
    if type(value) is float:
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def as_text(value: Any) -> str | None:
    """A scalar as the text a string comparison sees; lists, maps, null and missing: ``None``."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is float:
        return number_text(value)
    if kind is bool:
        return "true" if value else "false"
    return None


def is_empty(value: Any) -> bool:
    """Missing, ``null``, ``""``, ``[]`` and ``{}`` are empty."""
    if value is MISSING or value is None:
        return True
    return isinstance(value, str | list | tuple | dict) and len(value) == 0


def lookup(namespace: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value at ``keys`` inside ``namespace``, or :data:`MISSING`."""
    value: Any = namespace
    for key in keys:
        if not isinstance(value, Mapping):
            return UNRECORDED if value is UNRECORDED else MISSING
        value = value.get(key, MISSING)
        if value is MISSING:
            return MISSING
    return value


def sanitise(text: str) -> str:
    """Collapse whitespace runs to one space and drop control/bidi characters.

    Agents' desktops render labels; a newline, a bell or a right-to-left
    override injected through conversation state must not reach them.
    """
    if text.isascii() and text.isprintable() and "  " not in text:
        return text  # the common case: nothing to drop, no run of spaces to collapse
    return _SPACE.sub(" ", _CONTROL.sub("", text))


@functools.lru_cache(maxsize=4096)
def snake_case(key: str) -> str:
    """``fromNumber`` → ``from_number``, ``HTTPStatus`` → ``http_status``.

    Memoised: a conversation record has a few dozen distinct keys, read on every decision.
    """
    return _HUMP.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", key)).lower()


MAX_ALIASED_KEYS = 256
"""Top-level keys of one record given a snake_case alias. PolyAI's conversation record has a
few dozen; a record with tens of thousands (under the upstream size limit) must not cost a
regex each: past this many, only PolyAI's own record fields (:data:`RECORD_FIELDS`) still
get one, and the other keys are readable under their own names only."""

RECORD_FIELDS = (
    "conversationId", "accountId", "projectId", "agentId", "createdAt", "startedAt",
    "endedAt", "fromNumber", "toNumber", "variantId", "variantName", "clientEnv",
    "inProgress", "handoffDestination", "handoffReason",
)  # fmt: skip
"""The camelCase fields of PolyAI's conversation record (its documented shape)."""


def snake_case_aliases(
    record: Mapping[str, Any], *, limit: int = MAX_ALIASED_KEYS
) -> Mapping[str, Any]:
    """``record`` with each camelCase key also under its snake_case name (existing keys win),
    for the first ``limit`` keys and PolyAI's record fields (the work is bounded whatever
    the record holds)."""
    extra = {}
    keys: Iterable[Any] = record
    if len(record) > limit:
        keys = [*itertools.islice(record, limit), *(k for k in RECORD_FIELDS if k in record)]
    for key in keys:
        if type(key) is not str or key.islower():
            continue  # nothing to convert: the common case costs no regex
        snake = snake_case(key)
        if snake != key and snake not in record:
            extra[snake] = record[key]
    return {**record, **extra} if extra else record
