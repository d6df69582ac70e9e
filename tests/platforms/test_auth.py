"""Auth the platforms can do (contract §7.2): HTTP Basic with the API key as password on
every keyed endpoint, and Twilio's X-Twilio-Signature on the Twilio endpoints, proven
against Twilio's own ``RequestValidator`` in both directions."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from router.platforms.twilio_signature import signature_matches, twilio_signature
from tests.platforms.conftest import (
    API_KEY,
    AUTH,
    FORM,
    SCOPED_KEY,
    basic,
    fixture_form,
    fixture_json,
    fixture_text,
)

TOKEN = "12345-twilio-auth-token"
VOICE = "/v1/platforms/twilio/voice"
STUDIO = "/v1/platforms/twilio/studio"
PLATFORM_PATHS = [
    "/v1/platforms/amazon-connect",
    VOICE,
    STUDIO,
    "/v1/platforms/genesys",
]
ROUTE = {"conversation_id": "c-basic", "handoff": {}, "state": {}}

# --- HTTP Basic ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["studio", "", "any name \u00e9"])
async def test_basic_auth_password_is_the_api_key_on_the_route_api(client: Any, user: str) -> None:
    token = base64.b64encode(f"{user}:{API_KEY}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}

    assert (await client.post("/v1/route", json=ROUTE, headers=headers)).status == 200
    assert (await client.get("/v1/rulesets", headers=headers)).status == 200


@pytest.mark.parametrize("path", PLATFORM_PATHS)
async def test_basic_auth_on_every_platform_endpoint(client: Any, path: str) -> None:
    assert (await client.post(path, data=b"", headers=basic(API_KEY))).status == 200


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (basic("wrong-key")["Authorization"], "invalid_api_key"),
        ("Basic !!!not-base64!!!", "invalid_api_key"),
        ("Basic " + base64.b64encode(API_KEY.encode()).decode(), "invalid_api_key"),  # no colon
        (basic("", user=API_KEY)["Authorization"], "invalid_api_key"),  # key as the user name
    ],
    ids=["wrong-password", "not-base64", "no-colon", "key-as-user"],
)
async def test_bad_basic_credentials_are_401(client: Any, authorization: str, code: str) -> None:
    resp = await client.post("/v1/route", json=ROUTE, headers={"Authorization": authorization})

    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == code


@pytest.mark.parametrize("path", PLATFORM_PATHS)
async def test_platform_401_challenges_for_basic_auth(client: Any, path: str) -> None:
    """Twilio sends the credentials of a URL only after a 401 with a challenge."""
    resp = await client.post(path, data=b"")

    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="router"'


async def test_the_route_api_still_challenges_for_bearer(client: Any) -> None:
    resp = await client.post("/v1/route", json=ROUTE)

    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="router"'


async def test_a_key_scoped_to_other_rulesets_is_403_in_each_platform_shape(client: Any) -> None:
    connect = await client.post("/v1/platforms/amazon-connect", json={}, headers=basic(SCOPED_KEY))
    assert connect.status == 403
    assert (await connect.json())["error"]["code"] == "ruleset_forbidden"

    voice = await client.post(VOICE, data=b"", headers={**basic(SCOPED_KEY), **FORM})
    assert voice.status == 403
    assert voice.content_type == "text/xml"
    assert list(ET.fromstring(await voice.text())) == []  # TwiML that says nothing

    allowed = await client.post(
        "/v1/platforms/genesys?ruleset=other", json={}, headers=basic(SCOPED_KEY)
    )
    assert allowed.status == 200


async def test_with_auth_off_no_credentials_are_needed(make_client: Any) -> None:
    client = await make_client(ROUTER_API_KEYS="")

    for path in PLATFORM_PATHS:
        assert (await client.post(path, data=b"")).status == 200


# --- Twilio's signature scheme, against Twilio's own code --------------------------------


def test_router_signature_is_twilios_on_the_documented_example() -> None:
    example = fixture_json("twilio/signature-example.json")
    params = list(example["params"].items())

    ours = twilio_signature(example["auth_token"], example["url"], params)

    assert ours == example["signature"]
    assert ours == RequestValidator(example["auth_token"]).compute_signature(
        example["url"], example["params"]
    )
    assert signature_matches(example["auth_token"], example["url"], params, example["signature"])


@pytest.mark.parametrize(
    "url",
    [
        "https://router.example.com/v1/platforms/twilio/voice?ruleset=default",
        "https://router.example.com:443/v1/platforms/twilio/voice",
        "http://127.0.0.1:8080/v1/platforms/twilio/voice?ruleset=a%20b&x=1",
        "https://router.example.com/v1/platforms/twilio/voice",
    ],
)
def test_signatures_agree_with_twilios_validator_both_ways(url: str) -> None:
    params = fixture_form("twilio/voice-webhook-sip.form")
    validator = RequestValidator(TOKEN)

    twilios = validator.compute_signature(url, dict(params))
    ours = twilio_signature(TOKEN, url, params)

    assert ours == twilios
    assert signature_matches(TOKEN, url, params, twilios)  # Twilio signs, the router checks
    assert validator.validate(url, dict(params), ours)  # the router signs, Twilio checks
    tampered = [(k, "sip:+19005550000@evil" if k == "From" else v) for k, v in params]
    assert not signature_matches(TOKEN, url, tampered, twilios)
    assert not validator.validate(url, dict(tampered), ours)
    assert not signature_matches("another-token", url, params, twilios)


def test_a_url_signed_with_or_without_the_default_port_matches() -> None:
    params = fixture_form("twilio/voice-webhook.form")
    signed_with_port = RequestValidator(TOKEN).compute_signature(
        "https://router.example.com:443/v1/platforms/twilio/voice", dict(params)
    )

    assert signature_matches(
        TOKEN, "https://router.example.com/v1/platforms/twilio/voice", params, signed_with_port
    )


def test_json_bodies_are_signed_through_the_url() -> None:
    body = json.dumps({"call_sid": "CA1", "to": "+18005551212"})
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"https://router.example.com/v1/platforms/twilio/studio?bodySHA256={digest}"
    validator = RequestValidator(TOKEN)
    signature = validator.compute_signature(url, {})

    assert validator.validate(url, body, signature)
    assert signature_matches(TOKEN, url, (), signature, body=body.encode())
    assert not signature_matches(TOKEN, url, (), signature, body=body.encode() + b" ")


# --- the signature on the Twilio endpoints -----------------------------------------------


async def signed_post(
    client: Any,
    path: str,
    fields: list[tuple[str, str]],
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST ``fields`` signed with Twilio's own code for ``url`` (default: the URL the test
    client requests), and no API key."""
    signed = url or str(client.make_url(path))
    signature = RequestValidator(TOKEN).compute_signature(signed, dict(fields))
    return await client.post(
        path,
        data=urlencode(fields),
        headers={**FORM, "X-Twilio-Signature": signature, **(headers or {})},
    )


