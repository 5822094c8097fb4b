"""The remote error model on four real daemons: meters registered and endorsed in the
device registry over HTTP, a transformer area, two days of hourly signed readings from a
simulated area, a period at a time; every node judges the bad meter out of tolerance and
no other, raises the event once, and holds the same state root."""

from __future__ import annotations

from pathlib import Path

from ledger.areas import AreaRegistration
from ledger.crypto import get_suite
from ledger.readings import EndorseDevice, MeterReading, RegisterDevice, SequencedSigner
from ledger.types import Transaction
from node.keys import load_keys
from node.load import submit_all
from node.testnet import running
from oracle.areas import Area, AreaConfig
from tests.e2e.test_network import settled, wait_until

SUITE = "ed25519"
START_MS, HOUR_MS = 1_800_000_000_000, 3_600_000


def commit(nodes: list, txs: list[Transaction], what: str) -> None:  # type: ignore[type-arg]
    """Submitted through one node; every node has committed them when this returns."""
    hashes = submit_all([nodes[0].api], txs, SUITE)
    wait_until(what, lambda: settled(nodes, hashes))


def test_every_node_finds_the_bad_meter_of_an_area(tmp_path: Path) -> None:
    cfg = AreaConfig(meters=6, days=2, seed=3, bad_error_ppm=100_000)
    area = Area(cfg)
    with running(tmp_path, 4, SUITE) as nodes:
        suite, sign = get_suite(SUITE), SequencedSigner(get_suite(SUITE), nodes[0].chain()).sign
        members = [load_keys(tmp_path / f"node{i}" / "keys" / "node_key.json").signing
                   for i in range(4)]  # fmt: skip
        ids = [f"m-{i}" for i in range(cfg.meters)] + ["summary"]
        keys = {d: suite.keypair_from_seed(d.encode()) for d in ids}
        setup = [sign(members[0], RegisterDevice(d, "meter", keys[d].public_key, "DDZY", "2"))
                 for d in ids]  # fmt: skip
        commit(nodes, setup, "meters registered")
        endorse = [
            sign(members[i], EndorseDevice(d, keys[d].public_key)) for d in ids for i in (1, 2)
        ]
        users = tuple((d, "2") for d in ids[:-1])
        registration = sign(members[1], AreaRegistration("TA-1", "summary", users, 3600))
        commit(nodes, [*endorse, registration], "meters endorsed, area registered")
        cumulative = [0] * len(ids)
        first = [sign(keys[d], MeterReading(d, 0, 3600, START_MS)) for d in ids]
        commit(nodes, first, "first readings committed")
        for p, (user_wh, summary_wh) in enumerate(area.periods(), start=1):
            for i, wh in enumerate([*user_wh, summary_wh]):
                cumulative[i] += wh
            # one reading per meter in flight, as the SDK keeps it: a meter's readings
            # must commit in order (the registry refuses one not after the last)
            readings = [sign(keys[d], MeterReading(d, cumulative[i], 3600, START_MS + p * HOUR_MS))
                        for i, d in enumerate(ids)]  # fmt: skip
            commit(nodes, readings, f"readings of period {p} committed")
        bad = f"m-{area.kinds.index('bad')}"
        for d in nodes:
            shown = d.get("/v1/meter/areas/TA-1")
            assert shown["periods_added"] == 48 and shown["judged_at_period"] == 48
            flagged = [m["meter"] for m in shown["meters"] if m["verdict"] == "out_of_tolerance"]
            assert flagged == [bad], shown
        (event,) = nodes[2].get("/v1/events?name=meter_out_of_tolerance")["events"]
        assert event["data"]["meter"] == bad and event["data"]["area"] == "TA-1"
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
