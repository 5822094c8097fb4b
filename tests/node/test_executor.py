"""The executor: deterministic roots, a block's writes committed only together, and a
restart from the state SQLite stored continues with the same roots."""

from __future__ import annotations

from pathlib import Path

from analysis.build import build_registry
from consensus.state import RequestQueue, is_replay
from ledger.encoding import encode
from ledger.readings import EndorseDevice, RefuelReading, RegisterDevice, sign_payload
from ledger.types import Block, BlockHeader, CommitCertificate, Transaction
from node.derived import DerivedBatch
from node.executor import Executor
from node.storage import Storage
from tests.factories import CHAIN, SUITE, member_keys, proposal_for

MEMBERS = member_keys(4)
VEHICLE = SUITE.keypair_from_seed(b"car")


def registry():  # type: ignore[no-untyped-def]
    return build_registry("ed25519", {}, tuple(k.public_key for k in MEMBERS))


def blocks() -> list[Block]:
    reading = RefuelReading("car-1", "d-1", "s-1", 40_000, 39_000, 10, 200, 5, 1_800_000_000_000)
    batches: list[tuple[Transaction, ...]] = [
        (
            sign_payload(
                SUITE,
                MEMBERS[0],
                1,
                RegisterDevice("car-1", "vehicle", VEHICLE.public_key, "m", "2"),
                CHAIN,
            ),
        ),
        tuple(
            sign_payload(SUITE, MEMBERS[i], 1, EndorseDevice("car-1", VEHICLE.public_key), CHAIN)
            for i in (1, 2)
        ),
        tuple(sign_payload(SUITE, VEHICLE, seq, reading, CHAIN) for seq in (1, 2, 2)),
    ]
    return [
        Block(BlockHeader(b"\x00" * 32, proposal_for(h, txs)), txs)
        for h, txs in enumerate(batches, start=1)
    ]


def test_two_executors_reach_identical_roots_and_results() -> None:
    a, b = Executor(SUITE, registry()), Executor(SUITE, registry())
    for block in blocks():
        ra, rb = a.apply(block, ()), b.apply(block, ())
        assert ra == rb
    assert a.state == b.state and a.state_root == b.state_root
    reasons = [reason for _, _, reason in ra.tx_results]
    assert reasons == ["", "", "sequence_not_increasing"]


def test_root_depends_on_every_write() -> None:
    a, b = Executor(SUITE, registry()), Executor(SUITE, registry())
    first, second, third = blocks()
    for block in (first, second):
        a.apply(block, ())
        b.apply(block, ())
    a.apply(third, ())
    b.apply(third, (1,))  # one tx treated as a replay: a different write
    assert a.state_root != b.state_root


def test_restart_from_stored_state_continues_identically(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "ledger.sqlite3", SUITE)
    live = Executor(SUITE, registry())
    first, second, third = blocks()
    cert = CommitCertificate(0, 1, b"\x00" * 32, ())
    for block in (first, second):
        result = live.apply(block, ())
        derived = DerivedBatch()
        derived.add(result, ())
        storage.append_block(block, cert, result, derived)
    assert storage.applied_height() == 2
    restarted = Executor(SUITE, registry(), storage.contract_state(), storage.state_root_at(2))
    assert restarted.state == live.state
    assert restarted.apply(third, ()) == live.apply(third, ())


def test_storage_keeps_the_client_windows_the_core_computed(tmp_path: Path) -> None:
    """Storage persists the windows that RequestQueue.apply_committed returns; a restart
    gets back exactly the queue's windows, replays included (the third block commits
    seq 2 twice: the second is a replay and changes nothing)."""
    storage = Storage(tmp_path / "ledger.sqlite3", SUITE)
    queue = RequestQueue(max_pending=100)
    live = Executor(SUITE, registry())
    cert = CommitCertificate(0, 1, b"\x00" * 32, ())
    derived = DerivedBatch()
    for block in blocks():
        replays, windows = queue.apply_committed(block.txs)
        assert {sender for sender, _ in windows} == {
            tx.sender for i, tx in enumerate(block.txs) if i not in replays
        }
        result = live.apply(block, replays)
        storage.append_block(block, cert, result)
        derived.add(result, windows)
    storage.write_derived(derived)
    assert replays == (2,)
    restored = storage.restored_state(b"\x00" * 32).chain.clients
    assert restored == queue.clients and len(restored) == 4
    assert is_replay(restored[VEHICLE.public_key], 2) and not is_replay(
        restored[VEHICLE.public_key], 3
    )


def test_root_is_the_hash_of_the_canonical_diff() -> None:
    """The executor joins the diff's parts instead of encoding the whole list: the bytes
    (and so every root) must be those of encode([writes, outcomes, events])."""
    executor = Executor(SUITE, registry())
    for block in blocks():
        before = executor.state_root
        result = executor.apply(block, (2,) if block.header.height == 3 else ())
        outcomes = [reason for _, _, reason in result.tx_results]
        diff = encode([list(result.writes), outcomes, list(result.events)])
        assert result.state_root == SUITE.hash(before + SUITE.hash(diff))
