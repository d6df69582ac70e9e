"""The Twilio Studio flow fragment and the TaskRouter workflow example.

The workflow may only route on what the router puts in task attributes (contract §7.2),
and only on queues the example rules can produce; the Studio flow must be a well-formed
flow definition that sends the router what the Studio endpoint reads and enqueues with
the widget outputs the endpoint returns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yaml

from tests.integrations.conftest import INTEGRATIONS, PLATFORM_FIXTURES, REPO, load_json

FLOW: dict[str, Any] = load_json(INTEGRATIONS / "twilio" / "studio-flow.json")
WORKFLOW: dict[str, Any] = load_json(INTEGRATIONS / "twilio" / "taskrouter-workflow.json")
RULES = REPO / "rules" / "default.yaml"

# Contract §7.2: the task attributes the router always sends.
FIXED_TASK_ATTRIBUTES = {
    "router_queue",
    "router_queue_sid",
    "call_type",
    "skills",
    "priority",
    "rule",
    "decision_id",
    "degraded",
}
# Contract §7.2: the Studio endpoint's answer keys (before lifted attributes).
STUDIO_ANSWER_KEYS = {
    "queue",
    "queue_sid",
    "workflow_sid",
    "label",
    "priority",
    "skills",
    "rule",
    "outcome",
    "degraded",
    "decision_id",
    "task_attributes",
}
STUDIO_REQUEST_FIELDS = ["conversation_id", "shared_id", "call_sid", "from", "to"]
TWILIO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EMERGENCY_QUEUE = "fallback"  # ROUTER_EMERGENCY_QUEUE's default, and the flow's fallback path


def rule_file_routes(path: Path) -> list[dict[str, Any]]:
    """Every route a rule file can produce: rules' routes, their splits, default, fallback."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    routes: list[dict[str, Any]] = []
    for rule in document.get("rules", []):
        route = rule["route"]
        routes.append(route)
        routes.extend({**route, **share} for share in route.get("split", []))
    routes.extend(document[key] for key in ("default", "fallback") if key in document)
    return routes


ROUTES = rule_file_routes(RULES)
QUEUES = {route["queue"] for route in ROUTES if "queue" in route} | {EMERGENCY_QUEUE}
LIFTED = {
    name for route in ROUTES for name in route.get("attributes", {}) if TWILIO_NAME.fullmatch(name)
}
TASK_ATTRIBUTES = FIXED_TASK_ATTRIBUTES | LIFTED

# TaskRouter expression tokens (twilio.com/docs/taskrouter/expression-syntax).
TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*"|'[^']*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|>|<|\(|\)|\[|\]|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "has", "contains", "true", "false", "null"}


def tokens(expression: str) -> list[tuple[str, str]]:
    """The expression's tokens as (kind, text); fails on anything TaskRouter would not read."""
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        assert match is not None, f"cannot read {expression[position:]!r} in {expression!r}"
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def identifiers(expression: str) -> list[str]:
    """The attribute references in an expression (keywords and constants left out)."""
    return [
        text for kind, text in tokens(expression) if kind == "name" and text.lower() not in KEYWORDS
    ]


def router_queue_constants(expression: str) -> list[str]:
    """The queue names an expression compares ``router_queue`` with (``==`` or ``IN [...]``)."""
    found: list[str] = []
    toks = tokens(expression)
    for index, (kind, text) in enumerate(toks):
        if kind != "name" or text.removeprefix("task.") != "router_queue":
            continue
        rest = toks[index + 1 :]
        if rest[:1] == [("op", "==")]:
            found.append(rest[1][1][1:-1])
        elif rest[:1] and rest[0][1].upper() == "IN":
            for kind2, text2 in rest[2:]:
                if text2 == "]":
                    break
                if kind2 == "string":
                    found.append(text2[1:-1])
    return found


def filters() -> list[dict[str, Any]]:
    filters_: list[dict[str, Any]] = WORKFLOW["task_routing"]["filters"]
    return filters_


def all_targets() -> list[dict[str, Any]]:
    targets = [target for f in filters() for target in f["targets"]]
    return [*targets, WORKFLOW["task_routing"]["default_filter"]]


def test_the_example_rules_lift_the_attribute_the_workflow_uses() -> None:
    assert "x_tier" in LIFTED
    assert "fraud-24x7" in QUEUES


@pytest.mark.parametrize("index", range(len(WORKFLOW["task_routing"]["filters"])))
def test_filter_expressions_read_only_router_task_attributes(index: int) -> None:
    workflow_filter = filters()[index]
    names = identifiers(workflow_filter["expression"])

    assert names
    for name in names:
        assert name.removeprefix("task.").split(".")[0] in TASK_ATTRIBUTES, name


@pytest.mark.parametrize("index", range(len(WORKFLOW["task_routing"]["filters"])))
def test_filters_name_queues_the_rules_can_produce(index: int) -> None:
    queues = router_queue_constants(filters()[index]["expression"])

    assert set(queues) <= QUEUES


