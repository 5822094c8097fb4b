"""Durable storage in SQLite (WAL mode, synchronous=FULL).

Why SQLite: it ships with Python, gives atomic multi-table transactions (a
block, its certificate and its events commit together or not at all; so do the
derived tables with the height they reflect), survives SIGKILL, and WAL mode lets
the API read while the core writes. A block costs one transaction and so one
fsync; the consensus records of one event are written in one transaction before
the messages of that event are sent. The derived tables (tx index, client windows,
contract state) are written in batches every few dozen blocks (`node.derived`), to a
file of their own beside the main one (see DERIVED_SCHEMA).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consensus.events import PreparedRecord, Record, StableRecord, ViewRecord, VoteRecord
from consensus.messages import PreparedCert
from consensus.state import (
    ChainState,
    ClientWindow,
    RestoredState,
)
from ledger.crypto import SignatureSuite
from ledger.encoding import decode, encode
from ledger.types import Block, CommitCertificate, join_encoded
from node.executor import BlockResult

if TYPE_CHECKING:
    from node.derived import DerivedBatch

SQL_VARIABLES = 500  # host parameters per IN (...) query, well below SQLite's limit
# WAL pages before SQLite copies them back into the database (its default is 1,000,
# about every two blocks of 300 transactions here; a page rewritten between two
# checkpoints is copied once)
WAL_CHECKPOINT_PAGES = 8_192

# Tables keyed by hash, sender or contract key are WITHOUT ROWID: one B-tree per row
# written instead of a table and an index.

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL,
    block BLOB NOT NULL, cert BLOB NOT NULL, state_root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (id INTEGER PRIMARY KEY AUTOINCREMENT, member INTEGER NOT NULL,
    kind TEXT NOT NULL, first BLOB NOT NULL, second BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (height INTEGER NOT NULL, idx INTEGER NOT NULL,
    name TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, height);
CREATE TABLE IF NOT EXISTS chain (hash BLOB NOT NULL);
"""
# The derived tables live in a database file of their own, with its own connection: a
# batch of thousands of rows is written there while the core goes on persisting votes
# and appending blocks in the main file (in one file, SQLite's single writer made the
# core wait for each batch: 0.3-1.0 s under load, enough for backups to suspect).
DERIVED_TABLES = ("txs", "clients", "kv", "meta")
DERIVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (hash BLOB PRIMARY KEY, height INTEGER NOT NULL,
    idx INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clients (sender BLOB PRIMARY KEY, high INTEGER NOT NULL,
    mask BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (contract TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (contract, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
APPLIED = "applied_height"  # meta: the height the derived tables reflect


class StorageError(RuntimeError):
    """The database contradicts itself or the node's code; the node must not start."""


class Storage:
    def __init__(self, path: Path, suite: SignatureSuite):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.suite = path, suite
        self.db = _connect(path, "FULL")
        self.writing = threading.Lock()  # one write transaction at a time on `db`
        self.db.executescript(SCHEMA)
        derived_path = derived_path_of(path)
        fresh = not derived_path.exists()
        # NORMAL: a power loss may lose the last batch (never corrupt the file), and the
        # node then re-executes those blocks from the main file at its start
        self.derived = _connect(derived_path, "NORMAL")
        self.derived_writing = threading.Lock()
        self.derived.executescript(DERIVED_SCHEMA)
        if fresh:
            self._move_derived_tables()
        self.derived.execute("INSERT OR IGNORE INTO meta VALUES (?, 0)", (APPLIED,))

    def _move_derived_tables(self) -> None:
        """A main file written before the derived tables had their own: copy them over."""
        found = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in found:
            return
        self.derived.execute("ATTACH DATABASE ? AS old", (str(self.path),))
        with self._derived_tx():
            for table in DERIVED_TABLES:
                self.derived.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM old.{table}")
            # written before the derived tables were batched: they are complete
            self.derived.execute(
                "INSERT OR IGNORE INTO meta SELECT ?, COALESCE(MAX(height), 0) FROM old.blocks",
                (APPLIED,),
            )
        self.derived.execute("DETACH DATABASE old")

    def close(self) -> None:
        self.db.close()
        self.derived.close()

    def reopen(self) -> Storage:
        """A second connection to the same database, for readers (WAL: they never wait
        for the writer)."""
        return Storage(self.path, self.suite)

    def claim_chain(self, chain_hash: bytes) -> None:
        """Bind this database to one chain at its first start; StorageError if it holds
        another chain's blocks (a data folder started with a different genesis)."""
        row = self.db.execute("SELECT hash FROM chain").fetchone()
        if row is None:
            with self._tx():
                self.db.execute("INSERT INTO chain (hash) VALUES (?)", (chain_hash,))
        elif bytes(row[0]) != chain_hash:
            raise StorageError(f"this data folder holds chain {bytes(row[0]).hex()[:16]}..., "
                               f"the genesis is chain {chain_hash.hex()[:16]}...: use the "
                               "genesis it was made with, or an empty data folder")  # fmt: skip

    # ---- writes ----------------------------------------------------------------

    def persist(self, records: list[Record]) -> None:
        """Write consensus records durably, in one transaction."""
        with self._tx():
            for record in records:
                self.db.execute(
                    "INSERT INTO records (seq, record) VALUES (?, ?)",
                    (_record_seq(record), encode_record(record)),
                )
                if isinstance(record, StableRecord):
                    self.db.execute(
                        "DELETE FROM records WHERE seq <= ? AND id < (SELECT MAX(id) FROM records)",
                        (record.seq,),
                    )

    def append_block(
        self,
        block: Block,
        cert: CommitCertificate,
        result: BlockResult,
    ) -> None:
        """Block, certificate, state root and contract events: all or nothing."""
        height = block.header.height
        with self._tx():
            self.db.execute(
                "INSERT INTO blocks (height, hash, block, cert, state_root) VALUES (?,?,?,?,?)",
                (
                    height,
                    block.header.hash(self.suite),
                    block.encode(),
                    cert.encode(),
                    result.state_root,
                ),
            )
            self.db.executemany(
                "INSERT INTO events VALUES (?,?,?,?)",
                [(height, index, name, encode(data)) for index, name, data in result.events],
            )

    def write_derived(self, derived: DerivedBatch) -> None:
        """One batch of derived rows and the height they reach, in one transaction of
        the derived file; rows sorted by key, so each B-tree page is visited once."""
        with self._derived_tx():
            self.derived.executemany(
                "INSERT OR IGNORE INTO txs (hash, height, idx, reason) VALUES (?,?,?,?)",
                sorted(derived.txs.values()),  # by hash
            )
            self.derived.executemany(
                "INSERT OR REPLACE INTO clients VALUES (?,?,?)",
                [
                    (sender, high, mask.to_bytes((mask.bit_length() + 7) // 8 or 1, "big"))
                    for sender, (high, mask) in sorted(derived.clients.items())
                ],
            )
            self.derived.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?,?,?)",
                [(name, key, value) for (name, key), value in sorted(derived.writes.items())],
            )
            self.derived.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (APPLIED, derived.height)
            )

    def add_evidence(self, member: int, kind: str, first: bytes, second: bytes) -> None:
        """Two conflicting messages signed by one member: kept for the other organisations."""
        with self._tx():
            self.db.execute(
                "INSERT INTO evidence (member, kind, first, second) VALUES (?,?,?,?)",
                (member, kind, first, second),
            )

    def evidence(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT member, kind, first, second FROM evidence ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [
            {"member": m, "kind": k, "first": bytes(a).hex(), "second": bytes(b).hex()}
            for m, k, a, b in rows
        ]

    def _tx(self) -> Any:
        return _transaction(self.db, self.writing)

    def _derived_tx(self) -> Any:
        return _transaction(self.derived, self.derived_writing)

    # ---- reads -------------------------------------------------------------------

    def height(self) -> int:
        row = self.db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return int(row[0] or 0)

    def applied_height(self) -> int:
        """The height the derived tables reflect."""
        row = self.derived.execute("SELECT value FROM meta WHERE key = ?", (APPLIED,)).fetchone()
        return int(row[0])

    def block(self, height: int) -> tuple[Block, CommitCertificate, bytes] | None:
        row = self.db.execute(
            "SELECT block, cert, state_root FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        if row is None:
            return None
        return Block.decode(row[0]), CommitCertificate.decode(row[1]), bytes(row[2])

    def blocks(self, lo: int, hi: int) -> list[tuple[Block, CommitCertificate]]:
        rows = self.db.execute(
            "SELECT block, cert FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height", (lo, hi)
        ).fetchall()
        return [(Block.decode(b), CommitCertificate.decode(c)) for b, c in rows]

    def blocks_with_roots(self, lo: int, hi: int) -> list[tuple[Block, bytes]]:
        rows = self.db.execute(
            "SELECT block, state_root FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
            (lo, hi),
        ).fetchall()
        return [(Block.decode(b), bytes(root)) for b, root in rows]

    def tx_status(self, tx_hash: bytes) -> tuple[int, int, str] | None:
        row = self.derived.execute(
            "SELECT height, idx, reason FROM txs WHERE hash = ?", (tx_hash,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

    def events(self, name: str | None, from_height: int, limit: int) -> list[dict[str, Any]]:
        """Contract events in ledger order, optionally of one name, each with its id (its
        row: `events_after` pages by it)."""
        query = "SELECT rowid, height, idx, name, data FROM events WHERE height >= ?"
        params: list[Any] = [from_height]
        if name:
            query += " AND name = ?"
            params.append(name)
        rows = self.db.execute(query + " ORDER BY rowid LIMIT ?", (*params, limit))
        return [_event(row) for row in rows.fetchall()]

    def events_after(
        self, after_id: int, names: tuple[str, ...], limit: int
    ) -> list[dict[str, Any]]:
        """Contract events stored after the one with id `after_id` (a stream's cursor), in
        ledger order: optionally only those of some names."""
        query = "SELECT rowid, height, idx, name, data FROM events WHERE rowid > ?"
        if names:
            query += f" AND name IN ({','.join('?' * len(names))})"
        rows = self.db.execute(query + " ORDER BY rowid LIMIT ?", (after_id, *names, limit))
        return [_event(row) for row in rows.fetchall()]

    def contract_state(self) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for contract, key, value in self.derived.execute("SELECT contract, key, value FROM kv"):
            state.setdefault(contract, {})[key] = decode(bytes(value))
        return state

    def state_root_at(self, height: int) -> bytes:
        row = self.db.execute(
            "SELECT state_root FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        return bytes(row[0]) if row else b"\x00" * 32

    def clients(self) -> dict[bytes, ClientWindow]:
        """The clients' anti-replay windows at `applied_height`."""
        return {
            bytes(s): (int(h), int.from_bytes(m, "big"))
            for s, h, m in self.derived.execute("SELECT sender, high, mask FROM clients")
        }

    def client_high(self, sender: bytes) -> int | None:
        """A client's highest committed sequence number at `applied_height`."""
        row = self.derived.execute(
            "SELECT high FROM clients WHERE sender = ?", (sender,)
        ).fetchone()
        return None if row is None else int(row[0])

    def restored_state(
        self, genesis_hash: bytes, clients: dict[bytes, ClientWindow] | None = None
    ) -> RestoredState:
        """The chain and the consensus records; `clients` are the windows after the last
        block (`node.derived.restore`), else those of the clients table."""
        height = self.height()
        last = self.db.execute(
            "SELECT hash, block FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        last_time = Block.decode(bytes(last[1])).header.proposal.timestamp_ms if last else 0
        records = tuple(
            decode_record(bytes(r))
            for (r,) in self.db.execute("SELECT record FROM records ORDER BY id")
        )
        windows = self.clients() if clients is None else clients
        chain = ChainState(height, bytes(last[0]) if last else genesis_hash, windows, last_time)
        return RestoredState(chain, records)

    def committed(self, tx_hashes: list[bytes]) -> dict[bytes, int]:
        """tx hash -> height, for those of `tx_hashes` that are in a block."""
        rows = self._select_in("SELECT hash, height FROM txs WHERE hash", tx_hashes)
        return {bytes(h): int(height) for h, height in rows}

    def _select_in(self, query: str, values: list[bytes]) -> Iterator[Any]:
        """Rows of `query IN (values)` on the derived file, SQL_VARIABLES values at a time."""
        for first in range(0, len(values), SQL_VARIABLES):
            chunk = values[first : first + SQL_VARIABLES]
            yield from self.derived.execute(f"{query} IN ({','.join('?' * len(chunk))})", chunk)


def derived_path_of(path: Path) -> Path:
    """The derived tables' file beside the main one: ledger.sqlite3 -> ledger-derived.sqlite3."""
    return path.with_name(f"{path.stem}-derived{path.suffix}")


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    return db


@contextmanager
def _transaction(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[None]:
    """One write transaction, never two at once on a connection: the core persists its
    records on the trio thread while the delivery task appends a block in a worker."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def encode_record(record: Record) -> bytes:
    if isinstance(record, VoteRecord):
        return encode(["vote", record.kind, record.view, record.seq, record.digest])
    if isinstance(record, PreparedRecord):
        return join_encoded([encode("prepared"), record.cert.encoded()])
    if isinstance(record, ViewRecord):
        return encode(["view", record.view, *([1] if record.installed else [])])
    return encode(["stable", record.seq, record.block_hash, list(record.proof)])


def decode_record(data: bytes) -> Record:
    value = decode(data)
    tag = value[0]
    if tag == "vote":
        return VoteRecord(value[1], value[2], value[3], value[4])
    if tag == "prepared":
        return PreparedRecord(PreparedCert.from_wire(value[1]))
    if tag == "view":
        return ViewRecord(value[1], installed=len(value) > 2)
    return StableRecord(value[1], value[2], tuple(value[3]))


def _record_seq(record: Record) -> int:
    if isinstance(record, VoteRecord | StableRecord):
        return record.seq
    if isinstance(record, PreparedRecord):
        return record.cert.pre_prepare.seq
    return 1 << 62  # view records are never pruned by a checkpoint


def _event(row: tuple[int, int, int, str, bytes]) -> dict[str, Any]:
    event_id, height, index, name, data = row
    return {"id": event_id, "height": height, "tx_index": index, "name": name,
            "data": decode(bytes(data))}  # fmt: skip
