"""Meter verification records as benchmark load (issue 17's throughput scenario).

Before the timed phase: a regulator (member 0's key) registers one institution and a
utility (member 1's key) registers one meter per ten records, in batches of 100 meters;
these set-up transactions are committed first. The timed load is then first-verification
records, ten tasks per meter, signed by the institution, of three-phase meters: each
about 1 KB with all nine Appendix B items, the certificate's data and the basic error at
28 load points (`oracle.records`).
"""

from __future__ import annotations

from pathlib import Path

from ledger.crypto import get_suite
from ledger.readings import SequencedSigner
from ledger.types import Transaction
from ledger.verification import QUALIFIED, InstitutionChange, MeterAsset
from node.keys import load_keys
from oracle.records import bench_record

RECORDS_PER_METER = 10


def barcode(meter: int) -> str:
    return f"1230001008{meter:012d}"


def verification_load(
    suite_name: str, net: Path, count: int, chain: bytes
) -> tuple[list[Transaction], list[bytes]]:
    """(set-up transactions, `count` encoded record transactions) for the network in `net`."""
    suite = get_suite(suite_name)
    regulator = load_keys(net / "node0" / "keys" / "node_key.json").signing
    utility = load_keys(net / "node1" / "keys" / "node_key.json").signing
    institute = suite.keypair_from_seed(b"bench-institute")
    sign = SequencedSigner(suite, chain).sign
    meters = -(-count // RECORDS_PER_METER)
    setup = [sign(regulator, InstitutionChange("register", "BENCH", "bench", institute.public_key))]
    setup += [sign(utility, MeterAsset(barcode(m), f"A{m}", f"B{m // 100}", "Maker", "DTZY", "03",
                                       "1", "Tianjin")) for m in range(meters)]  # fmt: skip
    date = "2024-12-31 13:57:19"
    records = [
        sign(institute, bench_record(f"{k % RECORDS_PER_METER + 1:016d}",
                                     barcode(k // RECORDS_PER_METER), date, "BENCH", "first",
                                     QUALIFIED, wiring="03", accuracy_class="1"))
        for k in range(count)
    ]  # fmt: skip
    return setup, [tx.encoded() for tx in records]
