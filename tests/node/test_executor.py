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
    b.apply(third, (0,))  # one reading treated as a replay: one fewer accepted
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
        storage.append_block(block, cert, result)
        storage.write_derived(derived)
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
    (and so every root) must be those of encode([writes, events by tx hash])."""
    executor = Executor(SUITE, registry())
    for block in blocks():
        before = executor.state_root
        result = executor.apply(block, (2,) if block.header.height == 3 else ())
        hashes = {index: tx_hash for tx_hash, index, _ in result.tx_results}
        raised = [(hashes[i], name, data) for i, name, data in result.events]
        diff = encode([list(result.writes), raised])
        assert result.state_root == SUITE.hash(before + SUITE.hash(diff))


def test_a_refused_transaction_changes_nothing_of_the_root() -> None:
    """The same blocks with refused transactions mixed in (a replayed sequence number, an
    unknown device, an unknown kind), in front of the accepted ones: the same writes,
    the same events and the same root; only the refusals' statuses tell them apart."""
    plain, mixed = Executor(SUITE, registry()), Executor(SUITE, registry())
    stranger = SUITE.keypair_from_seed(b"stranger")
    reading = RefuelReading("car-9", "d-1", "s-1", 40_000, 39_000, 10, 200, 5, 1_800_000_000_000)
    refused = (
        sign_payload(SUITE, stranger, 1, reading, CHAIN),
        Transaction(stranger.public_key, 2, "no.such.kind", b"", b"\x00" * 64, CHAIN[:8]),
    )
    for block in blocks():
        txs = refused + block.txs
        noisy = Block(BlockHeader(b"\x00" * 32, proposal_for(block.header.height, txs)), txs)
        a, b = plain.apply(block, ()), mixed.apply(noisy, ())
        assert (a.state_root, a.writes) == (b.state_root, b.writes)
        assert [e[1:] for e in a.events] == [e[1:] for e in b.events]
        assert [r for _, i, r in b.tx_results if i < 2] == ["unknown_device", "unknown_kind"]
    assert plain.state == mixed.state
