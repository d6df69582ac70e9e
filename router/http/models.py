"""Request and response bodies of the HTTP API (contract §2), as pydantic models.

The server validates requests with these models, and :mod:`router.http.openapi` builds
the OpenAPI document from the very same classes, so the two cannot disagree. Response
models document (and the tests check) what the handlers send; the hot path serialises
plain dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from router.service import ANSWER_FIELDS, Answer
from router.store import StoreStatus

# Ids are 1–256 printable ASCII characters (U+0020–U+007E): they end up in logs, store
# keys and SIP headers, where control characters and exotic code points do harm.
PRINTABLE_PATTERN = r"^[ -~]+$"

ConversationId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=PRINTABLE_PATTERN),
    Field(description="1–256 printable ASCII characters.", examples=["0bba04d7-38b3-4fd3"]),
]
RulesetName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=PRINTABLE_PATTERN),
    Field(description="The ruleset's name (its `ruleset:` key, else its file stem)."),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_of_ids_schema(id_field: str) -> dict[str, Any]:
    """JSON Schema for "`id_field` or `shared_id` is a string" (the model validator's rule)."""
    return {
        "anyOf": [
            {"required": [field], "properties": {field: {"type": "string"}}}
            for field in (id_field, "shared_id")
        ]
    }


def _require_an_id(id_field: str, id_value: str | None, shared_id: str | None) -> None:
    """At least one id: `ctx.field` lets the 422 name a path for this model-level check."""
    if id_value is None and shared_id is None:
        raise PydanticCustomError(
            "missing_id", f"give {id_field} or shared_id (or both)", {"field": id_field}
        )


class RouteRequest(_Strict):
    """Body of `POST /v1/route` and `POST /v1/explain` (§2.1)."""

    model_config = ConfigDict(json_schema_extra=_one_of_ids_schema("conversation_id"))

    conversation_id: ConversationId | None = Field(
        default=None, description="The PolyAI conversation id."
    )
    shared_id: ConversationId | None = Field(
        default=None, description="The id shared with the telephony platform (e.g. call SID)."
    )
    ruleset: RulesetName | None = Field(
        default=None, description="Which ruleset decides (default: ROUTER_DEFAULT_RULESET)."
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="What the platform knows (DNIS, ANI, IVR choice …): the `context` namespace.",
    )
    handoff: dict[str, Any] | None = Field(
        default=None, description="Handoff data given inline: the Handoff API is not called."
    )
    state: dict[str, Any] | None = Field(
        default=None,
        description="conv.state given inline: the conversation record is not fetched.",
    )
    budget_ms: StrictInt | None = Field(
        default=None,
        gt=0,
        description="Latency budget in ms (default ROUTER_BUDGET_MS, at most "
        "ROUTER_MAX_BUDGET_MS: larger values are clamped).",
    )

    @model_validator(mode="after")
    def _an_id(self) -> RouteRequest:
        _require_an_id("conversation_id", self.conversation_id, self.shared_id)
        return self

    def budget_within(self, default_ms: float, max_ms: float) -> float:
        """The budget this request runs on: its own or the default, clamped to the maximum."""
        return min(self.budget_ms if self.budget_ms is not None else default_ms, max_ms)


class ExplainRequest(RouteRequest):
    """Body of `POST /v1/explain`: the route body, plus the instant to decide at."""

    at: datetime | None = Field(
        default=None,
        description="Decide as at this instant (ISO 8601, e.g. '2026-11-23T10:00:00'; "
        "without an offset it is read in the ruleset's time zone). Default: now. "
        "Schedules (`during`/`outside`) read it.",
        examples=["2026-11-23T10:00:00", "2026-11-23T10:00:00+00:00"],
    )


class PushEvent(BaseModel):
    """Body of `POST /v1/events/polyai` (§2.3). Unknown fields are ignored (senders vary)."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_extra=_one_of_ids_schema("id")
    )

    id: ConversationId | None = Field(default=None, description="The conversation id.")
    shared_id: ConversationId | None = Field(default=None, description="The shared id.")
    data: dict[str, Any] | None = Field(default=None, description="Handoff data.")
    state: dict[str, Any] | None = Field(default=None, description="conv.state variables.")
    conversation: dict[str, Any] | None = Field(
        default=None, description="Conversation record fields (channel, language …)."
    )

    @model_validator(mode="after")
    def _an_id(self) -> PushEvent:
        _require_an_id("id", self.id, self.shared_id)
        return self


class PushAccepted(_Strict):
    """Answer of an accepted push: it is stored and readable by every replica."""

    status: Literal["accepted"] = "accepted"


def _answer_model(name: str, doc: str, *, keep_id: bool, **more: Any) -> type[_Strict]:
    """A response model with the fields of :class:`~router.service.Answer` (where the
    answer's field names are written once), for validation in tests and the OpenAPI
    document."""
    hints = get_type_hints(Answer, include_extras=True)
    fields: dict[str, Any] = {
        field: (hints[field], ...) for field in ANSWER_FIELDS if keep_id or field != "decision_id"
    }
    model: type[_Strict] = create_model(name, __base__=_Strict, __doc__=doc, **fields, **more)
    return model


RouteResponse = _answer_model(
    "RouteResponse",
    "Answer of `POST /v1/route` and of `GET /v1/decisions…` (the stored decision).",
    keep_id=True,
)
ExplainResponse = _answer_model(
    "ExplainResponse",
    "Answer of `POST /v1/explain`: the decision plus a per-rule trace. Nothing is stored.",
    keep_id=False,
    trace=(
        list[dict[str, Any]],
        Field(
            description="For each rule in order: whether it matched and, for the first "
            "failing condition, the path, operator, expected and actual value."
        ),
    ),
)


class RulesetInfo(_Strict):
    name: str
    version: str
    rules: int = Field(description="How many rules it has.")
    loaded_at: datetime
    source: str = Field(description="The file it was loaded from.")


class ReloadErrorInfo(_Strict):
    file: str
    message: str
    at: datetime


class RulesetsResponse(_Strict):
    """Answer of `GET /v1/rulesets`."""

    rulesets: list[RulesetInfo]
    last_reload_error: ReloadErrorInfo | None


class ReadyResponse(_Strict):
    """Answer of `GET /readyz` (§2.4), 200 or 503."""

    status: Literal["ready", "not_ready"]
    rulesets: dict[str, str] = Field(description="Ruleset name → version being served.")
    store: StoreStatus
    reason: str | None


class HealthResponse(_Strict):
    """Answer of `GET /healthz`."""

    status: Literal["ok"] = "ok"


class ErrorDetail(BaseModel):
    """One problem; for validation errors, the path of the bad field and what is wrong."""

    model_config = ConfigDict(extra="allow", frozen=True)

    path: str | None = None
    message: str


class ErrorBody(_Strict):
    code: str = Field(description="snake_case, stable: branch on this.")
    message: str = Field(description="A sentence for humans.")
    details: list[ErrorDetail]


class ErrorResponse(_Strict):
    """Every error answer (4xx and 5xx)."""

    error: ErrorBody


# Replay (contract §8) ----------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?[smhd])+$"


class ReplayRequest(_Strict):
    """``POST /v1/replay`` with ``Content-Type: application/json``: the candidate rule file
    as text. (Or send the YAML itself as ``application/yaml``, with ``ruleset`` and
    ``since`` as query parameters.)"""

    rules: str = Field(min_length=1, description="The candidate rule file: its YAML text.")
    ruleset: RulesetName | None = Field(
        default=None,
        description="Its name when the file has no `ruleset:` key (default: the default "
        "ruleset, ROUTER_DEFAULT_RULESET).",
    )
    since: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="Only records this recent: `90s`, `15m`, `24h`, `7d`, `1h30m`.",
    )


class ReplayTarget(_Strict):
    rule: str | None = Field(description="The rule's id; null for default/fallback.")
    queue: str


class ReplayChange(_Strict):
    """Recorded decisions that move from one (rule, queue) to another."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: ReplayTarget = Field(alias="from")
    to: ReplayTarget
    count: int
    examples: list[str] = Field(description="A few of their decision ids.")


class ReplaySkippedReasons(_Strict):
    other_ruleset: int = Field(description="Records of a ruleset the candidate is not.")
    unreadable: int = Field(description="Records that could not be read (see `unreadable`).")


class ReplayUnreadable(_Strict):
    where: str
    reason: str


class ReplayCandidate(_Strict):
    ruleset: str
    version: str


class ReplayResponse(_Strict):
    """What replaying the recorded decisions with the candidate would change (contract §8).

    ``replayed`` = ``changed`` + ``unchanged`` + ``uncertain``: an uncertain decision is one
    a value not recorded (a sensitive one) could have changed.
    """

    replayed: int
    changed: int
    unchanged: int
    uncertain: int
    skipped: int
    changes: list[ReplayChange] = Field(description="Largest group first.")
    skipped_reasons: ReplaySkippedReasons
    unreadable: list[ReplayUnreadable] = Field(description="The first 100, by place.")
    uncertain_examples: list[str]
    candidate: list[ReplayCandidate]
    stopped: str | None = Field(
        default=None,
        description="Present when the time limit (ROUTER_REPLAY_TIMEOUT_S) stopped the "
        "replay before the last record: the counts are of the records before it.",
    )
