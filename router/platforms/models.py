"""The platform endpoints' request and answer shapes, for the OpenAPI document and tests.

The fronts do not validate with these (a platform's request is read leniently, field by
field, so an odd one still gets a decision: contract §7); they describe what each platform
sends and what it gets back, and the tests check real answers against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """A platform's request: the fields the router reads; any other field is welcome."""

    model_config = ConfigDict(extra="allow", frozen=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Amazon Connect ---------------------------------------------------------------------


class ConnectEndpoint(_Open):
    Address: str | None = Field(default=None, description="A phone number, E.164.")
    Type: str | None = None


class ConnectContactData(_Open):
    Attributes: dict[str, Any] | None = Field(
        default=None,
        description="Contact attributes: `conversation_id` / `shared_id` are read here when "
        "the parameters have none; all of them reach rules as `context.attributes.*`.",
    )
    Channel: str | None = Field(default=None, description="`context.channel`.")
    ContactId: str | None = Field(default=None, description="`context.call_id`.")
    InitialContactId: str | None = None
    CustomerEndpoint: ConnectEndpoint | None = Field(default=None, description="`context.ani`.")
    SystemEndpoint: ConnectEndpoint | None = Field(default=None, description="`context.dnis`.")
    Queue: dict[str, Any] | None = None


class ConnectDetails(_Open):
    ContactData: ConnectContactData | None = None
    Parameters: dict[str, Any] | None = Field(
        default=None,
        description="The block's function input parameters: `conversation_id` / `shared_id` "
        "are read here first; all of them reach rules as `context.parameters.*`.",
    )


class ConnectEvent(_Open):
    """The Lambda invocation event of Connect's *Invoke AWS Lambda function* block, as the
    reference Lambda forwards it. Nothing is required: a missing part is simply not read."""

    Details: ConnectDetails | None = None
    Name: str | None = Field(default=None, examples=["ContactFlowEvent"])


class ConnectAnswer(BaseModel):
    """A flat map of strings under 32 KB (Connect's `STRING_MAP`): the fixed keys, then each
    route attribute whose name Connect can take (`[A-Za-z0-9_-]{1,127}`)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, str]

    queue: str
    queue_arn: str = Field(description="The queue's ARN from the rule file's map, or empty.")
    label: str
    priority: str = Field(description="Decimal text; empty when the route sets none.")
    skills: str = Field(description="Comma-separated.")
    rule: str = Field(description="The matched rule's id; empty for default and fallback.")
    outcome: Literal["matched", "default", "fallback"]
    degraded: Literal["true", "false"]
    decision_id: str = Field(description="Empty on an emergency answer (no ruleset loaded).")
    ruleset: str
    ruleset_version: str
    card_url: str = Field(description="A signed link to the agent card (contract §9), or empty.")


# --- Twilio -----------------------------------------------------------------------------


class TwilioVoiceRequest(_Open):
    """Twilio's voice webhook parameters (form-encoded). On a SIP call each `X-` header of
    the INVITE arrives as `SipHeader_X-…`."""

    __pydantic_extra__: dict[str, str]

    CallSid: str | None = Field(
        default=None, description="`context.call_id`; the `shared_id` when no other id is given."
    )
    AccountSid: str | None = None
    From: str | None = Field(
        default=None, description="`context.ani` (a SIP URI's number; the URI in `sip_from`)."
    )
    To: str | None = Field(
        default=None, description="`context.dnis` (a SIP URI's number; the URI in `sip_to`)."
    )
    Direction: str | None = None
    CallStatus: str | None = None


class StudioRequest(_Open):
    """The *Make HTTP Request* widget's parameters (form-encoded by default, or JSON). Empty
    ids are no ids; any other field reaches rules as `context.<name>`."""

    conversation_id: str | None = None
    shared_id: str | None = None
    call_sid: str | None = Field(default=None, description="`context.call_id`.")
    from_: str | None = Field(default=None, alias="from", description="`context.ani`.")
    to: str | None = Field(default=None, description="`context.dnis`.")


class StudioAnswer(BaseModel):
    """Every value a string, then each route attribute whose name a Twilio task attribute
    can have (`[A-Za-z_][A-Za-z0-9_]*`)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, str]

    queue: str
    queue_sid: str = Field(description="The TaskQueue SID from the rule file's map, or empty.")
    workflow_sid: str = Field(description="The rule file's TaskRouter workflow, or empty.")
    label: str
    priority: str = Field(description="Decimal text; empty when the route sets none.")
    skills: str = Field(description="Comma-separated.")
    rule: str
    outcome: Literal["matched", "default", "fallback"]
    degraded: Literal["true", "false"]
    decision_id: str
    card_url: str = Field(description="A signed link to the agent card (contract §9), or empty.")
    task_attributes: str = Field(
        description="The task attributes (a JSON object of at most 1,024 characters: "
        "router_queue, router_queue_sid, call_type, skills, priority, rule, decision_id, "
        "degraded and the lifted attributes), as text for the Enqueue Call widget."
    )


# --- Genesys Cloud ----------------------------------------------------------------------


class GenesysRequest(_Open):
    """What the data action's request template sends. Empty values are no values; any other
    field reaches rules as `context.<name>`."""

    conversation_id: str | None = None
    shared_id: str | None = None
    genesys_conversation_id: str | None = Field(default=None, description="`context.call_id`.")
    ani: str | None = Field(default=None, description="`context.ani`.")
    dnis: str | None = Field(default=None, description="`context.dnis`.")


class GenesysAnswer(_Closed):
    """A fixed set of keys, never a null (a null would fail the data action)."""

    queue: str
    queue_id: str = Field(description="The Genesys queue id from the rule file's map, or empty.")
    label: str
    priority: int = Field(description="0 when the route sets none.")
    skills: str = Field(description="Comma-separated.")
    rule: str
    outcome: Literal["matched", "default", "fallback"]
    degraded: bool
    decision_id: str
    attributes: str = Field(description="The route attributes as a JSON object, in text.")
    card_url: str = Field(description="A signed link to the agent card (contract §9), or empty.")
