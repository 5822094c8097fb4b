"""The verification-supervision contract: registries, validity, the batch rule."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from analysis.state import ContractState
from analysis.verification import VerificationContract, VerificationRules
from ledger.crypto import get_suite
from ledger.readings import Payload, sign_payload
from ledger.verification import (
    ITEMS,
    NOT_QUALIFIED,
    QUALIFIED,
    AssetStatus,
    InstitutionChange,
    InvalidRecord,
    MeterAsset,
    VerificationRecord,
    parse_verification,
)
from tests.factories import CHAIN

SUITE = get_suite("ed25519")
REGULATOR, UTILITY = SUITE.keypair_from_seed(b"regulator"), SUITE.keypair_from_seed(b"utility")
HONEST, LAX = SUITE.keypair_from_seed(b"institute-a"), SUITE.keypair_from_seed(b"institute-b")


def barcode(i: int) -> str:
    return f"12300010081000{i:08d}"


def items(result: str = QUALIFIED) -> tuple[tuple[str, str, int], ...]:
    return tuple((code, result if code == "BASICERR_Meter_CONC" else QUALIFIED, 0)
                 for code in ITEMS)  # fmt: skip


def record(
    i: int, kind: str, result: str, institution: str, task: str = "T1"
) -> VerificationRecord:
    return VerificationRecord(task if kind == "first" else "S1", barcode(i), "2024-12-31 13:57:19",
                              institution, kind, items(result), result)  # fmt: skip


class Chain:
    def __init__(self) -> None:
        rules = VerificationRules(
            frozenset({REGULATOR.public_key}), frozenset({UTILITY.public_key})
        )
        self.contract, self.state, self.height = VerificationContract(rules), {}, 0
        self.seqs: dict[bytes, int] = {}
        self.events: list[tuple[str, Any]] = []

    def submit(self, key: Any, payload: Payload) -> str:
        self.height += 1
        self.seqs[key.public_key] = self.seqs.get(key.public_key, 0) + 1
        tx = sign_payload(SUITE, key, self.seqs[key.public_key], payload, CHAIN)
        view = ContractState(self.state, hashlib.sha256(b"block %d" % (self.height - 1)).digest())
        result = self.contract.apply(view, tx, self.height)
        if result.ok:
            self.state.update(view.writes)
            self.events += list(result.events)
        else:  # a refusal writes nothing (the executor would drop new keys, not changes)
            assert view.writes == {} and result.events == ()
        return "" if result.ok else result.reason


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for iid, key in (("INST-A", HONEST), ("INST-B", LAX)):
        assert c.submit(REGULATOR, InstitutionChange("register", iid, iid, key.public_key)) == ""
    for i in range(10):
        batch = "B1" if i < 5 else "B2"
        asset = MeterAsset(barcode(i), f"A{i}", batch, "Maker", "DDZY", "01", "2", "Tianjin")
        assert c.submit(UTILITY, asset) == ""
    return c


def test_registries_take_only_their_authorities(chain: Chain) -> None:
    stranger = SUITE.keypair_from_seed(b"stranger")
    assert (
        chain.submit(stranger, InstitutionChange("register", "X", "X", stranger.public_key))
        == "not_regulator"
    )
    assert (
        chain.submit(stranger, MeterAsset(barcode(99), "A", "B9", "M", "T", "01", "2", "U"))
        == "not_utility"
    )
    assert (
        chain.submit(UTILITY, MeterAsset(barcode(1), "A", "B1", "M", "T", "01", "2", "U"))
        == "asset_exists"
    )
    assert chain.submit(stranger, record(1, "first", QUALIFIED, "INST-A")) == "not_institution"
    assert (
        chain.submit(HONEST, record(1, "first", QUALIFIED, "INST-B"))
        == "invalid:signer:institution_id"
    )
    assert chain.submit(HONEST, record(42, "first", QUALIFIED, "INST-A")) == "unknown_asset"


def test_validity_names_the_rule_and_field_and_a_refusal_changes_nothing(chain: Chain) -> None:
    before = dict(chain.state)
    partial = VerificationRecord("T1", barcode(1), "2024-12-31 13:57:19", "INST-A", "first",
                                 items()[:3], QUALIFIED)  # fmt: skip
    assert chain.submit(HONEST, partial) == "invalid:required_item:CONST_CONC_CODE"
    inconsistent = VerificationRecord("T1", barcode(1), "2024-12-31 13:57:19", "INST-A", "first",
                                      items(NOT_QUALIFIED), QUALIFIED)  # fmt: skip
    assert chain.submit(HONEST, inconsistent) == "invalid:result_consistency:BASIC_ERROR_CONC_CODE"
    bad_date = VerificationRecord("T1", barcode(1), "2024-13-31 13:57:19", "INST-A", "first",
                                  items(), QUALIFIED)  # fmt: skip
    assert chain.submit(HONEST, bad_date) == "invalid:format:veriDate"
    assert chain.state == before
    assert chain.submit(HONEST, record(1, "first", QUALIFIED, "INST-A")) == ""
    assert chain.submit(HONEST, record(1, "first", QUALIFIED, "INST-A")) == "duplicate_record"


DATE, OK_ITEM = "2024-12-31 13:57:19", ["VOLT_Meter_CONC", "合格", 0]


def raw_record(barcode: str = "1" * 22, kind: str = "first", items: Any = None,
               result: str = "合格", certificate: str = "C-1", temperature: Any = 230,
               points: Any = ()) -> list[Any]:  # fmt: skip
    return [52, "T1", barcode, DATE, "I", kind, [OK_ITEM] if items is None else items, result,
            certificate, "W. Zhang", "STD-7", temperature, 50, list(points)]  # fmt: skip


@pytest.mark.parametrize(("raw", "rule", "field"), [
    (raw_record(barcode="123"), "format", "barCode"),
    (raw_record(items=[]), "required", "tableNames"),
    (raw_record(kind="later"), "allowed_values", "kind"),
    (raw_record(items=[["VOLT", "合格", 0]]), "allowed_values", "tableCode"),
    (raw_record(items=[["VOLT_Meter_CONC", "ok", 0]]), "allowed_values", "VOLT_CONC_CODE"),
    (raw_record(items=[OK_ITEM, OK_ITEM]), "duplicate", "tableCode"),
    (raw_record(result="good"), "allowed_values", "veriResult"),
    (raw_record(certificate="No 12"), "format", "certificate_no"),
    (raw_record(temperature=900), "range", "temperature_dc"),
    (raw_record(temperature=True), "range", "temperature_dc"),
    (raw_record(points=[["Ib/1.0", 2_000_000]]), "range", "points.Ib/1.0"),
    (raw_record(points=[["Ib/1.0", 1], ["Ib/1.0", 2]]), "duplicate", "points"),
    (raw_record(points=[["Ib 1.0", 1]]), "format", "points"),
    ([56, "1" * 22, "lost", ""], "allowed_values", "status"),
    ([51, "1" * 22, "A", "B", "M", "T", "02", "2", "U"], "allowed_values", "wireModel"),
    ([51, "1" * 22, "A", "B", "M", "T", "01", "9", "U"], "allowed_values", "accuracy_class"),
])  # fmt: skip
def test_each_format_rule_names_its_field(raw: list[Any], rule: str, field: str) -> None:
    from ledger.encoding import encode

    kind = {52: "meter.record", 51: "meter.asset", 56: "meter.asset_status"}[raw[0]]
    with pytest.raises(InvalidRecord) as caught:
        parse_verification(kind, encode(raw))
    assert (caught.value.rule, caught.value.field) == (rule, field)


def test_more_than_two_disagreements_fail_the_batch_and_warn_the_institution(chain: Chain) -> None:
    for i in range(5):  # batch B1: the lax institution passes five meters
        assert chain.submit(LAX, record(i, "first", QUALIFIED, "INST-B")) == ""
    for i in range(5, 10):  # batch B2: the honest one
        assert chain.submit(HONEST, record(i, "first", QUALIFIED, "INST-A")) == ""
    for i in (0, 1):  # supervision sampling finds two of B1's meters failing: tolerated
        assert (
            chain.submit(REGULATOR_INSTITUTE, record(i, "sampling", NOT_QUALIFIED, "REG-LAB")) == ""
        )
    assert chain.state["batch/B1"]["status"] == "open"
    assert chain.submit(REGULATOR_INSTITUTE, record(2, "sampling", NOT_QUALIFIED, "REG-LAB")) == ""
    assert chain.state["batch/B1"]["status"] == "first_verification_failed"
    (failed,) = [d for name, d in chain.events if name == "batch_first_verification_failed"]
    assert failed == {"batch": "B1", "disagreements": 3, "institutions": ["INST-B"]}
    warnings = [d for name, d in chain.events if name == "warning"]
    assert [w["to"] for w in warnings] == ["INST-B"]
    for i in (5, 6, 7):  # the honest batch agrees with sampling
        assert chain.submit(REGULATOR_INSTITUTE, record(i, "sampling", QUALIFIED, "REG-LAB")) == ""
    assert chain.state["batch/B2"]["status"] == "open"


REGULATOR_INSTITUTE = SUITE.keypair_from_seed(b"regulator-lab")


@pytest.fixture(autouse=True)
def _regulator_lab(chain: Chain) -> None:
    """The regulator's own laboratory does the supervision sampling."""
    lab = InstitutionChange("register", "REG-LAB", "Regulator lab", REGULATOR_INSTITUTE.public_key)
    assert chain.submit(REGULATOR, lab) == ""


