"""Sealing sensitive values for a shared store (router.store.seal)."""

from __future__ import annotations

import orjson

from router.sensitive import compile_paths
from router.store.seal import SEALED, Sealer

PATHS = compile_paths(["state.card_number", "conversation.from_number"])
SECRET = "0123456789abcdef-secret"


def test_a_sealed_value_holds_no_plain_text_and_opens_again_with_the_secret() -> None:
    sealer = Sealer(SECRET, lambda: PATHS)
    state = {"card_number": "4929118123456781", "tier": "gold"}
    sealed = sealer.seal("state", state)
    assert b"4929118123456781" not in orjson.dumps(sealed)
    assert sealed["tier"] == "gold"
    assert set(sealed["card_number"]) == {SEALED}
    assert Sealer(SECRET, lambda: PATHS).open(sealed, "state") == state


def test_each_value_gets_its_own_nonce() -> None:
    sealer = Sealer(SECRET, lambda: PATHS)
    first = sealer.seal("state", {"card_number": "4111"})
    second = sealer.seal("state", {"card_number": "4111"})
    assert first != second


def test_another_secret_or_another_path_does_not_open_it() -> None:
    sealed = Sealer(SECRET, lambda: PATHS).seal("state", {"card_number": "4111", "x": 1})
    assert Sealer("another-secret-0123456789", lambda: PATHS).open(sealed, "state") == {"x": 1}
    # Moved under another path (the path is authenticated with it):
    moved = {"email": sealed["card_number"]}
    assert Sealer(SECRET, lambda: PATHS).open(moved, "state") == {}


def test_without_a_secret_sensitive_values_are_left_out() -> None:
    sealer = Sealer("", lambda: PATHS)
    assert not sealer.encrypts
    assert sealer.seal("state", {"card_number": "4111", "tier": "gold"}) == {"tier": "gold"}


def test_cached_records_are_sealed_per_namespace_camel_case_included() -> None:
    sealer = Sealer(SECRET, lambda: PATHS)
    record = {"state": {"tier": "gold"}, "conversation": {"fromNumber": "+44", "channel": "v"}}
    sealed = sealer.seal_record(record)
    assert sealed["state"] is record["state"]
    assert b"+44" not in orjson.dumps(sealed)
    assert sealer.open(sealed, "") == record


def test_nothing_sensitive_is_stored_as_it_is() -> None:
    sealer = Sealer(SECRET, lambda: PATHS)
    state = {"tier": "gold"}
    assert sealer.seal("state", state) is state
