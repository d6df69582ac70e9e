"""Reading platform requests leniently: form bodies, ids, phone numbers (router.platforms.front)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.platforms.front import form_fields, put_number, valid_id
from router.platforms.twilio import _voice_parameters
from tests.platforms.conftest import fixture_text

FORM_TEXT = st.text(
    alphabet=st.sampled_from(list("ab=&%+#?/ ;:@é€\x00\n2F0E8Aaf34B\\[]")), max_size=40
)


@settings(max_examples=500, deadline=None)
@given(FORM_TEXT)
def test_form_fields_read_what_parse_qsl_reads(text: str) -> None:
    assert form_fields(text.encode()) == parse_qsl(text, keep_blank_values=True)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_form_fields_read_any_bytes(raw: bytes) -> None:
    fields = form_fields(raw)
    assert all(type(name) is str and type(value) is str for name, value in fields)
    assert len(fields) == len([part for part in raw.split(b"&") if part])


def test_form_fields_of_twilios_webhook() -> None:
    text = fixture_text("twilio/voice-webhook-sip.form")
    fields = dict(form_fields(text.encode()))
    assert fields["From"] == "sip:+14158675310@203.0.113.10"
    assert fields["SipHeader_X-Customer-ID"] == "abc123"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0bba04d7-38b3-4fd3-a1a8-329c34517fc1", "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"),
        ("  CA123  ", "CA123"),
        ("", None),
        ("   ", None),
        ("x" * 256, "x" * 256),
        ("x" * 257, None),
        ("caf\u00e9", None),
        ("a\nb", None),
        (42, None),
        (None, None),
        (["a"], None),
    ],
)
def test_an_id_is_printable_text_or_no_id(value: Any, expected: str | None) -> None:
    assert valid_id(value) == expected


@pytest.mark.parametrize(
    ("value", "number", "raw"),
    [
        ("+14158675310", "+14158675310", None),
        ("sip:+14158675310@203.0.113.10", "+14158675310", "sip:+14158675310@203.0.113.10"),
        ("sips:4158675310@host;transport=tls", "4158675310", "sips:4158675310@host;transport=tls"),
        ("sip:+14158675310;user=phone@host", "+14158675310", "sip:+14158675310;user=phone@host"),
        ("SIP:alice@example.com", "SIP:alice@example.com", "SIP:alice@example.com"),
        ("sip:example.com", "sip:example.com", "sip:example.com"),
        ("tel:+14158675310", "+14158675310", None),
        ("tel:+1-415-867-5310;ext=2", "+1-415-867-5310", None),
        ("anonymous", "anonymous", None),
    ],
)
def test_numbers_from_sip_and_tel_uris(value: str, number: str, raw: str | None) -> None:
    context: dict[str, Any] = {}
    put_number(context, "ani", "sip_from", value)
    assert context.get("ani") == number
    assert context.get("sip_from") == raw


@pytest.mark.parametrize("value", ["", None, 15551234567, {"a": 1}])
def test_no_number_leaves_the_context_alone(value: Any) -> None:
    context: dict[str, Any] = {}
    put_number(context, "ani", "sip_from", value)
    assert context == {}


def test_voice_reads_only_the_parameters_it_uses() -> None:
    extra = b"&SipHeader_X-Odd=%C3%A9&To=last"
    raw = fixture_text("twilio/voice-webhook-sip.form").encode() + extra
    call, sip = _voice_parameters(raw)

    fields = form_fields(raw)
    assert call == {
        "CallSid": "CA1234567890ABCDE",
        "From": "sip:+14158675310@203.0.113.10",
        "To": "last",  # the last of repeated names wins, as dict(parse_qsl(...)) would
    }
    assert sip == {
        name.removeprefix("SipHeader_").lower(): value
        for name, value in fields
        if name.startswith("SipHeader_")
    }
    assert sip["x-odd"] == "é"
