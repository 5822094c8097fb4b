"""Sampling tasks by GB/T 2828.1 and physical re-check imports (§6.3.2, §6.3.3)."""

from __future__ import annotations

import hashlib

from analysis.sampling import draw
from ledger.verification import (
    ITEMS,
    NOT_QUALIFIED,
    QUALIFIED,
    InstitutionChange,
    MeterAsset,
    RecheckImport,
    SamplingTask,
)
from tests.analysis.test_verification import (
    HONEST,
    REGULATOR,
    REGULATOR_INSTITUTE,
    UTILITY,
    Chain,
    barcode,
    record,
)

LOT = 300  # 281-500 at level II: letter H, n = 50; AQL 1.0 normal: Ac 1, Re 2


def verified_batch() -> Chain:
    c = Chain()
    assert (
        c.submit(REGULATOR, InstitutionChange("register", "INST-A", "A", HONEST.public_key)) == ""
    )
    for i in range(LOT):
        asset = MeterAsset(barcode(i), f"A{i}", "B7", "Maker", "DDZY", "01", "2", "Tianjin")
        assert c.submit(UTILITY, asset) == ""
        assert c.submit(HONEST, record(i, "first", QUALIFIED, "INST-A")) == ""
    return c


def rows(
    codes: list[str], failing: set[str]
) -> tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]:
    def items(bad: bool) -> tuple[tuple[str, str], ...]:
        return tuple((c, NOT_QUALIFIED if bad and c == "BASICERR_Meter_CONC" else QUALIFIED)
                     for c in ITEMS)  # fmt: skip

    return tuple(
        (b, NOT_QUALIFIED if b in failing else QUALIFIED, items(b in failing)) for b in codes
    )


def test_a_task_draws_the_plans_sample_from_the_block_hash_and_the_recheck_decides() -> None:
    c = verified_batch()
    assert c.submit(REGULATOR, SamplingTask("R1", "B7", "II", "1.0", "normal", "physical")) == ""
    task = c.state["task/R1"]
    plan = task["plan"]
    assert (plan["code_letter"], plan["sample_size"], plan["accept"], plan["reject"]) == (
        "H",
        50,
        1,
        2,
    )
    seed = hashlib.sha256(b"block %d" % (c.height - 1)).digest()  # the block before the task's
    assert task["seed"] == seed
    assert task["barcodes"] == draw([barcode(i) for i in range(LOT)], 50, seed)
    drawn = task["barcodes"]
    assert c.submit(REGULATOR, RecheckImport("R1", "B8", rows(drawn, set()))) == (
        "invalid:batch_mismatch:batch (B7 expected)"
    )
    assert c.submit(REGULATOR, RecheckImport("R1", "B7", rows(drawn[:49], set()))) == (
        "invalid:count_mismatch:results (50 drawn)"
    )
    failing = set(drawn[:2])
    assert (
        c.submit(REGULATOR_INSTITUTE, RecheckImport("R1", "B7", rows(drawn, failing)))
        == "not_regulator"
    )
    assert c.submit(REGULATOR, RecheckImport("R1", "B7", rows(drawn, failing))) == ""
    done = c.state["task/R1"]
    assert (done["status"], done["result"], done["nonconforming"], done["inconsistent"]) == (
        "imported",
        "not_accepted",
        2,
        2,
    )
    bad = c.state[f"recheck/R1/{drawn[0]}"]
    assert not bad["consistent"] and bad["differing"] == ["BASIC_ERROR_CONC_CODE"]
    assert c.state[f"recheck/R1/{drawn[5]}"]["consistent"]
    assert c.submit(REGULATOR, RecheckImport("R1", "B7", rows(drawn, set()))) == "task_closed"


def test_a_data_recheck_draws_only_meters_not_drawn_before() -> None:
    c = verified_batch()
    assert c.submit(REGULATOR, SamplingTask("R1", "B7", "II", "1.0", "normal", "physical")) == ""
    assert (
        c.submit(REGULATOR, SamplingTask("R2", "B7", "II", "1.0", "normal", "data_recheck")) == ""
    )
    first, second = c.state["task/R1"]["barcodes"], c.state["task/R2"]["barcodes"]
    assert len(second) == 50 and not set(first) & set(second)
    refused = c.submit(REGULATOR, SamplingTask("R3", "B7", "II", "7", "normal", "physical"))
    assert refused.startswith("invalid:sampling:AQL '7': expected one of")
    assert (
        c.submit(REGULATOR, SamplingTask("R4", "B9", "II", "1.0", "normal", "physical"))
        == "unknown_batch"
    )
