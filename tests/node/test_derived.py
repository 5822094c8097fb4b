"""Derived rows written in batches: readable before they reach SQLite, and a node that
stops between two batches gets the same state back by re-executing its stored blocks."""

from __future__ import annotations

import logging
import re
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
from node.storage import (
    DERIVED_SCHEMA,
    DERIVED_TABLES,
    Storage,
    StorageError,
    derived_path_of,
)
from node.testnet import init_testnet
from tests.factories import SUITE, proposal_for
from tests.node.test_executor import blocks, registry

CERT = CommitCertificate(0, 1, b"\x00" * 32, ())


def deliver_like_the_daemon(
    storage: Storage, chain: list[Block], flush_after: set[int]
) -> tuple[Executor, RequestQueue, PendingDerived]:
    """What `Core._deliver` and `Core.flush_derived` do: the block first, its derived
    rows once it is stored, and a batch written (to the derived file, on its own) after
    each of the heights in `flush_after`."""
    live, queue, pending = Executor(SUITE, registry()), RequestQueue(100), PendingDerived()
    for block in chain:
        replays, windows = queue.apply_committed(block.txs)
        result = live.apply(block, replays)
        storage.append_block(block, CERT, result)
        pending.add(result, windows)
        if block.header.height in flush_after:
            storage.write_derived(pending.take())
            pending.written()
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
    pending.add(BlockResult(8, b"o" * 32, (), ()), ())
    assert not pending.due()  # two blocks wait, but one batch is in flight at a time
    assert pending.committed([b"a" * 32]) == {b"a" * 32: 5}  # the batch being written
    assert pending.tx_status(b"a" * 32) == (5, 0, "")
    pending.written()
    assert pending.tx_status(b"a" * 32) == (7, 0, "replay") and pending.due()


def test_a_changed_state_root_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    deliver_like_the_daemon(Storage(path, SUITE), blocks(), flush_after=set())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blocks SET state_root = ? WHERE height = 2", (b"\x01" * 32,))
    with pytest.raises(StorageError, match="block 2: re-executed state root"):
        restart(path)


def to_old_layout(path: Path, keep_applied: bool) -> None:
    """Rewrite a node's files as nodes wrote them before the derived file: the derived
    tables inside the main file, and, without `keep_applied`, from before the batches
    (no applied height recorded: the tables were written with every block)."""
    derived = derived_path_of(path)
    with sqlite3.connect(path) as db:
        db.executescript(DERIVED_SCHEMA)
        db.execute("ATTACH DATABASE ? AS d", (str(derived),))
        for table in DERIVED_TABLES:
            db.execute(f"INSERT INTO {table} SELECT * FROM d.{table}")
        if not keep_applied:
            db.execute("DELETE FROM meta")
    db.close()
    for leftover in derived.parent.glob(derived.name + "*"):
        leftover.unlink()


@pytest.mark.parametrize("keep_applied", [True, False])
def test_an_older_main_file_hands_its_derived_tables_over(
    tmp_path: Path, keep_applied: bool
) -> None:
    """Its tables move to the derived file once, at the first start: the applied height
    stays (or, before the batches, is the top block), and a restart replays the rest."""
    path, chain = tmp_path / "ledger.sqlite3", blocks()
    flush_after = {1, 2, 3} if not keep_applied else {1}
    live, queue, _ = deliver_like_the_daemon(Storage(path, SUITE), chain, flush_after)
    to_old_layout(path, keep_applied)
    assert not derived_path_of(path).exists()
    assert Storage(path, SUITE).applied_height() == (1 if keep_applied else 3)
    storage, executor, clients = restart(path)
    assert executor.state == live.state and executor.state_root == live.state_root
    assert clients == queue.clients and storage.applied_height() == 3


def test_derived_rows_above_the_chain_stop_the_start(tmp_path: Path) -> None:
    """A main file older than its derived file (restored from another backup): the node
    says which file to remove rather than start from a state its chain does not reach."""
    path, chain = tmp_path / "ledger.sqlite3", blocks()
    deliver_like_the_daemon(Storage(path, SUITE), chain, flush_after={3})
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM blocks WHERE height = 3")
    db.close()
    with pytest.raises(StorageError, match=re.escape("remove ledger-derived.sqlite3 (with")):
        restart(path)
    for leftover in tmp_path.glob("ledger-derived.sqlite3*"):
        leftover.unlink()
    storage, executor, _ = restart(path)  # rebuilt from the two blocks left
    assert storage.applied_height() == 2 and executor.state_root == storage.state_root_at(2)


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
