"""Canonical binary encoding (deterministic msgpack).

One value has exactly one encoding: map keys are str and sorted, integers use
msgpack's shortest form, bytes use the bin family and text the str family, and
floats, ext types and non-string map keys are refused. `decode` re-encodes what
it parsed and refuses input that is not byte-identical to the canonical form,
so a signature or hash over encoded bytes can never be malleated.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ledger.errors import InvalidEncoding

MAX_DEPTH = 32
MAX_INT = 2**64 - 1
MIN_INT = -(2**63)

Value = None | bool | int | bytes | str | list[Any] | tuple[Any, ...] | dict[str, Any]


def encode(value: Any) -> bytes:
    """Encode `value` canonically; raise TypeError/ValueError for our own misuse."""
    packed: bytes = msgpack.packb(_canonicalise(value, 0), use_bin_type=True)
    return packed


def decode(data: bytes, max_bytes: int = 16 * 1024 * 1024) -> Any:
    """Decode canonical bytes; any other input raises InvalidEncoding."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidEncoding("input is not bytes")
    if len(data) > max_bytes:
        raise InvalidEncoding(f"input of {len(data)} bytes exceeds {max_bytes}")
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, ext_hook=_refuse_ext
        )
    except InvalidEncoding:
        raise
    except Exception as exc:  # msgpack raises many types for bad bytes
        raise InvalidEncoding(f"not msgpack: {type(exc).__name__}") from None
    try:
        canonical = encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEncoding(f"not canonical: {exc}") from None
    if canonical != bytes(data):
        raise InvalidEncoding("not the canonical encoding")
    return value


def _refuse_ext(code: int, data: bytes) -> Any:
    raise InvalidEncoding(f"ext type {code} is not allowed")


def _canonicalise(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError("nesting deeper than MAX_DEPTH")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise ValueError("integer out of 64-bit range")
        return value
    if isinstance(value, list | tuple):
        return [_canonicalise(item, depth + 1) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("map keys must be str")
        return {key: _canonicalise(value[key], depth + 1) for key in sorted(value)}
    raise TypeError(f"type {type(value).__name__} is not encodable (floats are refused)")
