"""``platforms:`` in rule files (contract §7 "Queue ids"): the maps a ruleset keeps, and what
``router check`` says about them, each at the right ``file:line:col``."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from router.engine.platforms import NO_PLATFORMS, PlatformMap
from router.engine.schema import rule_file_schema

from ._rules import errors_of, load_one, problems_of
from .test_load_errors import pos

CONNECT_ARN = (
    "arn:aws:connect:eu-west-2:111122223333:instance/1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
    "/queue/3ac53331-2c47-4e89-9deb-2998e307bd29"
)
CONNECT_ID = "af72b544-f11d-4938-a354-02197b2ff940"
WORKFLOW = "WW0123456789abcdef0123456789abcdef"
TWILIO_SID = "WQ0123456789abcdef0123456789abcdef"
GENESYS_ID = "6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01"

ROUTES = """\
rules:
  - id: fraud
    when: {handoff.reason: fraud}
    route:
      queue: fraud-24x7
      attributes: {x_tier: gold, X-Header: "1"}
  - id: pilot
    when: {handoff.reason: tech}
    route:
      queue: tech
      split:
        - {weight: 50}
        - {weight: 50, queue: tech-pilot}
default: {queue: general}
fallback: {queue: general-fallback}
"""

FULL_MAPS = f"""\
platforms:
  amazon-connect:
    queues:
      fraud-24x7: "{CONNECT_ARN}"
      tech: {CONNECT_ID}
      tech-pilot: {CONNECT_ID}
      general: {CONNECT_ID}
      general-fallback: {CONNECT_ID}
  twilio:
    workflow: {WORKFLOW}
    queues:
      fraud-24x7: {TWILIO_SID}
      tech: {TWILIO_SID}
      tech-pilot: {TWILIO_SID}
      general: {TWILIO_SID}
      general-fallback: {TWILIO_SID}
  genesys:
    queues:
      fraud-24x7: {GENESYS_ID}
      tech: {GENESYS_ID}
      tech-pilot: {GENESYS_ID}
      general: {GENESYS_ID}
      general-fallback: {GENESYS_ID}
