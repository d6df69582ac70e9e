"""Fixtures: the real app on loopback (as tests/http does), rules that map each platform's
queue ids, and the platforms' documented requests from tests/fixtures/platforms/."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import structlog
from aiohttp.test_utils import TestClient

from tests.http.conftest import (  # the same fixtures as the HTTP API's tests
    MakeClient,
    _reset_logging,
    client,
    fake,
    make_client,
    make_settings,
)
from tests.rules import write_rules

__all__ = ["_reset_logging", "client", "fake", "make_client", "make_settings"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "platforms"
API_KEY = "test-key-all"
SCOPED_KEY = "test-key-other"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

CONVERSATION_ID = "0bba04d7-38b3-4fd3-a1a8-329c34517fc1"
SHARED_ID = "acme_inc_sdklfasdklfjasbdfklabs"
CALL_SID = "CA1234567890ABCDE"

CONNECT_VIP_ARN = (
    "arn:aws:connect:eu-west-2:111122223333:instance/1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
    "/queue/3ac53331-2c47-4e89-9deb-2998e307bd29"
)
CONNECT_GENERAL_ID = "af72b544-f11d-4938-a354-02197b2ff940"
TWILIO_WORKFLOW = "WW0123456789abcdef0123456789abcdef"
TWILIO_VIP_SID = "WQ1123456789abcdef0123456789abcdef"
GENESYS_VIP_ID = "59943037-7f73-40f4-b0bf-1f0c0816549f"

PLATFORM_RULES = f"""\
ruleset: default
rules:
  - id: vip
    when: {{state.customer_tier: gold}}
    route:
      queue: vip-desk
      label: "VIP · {{state.customer_tier}}"
      priority: 50
      skills: [vip, billing]
      attributes:
        x_tier: "{{state.customer_tier}}"
        X-PolyAI-Tier: "{{state.customer_tier}}"
        queue: not lifted
        9lives: connect only
  - id: sip-customer
    when: {{context.sip.customer-id: abc123}}
    route: {{queue: sip-customers, label: "SIP customer"}}
  - id: us-line
    when: {{context.dnis: "+18005551212"}}
    route: {{queue: us-line, label: "US line"}}
  - id: ivr-spanish
    when: {{context.attributes.ivr_choice: "2"}}
    route: {{queue: spanish-speakers, label: "Español"}}
  - id: studio-extra
    when: {{context.language: cy}}
    route: {{queue: welsh-speakers, label: "Cymraeg"}}
  - id: pilot
    when: {{context.parameters.pilot: "yes"}}
    route:
      label: Pilot
      split:
        - {{weight: 50, queue: pilot-a}}
        - {{weight: 50, queue: pilot-b}}
default: {{queue: general, label: "General enquiry"}}
fallback: {{queue: general-fallback, label: "Transferred · details unavailable"}}
platforms:
  amazon-connect:
    queues: {{vip-desk: "{CONNECT_VIP_ARN}", general: {CONNECT_GENERAL_ID}}}
  twilio:
    workflow: {TWILIO_WORKFLOW}
    queues: {{vip-desk: {TWILIO_VIP_SID}}}
  genesys:
    queues: {{vip-desk: {GENESYS_VIP_ID}}}
"""

OTHER_RULES = """\
ruleset: other
rules: []
default: {queue: other-queue, label: "Other line"}
"""


@pytest.fixture
def rules_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-platform-rules-"))
    write_rules(folder, "default.yaml", PLATFORM_RULES)
    write_rules(folder, "other.yaml", OTHER_RULES)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def fixture_json(name: str) -> dict[str, Any]:
    """A JSON fixture of tests/fixtures/platforms/ (a fresh copy each time)."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def fixture_text(name: str) -> str:
    """A form fixture of tests/fixtures/platforms/, exactly as posted."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_form(name: str) -> list[tuple[str, str]]:
    """A form fixture's fields, in order."""
    return parse_qsl(fixture_text(name), keep_blank_values=True)


def basic(password: str, user: str = "studio") -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def state_client(make_client: MakeClient) -> TestClient[Any, Any]:
    """A client of an app that logs the facts of each decision (ROUTER_LOG_STATE=true), so
    a test can see the context a platform request became."""
    return await make_client(ROUTER_LOG_STATE="true")


async def post_logged(client: Any, path: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """POST, and the request's ``decision`` log line (its ``facts`` with ROUTER_LOG_STATE)."""
    with structlog.testing.capture_logs() as logs:
        resp = await client.post(path, **kwargs)
        await resp.read()
    decisions = [line for line in logs if line["event"] == "decision"]
    assert len(decisions) == 1, logs
    return resp, decisions[0]
