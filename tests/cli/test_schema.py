"""``router schema`` (contract §4): a JSON Schema (draft 2020-12) of rule files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from router.engine.yamlsrc import read_yaml

from ..engine._rules import CONTRACT_EXAMPLE
from ._run import router

OPERATORS = [
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains",
    "starts_with", "ends_with", "matches", "exists", "empty", "ignore_case",
]  # fmt: skip
BUNDLED = sorted((Path(__file__).parents[2] / "rules").glob("*.y*ml"))


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    done = router("schema", cwd=tmp_path_factory.mktemp("schema"))
    assert done.returncode == 0
    return json.loads(done.stdout)


def as_data(text: str | bytes):
    raw = text.encode() if isinstance(text, str) else text
    data, _, problems = read_yaml(raw, "x.yaml")
    assert not problems
    return data


def validator(schema):
    return jsonschema.Draft202012Validator(schema)


def test_the_schema_is_a_valid_draft_2020_12_schema(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_contract_example_validates(schema):
    errors = list(validator(schema).iter_errors(as_data(CONTRACT_EXAMPLE)))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_the_bundled_rule_files_validate(schema, path):
    errors = list(validator(schema).iter_errors(as_data(path.read_bytes())))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def _objects(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_every_operator_has_a_description(schema):
    holders = [
        obj["properties"]
        for obj in _objects(schema)
        if isinstance(obj.get("properties"), dict)
        and {"eq", "gte", "matches"} <= set(obj["properties"])
    ]
    assert holders, "no object in the schema lists the operators"
    for properties in holders:
        for name in OPERATORS:
            assert name in properties, name
            description = properties[name].get("description")
            assert isinstance(description, str), name
            assert description.strip(), name


@pytest.mark.parametrize(
    "text",
    [
        "rules: []\n",  # no default
        "rule: []\ndefault: {queue: g}\n",
        "rules: [{id: a}]\ndefault: {queue: g}\n",  # no route
        "rules: [{id: a, route: {queue: q}, when: {state.x: {gtee: 1}}}]\ndefault: {queue: g}\n",
        "rules: [{id: a, route: {queue: q}, when: {sate.x: 1}}]\ndefault: {queue: g}\n",
        "rules: [{id: a, route: {queue: q, priority: high}}]\ndefault: {queue: g}\n",
        "rules: []\ndefault: {queue: g, attributes: {a: [1]}}\n",
    ],
)
def test_the_schema_rejects_what_check_rejects(schema, text):
    assert list(validator(schema).iter_errors(as_data(text)))


def test_the_schema_is_the_only_output(tmp_path):
    done = router("schema", cwd=tmp_path)
    assert done.stderr == ""
    json.loads(done.stdout)
