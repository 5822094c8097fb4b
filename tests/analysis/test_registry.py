"""The public verification registry on the executor, with block times chosen by the test:
valid-until dates from the type's interval, the newest record counting, reminders raised
by the first block of their day and not before, for the owner; two executors agree."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from analysis.build import build_registry
from analysis.state import ContractState
from ledger.readings import SequencedSigner
from ledger.types import Block, BlockHeader, Proposal, Transaction, compute_tx_root
from ledger.verification import NOT_QUALIFIED, QUALIFIED, InstitutionChange, MeterAsset
from node.executor import Executor
from oracle.records import bench_record
from tests.factories import CHAIN, SUITE, member_keys

MEMBERS = member_keys(4)
LAB = SUITE.keypair_from_seed(b"lab")
CONFIG = {"registry": {"intervals_days": {"DDZY": 365, "*": 730}, "reminder_lead_days": 30}}


def ms(day: str) -> int:
    return int(datetime.datetime.fromisoformat(day + "T12:00:00+00:00").timestamp() * 1000)


class Ledger:
    def __init__(self) -> None:
        registry = build_registry("ed25519", CONFIG, tuple(k.public_key for k in MEMBERS))
        self.executor, self.height = Executor(SUITE, registry), 0
        self.sign = SequencedSigner(SUITE, CHAIN).sign
        self.events: list[tuple[str, Any]] = []

    def block(self, day: str, txs: list[Transaction] = ()) -> list[str]:  # type: ignore[assignment]
        self.height += 1
        p = Proposal(self.height, ms(day), 0, compute_tx_root(SUITE, tuple(txs)), len(txs), 0,
                     b"\x00" * 32)  # fmt: skip
        result = self.executor.apply(Block(BlockHeader(b"\x00" * 32, p), tuple(txs)), ())
        self.events += [(n, d) for _, n, d in result.events if n == "verification_due"]
        return [reason for _, _, reason in result.tx_results if reason]

    def get(self, key: str) -> Any:
        return ContractState(self.executor.state.get("registry", {})).get(key)

    def record(self, barcode: str, task: str, date: str, result: str, kind: str = "first") -> Any:
        return self.sign(LAB, bench_record(task, barcode, date, "LAB", kind, result))


BARCODES = [f"1230001008100000000000{i}"[-22:] for i in range(3)]


def set_up(ledger: Ledger) -> None:
    txs = [ledger.sign(MEMBERS[0], InstitutionChange("register", "LAB", "Lab", LAB.public_key))]
    for i, (b, t) in enumerate(zip(BARCODES, ("DDZY", "DDZY", "DTZY"), strict=True)):
        asset = MeterAsset(b, f"A{i}", "B1", "Maker", t, "01", "2", "Owner-1")
        txs.append(ledger.sign(MEMBERS[1], asset))
    assert ledger.block("2025-01-02", txs) == []


def test_valid_until_and_reminders_follow_block_time() -> None:
    ledger = Ledger()
    set_up(ledger)
    day = "2025-01-02 10:00:00"
    records = [ledger.record(BARCODES[0], "T1", day, QUALIFIED),
               ledger.record(BARCODES[1], "T1", day, NOT_QUALIFIED),
               ledger.record(BARCODES[2], "T1", day, QUALIFIED)]  # fmt: skip
    assert ledger.block("2025-01-03", records) == []
    first = ledger.get(f"entry/{BARCODES[0]}/T1/first")
    assert first["valid_until"] == "2026-01-02" and first["owner"] == "Owner-1"
    assert ledger.get(f"entry/{BARCODES[1]}/T1/first")["valid_until"] == ""  # failed
    assert ledger.get(f"entry/{BARCODES[2]}/T1/first")["valid_until"] == "2027-01-02"  # "*"
    ledger.block("2025-12-02")  # the day before the reminder (30 days ahead of 2026-01-02)
    assert ledger.events == []
    ledger.block("2025-12-05")  # an idle network: the next block raises it, a few days late
    assert ledger.events == [("verification_due", {"barcode": BARCODES[0], "owner": "Owner-1",
                                                   "valid_until": "2026-01-02"})]  # fmt: skip
    assert ledger.get(f"reminder/Owner-1/{BARCODES[0]}")["valid_until"] == "2026-01-02"
    ledger.block("2026-12-20")
    assert [d["barcode"] for _, d in ledger.events] == [BARCODES[0], BARCODES[2]]


def test_a_newer_record_moves_the_reminder_and_a_bad_date_has_no_validity() -> None:
    ledger = Ledger()
    set_up(ledger)
    ledger.block("2025-01-03", [ledger.record(BARCODES[0], "T1", "2025-01-02 10:00:00", QUALIFIED)])
    renewed = ledger.record(BARCODES[0], "S1", "2025-06-30 10:00:00", QUALIFIED, "sampling")
    assert ledger.block("2025-07-01", [renewed]) == []
    ledger.block("2025-12-10")  # the first record's reminder day has passed: not raised
    assert ledger.events == []
    ledger.block("2026-06-01")
    assert [d["valid_until"] for _, d in ledger.events] == ["2026-06-30"]
    odd = ledger.record(BARCODES[2], "T2", "2025-02-31 10:00:00", QUALIFIED)  # the format allows it
    assert ledger.block("2026-06-02", [odd]) == []
    assert ledger.get(f"entry/{BARCODES[2]}/T2/first")["valid_until"] == ""


def test_two_executors_agree_and_bad_settings_are_refused() -> None:
    a, b = Ledger(), Ledger()
    for ledger in (a, b):
        set_up(ledger)
        ledger.block(
            "2025-01-03", [ledger.record(BARCODES[0], "T1", "2025-01-02 10:00:00", QUALIFIED)]
        )
        ledger.block("2025-12-31")
    assert a.executor.state_root == b.executor.state_root and a.events == b.events
    for bad in ({"intervals_days": {"DDZY": 0}}, {"reminder_lead_days": -1}, {"lead": 3}):
        with pytest.raises(ValueError, match="registry"):
            build_registry("ed25519", {"registry": bad}, (MEMBERS[0].public_key,))
