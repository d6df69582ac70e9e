"""``POST /v1/platforms/genesys``: a Genesys Cloud data action's request in, a fixed key set
out (contract §7.3).

The data action's request template (``integrations/genesys/``) builds::

    {"conversation_id": "…", "shared_id": "…", "genesys_conversation_id": "…",
     "ani": "+1…", "dnis": "+1…"}

Empty values are no values (Velocity renders an unset input as ``""``); any other field
reaches rules as ``context.<name>``. The answer always has the same keys and never a null:
Genesys applies a translation-map default only where a JSONPath finds nothing, so a null
would fail the action.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from router.http.keys import ARRIVAL
from router.platforms.flat import genesys_answer
from router.platforms.front import (
    decide,
    fields_context,
    json_answer,
    json_object,
    read_body,
    requested_ruleset,
    valid_id,
)
from router.service import DecisionRequest
from router.service.platforms import GENESYS

_FIELDS = frozenset({"conversation_id", "shared_id", "genesys_conversation_id", "ani", "dnis"})


async def handle(request: web.Request) -> web.Response:
    """Decide the interaction's queue; answer the data action's output contract."""
    body = json_object(await read_body(request))
    call = genesys_call(body, requested_ruleset(request), request[ARRIVAL])
    return json_answer(genesys_answer(await decide(request, call)))


def genesys_call(body: Mapping[str, Any], ruleset: str | None, arrival: float) -> DecisionRequest:
    """The call in a data action's request (the body, parsed)."""
    context = fields_context(
        body,
        _FIELDS,
        GENESYS,
        ani=body.get("ani"),
        dnis=body.get("dnis"),
        call_id=body.get("genesys_conversation_id"),
    )
    return DecisionRequest(
        conversation_id=valid_id(body.get("conversation_id")),
        shared_id=valid_id(body.get("shared_id")),
        ruleset=ruleset,
        context=context,
        arrival=arrival,
        platform=GENESYS,
        split_key=context.get("call_id"),
    )
