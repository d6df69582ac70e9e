"""What the express lane answers, endpoint by endpoint: how each reads its call from a
request's body and query string and writes its answer — with the very functions its aiohttp
handler uses (:mod:`router.http.handlers`, :mod:`router.platforms`), so the two cannot
answer differently.

The lane (:mod:`router.http.route_lane`) does the rest: it takes a request only when it
holds all of it in one chunk, checks the key and role as the middleware does, and hands
anything an endpoint here refuses (a read that raises) to aiohttp, which answers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from router import jsonsafe
from router.http.handlers import decision_request
from router.http.models import RouteRequest
from router.platforms.amazon_connect import connect_call
from router.platforms.flat import connect_answer, genesys_answer, studio_answer
from router.platforms.front import decide_call, form_fields, json_object
from router.platforms.genesys import genesys_call
from router.platforms.twilio import enqueue_twiml, is_json_body, studio_call, voice_call
from router.service import DecisionRequest, DecisionService
from router.settings import Settings

JSON_ANSWER = b"application/json; charset=utf-8"
TWIML_ANSWER = b"text/xml; charset=utf-8"

_JSON_ROUTE_TYPES = frozenset(
    {b"application/json", b"application/json;charset=utf-8", b"application/json;charset=utf8"}
)
"""``Content-Type`` values ``/v1/route`` takes here (lower case, spaces removed); its handler
takes more spellings, so any other goes to it."""
_JSON = frozenset({b"application/json"})
_FORM = frozenset({b"application/x-www-form-urlencoded"})

Query = Mapping[str, str]
Read = Callable[[bytes, bytes, Query, float], DecisionRequest]
"""(body, media type, query string's parameters, arrival) → the call; raises for a request
the handler must answer (a body that is not JSON, a validation error …)."""
Answer = Callable[[DecisionService, DecisionRequest], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class LaneEndpoint:
    """One endpoint the lane answers."""

    name: str
    """The route's name in the app."""
    path: str
    """Its path, as request log lines name it."""
    content_types: frozenset[bytes]
    """Request ``Content-Type`` media types taken (lower case, without parameters)."""
    read: Read
    answer: Answer
    answer_type: bytes = JSON_ANSWER
    exact_content_types: frozenset[bytes] | None = None
    """When set, the whole ``Content-Type`` value (lower case, spaces removed) must be one
    of these."""
    query: bool = True
    """Whether a query string is read (``?ruleset=…``, ids); else a request with one goes to
    aiohttp."""
    signed: bool = False
    """May authenticate by Twilio's signature instead of a key: with auth off and
    ``ROUTER_TWILIO_AUTH_TOKEN`` set, the handler checks it, so the lane does not take it."""
    checks_ruleset: bool = False
    """The call names a ruleset that must serve (``/v1/route``: else a 404 or 503 from the
    handler); a platform endpoint answers the emergency queue instead."""


def lane_endpoints(settings: Settings, default_ruleset: str) -> dict[bytes, LaneEndpoint]:
    """The endpoints the lane answers, by path."""

    def route(
        body: bytes, media: bytes, query: Mapping[str, str], arrival: float
    ) -> DecisionRequest:
        call = RouteRequest.model_validate_json(body)
        return decision_request(call, call.ruleset or default_ruleset, arrival)

    async def route_answer(service: DecisionService, call: DecisionRequest) -> bytes:
        return jsonsafe.dumps(await service.decide(call))

    def connect(
        body: bytes, media: bytes, query: Mapping[str, str], arrival: float
    ) -> DecisionRequest:
        return connect_call(json_object(body), query.get("ruleset") or None, arrival)

    def genesys(
        body: bytes, media: bytes, query: Mapping[str, str], arrival: float
    ) -> DecisionRequest:
        return genesys_call(json_object(body), query.get("ruleset") or None, arrival)

    def voice(
        body: bytes, media: bytes, query: Mapping[str, str], arrival: float
    ) -> DecisionRequest:
        return voice_call(body, query, settings, query.get("ruleset") or None, arrival)

    def studio(
        body: bytes, media: bytes, query: Mapping[str, str], arrival: float
    ) -> DecisionRequest:
        fields = (
            json_object(body)
            if is_json_body(media.decode("latin-1"), body)
            else dict(form_fields(body))
        )
        return studio_call(fields, query, query.get("ruleset") or None, arrival)

    def platform(render: Callable[..., bytes]) -> Answer:
        async def answer(service: DecisionService, call: DecisionRequest) -> bytes:
            return render(await decide_call(service, settings, call))

        return answer

    endpoints = (
        LaneEndpoint(
            "route",
            "/v1/route",
            _JSON,
            route,
            route_answer,
            exact_content_types=_JSON_ROUTE_TYPES,
            query=False,
            checks_ruleset=True,
        ),
        LaneEndpoint(
            "platform_amazon_connect",
            "/v1/platforms/amazon-connect",
            _JSON,
            connect,
            platform(connect_answer),
        ),
        LaneEndpoint(
            "platform_genesys", "/v1/platforms/genesys", _JSON, genesys, platform(genesys_answer)
        ),
        LaneEndpoint(
            "platform_twilio_voice",
            "/v1/platforms/twilio/voice",
            _FORM,
            voice,
            platform(enqueue_twiml),
            answer_type=TWIML_ANSWER,
            signed=True,
        ),
        LaneEndpoint(
            "platform_twilio_studio",
            "/v1/platforms/twilio/studio",
            _JSON | _FORM,
            studio,
            platform(studio_answer),
            signed=True,
        ),
    )
    return {endpoint.path.encode(): endpoint for endpoint in endpoints}