"""


def test_a_ruleset_keeps_each_platforms_ids(tmp_path):
    ruleset = load_one(tmp_path, ROUTES + FULL_MAPS)

    maps = ruleset.platforms
    assert maps.queue_id("amazon-connect", "fraud-24x7") == CONNECT_ARN
    assert maps.queue_id("twilio", "tech-pilot") == TWILIO_SID
    assert maps.queue_id("genesys", "general") == GENESYS_ID
    assert maps.queue_id("genesys", "nowhere") == ""
    assert maps.queue_id("five9", "general") == ""
    assert maps.workflow("twilio") == WORKFLOW
    assert maps.workflow("genesys") == ""
    assert maps.maps["amazon-connect"] == PlatformMap(
        {
            "fraud-24x7": CONNECT_ARN,
            "tech": CONNECT_ID,
            "tech-pilot": CONNECT_ID,
            "general": CONNECT_ID,
            "general-fallback": CONNECT_ID,
        }
    )


def test_without_platforms_a_ruleset_maps_nothing(tmp_path):
    ruleset = load_one(tmp_path, ROUTES)

    assert ruleset.platforms == NO_PLATFORMS
    assert ruleset.platforms.queue_id("twilio", "general") == ""


def test_a_full_map_warns_only_about_attribute_names(tmp_path):
    text = ROUTES + FULL_MAPS
    problems = problems_of(tmp_path, text)

    assert [(p.severity, (p.line, p.col)) for p in problems] == [("warning", pos(text, "X-Header"))]
    assert "twilio" in problems[0].message
    assert "X-Header" in problems[0].message


@pytest.mark.parametrize(
    ("platform", "value", "words"),
    [
        ("amazon-connect", "arn:aws:connect:eu-west-2:1:instance/x/queue/y", "Amazon Connect"),
        ("amazon-connect", "general", "queue ARN"),
        ("twilio", "WQ0123", "WQ followed by 32 hex"),
        ("twilio", "WW0123456789abcdef0123456789abcdef", "TaskQueue SID"),
        ("genesys", "6f1bd9a0-3b7e-4c55-9a8e", "UUID"),
    ],
)
def test_a_bad_queue_id_is_an_error_at_the_value(tmp_path, platform, value, words):
    text = ROUTES + f'platforms:\n  {platform}:\n    queues:\n      general: "{value}"\n'
    [error] = errors_of(tmp_path, text)

    assert (error.line, error.col) == pos(text, f'"{value}"')
    assert words in error.message
    assert "general" in error.message


def test_an_arn_of_another_partition_and_a_bare_queue_id_are_accepted(tmp_path):
    gov = CONNECT_ARN.replace("arn:aws:", "arn:aws-us-gov:")
    text = ROUTES + (
        f'platforms:\n  amazon-connect:\n    queues: {{general: "{gov}", tech: {CONNECT_ID}}}\n'
    )

    assert errors_of(tmp_path, text) == []


def test_a_bad_workflow_is_an_error_at_the_value(tmp_path):
    text = ROUTES + "platforms:\n  twilio:\n    workflow: WQ0123456789abcdef0123456789abcdef\n"
    [error] = errors_of(tmp_path, text)

    assert (error.line, error.col) == pos(text, "WQ0123")
    assert "workflow" in error.message


def test_an_unknown_platform_is_an_error_with_a_hint(tmp_path):
    text = ROUTES + "platforms:\n  genesis:\n    queues: {}\n"
    [error] = errors_of(tmp_path, text)

    assert (error.line, error.col) == pos(text, "genesis")
    assert "did you mean 'genesys'" in error.message


def test_an_unknown_key_under_a_platform_is_an_error(tmp_path):
    text = ROUTES + "platforms:\n  amazon-connect:\n    workflow: x\n"
    [error] = errors_of(tmp_path, text)

    assert (error.line, error.col) == pos(text, "workflow")
    assert "queues" in error.message


@pytest.mark.parametrize(
    "block",
    [
        "platforms: [twilio]\n",
        "platforms:\n  twilio: yes\n",
        "platforms:\n  twilio:\n    queues: [general]\n",
        "platforms:\n  genesys:\n    queues: {general: 42}\n",
    ],
    ids=["list", "platform-not-mapping", "queues-a-list", "id-a-number"],
)
def test_wrong_shapes_are_errors_not_crashes(tmp_path, block):
    errors = errors_of(tmp_path, ROUTES + block)

    assert len(errors) == 1
    assert errors[0].line > ROUTES.count("\n")


def test_every_queue_a_map_lacks_is_a_warning_where_it_is_produced(tmp_path):
    text = ROUTES + f"platforms:\n  genesys:\n    queues: {{fraud-24x7: {GENESYS_ID}}}\n"
    warnings = [p for p in problems_of(tmp_path, text) if p.severity == "warning"]

    lacking = {p.message.split("'")[1]: (p.line, p.col) for p in warnings}
    assert lacking == {
        "tech": pos(text, "tech\n"),  # the first share takes the rule's own queue
        "tech-pilot": pos(text, "tech-pilot"),
        "general": pos(text, "general}"),
        "general-fallback": pos(text, "general-fallback"),
    }
    assert all("genesys" in p.message and "queue_id" in p.message for p in warnings)


def test_a_mapped_queue_no_route_produces_is_a_warning_with_a_hint(tmp_path):
    text = ROUTES + FULL_MAPS.replace(
        "      tech-pilot: " + GENESYS_ID, "      tech-pilo: " + GENESYS_ID
    )
    warnings = [p for p in problems_of(tmp_path, text) if "tech-pilo" in p.message]

    assert len(warnings) == 2  # the unknown name, and tech-pilot lacking a genesys id
    [unknown] = [p for p in warnings if "no route produces" in p.message]
    assert (unknown.line, unknown.col) == pos(text, "tech-pilo:")
    assert "did you mean 'tech-pilot'" in unknown.message


def test_a_queue_name_over_64_characters_is_an_error_when_twilio_is_mapped(tmp_path):
    long_name = "q" * 65
    text = ROUTES.replace("queue: general}", f"queue: {long_name}}}")
    assert errors_of(tmp_path, text) == []  # no twilio map: fine

    mapped = text + f"platforms:\n  twilio:\n    workflow: {WORKFLOW}\n"
    [error] = errors_of(tmp_path, mapped)
    assert (error.line, error.col) == pos(mapped, long_name)
    assert "64" in error.message


def test_attribute_names_a_platform_cannot_take_are_warnings(tmp_path):
    text = (
        ROUTES.replace(
            '{x_tier: gold, X-Header: "1"}', '{x_tier: gold, "bad name": "1", queue: "2"}'
        )
        + f"platforms:\n  amazon-connect:\n    queues: {{fraud-24x7: {CONNECT_ID}}}\n"
    )
    messages = {
        p.message.split("'")[1]: p.message
        for p in problems_of(tmp_path, text)
        if p.message.startswith("attribute")
    }

    assert set(messages) == {"bad name", "queue"}
    assert "1 to 127 letters" in messages["bad name"]
    assert "fixed key" in messages["queue"]


def test_the_schema_describes_platforms(tmp_path):
    schema = rule_file_schema()
    document = yaml.safe_load(ROUTES + FULL_MAPS)

    jsonschema.validate(document, schema)
    bad = yaml.safe_load(ROUTES + "platforms:\n  twilio:\n    workflow: WW1\n")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    properties = schema["$defs"]["PlatformsModel"]["properties"]
    assert set(properties) == {"amazon-connect", "twilio", "genesys"}
