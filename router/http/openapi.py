"""The OpenAPI 3.1 document of the HTTP API, generated from the models the server validates with.

``GET /openapi.json`` serves it; ``docs/openapi.json`` is a committed copy
(:func:`write_openapi`, ``python -m router.http.openapi``) that a test keeps equal to
what this module generates, so the published description cannot drift from the server.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from router import __api_version__, __version__
from router.http.models import (
    ConversationId,
    ErrorResponse,
    ExplainRequest,
    ExplainResponse,
    HealthResponse,
    PushAccepted,
    PushEvent,
    ReadyResponse,
    ReplayRequest,
    ReplayResponse,
    RouteRequest,
    RouteResponse,
    RulesetsResponse,
)
from router.platforms.models import (
    ConnectAnswer,
    ConnectEvent,
    GenesysAnswer,
    GenesysRequest,
    StudioAnswer,
    StudioRequest,
    TwilioVoiceRequest,
)

API_VERSION = __api_version__
"""The contract version this document describes (the package has its own, ``router --version``)."""

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

_REF = "#/components/schemas/{model}"
_MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (RouteRequest, "validation"),
    (ExplainRequest, "validation"),
    (PushEvent, "validation"),
    (ReplayRequest, "validation"),
    (RouteResponse, "serialization"),
    (ExplainResponse, "serialization"),
    (RulesetsResponse, "serialization"),
    (ReadyResponse, "serialization"),
    (HealthResponse, "serialization"),
    (PushAccepted, "serialization"),
    (ReplayResponse, "serialization"),
    (ErrorResponse, "serialization"),
    (ConnectEvent, "validation"),
    (ConnectAnswer, "serialization"),
    (TwilioVoiceRequest, "validation"),
    (StudioRequest, "validation"),
    (StudioAnswer, "serialization"),
    (GenesysRequest, "validation"),
    (GenesysAnswer, "serialization"),
)

_ERROR_TEXT = {
    "400": "The body is not JSON (`malformed_json`).",
    "401": "No API key, or not a valid one (`missing_api_key`, `invalid_api_key`, "
    "`invalid_signature`).",
    "403": "The key may not use that ruleset (`ruleset_forbidden`), lacks the role the "
    "endpoint needs (`forbidden_role`), or may read no decision for that id "
    "(`decision_forbidden`).",
    "401-platform": "No API key, or not a valid one (`missing_api_key`, `invalid_api_key`); "
    'carries `WWW-Authenticate: Basic realm="router"`, after which Twilio sends the '
    "credentials of a URL.",
    "403-twilio": "The key may not use that ruleset (`ruleset_forbidden`), or "
    "`X-Twilio-Signature` does not match the request (`invalid_signature`).",
    "404": "Nothing there (`not_found`, `ruleset_not_found`, `decision_not_found`).",
    "413": "The body is over ROUTER_MAX_BODY_BYTES (`body_too_large`).",
    "415": "The body is not `application/json` (`unsupported_media_type`).",
    "422": "The body or a parameter is not valid; `details` names each bad field "
    "(`validation_error`), or, for `/v1/replay`, each problem of the candidate rule file "
    "as `path` = `file:line:col` (`invalid_rules`).",
    "503": "Not ready (`not_ready`: no valid version of the ruleset is loaded) or the "
    "shared store is unavailable (`store_unavailable`).",
}

_KEYED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}, {"basicAuth": []}]
_TWILIO: list[dict[str, list[str]]] = [*_KEYED, {"twilioSignature": []}]
_PUBLIC: list[dict[str, list[str]]] = []


def _json(schema_ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=schema_ref)}}}


def _request_id_header() -> dict[str, Any]:
    return {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def _ok(status: str, model: str, description: str) -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "headers": _request_id_header(),
            "content": _json(model),
        }
    }


def _errors(*statuses: str, media: str = "application/json") -> dict[str, Any]:
    """Error answers by status; a status may name its text as ``"401-platform"``."""
    content = _json("ErrorResponse") if media == "application/json" else {media: _TWIML_SCHEMA}
    return {
        status.split("-")[0]: {
            "description": _ERROR_TEXT[status],
            "headers": _request_id_header(),
            "content": content,
        }
        for status in statuses
    }


_TWIML_SCHEMA = {"schema": {"type": "string", "description": "TwiML (XML)."}}
_PLATFORM_ERRORS = ("400", "401-platform", "403", "413")


def _form_and_json(model: str) -> dict[str, Any]:
    ref = {"$ref": _REF.format(model=model)}
    return {
        "application/x-www-form-urlencoded": {"schema": ref},
        "application/json": {"schema": ref},
    }


def _ruleset_query(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "ruleset",
            "in": "query",
            "required": False,
            "description": "The ruleset that decides (default: the default ruleset). One "
            "that is not loaded gets the emergency answer (ROUTER_EMERGENCY_QUEUE).",
            "schema": {"type": "string"},
        },
        *more,
    ]


def _query_id(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"The {name}, when the TwiML that sends the call here knows it.",
        "schema": {"type": "string"},
    }


def _platform_paths() -> dict[str, Any]:
    """The platform endpoints of contract §7."""
    return {
        "/v1/platforms/amazon-connect": {
            "post": _operation(
                "platformAmazonConnect",
                "Amazon Connect: the Lambda invocation event in, a flat string map out.",
                {
                    **_ok(
                        "200",
                        "ConnectAnswer",
                        "The decision, flat (also with no ruleset "
                        "loaded: the emergency queue, outcome fallback, degraded true).",
                    ),
                    **_errors(*_PLATFORM_ERRORS),
                },
                body="ConnectEvent",
                body_required=False,
                parameters=_ruleset_query(),
            )
        },
        "/v1/platforms/twilio/voice": {
            "post": _operation(
                "platformTwilioVoice",
                "Twilio Voice webhook: the call's parameters in, TwiML that enqueues it out.",
                {
                    "200": {
                        "description": "TwiML: `<Enqueue workflowSid>` with a `<Task>` of task "
                        "attributes when the ruleset maps a workflow, else `<Enqueue>queue`. "
                        "Also with no ruleset loaded (ROUTER_EMERGENCY_QUEUE).",
                        "headers": _request_id_header(),
                        "content": {"text/xml": _TWIML_SCHEMA},
                    },
                    **_errors("401-platform", "403-twilio", "413", media="text/xml"),
                },
                security=_TWILIO,
                parameters=_ruleset_query(_query_id("conversation_id"), _query_id("shared_id")),
                form="TwilioVoiceRequest",
            )
        },
        "/v1/platforms/twilio/studio": {
            "post": _operation(
                "platformTwilioStudio",
                "Twilio Studio's Make HTTP Request widget: its parameters in, flat JSON out.",
                {
                    **_ok("200", "StudioAnswer", "The decision, every value a string."),
                    **_errors("400", "401-platform", "403-twilio", "413"),
                },
                security=_TWILIO,
                parameters=_ruleset_query(),
                form="StudioRequest",
                form_or_json=True,
            )
        },
        "/v1/platforms/genesys": {
            "post": _operation(
                "platformGenesys",
                "Genesys Cloud data action: its request in, a fixed key set with no nulls out.",
                {
                    **_ok("200", "GenesysAnswer", "The decision."),
                    **_errors(*_PLATFORM_ERRORS),
                },
                body="GenesysRequest",
                body_required=False,
                parameters=_ruleset_query(),
            )
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    security: list[dict[str, list[str]]] = _KEYED,
    body: str | None = None,
    body_required: bool = True,
    form: str | None = None,
    form_or_json: bool = False,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/XRequestID"}, *(parameters or [])],
        "security": security,
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _json(body)}
    if form is not None:
        content = (
            _form_and_json(form)
            if form_or_json
            else {
                "application/x-www-form-urlencoded": {"schema": {"$ref": _REF.format(model=form)}}
            }
        )
        op["requestBody"] = {"required": False, "content": content}
    return op


def _paths() -> dict[str, Any]:
    id_schema = TypeAdapter(ConversationId).json_schema()
    decision_errors = _errors("400", "401", "403", "404", "413", "415", "422", "503")
    return {
        "/v1/route": {
            "post": _operation(
                "route",
                "Decide where a transferred call goes, and store the decision.",
                {**_ok("200", "RouteResponse", "The decision."), **decision_errors},
                body="RouteRequest",
            )
        },
        "/v1/explain": {
            "post": _operation(
                "explain",
                "The decision plus a per-rule trace; records nothing.",
                {**_ok("200", "ExplainResponse", "The decision and trace."), **decision_errors},
                body="ExplainRequest",
            )
        },
        "/v1/decisions/{conversation_id}": {
            "get": _operation(
                "decisionByConversation",
                "The latest decision made for a conversation id.",
                {
                    **_ok("200", "RouteResponse", "The stored decision."),
                    **_errors("401", "403", "404", "422", "503"),
                },
                parameters=[
                    {"name": "conversation_id", "in": "path", "required": True, "schema": id_schema}
                ],
            )
        },
        "/v1/decisions": {
            "get": _operation(
                "decisionBySharedId",
                "The latest decision made for a shared id (the platform's call id).",
                {
                    **_ok("200", "RouteResponse", "The stored decision."),
                    **_errors("401", "403", "404", "422", "503"),
                },
                parameters=[
                    {"name": "shared_id", "in": "query", "required": True, "schema": id_schema}
                ],
            )
        },
        "/v1/rulesets": {
            "get": _operation(
                "rulesets",
                "The rulesets being served (those the key may use) and the last reload error.",
                {**_ok("200", "RulesetsResponse", "The rulesets."), **_errors("401")},
            )
        },
        "/v1/replay": {
            "post": {
                **_operation(
                    "replay",
                    "Decide the store's decision records again with a candidate rule file: "
                    "how many would change, grouped by old and new rule and queue.",
                    {
                        **_ok("200", "ReplayResponse", "What would change."),
                        **_errors("400", "401", "403", "413", "415", "422", "503"),
                    },
                    parameters=[
                        {
                            "name": "ruleset",
                            "in": "query",
                            "required": False,
                            "description": "With a YAML body: the candidate's name when the "
                            "file has no `ruleset:` key.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "description": "With a YAML body: only records this recent "
                            "(`24h`, `7d`, `1h30m`).",
                            "schema": {"type": "string"},
                        },
                    ],
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        **_json("ReplayRequest"),
                        "application/yaml": {"schema": {"type": "string"}},
                        "text/yaml": {"schema": {"type": "string"}},
                    },
                },
            }
        },
        "/v1/events/polyai": {
            "post": _operation(
                "pushEvent",
                "Push a conversation's handoff data, state or record ahead of the transfer.",
                {
                    **_ok("202", "PushAccepted", "Stored: every replica sharing the store has it."),
                    **_errors("400", "401", "413", "415", "422", "503"),
                },
                security=[*_KEYED, {"webhookSignature": []}],
                body="PushEvent",
            )
        },
        **_platform_paths(),
        "/healthz": {
            "get": _operation(
                "healthz",
                "200 while the process serves.",
                _ok("200", "HealthResponse", "Serving."),
                security=_PUBLIC,
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "Ready while the default ruleset serves and no ruleset that served since "
                "start-up is lost (a new invalid file or a store outage does not fail "
                "readiness).",
                {
                    **_ok("200", "ReadyResponse", "Ready."),
                    **_ok("503", "ReadyResponse", "Not ready; `reason` says why."),
                },
                security=_PUBLIC,
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics (text exposition format).",
                {
                    "200": {
                        "description": "Metric families prefixed `router_`.",
                        "headers": _request_id_header(),
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                security=_PUBLIC,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document.",
                {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "headers": _request_id_header(),
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                security=_PUBLIC,
            )
        },
    }


def build_openapi() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    _, definitions = models_json_schema(_MODELS, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "router",
            "version": API_VERSION,
            "description": "Decides which contact-centre queue a PolyAI voice agent's "
            "transferred call goes to, from YAML routing rules, within a latency budget. "
            'Every error answer is `{"error": {"code", "message", "details"}}`. '
            f"`info.version` is the API contract's version; the package serving it is "
            f"polyai-router {__version__} (`router --version`).",
            "x-package-version": __version__,
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from ROUTER_API_KEYS.",
                },
                "apiKeyAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "A key from ROUTER_API_KEYS.",
                },
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Any user name, a key from ROUTER_API_KEYS as the password "
                    "(what Twilio Studio and Genesys data actions can send).",
                },
                "twilioSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Twilio-Signature",
                    "description": "Twilio's request signature with ROUTER_TWILIO_AUTH_TOKEN "
                    "(the Twilio endpoints only).",
                },
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Router-Signature",
                    "description": '`t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>." '
                    "followed by the raw body, with ROUTER_WEBHOOK_SECRET>`; refused when t is "
                    "further than ROUTER_WEBHOOK_TOLERANCE_S from the router's clock.",
                },
            },
            "parameters": {
                "XRequestID": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "Echoed back when at most 128 printable characters; "
                    "else a new id is made.",
                    "schema": {"type": "string"},
                }
            },
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id (also `request_id` in every log line).",
                    "schema": {"type": "string"},
                }
            },
        },
    }


@functools.cache
def openapi_bytes() -> bytes:
    """The document as compact JSON (built once per process)."""
    return orjson.dumps(build_openapi())


def openapi_text() -> str:
    """The document as the committed ``docs/openapi.json`` holds it."""
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: Path = DOCS_PATH) -> None:
    """Write the document to ``path`` (default ``docs/openapi.json``)."""
    path.write_text(openapi_text(), encoding="utf-8")


if __name__ == "__main__":
    write_openapi(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_PATH)
