"""Non-public verification records, kept by their owner outside consensus (§4.3.3).

Only a record's SM3 digest and its indexing fields are on the ledger
(`meter.record_digest`); the full record stays here, in a SQLite file beside the node's
ledger that no other node ever sees. Showing one recomputes its digest and compares it
with the chain's, so a record changed here after it was anchored shows as such. Rows are
keyed by (barcode, task, kind) and hold the record's canonical encoding, so a sealed read
for another organisation (SecDataAccess, Appendix A.3) can later encrypt exactly those
bytes to the requester's one-time key.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.verification import VerificationRecord, parse_verification


class PrivateStore:
    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS private_records (barcode TEXT, task TEXT, kind TEXT,"
            " record BLOB, PRIMARY KEY (barcode, task, kind))"
        )

    def put(self, encoded: bytes) -> VerificationRecord:
        """Keep a full record (InvalidRecord if it is not one)."""
        record = parse_verification("meter.record", encoded)
        assert isinstance(record, VerificationRecord)
        self.db.execute(
            "INSERT OR REPLACE INTO private_records VALUES (?,?,?,?)",
            (record.barcode, record.task_no, record.record_kind, record.encode()),
        )
        return record

    def get(self, barcode: str, task: str, kind: str) -> bytes | None:
        row = self.db.execute(
            "SELECT record FROM private_records WHERE barcode=? AND task=? AND kind=?",
            (barcode, task, kind),
        ).fetchone()
        return None if row is None else bytes(row[0])
