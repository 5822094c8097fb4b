"""The Validity rules (Appendix A.2): ranges, item sets per wiring, date order, and rules
replaced by a quorum-approved membership change from its epoch on."""

from __future__ import annotations

from dataclasses import replace

from analysis.membership import MembershipContract
from analysis.state import ContractState
from analysis.verification import stored_validity
from consensus.signer import SuiteSigner
from ledger.membership import bare_membership, boundary, change_bytes, make_change
from ledger.types import sign_transaction
from ledger.verification import QUALIFIED, MeterAsset, VerificationRecord, parse_rules
from tests.analysis.test_verification import (
    HONEST,
    REGULATOR,
    REGULATOR_INSTITUTE,
    SUITE,
    UTILITY,
    Chain,
    InstitutionChange,
    barcode,
    items,
)
from tests.factories import CHAIN

K, L = 16, 64


def chain_with(rules: dict[str, object]) -> Chain:
    c = Chain()
    c.contract.rules = replace(c.contract.rules, validity=parse_rules(rules),
                               checkpoint_interval=K, watermark_window=L)  # fmt: skip
    for iid, key in (("INST-A", HONEST), ("REG-LAB", REGULATOR_INSTITUTE)):
        assert c.submit(REGULATOR, InstitutionChange("register", iid, iid, key.public_key)) == ""
    for i, wiring in ((1, "01"), (2, "03")):
        meter = MeterAsset(barcode(i), f"A{i}", "B1", "M", "DDZY", wiring, "2", "U")
        assert c.submit(UTILITY, meter) == ""
    return c


def rec(i: int, value: int = 0, kind: str = "first", date: str = "2024-12-31 13:57:19",
        codes: tuple[str, ...] | None = None) -> VerificationRecord:  # fmt: skip
    chosen = tuple((c, conc, value) for c, conc, _ in items() if codes is None or c in codes)
    task = "T1" if kind == "first" else "S1"
    return VerificationRecord(task, barcode(i), date, "INST-A" if kind == "first" else "REG-LAB",
                              kind, chosen, QUALIFIED)  # fmt: skip


def test_ranges_item_sets_per_wiring_and_date_order() -> None:
    c = chain_with({"required_items": {"01": ["VOLT_Meter_CONC"],
                                       "03": ["VOLT_Meter_CONC", "CLOCK_VALUE_Meter_CONC"]},
                    "ranges": {"BASICERR_Meter_CONC": [0, 20_000]}})  # fmt: skip
    assert c.submit(HONEST, rec(1, value=20_001)) == "invalid:range:BASIC_ERROR_CONC_CODE"
    assert c.submit(HONEST, rec(2, codes=("VOLT_Meter_CONC",))) == (
        "invalid:required_item:CLOCK_VALUE_CONC_CODE"
    )  # three phase needs the clock
    assert c.submit(HONEST, rec(1, codes=("VOLT_Meter_CONC",))) == ""  # single phase does not
    early = rec(1, kind="sampling", date="2024-12-30 08:00:00")
    assert c.submit(REGULATOR_INSTITUTE, early) == "invalid:date_order:veriDate"
    assert c.submit(REGULATOR_INSTITUTE, rec(1, kind="sampling", date="2025-01-02 08:00:00")) == ""
    stored = stored_validity(c.state[f"record/{barcode(1)}/T1/first"])  # each rule, its fields
    assert stored == {"range": ["VOLT_CONC_CODE"], "required_item": ["VOLT_CONC_CODE"],
                      "result_consistency": ["VOLT_CONC_CODE"]}  # fmt: skip


def test_a_basic_error_passed_with_a_load_point_outside_the_class_is_refused() -> None:
    """Meter 1 is class 2 (±2 %): a 合格 basic error needs every point inside 20,000 ppm;
    a 不合格 one may show the point that failed it."""
    c = chain_with({})
    points = (("Ib/1.0", 1_500), ("0.1Ib/1.0", -20_001))
    passed = replace(rec(1), points=points)
    assert c.submit(HONEST, passed) == "invalid:point_consistency:points.0.1Ib/1.0"
    failed = tuple((code, "不合格" if code == "BASICERR_Meter_CONC" else conc, value)
                   for code, conc, value in passed.items)  # fmt: skip
    assert c.submit(HONEST, replace(passed, items=failed, result="不合格")) == ""
    inside = replace(rec(2), points=(("Ib/1.0", -20_000), ("Imax/0.5L", 19_999)))
    assert c.submit(HONEST, inside) == ""
    checked = stored_validity(c.state[f"record/{barcode(2)}/T1/first"])
    assert checked["point_consistency"] == ["points.Ib/1.0", "points.Imax/0.5L"]


def test_a_quorum_replaces_the_rules_from_the_changes_epoch_on() -> None:
    c = chain_with({})
    members = [SUITE.keypair_from_seed(f"member-{i}".encode()) for i in range(4)]
    keys = tuple(m.public_key for m in members)
    ops = (("verification_rules", {"ranges": {"BASICERR_Meter_CONC": [0, 100]}}),)
    message = change_bytes(0, ops)
    approvals = tuple((i, SuiteSigner(SUITE, keys, members[i].secret_key, CHAIN).sign(message))
                      for i in range(3))  # fmt: skip
    tx = sign_transaction(SUITE, members[0].secret_key, keys[0], 1, "membership",
                          make_change(0, ops, approvals), CHAIN)  # fmt: skip
    c.height += 1
    decided = MembershipContract(SUITE, "ed25519", bare_membership(keys), CHAIN, K, L).apply(
        ContractState({}), tx, c.height
    )
    assert decided.ok, decided.reason
    view = ContractState(c.state)
    assert c.contract.apply(view, tx, c.height).events[0][0] == "validity_rules_scheduled"
    c.state.update(view.writes)
    after = boundary(c.height, K, L)
    assert c.submit(HONEST, rec(1, value=500)) == ""  # the old rules until the boundary
    c.height = after
    assert c.submit(HONEST, rec(2, value=500)) == "invalid:range:BASIC_ERROR_CONC_CODE"
