"""The remote error model on four real daemons: meters registered and endorsed in the
device registry over HTTP, a transformer area, two days of hourly signed readings from a
simulated area, a period at a time (oracle.area_feed); every node judges the bad meter
out of tolerance and no other, raises the event once, and holds the same state root."""

from __future__ import annotations

from pathlib import Path

from ledger.types import Transaction
from node.keys import load_keys
from node.load import submit_all
from node.testnet import Daemon, running
from oracle.area_feed import AreaFeed
from oracle.areas import AreaConfig
from tests.e2e.test_network import settled, wait_until

SUITE = "ed25519"


def commit(nodes: list[Daemon], txs: list[Transaction], what: str) -> None:
    """Submitted through one node; every node has committed them when this returns."""
    hashes = submit_all([nodes[0].api], txs, SUITE)
    wait_until(what, lambda: settled(nodes, hashes))


def test_every_node_finds_the_bad_meter_of_an_area(tmp_path: Path) -> None:
    cfg = AreaConfig(meters=6, days=2, seed=3, bad_error_ppm=100_000)
    with running(tmp_path, 4, SUITE) as nodes:
        keys = [load_keys(tmp_path / f"node{i}" / "keys" / "node_key.json").signing
                for i in range(3)]  # fmt: skip
        feed = AreaFeed(cfg, SUITE, nodes[0].chain(), keys[0], (keys[1], keys[2]), keys[1])
        commit(nodes, feed.registrations(), "meters registered")
        commit(nodes, feed.endorsements_and_area(), "meters endorsed, area registered")
        for period, readings in enumerate(feed.readings()):
            commit(nodes, readings, f"readings of period {period} committed")
        bad = feed.meters[feed.area.kinds.index("bad")]
        for d in nodes:
            shown = d.get(f"/v1/meter/areas/{feed.area_id}")
            assert shown["periods_added"] == 48 and shown["judged_at_period"] == 48
            flagged = [m["meter"] for m in shown["meters"] if m["verdict"] == "out_of_tolerance"]
            assert flagged == [bad], shown
        (event,) = nodes[2].get("/v1/events?name=meter_out_of_tolerance")["events"]
        assert event["data"]["meter"] == bad and event["data"]["area"] == feed.area_id
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
