"""Strict field checkers that turn decoded msgpack values into typed objects.

Every `from_wire` in the project is built from these, so a decoded structure is
either fully valid or raises InvalidEncoding: never KeyError, TypeError, ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, TypeVar

from ledger.errors import InvalidEncoding

T = TypeVar("T")
U64_MAX = 2**64 - 1


def expect_list(value: Any, length: int, what: str) -> list[Any]:
    """Return `value` if it is a list of exactly `length` items."""
    if not isinstance(value, list) or len(value) != length:
        raise InvalidEncoding(f"{what}: expected a list of {length} fields")
    return value


def expect_tagged(value: Any, tag: int, length: int, what: str) -> list[Any]:
    """A list whose first item is the type tag, followed by `length` fields."""
    items = expect_list(value, length + 1, what)
    if items[0] != tag or isinstance(items[0], bool):
        raise InvalidEncoding(f"{what}: wrong type tag {items[0]!r}")
    return items[1:]


def u64(value: Any, what: str, maximum: int = U64_MAX) -> int:
    """A non-negative integer up to `maximum` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidEncoding(f"{what}: expected an integer in [0, {maximum}]")
    return value


def blob(value: Any, what: str, min_len: int = 0, max_len: int = 1 << 20) -> bytes:
    """Bytes whose length lies in [min_len, max_len]."""
    if not isinstance(value, bytes) or not min_len <= len(value) <= max_len:
        raise InvalidEncoding(f"{what}: expected {min_len}..{max_len} bytes")
    return value


def digest(value: Any, what: str) -> bytes:
    """A 32-byte hash."""
    return blob(value, what, 32, 32)


def text(value: Any, what: str, max_len: int = 64) -> str:
    """A non-empty str of at most `max_len` characters."""
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise InvalidEncoding(f"{what}: expected text of 1..{max_len} characters")
    return value


def items_of(value: Any, parse: Callable[[Any], T], what: str, max_items: int) -> tuple[T, ...]:
    """A list of at most `max_items` items, each parsed by `parse`."""
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidEncoding(f"{what}: expected a list of at most {max_items} items")
    return tuple(parse(item) for item in value)


def strictly_increasing(values: Sequence[int], what: str) -> None:
    """Refuse duplicates and unsorted lists (canonical order)."""
    for before, after in pairwise(values):
        if before >= after:
            raise InvalidEncoding(f"{what}: must be strictly increasing")
