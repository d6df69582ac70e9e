"""``POST /v1/platforms/amazon-connect``: the Connect Lambda's event in, a flat string map out.

Connect can only call a Lambda from a flow; the reference Lambda
(``integrations/amazon-connect/``) forwards the invocation event unchanged and returns this
answer as-is (contract §7.1)::

    {"Details": {"ContactData": {"Attributes": {…}, "Channel": "VOICE", "ContactId": "…",
                 "CustomerEndpoint": {"Address": "+1…"}, "SystemEndpoint": {"Address": …}, …},
                 "Parameters": {"conversation_id": "…"}},
     "Name": "ContactFlowEvent"}

Ids come from ``Details.Parameters`` (``conversation_id``, ``shared_id``), else from the
contact attributes of the same names. Every other part of the event is read leniently: a
missing ``Details`` or a field of the wrong type is simply not there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from router.http.keys import ARRIVAL
from router.platforms.flat import connect_answer
from router.platforms.front import (
    decide,
    json_answer,
    json_object,
    mapping,
    read_body,
    requested_ruleset,
    text,
    valid_id,
)
from router.service import DecisionRequest
from router.service.platforms import CONNECT


async def handle(request: web.Request) -> web.Response:
    """Decide the contact's queue; answer Connect's ``STRING_MAP`` (under 32 KB)."""
    body = json_object(await read_body(request))
    call = connect_call(body, requested_ruleset(request), request[ARRIVAL])
    return json_answer(connect_answer(await decide(request, call)))


def connect_call(body: Mapping[str, Any], ruleset: str | None, arrival: float) -> DecisionRequest:
    """The call in a Connect Lambda event (the body, parsed)."""
    details = mapping(body.get("Details"))
    contact = mapping(details.get("ContactData"))
    parameters = mapping(details.get("Parameters"))
    attributes = mapping(contact.get("Attributes"))
    context: dict[str, Any] = {"platform": CONNECT}
    for key, value in (
        ("ani", mapping(contact.get("CustomerEndpoint")).get("Address")),
        ("dnis", mapping(contact.get("SystemEndpoint")).get("Address")),
        ("call_id", contact.get("ContactId")),
        ("channel", contact.get("Channel")),
    ):
        if text(value) is not None:
            context[key] = value
    context["attributes"] = attributes
    context["parameters"] = parameters
    return DecisionRequest(
        conversation_id=_id(parameters, attributes, "conversation_id"),
        shared_id=_id(parameters, attributes, "shared_id"),
        ruleset=ruleset,
        context=context,
        arrival=arrival,
        platform=CONNECT,
        # The initial contact id survives transfers, so a retried transfer splits alike.
        split_key=text(contact.get("InitialContactId")) or context.get("call_id"),
    )


def _id(parameters: Any, attributes: Any, name: str) -> str | None:
    """The block's function input parameter ``name``, else the contact attribute."""
    return valid_id(parameters.get(name)) or valid_id(attributes.get(name))