# Appendix B's example response: every field name, at its place
SPEC_DATA_FIELDS = {
    "faultResult", "tableNames", "DEVIATION_MET_CONC", "veriResult", "veriDate",
    "CONST_CONC_CODE", "BASIC_ERROR_CONC_CODE", "STARTING_CONC_CODE", "CREEPING_CONC_CODE",
    "barCode", "wireModeName", "CLOCK_VALUE_CONC_CODE", "DAYERR_CONC_CODE", "INTUIT_CONC_CODE",
    "VOLT_CONC_CODE", "m", "veriTaskNo", "wireModel",
}  # fmt: skip
SPEC_TABLE_NAMES = [
    ("VOLT_CONC_CODE", "VOLT_Meter_CONC", 1, "交流电压试验"),
    ("BASIC_ERROR_CONC_CODE", "BASICERR_Meter_CONC", 2, "基本误差试验"),
    ("INTUIT_CONC_CODE", "INTUIT_Meter_CONC", 3, "外观检查"),
    ("CONST_CONC_CODE", "CONST_Meter_CONC", 5, "仪表常数实验"),
    ("DAYERR_CONC_CODE", "DAYERR_Meter_CONC", 6, "日计时误差"),
    ("DEVIATION_MET_CONC", "Deviation_Meter_Conc", 7, "标准偏差"),
    ("CREEPING_CONC_CODE", "CREEPING_Meter_CONC", 8, "潜动试验"),
    ("STARTING_CONC_CODE", "Starting_Meter_Conc", 9, "起动试验"),
    ("CLOCK_VALUE_CONC_CODE", "CLOCK_VALUE_Meter_CONC", 11, "时钟示值误差"),
]


