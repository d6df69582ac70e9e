"""The platform fixtures themselves: each has its source recorded and the shape its
platform documents, so endpoint tests built on them test against the real thing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from tests.integrations.conftest import PLATFORM_FIXTURES, load_json

SOURCES = (PLATFORM_FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
FIXTURES = sorted(p for p in PLATFORM_FIXTURES.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def relative(path: Path) -> str:
    return path.relative_to(PLATFORM_FIXTURES).as_posix()


@pytest.mark.parametrize("path", FIXTURES, ids=relative)
def test_every_fixture_names_its_source(path: Path) -> None:
    assert f"`{relative(path)}`" in SOURCES


@pytest.mark.parametrize(
    "path", sorted((PLATFORM_FIXTURES / "amazon-connect").glob("*.json")), ids=relative
)
def test_connect_events_have_the_documented_shape(path: Path) -> None:
    event = load_json(path)

    assert event["Name"] == "ContactFlowEvent"
    contact = event["Details"]["ContactData"]
    assert {"Attributes", "Channel", "ContactId", "CustomerEndpoint", "SystemEndpoint"} <= set(
        contact
    )
    assert all(isinstance(v, str) for v in event["Details"]["Parameters"].values())
    assert all(isinstance(v, str) for v in contact["Attributes"].values())


@pytest.mark.parametrize(
    "path", sorted((PLATFORM_FIXTURES / "twilio").glob("*.form")), ids=relative
)
def test_twilio_bodies_are_single_form_encoded_lines(path: Path) -> None:
    text = path.read_text(encoding="ascii")

    assert "\n" not in text
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    assert len({name for name, _ in pairs}) == len(pairs)


def test_twilio_sip_call_carries_the_ids_as_sip_headers() -> None:
    text = (PLATFORM_FIXTURES / "twilio" / "voice-webhook-sip.form").read_text()
    params = dict(parse_qsl(text, keep_blank_values=True))

    assert params["SipHeader_X-Conversation-Id"] == "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"
    assert params["SipHeader_X-Shared-Id"] == "acme_inc_sdklfasdklfjasbdfklabs"
    assert params["CallSid"].startswith("CA")


def test_twilio_signature_example_is_twilios_scheme() -> None:
    example = load_json(PLATFORM_FIXTURES / "twilio" / "signature-example.json")
    params = example["params"]
    signed = example["url"] + "".join(name + params[name] for name in sorted(params))

    digest = hmac.new(example["auth_token"].encode(), signed.encode(), hashlib.sha1).digest()

    assert base64.b64encode(digest).decode() == example["signature"]
