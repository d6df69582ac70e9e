"""Recorded facts: sensitive paths removed (and named), everything else kept as it was."""

from __future__ import annotations

from typing import Any

from router.records import recorded_facts, sensitive_paths


def facts(**namespaces: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"handoff": {}, "state": {}, "conversation": {}, "context": {}}
    base.update(namespaces)
    return base


def test_the_caller_number_is_never_recorded_by_default() -> None:
    given = facts(context={"ani": "+447700900123", "dnis": "+442071234567"})
    kept, removed = recorded_facts(given)
    assert kept["context"] == {"dnis": "+442071234567"}
    assert removed == ["context.ani"]
    assert given["context"]["ani"] == "+447700900123"  # the decision's own facts untouched


def test_namespaces_with_nothing_sensitive_are_the_callers_own_objects() -> None:
    given = facts(state={"tier": "gold"}, context={"dnis": "1"})
    kept, removed = recorded_facts(given)
    assert removed == []
    assert kept["state"] is given["state"]
    assert kept["context"] is given["context"]


def test_a_failed_source_is_recorded_as_null() -> None:
    kept, _ = recorded_facts(facts(state=None))
    assert kept == {"handoff": {}, "state": None, "conversation": {}, "context": {}}


def test_exact_prefix_and_subtree_patterns() -> None:
    paths = sensitive_paths(("state.card_number", "state.pan_*", "context.sip.*"))
    given = facts(
        state={"card_number": "4111", "pan_last4": "1111", "pan": "x", "tier": "gold"},
        context={"sip": {"from": "sip:alice", "headers": {"x": "y"}}, "dnis": "1"},
    )
    kept, removed = recorded_facts(given, paths)
    assert kept["state"] == {"pan": "x", "tier": "gold"}
    assert kept["context"] == {"sip": {}, "dnis": "1"}
    assert sorted(removed) == [
        "context.sip.from",
        "context.sip.headers",
        "state.card_number",
        "state.pan_last4",
    ]


def test_a_nested_exact_path_copies_only_the_mappings_on_its_way() -> None:
    paths = sensitive_paths(("state.customer.email",))
    other = {"a": 1}
    given = facts(state={"customer": {"email": "a@example.com", "tier": "gold"}, "other": other})
    kept, removed = recorded_facts(given, paths)
    assert kept["state"] == {"customer": {"tier": "gold"}, "other": {"a": 1}}
    assert kept["state"]["other"] is other
    assert removed == ["state.customer.email"]
    assert given["state"]["customer"]["email"] == "a@example.com"


def test_a_conversation_key_matches_by_its_snake_case_name_too() -> None:
    paths = sensitive_paths(("conversation.from_number",))
    kept, removed = recorded_facts(facts(conversation={"fromNumber": "+44", "lang": "en"}), paths)
    assert kept["conversation"] == {"lang": "en"}
    assert removed == ["conversation.fromNumber"]
