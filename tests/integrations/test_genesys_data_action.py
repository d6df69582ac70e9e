"""The importable Genesys Cloud data action, run the way Genesys runs it.

Genesys builds the request body from the request template (Velocity), then turns the
router's answer into the action's output: each translation-map JSONPath picks a value, a
key whose path finds nothing takes its default (a JSON literal), and the success template
substitutes each ``${key}`` with that value as JSON text. The output must then satisfy the
output contract, or the flow takes the failure path. These tests do the same with
jsonpath-ng and a renderer for the one Velocity form the template uses.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonpath_ng.parser import parse as parse_jsonpath
from jsonschema import validators
from jsonschema.exceptions import ValidationError

from tests.integrations.conftest import INTEGRATIONS, PLATFORM_FIXTURES, load_json

ACTION: dict[str, Any] = load_json(INTEGRATIONS / "genesys" / "router-data-action.json")
REQUEST = ACTION["config"]["request"]
RESPONSE = ACTION["config"]["response"]
INPUT_SCHEMA: dict[str, Any] = ACTION["contract"]["input"]["inputSchema"]
OUTPUT_SCHEMA: dict[str, Any] = ACTION["contract"]["output"]["successSchema"]

# Contract §7.3: the answer's fixed keys and their types.
ANSWER_TYPES = {
    "queue": "string",
    "queue_id": "string",
    "label": "string",
    "priority": "integer",
    "skills": "string",
    "rule": "string",
    "outcome": "string",
    "degraded": "boolean",
    "decision_id": "string",
    "attributes": "string",
    "card_url": "string",  # contract §9
}
REQUEST_FIELDS = ["conversation_id", "shared_id", "genesys_conversation_id", "ani", "dnis"]

FULL_ANSWER = {
    "queue": "fraud-24x7",
    "queue_id": "6f1bd9a0-3b7e-4c55-9a8e-2f3c1b7d9e01",
    "label": 'URGENT · lost_card · "gold" \\ tier',
    "priority": 100,
    "skills": "fraud,cards",
    "rule": "lost-stolen-card",
    "outcome": "matched",
    "degraded": False,
    "decision_id": "5b0e6c1e-2d4f-4c71-9a39-0f1e2d3c4b5a",
    "attributes": '{"polyai_customer_id": "C-204871", "x_tier": "gold"}',
    "card_url": "https://router.example/agent/card/5b0e6c1e-2d4f-4c71-9a39-0f1e2d3c4b5a?c=c-1&exp=1&sig=ab",
}

VELOCITY_INPUT = re.compile(r"\$!\{esc\.jsonString\(\$input\.([A-Za-z_][A-Za-z0-9_]*)\)\}")
SUCCESS_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_request(inputs: dict[str, str]) -> str:
    """The request body Genesys sends: each ``$!{esc.jsonString($input.x)}`` becomes the
    input JSON-escaped, or nothing when the input is not set (silent notation)."""

    def escape(match: re.Match[str]) -> str:
        value = inputs.get(match.group(1))
        return "" if value is None else json.dumps(value)[1:-1]

    body: str = VELOCITY_INPUT.sub(escape, REQUEST["requestTemplate"])
    return body


def resolve(raw: Any) -> dict[str, Any]:
    """What the translation map, its defaults and the success template make of a raw answer."""
    values: dict[str, str] = {}
    for key, path in RESPONSE["translationMap"].items():
        found = parse_jsonpath(path).find(raw)
        if found:
            values[key] = json.dumps(found[0].value)  # a null stays null: no default
        else:
            values[key] = RESPONSE["translationMapDefaults"][key]
    output = SUCCESS_REFERENCE.sub(lambda m: values[m.group(1)], RESPONSE["successTemplate"])
    parsed: dict[str, Any] = json.loads(output)
    return parsed


def validate_output(output: dict[str, Any]) -> None:
    validator_class = validators.validator_for(OUTPUT_SCHEMA)
    validator_class(OUTPUT_SCHEMA).validate(output)


def test_it_is_a_web_services_data_action_export() -> None:
    assert ACTION["integrationType"] == "custom-rest-actions"
    assert ACTION["actionType"] == "custom"
    assert ACTION["category"]
    assert ACTION["name"]
    assert REQUEST["requestType"] == "POST"
    assert REQUEST["requestUrlTemplate"].split("?")[0].endswith("/v1/platforms/genesys")
    assert "ruleset=" in REQUEST["requestUrlTemplate"]
    assert REQUEST["headers"]["Content-Type"] == "application/json"


def test_no_secret_is_kept_in_the_export() -> None:
    text = json.dumps(ACTION).lower()
    assert "authorization" not in text
    assert "bearer" not in text


def test_contracts_are_json_schemas() -> None:
    for schema in (INPUT_SCHEMA, OUTPUT_SCHEMA):
        validators.validator_for(schema).check_schema(schema)


def test_output_contract_matches_the_genesys_answer_exactly() -> None:
    properties = OUTPUT_SCHEMA["properties"]
    assert {name: prop["type"] for name, prop in properties.items()} == ANSWER_TYPES
    assert sorted(OUTPUT_SCHEMA["required"]) == sorted(ANSWER_TYPES)


def test_input_contract_takes_the_request_fields_as_text() -> None:
    properties = INPUT_SCHEMA["properties"]
    assert list(properties) == REQUEST_FIELDS
    assert all(prop["type"] == "string" for prop in properties.values())
    assert not INPUT_SCHEMA.get("required")


def test_request_template_builds_the_documented_request() -> None:
    fixture = load_json(PLATFORM_FIXTURES / "genesys" / "data-action-request.json")

    body = render_request(fixture)

    assert json.loads(body) == fixture
    assert set(VELOCITY_INPUT.findall(REQUEST["requestTemplate"])) == set(REQUEST_FIELDS)
    assert "$" not in VELOCITY_INPUT.sub("", REQUEST["requestTemplate"])


def test_request_template_sends_empty_ids_when_inputs_are_not_set() -> None:
    body = json.loads(render_request({"ani": "+14158675310"}))

    assert body == {**dict.fromkeys(REQUEST_FIELDS, ""), "ani": "+14158675310"}


def test_request_template_escapes_what_it_inserts() -> None:
    awkward = 'a "quoted" \\ value\nwith a newline, ünïcode and </tags>'

    body = json.loads(render_request(dict.fromkeys(REQUEST_FIELDS, awkward)))

    assert body == dict.fromkeys(REQUEST_FIELDS, awkward)


def test_translation_map_covers_every_output_key_with_a_default() -> None:
    translation = RESPONSE["translationMap"]
    defaults = RESPONSE["translationMapDefaults"]
    assert set(translation) == set(ANSWER_TYPES)
    assert set(defaults) == set(ANSWER_TYPES)
    for key, path in translation.items():
        parse_jsonpath(path)
        default = json.loads(defaults[key])
        schema = OUTPUT_SCHEMA["properties"][key]
        validators.validator_for(OUTPUT_SCHEMA)(schema).validate(default)
    assert set(SUCCESS_REFERENCE.findall(RESPONSE["successTemplate"])) == set(ANSWER_TYPES)
    assert "$" not in SUCCESS_REFERENCE.sub("", RESPONSE["successTemplate"])


def test_a_full_answer_passes_through_unchanged() -> None:
    output = resolve({**FULL_ANSWER, "extra_key_from_a_newer_router": "x"})

    validate_output(output)
    assert output == FULL_ANSWER


@pytest.mark.parametrize(
    "raw",
    [
        {"queue": "general", "outcome": "fallback", "degraded": True},
        {"queue": "general"},
        {},
    ],
    ids=["some-keys", "queue-only", "empty"],
)
def test_an_answer_missing_keys_still_meets_the_contract(raw: dict[str, Any]) -> None:
    output = resolve(raw)

    validate_output(output)
    expected = {key: json.loads(RESPONSE["translationMapDefaults"][key]) for key in ANSWER_TYPES}
    assert output == {**expected, **raw}


def test_a_null_value_fails_the_contract_so_the_router_must_never_send_one() -> None:
    # Genesys: "Null values do not fall back to defaults."
    output = resolve({**FULL_ANSWER, "rule": None})

    with pytest.raises(ValidationError):
        validate_output(output)