def test_the_appendix_b_query_has_the_specs_fields_and_nesting(chain: Chain) -> None:
    from node.verification_api import appendix_b

    assert (
        chain.submit(HONEST, record(3, "first", QUALIFIED, "INST-A", task="1201202412300002")) == ""
    )
    answer = appendix_b(ContractState(chain.state), barcode(3), "1201202412300002", "")
    assert set(answer) == {"code", "data", "msg"} and (answer["code"], answer["msg"]) == (
        200,
        "成功!",
    )
    data = answer["data"]
    assert set(data) == SPEC_DATA_FIELDS
    got = [(t["tableField"], t["tableCode"], t["sort"], t["tableName"]) for t in data["tableNames"]]
    assert got == [(f, c, n, name) for f, c, n, name in SPEC_TABLE_NAMES]
    assert all(set(t) == {"tableField", "tableCode", "sort", "subResultId", "tableName"}
               for t in data["tableNames"])  # fmt: skip
    assert (data["wireModel"], data["wireModeName"], data["veriResult"]) == ("01", "单相", "合格")
    one = appendix_b(ContractState(chain.state), barcode(3), "1201202412300002", "VOLT_Meter_CONC")
    assert [t["tableCode"] for t in one["data"]["tableNames"]] == ["VOLT_Meter_CONC"]
    missing = appendix_b(ContractState(chain.state), barcode(3), "999", "")
    assert (missing["code"], missing["data"]) == (404, None)


