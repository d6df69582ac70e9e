"""The shape of a rule file, as pydantic models (also the source of ``router schema``).

These models check structure and types; meaning (operators, schedules,
templates, references between parts) is checked when the parts compile, in
load.py. Conditions are free-form mappings here and described for editors by
the hand-written JSON Schema in schema.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
FACT_PATH_PATTERN = r"^(handoff|state|conversation|context)(\.[A-Za-z0-9_-]+)+$"
"""A fact path: ``namespace.key[.key…]`` over the four namespaces."""

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Hours = Annotated[
    str,
    Field(
        description="Opening hours 'HH:MM-HH:MM' (24-hour, end exclusive). An end at or before "
        "the start runs past midnight: '22:00-02:00'.",
        examples=["08:00-18:00", "22:00-02:00"],
    ),
]
SENSITIVE_PATH_PATTERN = (
    r"^(handoff|state|conversation|context)(\.[A-Za-z0-9_-]+)*\.([A-Za-z0-9_-]+|[A-Za-z0-9_-]*\*)$"
)
SensitivePath = Annotated[
    str,
    Field(
        pattern=SENSITIVE_PATH_PATTERN,
        description="namespace.key[.key…]; a trailing '*' marks a subtree or name prefix.",
        examples=["state.card_number", "context.sip.*", "state.card_*"],
    ),
]
Condition = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object"}),  # replaced by #/$defs/Condition in schema.py
    Field(description="Conditions that must all hold. See the Condition definition."),
]
Namespace = Annotated[
    dict[str, Any] | None,
    Field(description="Facts of this namespace; null means its source failed."),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ScheduleModel(_Strict):
    """Opening hours in a time zone, with closed and special dates."""

    timezone: str | None = Field(
        default=None,
        description="IANA time zone for this schedule, overriding the ruleset's "
        "(e.g. 'Europe/Madrid').",
    )
    weekly: dict[str, list[Hours]] = Field(
        default_factory=dict,
        description="Day ('mon' … 'sun') or day range ('mon-fri') → list of 'HH:MM-HH:MM' ranges.",
        examples=[{"mon-fri": ["08:00-18:00"], "sat": ["09:00-12:30"]}],
    )
    closed: list[str] = Field(
        default_factory=list,
        description="Dates ('2026-12-25') closed all day. A closed date also closes ranges "
        "that start on it and run past midnight.",
    )
    open: dict[str, list[Hours]] = Field(
        default_factory=dict,
        description="Dates with special hours that replace that day's weekly hours, e.g. "
        "{'2026-12-24': ['09:00-13:00']}.",
    )


class _Destination(_Strict):
    label: str | None = Field(
        default=None,
        description="Call-type label the human agent sees. Templates: {state.customer_tier}, "
        "{state.customer_tier|unknown}; '{{' and '}}' are literal braces. Cut to 120 characters.",
    )
    priority: int | None = Field(default=None, description="Queue priority (a whole number).")
    skills: list[str] | None = Field(default=None, description="Skills the agent needs.")
    attributes: dict[str, str] | None = Field(
        default=None,
        description="Flat map of text attributes for the platform (templates allowed; each "
        "cut to 256 characters).",
    )


class SplitModel(_Destination):
    """One share of a split; fields left out come from the rule's own route."""

    weight: int = Field(ge=0, le=100, description="Share of calls, in percent. Weights sum to 100.")
    queue: str | None = Field(default=None, description="Queue for this share.")


class RouteModel(_Destination):
    """Where matching calls go."""

    queue: str | None = Field(
        default=None, description="Destination queue (required unless 'split' gives one per share)."
    )
    split: list[SplitModel] | None = Field(
        default=None,
        description="Deterministic percentage split by conversation: the same call always lands "
        "in the same share.",
    )


class RuleModel(_Strict):
    """A routing rule: the first rule (in file order) whose 'when' holds decides."""

    id: Name = Field(description="Unique rule id (letters, digits, '_', '-', '.').")
    description: str | None = Field(default=None, description="What the rule is for.")
    when: Condition | None = Field(
        default=None, description="Conditions that must all hold; leave out to match every call."
    )
    route: RouteModel = Field(description="Where matching calls go.")


class InputModel(_Strict):
    """Facts for a test: any of the four namespaces (null: that source failed)."""

    handoff: Namespace = None
    state: Namespace = None
    conversation: Namespace = None
    context: Namespace = None


class ExpectModel(_Strict):
    """What the test expects of the decision; only the keys given are checked."""

    rule: str | None = Field(default=None, description="Matched rule id (null: no rule matched).")
    queue: str | None = None
    label: str | None = None
    outcome: Literal["matched", "default", "fallback"] | None = None
    priority: int | None = None
    skills: list[str] | None = None
    attributes: dict[str, str] | None = Field(
        default=None, description="Attributes that must be present with these values."
    )
    degraded: bool | None = None


