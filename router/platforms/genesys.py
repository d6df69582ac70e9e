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

from typing import Any

from aiohttp import web

from router.http.keys import ARRIVAL
from router.platforms.flat import genesys_answer
from router.platforms.front import (
    decide,
    json_answer,
    json_object,
    put_number,
    read_body,
    requested_ruleset,
    text,
    valid_id,
)
from router.service import DecisionRequest
from router.service.platforms import GENESYS

_FIELDS = frozenset({"conversation_id", "shared_id", "genesys_conversation_id", "ani", "dnis"})


async def handle(request: web.Request) -> web.Response:
    """Decide the interaction's queue; answer the data action's output contract."""
    body = json_object(await read_body(request))
    ruleset = requested_ruleset(request)
    context: dict[str, Any] = {k: v for k, v in body.items() if k not in _FIELDS}
    context["platform"] = GENESYS
    put_number(context, "ani", "sip_from", body.get("ani"))
    put_number(context, "dnis", "sip_to", body.get("dnis"))
    call_id = text(body.get("genesys_conversation_id"))
    if call_id is not None:
        context["call_id"] = call_id
    decided = await decide(
        request,
        DecisionRequest(
            conversation_id=valid_id(body.get("conversation_id")),
            shared_id=valid_id(body.get("shared_id")),
            ruleset=ruleset,
            context=context,
            arrival=request[ARRIVAL],
            platform=GENESYS,
            split_key=call_id,
        ),
    )
    return json_answer(genesys_answer(decided))
