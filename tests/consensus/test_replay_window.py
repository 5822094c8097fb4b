"""The per-client anti-replay window."""

from __future__ import annotations

from consensus.state import FRESH_CLIENT, REPLAY_WINDOW, is_replay, record_committed


def test_a_huge_sequence_jump_costs_nothing_and_keeps_the_window_sound() -> None:
    # a client may number its requests by the clock (ms since 1970): the window must not
    # shift its bitmask by 10**12 (that allocation halted a node)
    window = record_committed(record_committed(FRESH_CLIENT, 5), 1_796_000_000_000)
    assert window == (1_796_000_000_000, 1)
    assert is_replay(window, 1_796_000_000_000) and is_replay(window, 5)
    assert not is_replay(window, 1_796_000_000_000 - 1)
    window = record_committed(window, 1_796_000_000_000 - 1)
    assert is_replay(window, 1_796_000_000_000 - 1)


def test_the_window_remembers_exactly_its_width() -> None:
    window = FRESH_CLIENT
    for seq in range(1, 100):
        window = record_committed(window, seq)
    assert all(is_replay(window, s) for s in range(1, 100))
    jumped = record_committed(window, 99 + REPLAY_WINDOW)
    assert is_replay(jumped, 99) and not is_replay(jumped, 100)