class TestModel(_Strict):
    """A test case run by 'router test' and before every reload."""

    name: str = Field(min_length=1, description="Test name (unique in the file).")
    conversation_id: str | None = Field(
        default=None, description="Keys splits; defaults to the test's name."
    )
    shared_id: str | None = Field(default=None, description="Keys splits when no conversation id.")
    at: str | None = Field(
        default=None,
        description="Clock for schedules, ISO 8601 ('2026-11-23T10:00:00'); the ruleset's time "
        "zone when no offset; default: now.",
    )
    input: InputModel = Field(default_factory=InputModel, description="Facts for the decision.")
    expect: ExpectModel = Field(description="What the decision must be.")


_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
CONNECT_QUEUE_PATTERN = (
    rf"^(arn:aws[a-z-]*:connect:[a-z0-9-]+:[0-9]{{12}}:instance/{_UUID}/queue/{_UUID}|{_UUID})$"
)
TWILIO_QUEUE_PATTERN = r"^WQ[0-9a-fA-F]{32}$"
TWILIO_WORKFLOW_PATTERN = r"^WW[0-9a-fA-F]{32}$"
GENESYS_QUEUE_PATTERN = rf"^{_UUID}$"

ConnectQueueId = Annotated[
    str,
    Field(
        pattern=CONNECT_QUEUE_PATTERN,
        description="The Amazon Connect queue's ARN "
        "(arn:aws:connect:<region>:<account>:instance/<instance id>/queue/<queue id>) or its id.",
    ),
]
TwilioQueueSid = Annotated[
    str, Field(pattern=TWILIO_QUEUE_PATTERN, description="A TaskRouter TaskQueue SID: WQ + 32 hex.")
]
GenesysQueueId = Annotated[
    str, Field(pattern=GENESYS_QUEUE_PATTERN, description="The Genesys Cloud queue id (a UUID).")
]


class ConnectPlatformModel(_Strict):
    """Amazon Connect: the queue ARN each queue name stands for (the answer's ``queue_arn``)."""

    queues: dict[str, ConnectQueueId] = Field(
        default_factory=dict, description="Queue name (as routes write it) → queue ARN or id."
    )


class TwilioPlatformModel(_Strict):
    """Twilio: the TaskRouter workflow calls are enqueued into, and each queue's TaskQueue SID."""

    workflow: Annotated[str, Field(pattern=TWILIO_WORKFLOW_PATTERN)] | None = Field(
        default=None,
        description="The TaskRouter workflow SID (WW + 32 hex) the voice endpoint enqueues "
        "into; without one it answers <Enqueue>queue-name</Enqueue>.",
    )
    queues: dict[str, TwilioQueueSid] = Field(
        default_factory=dict, description="Queue name → TaskQueue SID (sent as router_queue_sid)."
    )


class GenesysPlatformModel(_Strict):
    """Genesys Cloud: the queue id each queue name stands for (the answer's ``queue_id``)."""

    queues: dict[str, GenesysQueueId] = Field(
        default_factory=dict, description="Queue name → Genesys queue id (UUID)."
    )


class PlatformsModel(_Strict):
    """Each platform's own ids for this file's queues (contract §7 "Queue ids")."""

    amazon_connect: ConnectPlatformModel | None = Field(default=None, alias="amazon-connect")
    twilio: TwilioPlatformModel | None = None
    genesys: GenesysPlatformModel | None = None


class RuleFileModel(_Strict):
    """A routing rule file: one ruleset."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="router rule file")

    ruleset: Name | None = Field(default=None, description="Ruleset name (default: file name).")
    description: str | None = Field(default=None, description="What this ruleset routes.")
    timezone: str = Field(
        default="UTC", description="IANA time zone for schedules and test clocks."
    )
    schedules: dict[str, ScheduleModel] = Field(
        default_factory=dict, description="Named schedules for 'during:' and 'outside:'."
    )
    rules: list[RuleModel] = Field(default_factory=list, description="Rules, tried in order.")
    default: RouteModel = Field(description="Route when no rule matches and every source answered.")
    fallback: RouteModel | None = Field(
        default=None,
        description="Route when no rule matches and some source failed (default: 'default').",
    )
    sensitive: list[SensitivePath] = Field(
        default_factory=list,
        description="Facts that never leave the router: not logged, masked ('***') in explain "
        "traces, left out of decision records, encrypted (or not kept) in a shared store. Exact "
        "paths ('state.card_number') or a trailing '*' for a subtree or name prefix "
        "('context.sip.*', 'state.card_*'). Rules still match on the real values; "
        "context.ani and context.sip_from (the caller's number) are always sensitive.",
        examples=[["state.card_number", "state.email", "context.sip.*"]],
    )
    tests: list[TestModel] = Field(default_factory=list, description="Tests of this ruleset.")
    show: list[Annotated[str, Field(pattern=FACT_PATH_PATTERN)]] = Field(
        default_factory=list,
        description="Fact paths the agent card shows beside the label (e.g. "
        "'state.customer_tier'); sensitive ones are masked.",
        examples=[["state.customer_tier", "handoff.handoff_reason"]],
    )
    platforms: PlatformsModel | None = Field(
        default=None,
        description="Per-platform queue ids (amazon-connect, twilio, genesys): answers on that "
        "platform's endpoint carry the mapped id.",
    )
