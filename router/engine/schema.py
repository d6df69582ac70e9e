"""The JSON Schema (draft 2020-12) of rule files, for editor completion and hover docs."""

from __future__ import annotations

from typing import Any

from router.engine.model import FACT_PATH_PATTERN, RuleFileModel

_SCALAR = {"type": ["string", "number", "boolean"]}
_NUMBER = {"type": "number"}

OPERATOR_DOCS: dict[str, tuple[str, dict[str, Any]]] = {
    "eq": (
        "Equal. A number or true/false also matches the same value written as text "
        '(3 matches "3" and "3.0"; true matches "true").',
        _SCALAR,
    ),
    "ne": ("Present and not equal (a missing value does not match).", _SCALAR),
    "in": (
        "Equal to one of the listed values.",
        {"type": "array", "items": _SCALAR, "minItems": 1},
    ),
    "not_in": (
        "Present and equal to none of the listed values.",
        {"type": "array", "items": _SCALAR, "minItems": 1},
    ),
    "gt": ('Greater than (numbers, or text that reads as a number such as "1500").', _NUMBER),
    "gte": ("Greater than or equal.", _NUMBER),
    "lt": ("Less than.", _NUMBER),
    "lte": ("Less than or equal.", _NUMBER),
    "between": (
        "Between two numbers, both ends included: [low, high].",
        {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2},
    ),
    "contains": ("Text contains this substring, or a list contains this item.", _SCALAR),
    "starts_with": ("Text starts with this.", {"type": "string"}),
    "ends_with": ("Text ends with this.", {"type": "string"}),
    "matches": (
        "Text matches this RE2 regular expression (searched anywhere; linear time).",
        {"type": "string"},
    ),
    "exists": (
        "true: the path is present (null counts); false: it is missing.",
        {"type": "boolean"},
    ),
    "empty": ('true: missing, null, "", [] or {}; false: anything else.', {"type": "boolean"}),
    "ignore_case": (
        "Compare text ignoring case (Unicode case folding) for eq, ne, in, not_in, "
        "contains, starts_with, ends_with and matches.",
        {"type": "boolean"},
    ),
}

_PATH_PATTERN = FACT_PATH_PATTERN


def _definitions() -> dict[str, Any]:
    matcher = {
        "description": "How the value at a path must look: a value (equals), a list (one of), "
        "or a mapping of operators that must all hold.",
        "anyOf": [
            {**_SCALAR, "description": "Equals this value."},
            {
                "type": "array",
                "items": _SCALAR,
                "minItems": 1,
                "description": "One of these values.",
            },
            {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    name: {**schema, "description": doc}
                    for name, (doc, schema) in OPERATOR_DOCS.items()
                },
            },
        ],
    }
    condition = {
        "type": "object",
        "description": "Every entry must hold. Keys are paths (namespace.key: handoff, state, "
        "conversation, context) or the combinators all, any, not, during, outside.",
        "properties": {
            "all": {
                "type": "array",
                "items": {"$ref": "#/$defs/Condition"},
                "minItems": 1,
                "description": "Every listed condition holds.",
            },
            "any": {
                "type": "array",
                "items": {"$ref": "#/$defs/Condition"},
                "minItems": 1,
                "description": "At least one listed condition holds.",
            },
            "not": {
                "$ref": "#/$defs/Condition",
                "description": "The condition does not hold "
                "(unknown stays unknown when a source failed).",
            },
            "during": {"type": "string", "description": "A named schedule is open now."},
            "outside": {"type": "string", "description": "A named schedule is closed now."},
        },
        "patternProperties": {_PATH_PATTERN: {"$ref": "#/$defs/Matcher"}},
        "additionalProperties": False,
    }
    return {"Condition": condition, "Matcher": matcher}


def rule_file_schema() -> dict[str, Any]:
    """The whole schema, ready to dump as JSON."""
    schema = RuleFileModel.model_json_schema(mode="validation")
    definitions = schema.setdefault("$defs", {})
    definitions.update(_definitions())
    when = definitions["RuleModel"]["properties"]["when"]
    when.pop("anyOf", None)
    when["anyOf"] = [{"$ref": "#/$defs/Condition"}, {"type": "null"}]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://polyai-router.invalid/schemas/rule-file.json",
        **schema,
    }
