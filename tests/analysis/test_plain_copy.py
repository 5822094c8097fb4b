"""`analysis.state.plain_copy` against copy.deepcopy on state-shaped data: equal
values, and no map or list shared with the original (a contract edits its copy in
place, so sharing would change committed state)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from analysis.state import plain_copy

scalars = st.one_of(st.integers(), st.text(max_size=5), st.binary(max_size=5), st.booleans(),
                    st.none())  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20,
)  # fmt: skip


def containers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in containers(v))]
    if isinstance(value, tuple):
        return [c for v in value for c in containers(v)]
    return []


@given(values)
def test_plain_copy_is_a_deep_copy(value: Any) -> None:
    copied = plain_copy(value)
    assert copied == copy.deepcopy(value)
    originals = {id(c) for c in containers(value)}
    assert not originals & {id(c) for c in containers(copied)}
