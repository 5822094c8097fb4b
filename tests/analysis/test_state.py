"""ContractState: writes kept apart from the committed state until the block commits;
`update` shares nested values, and a later `edit` of the same key copies them first, so
nothing a block does reaches the committed state before it commits."""

from __future__ import annotations

from analysis.state import ContractState


def test_update_then_edit_never_touches_the_committed_value() -> None:
    committed = {"device/a": {"history": [[1, "registered"]], "readings": 0}}
    state = ContractState(committed)
    state.update("device/a", readings=1)
    assert committed["device/a"]["readings"] == 0 and state.get("device/a")["readings"] == 1
    state.edit("device/a")["history"].append([2, "endorsed"])  # a later change, same block
    assert committed["device/a"] == {"history": [[1, "registered"]], "readings": 0}
    assert state.get("device/a") == {"history": [[1, "registered"], [2, "endorsed"]],
                                     "readings": 1}  # fmt: skip


def test_a_refusal_forgets_an_update() -> None:
    state = ContractState({"device/a": {"readings": 0}})
    mark = len(state.writes)
    state.update("device/a", readings=1)
    state.forget_since(mark)
    assert state.writes == {} and state.shallow == set()
    assert state.get("device/a") == {"readings": 0}
