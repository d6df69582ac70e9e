"""The stored-value codec: compact JSON, exact for numbers orjson cannot write, never pickle."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.store import codec

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_every_json_value_comes_back_equal(value: object) -> None:
    assert codec.loads(codec.dumps(value)) == value


def test_plain_values_are_plain_compact_json() -> None:
    assert codec.dumps({"a": [1, "x"]}) == b'{"a":[1,"x"]}'


def test_numbers_orjson_cannot_write_come_back_exactly() -> None:
    body = codec.dumps({"big": -(2**80), "inf": -math.inf, "list": [math.nan]})
    value = codec.loads(body)
    assert value["big"] == -(2**80)
    assert value["inf"] == -math.inf
    assert math.isnan(value["list"][0])


def test_a_kept_value_is_sized_to_itself() -> None:
    body = codec.dumps({"queue": "billing"})
    assert len(body) == len(b'{"queue":"billing"}')


def test_bytes_it_did_not_write_are_refused() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        codec.loads(b"\x80\x05not json")