def test_the_overview_separates_full_inspection_and_sampling(chain: Chain) -> None:
    from node.verification_api import overview

    for i in range(5):
        assert chain.submit(LAX, record(i, "first", QUALIFIED, "INST-B")) == ""
    for i in (0, 1, 2):
        assert (
            chain.submit(REGULATOR_INSTITUTE, record(i, "sampling", NOT_QUALIFIED, "REG-LAB")) == ""
        )
    assert chain.submit(REGULATOR_INSTITUTE, record(3, "sampling", QUALIFIED, "REG-LAB")) == ""
    view = overview(ContractState(chain.state))
    by_id = {row["id"]: row for row in view["institutions"]}
    assert by_id["INST-B"]["full"] == {"records": 5, "passed": 5, "pass_rate_ppm": 1_000_000}
    assert by_id["REG-LAB"]["sampling"] == {"records": 4, "passed": 1, "pass_rate_ppm": 250_000}
    (batch,) = view["batches"]
    assert (batch["id"], batch["full"]["records"], batch["sampling"]["pass_rate_ppm"]) == (
        "B1",
        5,
        250_000,
    )
    assert view["top_failing_items"] == [{"tableCode": "BASICERR_Meter_CONC", "tableField":
                                          "BASIC_ERROR_CONC_CODE", "tableName": "基本误差试验",
                                          "failures": 3}]  # fmt: skip


def test_non_public_kinds_enter_as_digests_and_public_ones_whole(chain: Chain) -> None:
    from dataclasses import replace

    from ledger.verification import RecordDigest, record_digest

    chain.contract.rules = replace(chain.contract.rules, public_kinds=("first", "sampling"))
    private = record(1, "user_calibration", QUALIFIED, "INST-A")
    assert chain.submit(HONEST, private) == "invalid:not_public:kind"
    assert chain.submit(HONEST, RecordDigest.of(record(2, "first", QUALIFIED, "INST-A"))) == (
        "invalid:public_kind:kind"
    )
    digest = RecordDigest.of(private)
    assert digest.digest == record_digest(private.encode()) and len(digest.digest) == 32
    assert chain.submit(HONEST, digest) == ""
    stored = chain.state[f"record/{barcode(1)}/S1/user_calibration"]
    assert stored["digest"] == digest.digest and "items" not in stored


def test_an_asset_moves_through_its_life_with_its_history(chain: Chain) -> None:
    """in stock -> running -> removed -> in stock, each step in the history; a move the
    life does not allow, or one by a key that is not a utility's, changes nothing."""
    meter = barcode(3)
    assert chain.submit(UTILITY, AssetStatus(meter, "in_stock", "")) == (
        "invalid:status_move:in_stock->in_stock"
    )
    assert chain.submit(HONEST, AssetStatus(meter, "running", "")) == "not_utility"
    assert chain.submit(UTILITY, AssetStatus("9" * 22, "running", "")) == "unknown_asset"
    for status, detail in (("running", "area TA-1"), ("removed", "out of tolerance"),
                           ("in_stock", "re-verified")):  # fmt: skip
        assert chain.submit(UTILITY, AssetStatus(meter, status, detail)) == ""
    assert chain.submit(UTILITY, AssetStatus(meter, "removed", "")) == ""
    assert chain.submit(UTILITY, AssetStatus(meter, "running", "")) == (
        "invalid:status_move:removed->running"  # back through stock (re-verification) first
    )
    asset = chain.state[f"asset/{meter}"]
    assert asset["status"] == "removed"
    assert [event for _, event, _ in asset["history"]] == [
        "registered",
        "running",
        "removed",
        "in_stock",
        "removed",
    ]
    assert chain.submit(HONEST, record(3, "first", QUALIFIED, "INST-A")) == ""
    assert chain.state[f"asset/{meter}"]["records"] == [["T1", "first"]]
