"""Calibration requests, work orders and alerts on the executor, with block times chosen
by the test: an area of user meters that are running assets, two of them bad; the model's
verdicts, the pre-checks in the order of §6.1.2, the life of a work order, the alerts from
block time; two executors reach the same roots."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.build import build_registry
from analysis.state import ContractState
from ledger.service import CalibrationRequest, WorkOrderStep, parse_service
from ledger.types import Block, BlockHeader, Proposal, Transaction, compute_tx_root
from ledger.verification import NOT_QUALIFIED, InvalidRecord
from node.executor import Executor
from oracle.area_feed import AreaFeed
from oracle.areas import AreaConfig
from tests.factories import CHAIN, SUITE, member_keys

MEMBERS = member_keys(4)
INSTITUTION = SUITE.keypair_from_seed(b"institution")
T0_MS = 1_800_000_000_000
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
LIMITS = {"accept_limit_s": 86_400, "process_limit_s": 2 * 86_400}


class Ledger:
    """One executor, blocks at times the test picks."""

    def __init__(self) -> None:
        registry = build_registry("ed25519", {"service": LIMITS},
                                  tuple(k.public_key for k in MEMBERS))  # fmt: skip
        self.executor, self.height, self.time_ms = Executor(SUITE, registry), 0, T0_MS
        self.events: list[tuple[str, Any]] = []
        self.roots: list[bytes] = []

    def block(self, txs: list[Transaction], after_ms: int = 1000) -> list[str]:
        """Commit `txs` in one block `after_ms` after the previous; the refusals."""
        self.height, self.time_ms = self.height + 1, self.time_ms + after_ms
        root = compute_tx_root(SUITE, tuple(txs))
        proposal = Proposal(self.height, self.time_ms, 0, root, len(txs), 0, b"\x00" * 32)
        result = self.executor.apply(Block(BlockHeader(b"\x00" * 32, proposal), tuple(txs)), ())
        self.events += [(name, data) for _, name, data in result.events]
        self.roots.append(result.state_root)
        return [reason for _, _, reason in result.tx_results if reason]

    def get(self, key: str) -> Any:
        return ContractState(self.executor.state.get("service", {})).get(key)

    def named(self, name: str) -> list[Any]:
        return [data for n, data in self.events if n == name]


def feed() -> AreaFeed:
    cfg = AreaConfig(meters=8, days=2, seed=7, bad=2, bad_error_ppm=80_000)
    return AreaFeed(cfg, "ed25519", CHAIN, MEMBERS[0], (MEMBERS[1], MEMBERS[2]), MEMBERS[1])


def set_up(ledger: Ledger, f: AreaFeed) -> None:
    for txs in (f.registrations(), f.endorsements_and_area(), f.assets(), f.installations(),
                [f.institution(MEMBERS[0], INSTITUTION, "LAB-1")]):  # fmt: skip
        assert ledger.block(txs) == []


def readings(ledger: Ledger, f: AreaFeed, periods: range) -> None:
    batches = list(f.readings())
    for p in periods:
        assert ledger.block(batches[p], HOUR_MS) == []


def test_pre_checks_model_answers_and_work_orders() -> None:
    ledger, f = Ledger(), feed()
    set_up(ledger, f)
    bad = [i for i, kind in enumerate(f.area.kinds) if kind == "bad"]
    good = next(i for i, kind in enumerate(f.area.kinds) if kind == "good")
    # before the area is judged the model cannot compute: further verification, an order
    assert ledger.block([f.calibration("early", bad[0])]) == []
    early = ledger.get("request/early")
    assert early["answer"] == "further_verification" and early["order"] == "C-early"
    assert (
        early["model"]["verdict"] == "none" and ledger.get("order/C-early")["status"] == "created"
    )
    (anomaly,) = ledger.named("calibration_anomaly")
    assert anomaly["barcode"] == f.meters[bad[0]]
    readings(ledger, f, range(0, 49))  # two days: judged at 24 and 48 periods
    ledger.block([])  # the next block reads the flags the last judgement published
    opened = {d["barcode"]: d for d in ledger.named("work_order_opened")}
    # bad[0] has C-early open, so its verdict opens no replacement; bad[1] gets one
    assert set(opened) == {f.meters[bad[0]], f.meters[bad[1]]}
    replacement = opened[f.meters[bad[1]]]
    assert replacement["kind"] == "replacement" and replacement["order"].startswith("R-")
    assert ledger.block([f.calibration("good", good), f.calibration("again", bad[0]),
                         f.calibration("flagged", bad[1])]) == []  # fmt: skip
    assert ledger.get("request/good")["answer"] == "qualified"
    assert ledger.get("request/good")["hotline"] == "95598"
    assert ledger.get("request/again")["answer"] == "work_order_open"
    assert ledger.get("request/again")["order"] == "C-early"
    assert ledger.get("request/flagged")["order"] == replacement["order"]
    assert ledger.get("request/flagged")["model"]["verdict"] == "out_of_tolerance"


def test_a_work_order_takes_its_steps_in_order_and_refusals_change_nothing() -> None:
    ledger, f = Ledger(), feed()
    set_up(ledger, f)
    assert ledger.block([f.calibration("r1", 0)]) == []
    before = dict(ledger.executor.state["service"])
    refused = ledger.block([f.step("C-r1", "process", task_no="T9"), f.step("C-nope", "accept"),
                            f.calibration("r1", 1), f.step("C-r1", "visit")])  # fmt: skip
    assert refused == ["invalid:order_step:created->process", "unknown_order", "request_exists",
                       "invalid:order_step:created->visit"]  # fmt: skip
    assert ledger.executor.state["service"] == before
    assert ledger.block([f.step("C-r1", "accept")]) == []
    assert ledger.block([f.step("C-r1", "process", task_no="T9")]) == ["unknown_record"]
    record = f.calibration_record(INSTITUTION, "LAB-1", "T9", 0, NOT_QUALIFIED)
    assert ledger.block([record, f.step("C-r1", "process", task_no="T9")]) == []
    assert ledger.block([f.step("C-r1", "visit"),
                         f.step("C-r1", "evaluate", satisfaction="satisfied")]) == []  # fmt: skip
    order = ledger.get("order/C-r1")
    assert order["status"] == "evaluated" and order["result"] == NOT_QUALIFIED
    assert order["created_ms"] < order["accepted_ms"] < order["processed_ms"] <= order["visited_ms"]
    assert ledger.get(f"open/{f.meters[0]}") == ""
    assert ledger.block([f.calibration("r2", 0)]) == []  # finished: the model runs again
    assert ledger.get("request/r2")["answer"] == "further_verification"


def test_alerts_follow_block_time() -> None:
    ledger, f = Ledger(), feed()
    set_up(ledger, f)
    assert ledger.block([f.calibration("late", 0), f.calibration("ok", 1),
                         f.calibration("sad", 2)]) == []  # fmt: skip
    assert ledger.block([f.step("C-ok", "accept"), f.step("C-sad", "accept")], HOUR_MS) == []
    ledger.block([], DAY_MS - 2 * HOUR_MS)  # still inside the day allowed to accept
    assert ledger.named("work_order_alert") == []
    ledger.block([], 2 * HOUR_MS)  # now past it: C-late was never accepted
    (alert,) = ledger.named("work_order_alert")
    assert alert["alert"] == "overdue_unaccepted" and alert["order"] == "C-late"
    record = f.calibration_record(INSTITUTION, "LAB-1", "T1", 1, NOT_QUALIFIED)
    assert ledger.block([record, f.step("C-ok", "process", task_no="T1")], HOUR_MS) == []
    ledger.block([], 2 * DAY_MS)  # C-sad accepted but not processed within two days
    alerts = [(a["order"], a["alert"]) for a in ledger.named("work_order_alert")]
    assert alerts == [("C-late", "overdue_unaccepted"), ("C-sad", "overdue_unprocessed")]
    record = f.calibration_record(INSTITUTION, "LAB-1", "T2", 2, NOT_QUALIFIED)
    assert ledger.block([record, f.step("C-sad", "process", task_no="T2"),
                         f.step("C-sad", "visit"),
                         f.step("C-sad", "evaluate", satisfaction="unsatisfied",
                                opinion="too slow")]) == []  # fmt: skip
    assert ledger.named("work_order_alert")[-1]["alert"] == "customer_unsatisfied"
    assert ledger.get("order/C-sad")["alerts"] == ["overdue_unprocessed", "customer_unsatisfied"]
    assert ledger.get("alerts") == 3


def test_two_executors_reach_the_same_roots() -> None:
    a, b = Ledger(), Ledger()
    for ledger in (a, b):
        f = feed()  # the same transactions, signed with the same sequence numbers
        set_up(ledger, f)
        ledger.block([f.calibration("x", 0)])
        ledger.block([], 2 * DAY_MS)
    assert a.roots == b.roots and a.executor.state == b.executor.state
    assert a.executor.time_ms() == a.time_ms


def test_bad_payloads_are_refused_by_name() -> None:
    step = WorkOrderStep("C-r1", "accept", "s", "T1", "", "")
    with pytest.raises(InvalidRecord, match="not_allowed: task_no"):
        parse_service(step.KIND, step.encode())
    bad = WorkOrderStep("C-r1", "evaluate", "", "", "happy", "")
    with pytest.raises(InvalidRecord, match="allowed_values: satisfaction"):
        parse_service(bad.KIND, bad.encode())
    request = CalibrationRequest("r 1", "A1", "app", "")
    with pytest.raises(InvalidRecord, match="format: request_id"):
        parse_service(request.KIND, request.encode())
    with pytest.raises(InvalidRecord, match="malformed"):
        parse_service(request.KIND, b"\xc1")


def test_a_stranger_cannot_open_or_move_orders() -> None:
    ledger, f = Ledger(), feed()
    set_up(ledger, f)
    stranger = SUITE.keypair_from_seed(b"stranger")
    tx = f.sign(stranger, CalibrationRequest("s1", f.asset_nos[f.meters[0]], "app", ""))
    assert ledger.block([tx]) == ["not_utility"]
    with pytest.raises(ValueError, match="accept_limit_s"):
        build_registry("ed25519", {"service": {"accept_limit_s": 0}}, (MEMBERS[0].public_key,))
