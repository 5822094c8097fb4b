"""The remote error model and the work it starts, on four real daemons: meters registered
and endorsed in the device registry over HTTP, running assets of a utility, a transformer
area with two bad meters, two days of hourly signed readings a period at a time
(oracle.area_feed). Every node judges the bad meters out of tolerance and no other; a
calibration request for a good meter answers qualified, one the model cannot pass opens a
work order, one while an order is open answers its progress; an order left unaccepted
past its limit raises the alert, which a server-sent-events subscriber receives live; a
replacement order runs its whole life; every node holds the same state root."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ledger.types import Transaction
from ledger.verification import NOT_QUALIFIED
from node.keys import load_keys
from node.load import submit_all
from node.testnet import Daemon, running
from oracle.area_feed import AreaFeed
from oracle.areas import AreaConfig
from tests.e2e.test_network import settled, wait_until

SUITE = "ed25519"
ACCEPT_LIMIT_S = 3


def commit(nodes: list[Daemon], txs: list[Transaction], what: str) -> None:
    """Submitted through one node; every node has committed them when this returns."""
    hashes = submit_all([nodes[0].api], txs, SUITE)
    wait_until(what, lambda: settled(nodes, hashes))


def subscribe(
    node: Daemon, names: str, wanted: int, into: list[dict[str, Any]]
) -> threading.Thread:
    """Read the node's event stream in a thread until `wanted` events arrived."""

    def read() -> None:
        url = f"{node.api}/v1/events/stream?name={names}&max_s=60"
        with urllib.request.urlopen(url, timeout=65) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            for line in stream:
                if line.startswith(b"data: "):
                    into.append(json.loads(line[6:]))
                    if len(into) == wanted:
                        return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_the_model_judges_meters_and_opens_work_orders(tmp_path: Path) -> None:
    cfg = AreaConfig(meters=6, days=2, seed=3, bad=2, bad_error_ppm=100_000)
    contracts = {"service": {"accept_limit_s": ACCEPT_LIMIT_S}}
    with running(tmp_path, 4, SUITE, contracts) as nodes:
        keys = [load_keys(tmp_path / f"node{i}" / "keys" / "node_key.json").signing
                for i in range(3)]  # fmt: skip
        feed = AreaFeed(cfg, SUITE, nodes[0].chain(), keys[0], (keys[1], keys[2]), keys[1])
        lab = feed.institution(keys[0], keys[2], "LAB-1")
        for txs, what in ((feed.registrations(), "meters registered"),
                          (feed.endorsements_and_area(), "meters endorsed, area registered"),
                          (feed.assets(), "assets registered"),
                          (feed.installations(), "assets running"),
                          ([lab], "institution")):  # fmt: skip
            commit(nodes, txs, what)
        bad = [i for i, kind in enumerate(feed.area.kinds) if kind == "bad"]
        good = next(i for i, kind in enumerate(feed.area.kinds) if kind == "good")
        alerts: list[dict[str, Any]] = []
        listener = subscribe(nodes[3], "work_order_alert", 2, alerts)
        commit(nodes, [feed.calibration("early", bad[0])], "a request before any judgement")
        for period, readings in enumerate(feed.readings()):
            commit(nodes, readings, f"readings of period {period} committed")
        flagged_meters = {feed.meters[i] for i in bad}
        for d in nodes:
            shown = d.get(f"/v1/meter/areas/{feed.area_id}")
            assert shown["periods_added"] == 48 and shown["judged_at_period"] == 48
            flagged = {m["meter"] for m in shown["meters"] if m["verdict"] == "out_of_tolerance"}
            assert flagged == flagged_meters, shown
        events = nodes[2].get("/v1/events?name=meter_out_of_tolerance")["events"]
        assert {e["data"]["meter"] for e in events} == flagged_meters and len(events) == 2

        commit(nodes, [feed.calibration("good", good), feed.calibration("again", bad[0]),
                       feed.calibration("flagged", bad[1])], "three requests")  # fmt: skip
        answers = {r: nodes[1].get(f"/v1/meter/calibrations/{r}")
                   for r in ("early", "good", "again", "flagged")}  # fmt: skip
        assert answers["early"]["answer"] == "further_verification"
        assert answers["good"]["answer"] == "qualified" and answers["good"]["hotline"] == "95598"
        assert answers["again"]["answer"] == "work_order_open"
        assert answers["again"]["order_progress"]["order"] == "C-early"
        replacement = answers["flagged"]["order_progress"]
        assert answers["flagged"]["answer"] == "work_order_open"
        assert replacement["kind"] == "replacement" and replacement["status"] == "created"
        (anomaly,) = nodes[2].get("/v1/meter/anomalies")["items"]
        assert anomaly["barcode"] == feed.meters[bad[0]] and anomaly["verdict"] == "none"

        time.sleep(ACCEPT_LIMIT_S + 0.5)  # the replacement order's acceptance is now late
        commit(nodes, [feed.calibration("good2", good)], "a block after the deadline")
        listener.join(30)
        assert [(a["data"]["order"], a["data"]["alert"]) for a in alerts] == [
            ("C-early", "overdue_unaccepted"),
            (replacement["order"], "overdue_unaccepted"),
        ]
        record = feed.calibration_record(keys[2], "LAB-1", "T1", bad[1], NOT_QUALIFIED)
        order = replacement["order"]
        for txs, what in (([feed.step(order, "accept")], "accepted"), ([record], "verified"),
                          ([feed.step(order, "process", task_no="T1")], "processed"),
                          ([feed.step(order, "visit")], "visited"),
                          ([feed.step(order, "evaluate", satisfaction="satisfied")],
                           "evaluated")):  # fmt: skip
            commit(nodes, txs, f"replacement order {what}")
        done = nodes[3].get(f"/v1/meter/work_orders/{order}")
        assert done["status"] == "evaluated" and done["result"] == NOT_QUALIFIED
        kpis = nodes[0].get("/v1/meter/kpis")
        assert kpis["replacement"] == {"verdicts": 2, "opened": 1, "processed": 1,
                                       "conversion_rate_ppm": 500_000, "accuracy_ppm": 1_000_000,
                                       "timely_rate_ppm": 0, "overdue": 1}  # fmt: skip
        assert kpis["calibration"]["total"] == 1 and kpis["calibration"]["in_progress"] == 1
        assert kpis["alerts"] == {"overdue_unaccepted": 2}
        shown = nodes[2].get(f"/v1/twins/{feed.meters[bad[1]]}")  # the digital twin
        assert (
            shown["instance"]["area"] == feed.area_id
            and shown["instance"]["asset_status"] == "running"
        )
        assert shown["instance"]["model_verdict"]["verdict"] == "out_of_tolerance"
        assert shown["work_orders"] == [
            {"order": order, "kind": "replacement", "status": "evaluated"}
        ]
        assert (
            shown["authorised"]["institutions"] == ["LAB-1"]
            and len(shown["authorised"]["endorsers"]) == 2
        )
        events = [e["event"] for e in shown["log"]]
        assert events[:2] == ["registered", "endorsed"] and "verified_user_calibration" in events
        assert events[-1] == "work_order_evaluated"
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