async def test_a_signed_voice_webhook_needs_no_key(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await signed_post(
        client, VOICE + "?ruleset=default", fixture_form("twilio/voice-webhook-sip.form")
    )

    assert resp.status == 200
    assert ET.fromstring(await resp.text()).find("Enqueue") is not None


async def test_a_signed_studio_request_needs_no_key(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await signed_post(client, STUDIO, fixture_form("twilio/studio-make-http-request.form"))

    assert resp.status == 200
    assert (await resp.json())["queue"] == "vip-desk"


async def test_a_tampered_parameter_is_403_with_silent_twiml(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)
    fields = fixture_form("twilio/voice-webhook-sip.form")
    path = str(client.make_url(VOICE))
    signature = RequestValidator(TOKEN).compute_signature(path, dict(fields))
    tampered = [(k, "+19005550000" if k == "From" else v) for k, v in fields]

    resp = await client.post(
        VOICE, data=urlencode(tampered), headers={**FORM, "X-Twilio-Signature": signature}
    )

    assert resp.status == 403
    assert resp.content_type == "text/xml"
    root = ET.fromstring(await resp.text())
    assert root.tag == "Response"
    assert list(root) == []
    assert not (root.text or "").strip()


async def test_a_wrong_signature_on_studio_is_403(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await client.post(
        STUDIO,
        data=fixture_text("twilio/studio-make-http-request.form"),
        headers={**FORM, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )

    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "invalid_signature"


async def test_behind_a_trusted_proxy_the_forwarded_url_is_checked(make_client: Any) -> None:
    public = "https://router.example.com/v1/platforms/twilio/voice?ruleset=default"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "router.example.com"}
    fields = fixture_form("twilio/voice-webhook.form")
    trusting = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN, ROUTER_TRUST_PROXY="true")
    path = VOICE + "?ruleset=default"

    resp = await signed_post(trusting, path, fields, url=public, headers=forwarded)
    assert resp.status == 200

    not_trusting = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)
    resp = await signed_post(not_trusting, path, fields, url=public, headers=forwarded)
    assert resp.status == 403


async def test_a_forwarded_host_is_ignored_unless_trusted(make_client: Any) -> None:
    """Without ROUTER_TRUST_PROXY a caller cannot choose the URL that is checked."""
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)
    fields = fixture_form("twilio/voice-webhook.form")

    resp = await signed_post(
        client, VOICE, fields, headers={"X-Forwarded-Host": "elsewhere.example.com"}
    )

    assert resp.status == 200  # signed for the URL the router really served


async def test_with_a_token_set_an_unsigned_request_without_key_is_401(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await client.post(VOICE, data=fixture_text("twilio/voice-webhook.form"), headers=FORM)

    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="router"'


async def test_a_key_is_accepted_instead_of_a_signature(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await client.post(
        VOICE, data=fixture_text("twilio/voice-webhook.form"), headers={**FORM, **AUTH}
    )

    assert resp.status == 200


async def test_a_signature_is_not_accepted_on_other_platform_endpoints(make_client: Any) -> None:
    client = await make_client(ROUTER_TWILIO_AUTH_TOKEN=TOKEN)

    resp = await signed_post(client, "/v1/platforms/genesys", [])

    assert resp.status == 401
