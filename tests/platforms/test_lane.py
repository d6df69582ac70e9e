"""The platform endpoints on the express lane (router/http/lane_endpoints.py): each
platform's documented request answered as its aiohttp handler answers it, and what the lane
must not take (a Twilio signature in place of a key, an escaped query string) left to it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from router.http import route_lane
from router.http.keys import SETTINGS
from router.http.lane_endpoints import lane_endpoints
from router.http.middlewares import ROLE_PREFIXES, ROUTE_ROLES
from tests.http.raw_http import Answer, exchange, route_request
from tests.platforms.conftest import (
    API_KEY,
    CONVERSATION_ID,
    FIXTURES,
    MakeClient,
)

JSON = b"application/json"
FORM = b"application/x-www-form-urlencoded"

DOCUMENTED = [
    pytest.param(
        b"/v1/platforms/amazon-connect",
        "amazon-connect/contact-flow-event-parameter-ids.json",
        JSON,
        id="connect",
    ),
    pytest.param(b"/v1/platforms/genesys", "genesys/data-action-request.json", JSON, id="genesys"),
    pytest.param(b"/v1/platforms/twilio/voice", "twilio/voice-webhook-sip.form", FORM, id="voice"),
    pytest.param(
        b"/v1/platforms/twilio/studio", "twilio/studio-make-http-request.form", FORM, id="studio"
    ),
]


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[route_lane.RouteCall]:
    taken: list[route_lane.RouteCall] = []
    real = route_lane.RouteLane.start

    def start(self: route_lane.RouteLane, client: Any, call: route_lane.RouteCall) -> None:
        taken.append(call)
        real(self, client, call)

    monkeypatch.setattr(route_lane.RouteLane, "start", start)
    return taken


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_ELAPSED = re.compile(rb'(elapsed_ms\\?"?:\s*)[0-9.]+')


def comparable(answer: Answer) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body without what differs per answer (date, length, ids, time)."""
    headers = [(k, v) for k, v in answer.headers if k.lower() not in {"date", "content-length"}]
    body = _ELAPSED.sub(rb"\1~", _UUID.sub(b"~", answer.body))
    return answer.status, headers, body


@pytest.mark.parametrize(("path", "fixture", "content_type"), DOCUMENTED)
async def test_the_lane_answers_a_platforms_documented_request_as_its_handler(
    make_client: MakeClient,
    lane_calls: list[route_lane.RouteCall],
    path: bytes,
    fixture: str,
    content_type: bytes,
) -> None:
    body = (FIXTURES / fixture).read_bytes()
    request = route_request(
        body,
        path=path + b"?conversation_id=" + CONVERSATION_ID.encode(),
        content_type=content_type,
        extra=b"X-Request-ID: one-id-for-both\r\n",
    )
    lane = await make_client()
    handler = await make_client(ROUTER_ROUTE_LANE="false")
    [by_lane] = await exchange(lane, request)
    assert [call.endpoint.name for call in lane_calls] == [
        "platform_" + path.decode().rsplit("/platforms/", 1)[1].replace("/", "_").replace("-", "_")
    ]
    [by_handler] = await exchange(handler, request)
    assert by_lane.status == 200
    assert comparable(by_lane) == comparable(by_handler)


async def test_a_twilio_signature_instead_of_a_key_is_checked_by_the_handler(
    make_client: MakeClient, lane_calls: list[route_lane.RouteCall]
) -> None:
    """With auth off but ROUTER_TWILIO_AUTH_TOKEN set, a Twilio request must carry a valid
    signature: the lane leaves it to the handler, which refuses a request without one."""
    client = await make_client(ROUTER_API_KEYS="", ROUTER_TWILIO_AUTH_TOKEN="twilio-token")
    body = (FIXTURES / "twilio/voice-webhook.form").read_bytes()
    [answer] = await exchange(
        client, route_request(body, path=b"/v1/platforms/twilio/voice", content_type=FORM)
    )
    assert answer.status == 401
    assert not lane_calls


@pytest.mark.parametrize(
    "query",
    [b"?ruleset=other&ruleset=default", b"?conversation_id=a%20b", b"?ruleset=o+ther"],
    ids=["repeated", "escaped", "plus"],
)
async def test_a_query_string_the_lane_does_not_read_goes_to_the_handler(
    client: Any, lane_calls: list[route_lane.RouteCall], query: bytes
) -> None:
    body = (FIXTURES / "genesys/data-action-request.json").read_bytes()
    [answer] = await exchange(
        client, route_request(body, path=b"/v1/platforms/genesys" + query, key=API_KEY)
    )
    assert answer.status == 200
    assert not lane_calls


def test_every_lane_endpoint_is_the_apps_route_of_that_name_and_needs_the_route_role(
    client: Any,
) -> None:
    """The lane answers only endpoints the app serves under the same name and path, each
    needing the role the lane checks (``route``): a renamed or moved route fails here."""
    settings = client.app[SETTINGS]
    routes = {
        route.name: route.resource.canonical
        for route in client.app.router.routes()
        if route.name is not None and route.resource is not None
    }
    for path, endpoint in lane_endpoints(settings, settings.default_ruleset).items():
        assert path.decode() == endpoint.path == routes[endpoint.name]
        role = ROUTE_ROLES.get(endpoint.path) or next(
            role for prefix, role in ROLE_PREFIXES if endpoint.path.startswith(prefix)
        )
        assert role == route_lane.ROLE
