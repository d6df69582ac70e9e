"""One decision record: how it is written (every decision) and read back (by replay).

A record is one JSON object (contract §8, "Record file lines")::

    {"v": 1, "decision_id": "…", "conversation_id": "…", "shared_id": null,
     "ruleset": "default", "ruleset_version": "sha256:…",
     "at": "2026-11-23T10:00:00.123456+00:00",
     "facts": {"handoff": {…}, "state": {…}, "conversation": null, "context": {…}},
     "removed": ["context.ani"], "rule": "refund", "queue": "billing", "outcome": "matched"}

``at`` is the instant the rules were evaluated at (so replay evaluates schedules at the
very same instant); ``facts`` are the facts decided on, a failed source as ``null`` and
sensitive values removed; ``removed`` names the paths that held a value and were removed
(replay treats those as unknown, never as absent). ``v`` is the record shape: a reader
skips records of a shape it does not know, saying why. The label and attributes are not
recorded: templates may render sensitive values into them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.store import codec

RECORD_SHAPE = 1
"""The ``v`` of the records this version writes."""
OUTCOMES = frozenset({"matched", "default", "fallback"})
NAMESPACES = ("handoff", "state", "conversation", "context")


class BadRecord(ValueError):
    """A record replay cannot use; the message says why (it never quotes a fact value)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A decision record as replay reads it."""

    decision_id: str
    conversation_id: str | None
    shared_id: str | None
    ruleset: str
    ruleset_version: str
    at: datetime
    facts: dict[str, dict[str, Any] | None]
    removed: tuple[str, ...]
    rule: str | None
    queue: str
    outcome: str


def encode_record(
    *,
    decision_id: str,
    conversation_id: str | None,
    shared_id: str | None,
    ruleset: str,
    ruleset_version: str,
    at: datetime,
    facts: Mapping[str, Any],
    removed: list[str],
    rule: str | None,
    queue: str,
    outcome: str,
) -> bytes:
    """The record of one decision as the store keeps it (as
    :func:`router.store.codec.dumps_trusted` writes it: an integer beyond 64 bits stays
    exact; facts hold no NaN, which the request parsers turn into text).

    Raises ``TypeError`` when the facts hold something JSON cannot (the caller drops the
    record and counts it).
    """
    return codec.dumps_trusted(
        {
            "v": RECORD_SHAPE,
            "decision_id": decision_id,
            "conversation_id": conversation_id,
            "shared_id": shared_id,
            "ruleset": ruleset,
            "ruleset_version": ruleset_version,
            "at": at.isoformat(),
            "facts": facts,
            "removed": removed,
            "rule": rule,
            "queue": queue,
            "outcome": outcome,
        }
    )


def file_line(body: bytes) -> bytes:
    """A stored record as one line of a record file: plain JSON text and a newline."""
    return codec.plain(body) + b"\n"


def decode_record(body: bytes) -> Record:
    """A stored record (as :func:`encode_record` wrote it, or a file line) read back.

    Raises :class:`BadRecord` saying why it cannot be used.
    """
    try:
        document = codec.loads(body)
    except ValueError:
        try:  # a file line holding NaN or an integer beyond 64 bits (orjson reads neither)
            document = json.loads(body)
        except ValueError as exc:
            raise BadRecord(f"not JSON ({_first_line(exc)})") from None
    return parse_record(document)


def parse_record(document: Any) -> Record:
    """A record from its JSON object; :class:`BadRecord` saying what is wrong with it."""
    if not isinstance(document, dict):
        raise BadRecord("not a JSON object")
    shape = document.get("v", RECORD_SHAPE)
    if shape != RECORD_SHAPE:
        raise BadRecord(f"record shape v={shape!r}: this router reads v={RECORD_SHAPE}")
    missing = [
        key
        for key in ("decision_id", "ruleset", "ruleset_version", "at", "facts", "queue")
        if key not in document
    ]
    if missing:
        raise BadRecord(f"an older or foreign record shape: no {', '.join(missing)}")
    decision_id = _text(document, "decision_id")
    ruleset = _text(document, "ruleset")
    version = _text(document, "ruleset_version")
    queue = _text(document, "queue")
    conversation_id = _text_or_null(document, "conversation_id")
    shared_id = _text_or_null(document, "shared_id")
    rule = _text_or_null(document, "rule")
    outcome = document.get("outcome", "matched" if rule is not None else "default")
    if outcome not in OUTCOMES:
        raise BadRecord(f"'outcome' is {outcome!r}, not matched, default or fallback")
    raw_at = document["at"]
    try:
        at = datetime.fromisoformat(raw_at) if isinstance(raw_at, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadRecord("'at' is not an ISO 8601 instant with an offset")
    facts = document["facts"]
    if not isinstance(facts, dict):
        raise BadRecord("'facts' is not an object")
    namespaces: dict[str, dict[str, Any] | None] = {}
    for name in NAMESPACES:
        value = facts.get(name, {})
        if value is not None and not isinstance(value, dict):
            raise BadRecord(f"'facts.{name}' is neither an object nor null")
        namespaces[name] = value
    removed = document.get("removed", [])
    if not isinstance(removed, list) or not all(isinstance(p, str) for p in removed):
        raise BadRecord("'removed' is not a list of paths")
    return Record(
        decision_id=decision_id,
        conversation_id=conversation_id,
        shared_id=shared_id,
        ruleset=ruleset,
        ruleset_version=version,
        at=at,
        facts=namespaces,
        removed=tuple(removed),
        rule=rule,
        queue=queue,
        outcome=outcome,
    )


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise BadRecord(f"'{key}' is not text")
    return value


def _text_or_null(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRecord(f"'{key}' is neither text nor null")
    return value


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