def test_the_workflow_routes_on_router_queue_and_priority() -> None:
    every_name = {name for f in filters() for name in identifiers(f["expression"])}

    assert {"router_queue", "priority"} <= every_name
    assert router_queue_constants('router_queue == "fraud-24x7"') == ["fraud-24x7"]


def test_target_expressions_read_task_attributes_the_router_sends() -> None:
    expressions = [t["expression"] for t in all_targets() if "expression" in t]

    assert expressions
    for expression in expressions:
        for name in identifiers(expression):
            scope, _, attribute = name.partition(".")
            assert scope in {"task", "worker"}, name
            if scope == "task":
                assert attribute.split(".")[0] in TASK_ATTRIBUTES, name


def test_targets_name_task_queue_sids() -> None:
    for target in all_targets():
        assert re.fullmatch(r"WQ[0-9a-f]{32}", target["queue"]), target


def studio_states() -> dict[str, dict[str, Any]]:
    return {state["name"]: state for state in FLOW["states"]}


def render_liquid(template: str, call: dict[str, str]) -> str:
    """The value Studio gives a parameter that reads ``{{trigger.call.Name}}``: the
    incoming call's parameter, or empty text when the call has none."""
    return re.sub(
        r"\{\{\s*trigger\.call\.([\w-]+)\s*\}\}", lambda m: call.get(m.group(1), ""), template
    )


def test_studio_flow_is_a_flow_definition() -> None:
    states = studio_states()

    assert FLOW["initial_state"] in states
    assert states[FLOW["initial_state"]]["type"] == "trigger"
    for state in FLOW["states"]:
        for transition in state["transitions"]:
            assert transition.get("next", FLOW["initial_state"]) in states, transition
    trigger = states[FLOW["initial_state"]]
    [incoming_call] = [t for t in trigger["transitions"] if t["event"] == "incomingCall"]
    assert states[incoming_call["next"]]["type"] == "make-http-request"


def test_studio_asks_the_router_with_form_fields_and_basic_auth() -> None:
    route = studio_states()["route"]
    properties = route["properties"]
    url = urlsplit(properties["url"])

    assert route["type"] == "make-http-request"
    assert properties["method"] == "POST"
    assert properties["content_type"].startswith("application/x-www-form-urlencoded")
    assert url.scheme == "https"
    assert url.path == "/v1/platforms/twilio/studio"
    assert url.username
    assert url.password
    assert "ruleset" in dict(parse_qsl(url.query))
    assert [p["key"] for p in properties["parameters"]] == STUDIO_REQUEST_FIELDS


@pytest.mark.parametrize(
    ("webhook", "request_fixture"),
    [
        ("voice-webhook-sip.form", "studio-make-http-request.form"),
        ("voice-webhook.form", "studio-make-http-request-no-ids.form"),
    ],
)
def test_studio_sends_what_the_fixture_says(webhook: str, request_fixture: str) -> None:
    call = dict(
        parse_qsl((PLATFORM_FIXTURES / "twilio" / webhook).read_text(), keep_blank_values=True)
    )
    parameters = studio_states()["route"]["properties"]["parameters"]

    body = urlencode([(p["key"], render_liquid(p["value"], call)) for p in parameters])

    assert body == (PLATFORM_FIXTURES / "twilio" / request_fixture).read_text()


def test_studio_enqueues_with_the_router_answer() -> None:
    states = studio_states()
    route = states["route"]
    success = next(t["next"] for t in route["transitions"] if t["event"] == "success")
    enqueue = states[success]
    properties = enqueue["properties"]

    assert enqueue["type"] == "enqueue-call"
    assert properties["task_attributes"] == "{{widgets.route.parsed.task_attributes}}"
    assert properties["workflow_sid"] == "{{widgets.route.parsed.workflow_sid}}"
    for text in json.dumps(FLOW["states"]).split("widgets.")[1:]:
        widget, _, rest = text.partition(".")
        assert widget in states
        if rest.startswith("parsed."):
            key = re.match(r"parsed\.(\w+)", rest)
            assert key is not None
            assert key.group(1) in STUDIO_ANSWER_KEYS


def test_studio_falls_back_when_the_router_fails_or_enqueueing_fails() -> None:
    states = studio_states()
    failed = next(t["next"] for t in states["route"]["transitions"] if t["event"] == "failed")
    not_enqueued = next(
        t["next"] for t in states["enqueue"]["transitions"] if t["event"] == "failedToEnqueue"
    )
    fallback = states[failed]

    assert not_enqueued == failed
    assert fallback["type"] == "enqueue-call"
    assert re.fullmatch(r"WW[0-9a-f]{32}", fallback["properties"]["workflow_sid"])
    attributes = json.loads(fallback["properties"]["task_attributes"])
    assert attributes["router_queue"] == EMERGENCY_QUEUE
    assert attributes["degraded"] is True
    assert set(attributes) <= TASK_ATTRIBUTES
    assert len(fallback["properties"]["task_attributes"]) <= 1024
