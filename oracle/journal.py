"""The oracle's local journal (SQLite): store and forward, and idempotent signing.

A transaction is written here, with its sequence number, before it leaves the
device, so a crash never loses a reading and never signs one sequence number
twice. An identical payload submitted again returns the journaled transaction,
unless the ledger refused that one: then it is signed anew.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ledger.encoding import decode
from ledger.types import Transaction

QUEUED, COMMITTED, REJECTED = "queued", "committed", "rejected"

SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    sender BLOB NOT NULL,
    seq INTEGER NOT NULL,
    payload_hash BLOB NOT NULL,
    tx BLOB NOT NULL,
    tx_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    height INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, seq)
);
CREATE INDEX IF NOT EXISTS txs_payload ON txs (sender, payload_hash);
CREATE INDEX IF NOT EXISTS txs_hash ON txs (tx_hash);
CREATE TABLE IF NOT EXISTS chain (hash BLOB NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    tx: Transaction
    tx_hash: bytes
    status: str
    reason: str
    height: int


def payload_digest(kind: str, payload: bytes) -> bytes:
    return hashlib.sha256(kind.encode() + b"\x00" + payload).digest()


class Journal:
    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def chain(self) -> bytes | None:
        """The chain this journal's transactions are signed for, once known."""
        row = self.db.execute("SELECT hash FROM chain").fetchone()
        return None if row is None else bytes(row[0])

    def set_chain(self, chain_hash: bytes) -> None:
        """Remember the chain; ValueError if the journal belongs to another one."""
        known = self.chain()
        if known is None:
            self.db.execute("INSERT INTO chain (hash) VALUES (?)", (chain_hash,))
        elif known != chain_hash:
            raise ValueError(f"this journal signs for chain {known.hex()[:16]}..., not "
                             f"{chain_hash.hex()[:16]}...: use a journal per network")  # fmt: skip

    def high_seq(self, sender: bytes) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM txs WHERE sender = ?", (sender,)).fetchone()
        return int(row[0] or 0)

    def find_payload(self, sender: bytes, kind: str, payload: bytes) -> Entry | None:
        row = self.db.execute(
            "SELECT tx, tx_hash, status, reason, height FROM txs "
            "WHERE sender = ? AND payload_hash = ? AND status != ? ORDER BY seq DESC",
            (sender, payload_digest(kind, payload), REJECTED),
        ).fetchone()
        return None if row is None else _entry(row)

    def add(self, tx: Transaction, tx_hash: bytes) -> None:
        self.add_many([(tx, tx_hash)])

    def add_many(self, entries: list[tuple[Transaction, bytes]]) -> None:
        """Journal a group of transactions in one SQLite transaction (a gateway's
        readings of one flush: one write instead of one per reading)."""
        rows = [(tx.sender, tx.seq, payload_digest(tx.kind, tx.payload), tx.encoded(), h, QUEUED)
                for tx, h in entries]  # fmt: skip
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO txs (sender, seq, payload_hash, tx, tx_hash, status) "
                "VALUES (?,?,?,?,?,?)", rows)  # fmt: skip

    def settle_many(self, outcomes: list[tuple[bytes, int, str, str, int]]) -> None:
        """(sender, seq, status, reason, height) of a group, in one SQLite transaction."""
        with self.db:
            self.db.execute("BEGIN")
            rows = [(status, reason, height, s, q) for s, q, status, reason, height in outcomes]
            self.db.executemany(
                "UPDATE txs SET status = ?, reason = ?, height = ? WHERE sender = ? AND seq = ?",
                rows,
            )

    def high_seqs(self) -> dict[bytes, int]:
        """Every signer's highest journaled sequence number (a gateway resumes from them)."""
        rows = self.db.execute("SELECT sender, MAX(seq) FROM txs GROUP BY sender").fetchall()
        return {bytes(sender): int(seq) for sender, seq in rows}

    def settle(self, tx_hash: bytes, status: str, reason: str = "", height: int = 0) -> None:
        self.db.execute(
            "UPDATE txs SET status = ?, reason = ?, height = ? WHERE tx_hash = ?",
            (status, reason, height, tx_hash),
        )

    def unfinished(self, sender: bytes) -> list[Entry]:
        rows = self.db.execute(
            "SELECT tx, tx_hash, status, reason, height FROM txs "
            "WHERE sender = ? AND status = ? ORDER BY seq",
            (sender, QUEUED),
        ).fetchall()
        return [_entry(r) for r in rows]

    def get(self, tx_hash: bytes) -> Entry | None:
        row = self.db.execute(
            "SELECT tx, tx_hash, status, reason, height FROM txs WHERE tx_hash = ?", (tx_hash,)
        ).fetchone()
        return None if row is None else _entry(row)

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM txs GROUP BY status").fetchall()
        return {status: int(n) for status, n in rows}


def _entry(row: tuple[bytes, bytes, str, str, int]) -> Entry:
    return Entry(Transaction.from_wire(decode(row[0])), row[1], row[2], row[3], row[4])
