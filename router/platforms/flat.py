"""The decision in each platform's answer shape (contract §7 "Flat answers", §7.1–§7.3).

Where a platform needs flat string values (an Amazon Connect Lambda answer, a Twilio Studio
answer): every value a string, no nulls (missing → ``""``), ``priority`` as decimal text,
``skills`` joined with ``,``, booleans as ``true``/``false``, and each route attribute
lifted to the top level under its own name when that name is valid for the platform and
is not one of the answer's fixed keys (the fixed key wins). Twilio's task attributes are a
JSON object (``skills`` a list, ``priority`` a number, ``degraded`` a boolean) of at most
1,024 characters; Genesys gets a fixed key set with no nulls.

Size limits are met by leaving out lifted attributes whole, last first (then, only if that
is not enough, skills, last first): a value is never cut mid-way.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from router.service import Answer, PlatformAnswer
from router.service.platforms import ATTRIBUTE_NAMES, CONNECT, RESERVED_KEYS, TWILIO

CONNECT_MAX_BYTES = 32_000
"""Connect takes a Lambda answer under 32 KB; measured as JSON with every non-ASCII
character escaped (the longest way the Lambda runtime may write it)."""
TASK_ATTRIBUTES_MAX_CHARS = 1_024
"""Twilio's limit on task attributes (the *Enqueue Call* widget's field, ``<Task>``)."""


def connect_answer(decided: PlatformAnswer) -> bytes:
    """The §7.1 answer (Connect's ``STRING_MAP``) as JSON bytes, under 32 KB."""
    answer = decided.answer
    fixed = {
        "queue": answer.queue,
        "queue_arn": decided.queue_id,
        "label": answer.label or "",
        "priority": _priority_text(answer.priority),
        "skills": ",".join(answer.skills),
        "rule": answer.rule or "",
        "outcome": answer.outcome,
        "degraded": "true" if answer.degraded else "false",
        "decision_id": answer.decision_id,
        "ruleset": answer.ruleset,
        "ruleset_version": answer.ruleset_version,
        "card_url": answer.card_url or "",
    }
    lifted = lifted_attributes(answer.attributes, CONNECT)
    body = orjson.dumps({**fixed, **dict(lifted)} if lifted else fixed)
    if len(body) * 3 < CONNECT_MAX_BYTES:  # escaping at most triples a UTF-8 JSON text
        return body
    kept, skills = _fit(fixed, lifted, list(answer.skills), CONNECT_MAX_BYTES, _escaped_size)
    fixed["skills"] = ",".join(skills)
    return orjson.dumps({**fixed, **dict(kept)})


def task_attributes(decided: PlatformAnswer) -> bytes:
    """The §7.2 task attributes, a JSON object of at most 1,024 characters, as UTF-8 bytes."""
    answer = decided.answer
    fixed: dict[str, Any] = {
        "router_queue": answer.queue,
        "router_queue_sid": decided.queue_id,
        "call_type": answer.label or "",
        "skills": list(answer.skills),
        "priority": answer.priority or 0,
        "rule": answer.rule or "",
        "decision_id": answer.decision_id,
        "degraded": answer.degraded,
    }
    if answer.card_url:  # Flex's CRM container can show the agent card from it
        fixed["card_url"] = answer.card_url
    lifted = lifted_attributes(answer.attributes, TWILIO)
    body = orjson.dumps({**fixed, **dict(lifted)} if lifted else fixed)
    if len(body) <= TASK_ATTRIBUTES_MAX_CHARS:  # never fewer bytes than characters
        return body
    kept, skills = _fit(
        fixed, lifted, list(answer.skills), TASK_ATTRIBUTES_MAX_CHARS + 1, _char_size
    )
    fixed["skills"] = skills
    return orjson.dumps({**fixed, **dict(kept)})


def studio_answer(decided: PlatformAnswer) -> bytes:
    """The §7.2 Studio answer: flat strings, ``task_attributes`` as JSON text, as bytes."""
    answer = decided.answer
    fixed = {
        "queue": answer.queue,
        "queue_sid": decided.queue_id,
        "workflow_sid": decided.workflow,
        "label": answer.label or "",
        "priority": _priority_text(answer.priority),
        "skills": ",".join(answer.skills),
        "rule": answer.rule or "",
        "outcome": answer.outcome,
        "degraded": "true" if answer.degraded else "false",
        "decision_id": answer.decision_id,
        "card_url": answer.card_url or "",
        "task_attributes": task_attributes(decided).decode(),
    }
    lifted = lifted_attributes(answer.attributes, TWILIO)
    return orjson.dumps({**fixed, **dict(lifted)} if lifted else fixed)


def genesys_answer(decided: PlatformAnswer) -> bytes:
    """The §7.3 answer: a fixed key set, no nulls, ``priority`` an integer, ``degraded`` a
    boolean, the attributes as JSON text."""
    answer = decided.answer
    return orjson.dumps(
        {
            "queue": answer.queue,
            "queue_id": decided.queue_id,
            "label": answer.label or "",
            "priority": answer.priority or 0,
            "skills": ",".join(answer.skills),
            "rule": answer.rule or "",
            "outcome": answer.outcome,
            "degraded": answer.degraded,
            "decision_id": answer.decision_id,
            "attributes": orjson.dumps(answer.attributes).decode(),
            "card_url": answer.card_url or "",
        }
    )


def lifted_attributes(attributes: Mapping[str, str], platform: str) -> list[tuple[str, str]]:
    """The route attributes that go to the top level of ``platform``'s flat answer, in
    order: those whose name the platform can take and no fixed key has."""
    if not attributes:
        return []
    return [(name, value) for name, value in attributes.items() if _liftable(platform, name)]


def emergency_answer(queue: str, ruleset: str) -> PlatformAnswer:
    """What a platform endpoint answers when no ruleset can decide (none loaded): the
    emergency queue, ``outcome`` fallback, ``degraded``, no decision id and no mapped ids."""
    return PlatformAnswer(
        Answer(
            decision_id="",
            conversation_id=None,
            shared_id=None,
            ruleset=ruleset,
            ruleset_version="",
            queue=queue,
            label=None,
            priority=None,
            skills=(),
            attributes={},
            rule=None,
            outcome="fallback",
            degraded=True,
            sources={},
            elapsed_ms=0.0,
        ),
        queue_id="",
        workflow="",
    )


# --- internals ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _liftable(platform: str, name: str) -> bool:
    """Whether ``name`` may be a top-level key of ``platform``'s answer (names come from
    rule files, so the cache stays small)."""
    return (
        ATTRIBUTE_NAMES[platform].fullmatch(name) is not None
        and name not in RESERVED_KEYS[platform]
    )


def _priority_text(priority: int | None) -> str:
    return "" if priority is None else str(priority)


def _escaped_size(value: Any) -> int:
    """Length of ``value`` as compact JSON with every non-ASCII character escaped."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


def _char_size(value: Any) -> int:
    """Length of ``value`` as compact JSON, in characters."""
    return len(orjson.dumps(value).decode())


def _fit(
    fixed: dict[str, Any],
    lifted: list[tuple[str, str]],
    skills: list[str],
    limit: int,
    size: Callable[[Any], int],
) -> tuple[list[tuple[str, str]], list[str]]:
    """The lifted attributes and skills to keep so the whole object measures under
    ``limit``: lifted attributes go first, last first; then skills, last first. Each entry
    is measured alone (its key, value, ``:`` and ``,``), so nothing is serialised twice."""
    skills_as_text = isinstance(fixed["skills"], str)
    base = dict(fixed, skills=[] if not skills_as_text else "")
    total = size(base) + _skills_size(skills, size, skills_as_text)
    costs = [size(name) + size(value) + 2 for name, value in lifted]
    total += sum(costs)
    kept = list(lifted)
    while kept and total >= limit:
        kept.pop()
        total -= costs[len(kept)]
    kept_skills = list(skills)
    while kept_skills and total >= limit:
        before = _skills_size(kept_skills, size, skills_as_text)
        kept_skills.pop()
        total -= before - _skills_size(kept_skills, size, skills_as_text)
    return kept, kept_skills


def _skills_size(skills: Iterable[str], size: Callable[[Any], int], as_text: bool) -> int:
    """What ``skills`` adds to an object whose skills are empty."""
    skills = list(skills)
    if as_text:
        return size(",".join(skills)) - size("")
    return size(skills) - size([])
