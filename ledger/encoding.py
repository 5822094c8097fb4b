"""Canonical binary encoding (deterministic msgpack).

One value has exactly one encoding: map keys are str and sorted, integers use
msgpack's shortest form, bytes use the bin family and text the str family, and
floats, ext types and non-string map keys are refused. `decode` re-encodes what
it parsed and refuses input that is not byte-identical to the canonical form,
so a signature or hash over encoded bytes can never be malleated.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from ledger.errors import InvalidEncoding

MAX_DEPTH = 32
MAX_INT = 2**64 - 1
MIN_INT = -(2**63)

Value = None | bool | int | bytes | str | list[Any] | tuple[Any, ...] | dict[str, Any]


_PACKERS = threading.local()


def packb(value: Any) -> bytes:
    """msgpack.packb(value, use_bin_type=True) with a Packer kept per thread: packb
    builds a new Packer on every call, which costs as much as packing a transaction."""
    try:
        packer = _PACKERS.packer
    except AttributeError:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(value)
    return packed


def encode(value: Any) -> bytes:
    """Encode `value` canonically; raise TypeError/ValueError for our own misuse."""
    if not _is_canonical_tree(value):
        value = _canonicalise(value, 0)
    return packb(value)


def decode(data: bytes, max_bytes: int = 16 * 1024 * 1024) -> Any:
    """Decode canonical bytes; any other input raises InvalidEncoding."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidEncoding("input is not bytes")
    if len(data) > max_bytes:
        raise InvalidEncoding(f"input of {len(data)} bytes exceeds {max_bytes}")
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, ext_hook=refuse_ext
        )
    except InvalidEncoding:
        raise
    except Exception as exc:  # msgpack raises many types for bad bytes
        raise InvalidEncoding(f"not msgpack: {type(exc).__name__}") from None
    try:
        if not _is_canonical_tree(value):
            raise InvalidEncoding("map keys are not sorted")
    except (TypeError, ValueError) as exc:
        raise InvalidEncoding(f"not canonical: {exc}") from None
    if packb(value) != bytes(data):
        raise InvalidEncoding("not the canonical encoding")
    return value


def refuse_ext(code: int, data: bytes) -> Any:
    """msgpack ext_hook: no canonical encoding holds an ext type."""
    raise InvalidEncoding(f"ext type {code} is not allowed")


def _is_canonical_tree(value: Any) -> bool:
    """Walk without recursion: raise for values we never encode (floats, big
    ints, non-str keys, deep nesting); return False if a map's keys need sorting.
    Scalars are checked where their container is iterated, never pushed: every
    transaction's payload is walked once when it is decoded."""
    sorted_maps = True
    stack: list[tuple[Any, int]] = []
    push, pop = stack.append, stack.pop
    children: Any = (value,)
    depth = -1
    while True:
        for child in children:
            kind = type(child)
            if kind is str or kind is bytes or kind is bool or child is None:
                continue
            if kind is int:
                if not MIN_INT <= child <= MAX_INT:
                    raise ValueError("integer out of 64-bit range")
                continue
            push((child, depth + 1))
        if not stack:
            return sorted_maps
        item, depth = pop()
        kind = type(item)
        if depth >= MAX_DEPTH:
            raise ValueError("nesting deeper than MAX_DEPTH")
        if kind is list or kind is tuple:
            children = item
        elif kind is dict:
            keys = list(item)
            if not all(type(k) is str for k in keys):
                raise TypeError("map keys must be str")
            sorted_maps = sorted_maps and keys == sorted(keys)
            children = item.values()
        else:
            raise TypeError(f"type {kind.__name__} is not encodable (floats are refused)")


def _canonicalise(value: Any, depth: int) -> Any:
    """A copy of `value` with every map's keys sorted."""
    if isinstance(value, list | tuple):
        return [_canonicalise(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {key: _canonicalise(value[key], depth + 1) for key in sorted(value)}
    return value
