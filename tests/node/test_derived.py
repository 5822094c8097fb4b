"""Derived rows written in batches: readable before they reach SQLite, and a node that
stops between two batches gets the same state back by re-executing its stored blocks."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from consensus.state import RequestQueue
from ledger.types import Block, BlockHeader, CommitCertificate, Transaction, compute_tx_hash
from node.config import ConfigError, load_node_config
from node.daemon import Node, build_node
from node.derived import PendingDerived
from node.executor import BlockResult, Executor
from node.load import sample_txs
from node.restore import restore
from node.storage import Storage, StorageError
from node.testnet import init_testnet
from tests.factories import SUITE, proposal_for
from tests.node.test_executor import blocks, registry

CERT = CommitCertificate(0, 1, b"\x00" * 32, ())


def deliver_like_the_daemon(
    storage: Storage, chain: list[Block], flush_after: set[int]
) -> tuple[Executor, RequestQueue, PendingDerived]:
    """What `Node._deliver` does: the block first, its derived rows once it is stored,
    and a batch written with the block that follows the heights in `flush_after`."""
    live, queue, pending = Executor(SUITE, registry()), RequestQueue(100), PendingDerived()
    flush_now = False
    for block in chain:
        replays, windows = queue.apply_committed(block.txs)
        result = live.apply(block, replays)
        derived = pending.take() if flush_now else None
        storage.append_block(block, CERT, result, derived)
        if derived is not None:
            pending.written()
        pending.add(result, windows)
        flush_now = block.header.height in flush_after
    return live, queue, pending


def restart(path: Path) -> tuple[Storage, Executor, dict[bytes, tuple[int, int]]]:
    storage = Storage(path, SUITE)
    executor, clients = restore(storage, SUITE, registry())
    return storage, executor, clients


def test_a_stop_between_batches_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blocks 2 and 3 are stored but their derived rows were never written (as after a
    kill -9): the restart re-executes them and ends where the live node was."""
    path, chain = tmp_path / "ledger.sqlite3", blocks()
    live, queue, _ = deliver_like_the_daemon(Storage(path, SUITE), chain, flush_after={1})
    storage = Storage(path, SUITE)
    assert storage.applied_height() == 1 and storage.height() == 3
    with caplog.at_level(logging.INFO, logger="metroledger.node"):
        storage, executor, clients = restart(path)
    replayed = [r for r in caplog.records if r.getMessage() == "derived_replayed"]
    assert [r.__dict__["fields"]["blocks"] for r in replayed] == [2]
    assert executor.state == live.state and executor.state_root == live.state_root
    assert clients == queue.clients
    assert storage.applied_height() == 3
    last = chain[-1]
    seq2 = compute_tx_hash(SUITE, last.txs[1])
    assert storage.tx_status(seq2) == (3, 1, "")  # committed twice: the first counts
    assert storage.tx_status(compute_tx_hash(SUITE, chain[0].txs[0])) == (1, 0, "")
    again, again_clients = restart(path)[1:]  # nothing left to replay
    assert again.state_root == live.state_root and again_clients == queue.clients


def test_pending_rows_are_readable_until_written() -> None:
    pending = PendingDerived(flush_blocks=2, flush_txs=1_000)
    result = BlockResult(5, b"r" * 32, (("c", "k", 1),), ((b"a" * 32, 0, ""), (b"b" * 32, 1, "x")))
    pending.add(result, ((b"s" * 32, (3, 1)),))
    assert not pending.due()
    assert pending.tx_status(b"b" * 32) == (5, 1, "x")
    later = BlockResult(6, b"q" * 32, (), ((b"a" * 32, 0, "replay"),))
    pending.add(later, ())
    assert pending.due()
    assert pending.tx_status(b"a" * 32) == (5, 0, "")  # the first commit counts
    batch = pending.take()
    assert (
        batch.height == 6 and batch.blocks == 2 and batch.writes == {("c", "k"): b"\x01"}
    )  # encoded
    assert pending.committed([b"a" * 32, b"z" * 32]) == {b"a" * 32: 5}  # still readable
    pending.add(BlockResult(7, b"p" * 32, (), ((b"a" * 32, 0, "replay"),)), ())
    assert pending.committed([b"a" * 32]) == {b"a" * 32: 5}  # the batch being written
    assert pending.tx_status(b"a" * 32) == (5, 0, "")
    pending.written()
    assert pending.tx_status(b"a" * 32) == (7, 0, "replay") and not pending.due()


def test_a_changed_state_root_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    deliver_like_the_daemon(Storage(path, SUITE), blocks(), flush_after=set())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blocks SET state_root = ? WHERE height = 2", (b"\x01" * 32,))
    with pytest.raises(StorageError, match="block 2: re-executed state root"):
        restart(path)


def test_a_database_from_before_the_batches_counts_as_applied(tmp_path: Path) -> None:
    """No applied height recorded: the tables were written with every block."""
    path = tmp_path / "ledger.sqlite3"
    storage = Storage(path, SUITE)
    live = Executor(SUITE, registry())
    for block in blocks():
        storage.append_block(block, CERT, live.apply(block, ()))
    assert storage.applied_height() == 0  # a new database: nothing derived yet
    storage.db.execute("DELETE FROM meta")
    assert Storage(path, SUITE).applied_height() == 3


def store_note_blocks(node: Node) -> tuple[Executor, list[Transaction]]:
    """Two blocks of notes (3 clients, seqs 1 and 2) stored as a node stores them, with
    no batch of derived rows written: what a kill -9 right after them leaves."""
    txs = sample_txs("ed25519", 6, clients=3, chain=node.genesis.genesis_hash)
    live = Executor(node.suite, node.genesis.registry())
    prev = node.genesis.protocol_config().genesis_hash
    for height, chunk in ((1, tuple(txs[:3])), (2, tuple(txs[3:]))):
        block = Block(BlockHeader(prev, proposal_for(height, chunk)), chunk)
        node.core.storage.append_block(block, CERT, live.apply(block, ()))
        prev = block.header.hash(node.suite)
    node.core.storage.close()
    node.core.reads.reader.close()
    return live, txs


def test_a_restarted_daemon_replays_its_blocks_and_refuses_a_changed_root(
    tmp_path: Path,
) -> None:
    first, second = init_testnet(tmp_path, 4, "ed25519")[:2]
    live, txs = store_note_blocks(build_node(load_node_config(first)))
    node = build_node(load_node_config(first))
    assert node.snapshot.state_root == live.state_root and node.snapshot.height == 2
    assert node.core.storage.applied_height() == 2
    assert {high for high, _ in node.core.replica.requests.clients.values()} == {2}
    assert node.reads.tx_status(compute_tx_hash(SUITE, txs[4])) == (2, 1, "")
    assert node.reads.client_high(txs[0].sender) == 2

    cfg = load_node_config(second)
    store_note_blocks(build_node(cfg))
    with sqlite3.connect(cfg.data_dir / "ledger.sqlite3") as db:
        db.execute("UPDATE blocks SET state_root = ? WHERE height = 2", (b"\x01" * 32,))
    with pytest.raises(ConfigError, match="block 2: re-executed state root"):
        build_node(cfg)
