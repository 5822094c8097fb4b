"""The device registry's lists follow membership changes, from the change's epoch on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from analysis.membership import MembershipContract
from analysis.state import ContractState
from consensus.signer import SuiteSigner
from ledger.membership import bare_membership, boundary, change_bytes, make_change
from ledger.readings import RegisterDevice
from ledger.types import Transaction, sign_transaction
from tests.analysis.test_devices import World
from tests.factories import CHAIN

K, L = 16, 64


def change_tx(w: World, ops: tuple[tuple[Any, ...], ...]) -> Transaction:
    keys = tuple(m.public_key for m in w.members)
    message = change_bytes(0, ops)
    approvals = tuple(
        (i, SuiteSigner(w.suite, keys, w.members[i].secret_key, CHAIN).sign(message))
        for i in range(3)
    )
    payload = make_change(0, ops, approvals)
    m0 = w.members[0]
    return sign_transaction(w.suite, m0.secret_key, m0.public_key, 1, "membership", payload, CHAIN)


def decide_and_observe(w: World, tx: Transaction) -> tuple[bool, list[tuple[str, Any]]]:
    """As the executor routes it: the membership contract decides, the registry observes."""
    keys = tuple(m.public_key for m in w.members)
    contract = MembershipContract(w.suite, w.suite.name, bare_membership(keys), CHAIN, K, L)
    w.height += 1
    decided = contract.apply(ContractState({}), tx, w.height)
    if not decided.ok:
        return False, [("refused", decided.reason)]
    view = ContractState(w.state)
    observed = w.registry.apply(view, tx, w.height)
    w.state.update(view.writes)
    return True, list(observed.events)


def test_a_new_manufacturer_may_register_once_the_changes_epoch_starts() -> None:
    w = World("ed25519")
    w.registry.rules = replace(w.registry.rules, checkpoint_interval=K, watermark_window=L)
    newcomer = w.stranger
    ok, events = decide_and_observe(w, change_tx(w, (("manufacturer_add", newcomer.public_key),)))
    assert ok and events[-1][0] == "registry_lists_scheduled"
    after = boundary(w.height, K, L)
    register = RegisterDevice("car-9", "vehicle", w.meter.public_key, "OBD-X", "2")
    assert w.apply(newcomer, register) == "not_manufacturer"  # still the old epoch
    w.height = after
    assert w.apply(newcomer, register) == ""


def test_removing_authorities_below_the_endorsements_needed_is_skipped_by_name() -> None:
    w = World("ed25519", k=3)
    ops = tuple(("authority_remove", m.public_key) for m in w.members[:2])
    ok, events = decide_and_observe(w, change_tx(w, ops))
    assert ok
    skipped = [data for name, data in events if name == "registry_change_skipped"]
    assert len(skipped) == 1 and "endorsements_required = 3" in skipped[0]["reason"]


def test_a_list_change_without_a_quorum_is_refused_and_changes_nothing() -> None:
    w = World("ed25519")
    tx = change_tx(w, (("authority_add", w.stranger.public_key),))
    forged = tx.__class__(tx.sender, tx.seq, tx.kind, tx.payload[:-8] + b"\x00" * 8,
                          tx.signature, tx.chain)  # fmt: skip
    ok, events = decide_and_observe(w, forged)
    assert (not ok and "approvals" in str(events[0][1])) or "msgpack" in str(events[0][1])
    assert w.state == {}
