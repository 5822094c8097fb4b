"""Canonical encoding: round trips, one encoding per value, clear refusals."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode, packb
from ledger.errors import InvalidEncoding

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=64)
    | st.text(max_size=32)
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip_is_identity(value: object) -> None:
    assert decode(encode(value)) == value


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 10), max_size=8))
def test_map_key_order_does_not_change_the_bytes(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert encode(mapping) == encode(reversed_mapping)


def test_keys_are_sorted_in_the_bytes() -> None:
    assert encode({"b": 1, "a": 2}) == msgpack.packb({"a": 2, "b": 1})


@pytest.mark.parametrize(
    "bad",
    [
        1.5,
        {1: 2},
        {"a": 0.0},
        [float("nan")],
        object(),
        2**64,
        -(2**63) - 1,
        [[1, [2, 3.0]]],
        {"a": [b"x", {"b": [2**64]}]},
        ("a", None, True, {"k": {1}}),
    ],
)
def test_encode_refuses_floats_and_other_types(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode(bad)


@pytest.mark.parametrize(
    "data, why",
    [
        (msgpack.packb(1.5), "float"),
        (msgpack.packb({"b": 1, "a": 2}), "unsorted keys"),
        (b"\xd1\x00\x01", "int16 where a fixint is canonical"),
        (msgpack.packb(msgpack.ExtType(5, b"x")), "ext type"),
        (msgpack.packb(1) + b"\x00", "trailing bytes"),
        (b"\xc1", "reserved byte"),
        (b"", "empty input"),
        (b"\x92\x01", "truncated array"),
        (msgpack.packb({1: 2}, strict_types=False), "int map key"),
        (b"\xa1\xff", "invalid utf-8"),
    ],
)
def test_decode_refuses_non_canonical_input(data: bytes, why: str) -> None:
    with pytest.raises(InvalidEncoding):
        decode(data)


def test_decode_refuses_oversize_input() -> None:
    with pytest.raises(InvalidEncoding):
        decode(encode(b"x" * 100), max_bytes=50)


def test_nesting_is_allowed_to_the_limit_and_refused_beyond() -> None:
    from ledger.encoding import MAX_DEPTH

    def nested(depth: int) -> object:
        value: object = 0
        for _ in range(depth):
            value = [value]
        return value

    assert decode(encode(nested(MAX_DEPTH))) == nested(MAX_DEPTH)
    with pytest.raises(ValueError):
        encode(nested(MAX_DEPTH + 1))


def test_decode_refuses_deep_nesting() -> None:
    data = b"\x91" * 100 + b"\x00"
    with pytest.raises(InvalidEncoding):
        decode(data)


@given(st.binary(max_size=256))
def test_any_bytes_decode_or_raise_invalid_encoding(data: bytes) -> None:
    try:
        value = decode(data)
    except InvalidEncoding:
        return
    assert encode(value) == data


def test_the_kept_packer_starts_clean_after_a_failed_pack() -> None:
    for bad in ([1, object()], [1, 2**70]):
        with pytest.raises((TypeError, OverflowError)):
            packb(bad)
        assert packb([5, b"a"]) == msgpack.packb([5, b"a"], use_bin_type=True)
