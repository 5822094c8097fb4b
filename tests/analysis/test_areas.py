"""The area contract on the executor: meters registered and endorsed in the device
registry, an area, hourly cumulative readings from a simulated area; two executors reach
the same roots, and the judgement names the bad meter and no other."""

from __future__ import annotations

from analysis.build import build_registry
from analysis.state import ContractState
from ledger.areas import AreaRegistration
from ledger.readings import EndorseDevice, MeterReading, RegisterDevice, SequencedSigner
from ledger.types import Block, BlockHeader, Transaction
from node.executor import Executor
from oracle.areas import Area, AreaConfig
from tests.factories import CHAIN, SUITE, member_keys, proposal_for

MEMBERS = member_keys(4)
START_MS = 1_800_000_000_000  # a multiple of an hour
HOUR_MS = 3_600_000


def registry():  # type: ignore[no-untyped-def]
    return build_registry("ed25519", {}, tuple(k.public_key for k in MEMBERS))


def chain_of(cfg: AreaConfig) -> tuple[list[list[Transaction]], Area]:
    """Blocks: the devices, their endorsements, the area, then one block per period."""
    sign, area = SequencedSigner(SUITE, CHAIN).sign, Area(cfg)
    ids = [f"m-{i}" for i in range(cfg.meters)] + ["summary"]
    keys = {d: SUITE.keypair_from_seed(d.encode()) for d in ids}
    blocks = [[sign(MEMBERS[0], RegisterDevice(d, "meter", keys[d].public_key, "DDZY", "2"))
               for d in ids]]  # fmt: skip
    blocks.append([sign(MEMBERS[i], EndorseDevice(d, keys[d].public_key))
                   for d in ids for i in (1, 2)])  # fmt: skip
    users = tuple((d, "2") for d in ids[:-1])
    blocks.append([sign(MEMBERS[1], AreaRegistration("TA-1", "summary", users, 3600))])
    cumulative = [0] * len(ids)
    reading = [sign(keys[d], MeterReading(d, 0, 3600, START_MS)) for d in ids]
    blocks.append(reading)
    for p, (user_wh, summary_wh) in enumerate(area.periods(), start=1):
        for i, wh in enumerate([*user_wh, summary_wh]):
            cumulative[i] += wh
        blocks.append([sign(keys[d], MeterReading(d, cumulative[i], 3600, START_MS + p * HOUR_MS))
                       for i, d in enumerate(ids)])  # fmt: skip
    return blocks, area


def run(executor: Executor, blocks: list[list[Transaction]]) -> list[str]:
    events = []
    for height, txs in enumerate(blocks, start=1):
        block = Block(BlockHeader(b"\x00" * 32, proposal_for(height, tuple(txs))), tuple(txs))
        result = executor.apply(block, ())
        refused = [reason for _, _, reason in result.tx_results if reason]
        assert not refused, (height, refused[:3])
        events += [name for _, name, _ in result.events]
    return events


def test_two_executors_agree_and_the_bad_meter_is_found() -> None:
    cfg = AreaConfig(meters=10, days=4, seed=3, bad=1, bad_error_ppm=80_000)
    blocks, area = chain_of(cfg)
    a, b = Executor(SUITE, registry()), Executor(SUITE, registry())
    events = run(a, blocks)
    run(b, blocks)
    assert a.state_root == b.state_root and a.state == b.state
    view = ContractState(a.state["areas"])
    found = view.get("area/TA-1")
    assert found["added"] == cfg.days * 24 and found["dropped"] == 0
    bad = area.kinds.index("bad")
    verdicts = found["estimate"]["verdicts"]
    assert verdicts[bad] == "out_of_tolerance", f"seed {cfg.seed}: {found['estimate']}"
    assert [i for i, v in enumerate(verdicts) if v == "out_of_tolerance"] == [bad]
    assert events.count("meter_out_of_tolerance") == 1  # raised once, when first found


def test_a_missing_reading_drops_its_period_and_nothing_else() -> None:
    cfg = AreaConfig(meters=4, days=2, seed=5)
    blocks, _ = chain_of(cfg)
    hole = 10  # the block of period 7: one user meter's reading never arrives
    blocks[hole] = blocks[hole][1:]
    executor = Executor(SUITE, registry())
    run(executor, blocks)
    found = ContractState(executor.state["areas"]).get("area/TA-1")
    # that meter's next reading follows a gap, so the period after it is lost too
    assert found["dropped"] == 2 and found["added"] == cfg.days * 24 - 2
