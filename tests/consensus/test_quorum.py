"""Quorum arithmetic: the two properties PBFT's safety and liveness rest on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.quorum import max_faulty, primary_of, quorum_size, weak_quorum_size


@given(st.integers(1, 400))
def test_two_quorums_share_an_honest_replica(n: int) -> None:
    f = max_faulty(n)
    assert 2 * quorum_size(n) - n >= f + 1


@given(st.integers(1, 400))
def test_honest_replicas_alone_form_a_quorum(n: int) -> None:
    assert quorum_size(n) <= n - max_faulty(n)


@given(st.integers(1, 400))
def test_weak_quorum_contains_an_honest_replica(n: int) -> None:
    assert weak_quorum_size(n) > max_faulty(n)


@given(st.integers(1, 100))
def test_three_f_plus_one(f: int) -> None:
    n = 3 * f + 1
    assert (max_faulty(n), quorum_size(n), weak_quorum_size(n)) == (f, 2 * f + 1, f + 1)


@given(st.integers(4, 100), st.integers(0, 10_000))
def test_primary_rotates_through_every_member(n: int, view: int) -> None:
    assert primary_of(view, n) == view % n
    assert {primary_of(view + k, n) for k in range(n)} == set(range(n))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_below_four_replicas_nothing_is_tolerated_and_everyone_votes(n: int) -> None:
    assert (max_faulty(n), quorum_size(n), weak_quorum_size(n)) == (0, n, 1)


@pytest.mark.parametrize("n", [0, -1])
def test_no_replica_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        max_faulty(n)
