"""What a decision answers: the one place the answer's field names are written.

:class:`Answer` is built once per decision from the engine's
:class:`~router.engine.decide.Decision` and the gathered facts' sources. The HTTP layer
serialises it as it is (orjson writes a dataclass in field order), the store keeps it for
read-back, the platform fronts reshape it, and the OpenAPI document's ``RouteResponse``
schema is generated from this class, so the published shape cannot drift from what is
sent.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from pydantic import Field

from router.facts.gather import SourceStatus
from router.jsonsafe import jsonable

TRACE_MAX_STRING = 1024
"""A string quoted in an explain trace is cut to this many characters (and marked)."""

Outcome = Literal["matched", "default", "fallback"]


@dataclass(slots=True)  # not frozen: built on every call, and frozen fields cost
class Answer:
    """One routing decision as callers see it (contract §2.1), in the contract's order."""

    decision_id: Annotated[str, Field(description="uuid4 of this decision.")]
    conversation_id: str | None
    shared_id: str | None
    ruleset: str
    ruleset_version: Annotated[
        str, Field(description='"sha256:" and the hex digest of the rule file.')
    ]
    queue: str
    label: str | None
    priority: int | None
    skills: tuple[str, ...]
    attributes: Annotated[dict[str, str], Field(description="Flat map of strings.")]
    rule: Annotated[
        str | None, Field(description="The matched rule's id; null for default/fallback.")
    ]
    outcome: Outcome
    degraded: Annotated[
        bool,
        Field(
            description="True when a fact source (handoff, state, conversation) "
            "timed out, failed or had its circuit open."
        ),
    ]
    sources: Annotated[
        dict[str, SourceStatus],
        Field(description="How each namespace was had (and `store`, with a shared store)."),
    ]
    elapsed_ms: Annotated[
        float, Field(description="From the request's arrival to the answer being handed over.")
    ]
    card_url: Annotated[
        str | None,
        Field(
            description="A signed, expiring link to the agent card of this decision "
            "(`/agent/card/{decision_id}?…`, prefixed by ROUTER_CARD_BASE_URL when set); "
            "null when ROUTER_CARD_SECRET is not set or the call named no id."
        ),
    ] = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, in order (what the store keeps)."""
        return {name: getattr(self, name) for name in ANSWER_FIELDS}

    def decision_fields(self) -> dict[str, Any]:
        """Every field but ``decision_id`` (an explained decision is not kept, so has none)."""
        return {name: getattr(self, name) for name in ANSWER_FIELDS[1:]}


ANSWER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Answer))
"""The answer's field names, in the contract's order."""


@dataclass(frozen=True, slots=True)
class PlatformAnswer:
    """A decision for a platform endpoint: the answer, plus that platform's ids for it from
    the same ruleset version that decided it (the rule file's ``platforms:``)."""

    answer: Answer
    queue_id: str
    """The platform's id for ``answer.queue`` (Connect queue ARN, Twilio TaskQueue SID,
    Genesys queue id); ``""`` when the ruleset maps none."""
    workflow: str
    """The platform's workflow (Twilio's TaskRouter workflow SID); ``""`` when none."""


@dataclass(frozen=True, slots=True)
class Explained:
    """An explained decision: the answer (never stored) and the per-rule trace."""

    answer: Answer
    trace: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``POST /v1/explain`` body: the decision's fields, then ``trace``.

        The trace quotes fact values, so it is bounded and made writable
        (:func:`router.jsonsafe.jsonable`): long strings cut, deep nesting marked."""
        trace = jsonable(list(self.trace), max_string=TRACE_MAX_STRING)
        return {**self.answer.decision_fields(), "trace": trace}
