"""The demo's meters in the field (Tianjin spec §6.1-§6.2): three transformer areas judged
by the remote error model (oracle.area_feed), user calibration requests answered each
way, and a replacement work order from the model's verdict taken through its whole life."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.crypto import KeyPair, get_suite
from ledger.readings import SequencedSigner
from ledger.types import Transaction
from ledger.verification import NOT_QUALIFIED
from node.load import submit_all
from node.testnet import Daemon
from oracle.area_feed import AreaFeed
from oracle.areas import AreaConfig
from oracle.keys import load_signing_key


def wait_committed(nodes: list[Daemon], last_hash: str, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if all(d.get(f"/v1/tx/{last_hash}")["status"] == "committed" for d in nodes):
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


AREAS = (  # (meters, bad meters): the first area's bad meters show the work orders
    AreaConfig(meters=8, days=2, seed=7, bad=2, bad_error_ppm=60_000),
    AreaConfig(meters=6, days=2, seed=8, bad=1, bad_error_ppm=80_000),
    AreaConfig(meters=10, days=2, seed=9, bad=0),
)


def run_area(nodes: list[Daemon], suite: str, homes: list[Path]) -> bool:
    """Three transformer areas, two days of hourly readings; each meter's estimate as a
    node holds it, then calibration requests and a replacement work order in the first."""
    keys = [load_signing_key(h / "keys" / "node_key.json")[1] for h in homes[:3]]
    signer = SequencedSigner(get_suite(suite), nodes[0].chain())
    feeds = [AreaFeed(cfg, suite, nodes[0].chain(), keys[0], (keys[1], keys[2]), keys[1],
                      area_no=k + 1, signer=signer) for k, cfg in enumerate(AREAS)]  # fmt: skip
    feed = feeds[0]
    feed.resume(nodes[0].get)  # these keys signed the fleet's and the supervision's part
    lab = get_suite(suite).keypair_from_seed(b"demo-calibration-laboratory")
    bad = [i for i, kind in enumerate(feed.area.kinds) if kind == "bad"]
    good = feed.area.kinds.index("good")

    def commit(txs: list[Transaction]) -> bool:
        if wait_committed(nodes, submit_all([nodes[0].api], txs, suite)[-1]):
            return True
        print("area transactions did not commit", file=sys.stderr)
        return False

    print(f"\nremote error model: {len(feeds)} transformer areas of "
          f"{', '.join(str(c.meters) for c in AREAS)} user meters (running assets of the "
          "utility) and their summary meters, two days of hourly signed readings (0.2 % "
          "noise, 3 % line loss)")  # fmt: skip
    setup = [[tx for f in feeds for tx in step(f)] for step in
             (AreaFeed.registrations, AreaFeed.endorsements_and_area, AreaFeed.assets,
              AreaFeed.installations)]  # fmt: skip
    periods = [[tx for batch in batches for tx in batch]
               for batches in zip(*(f.readings() for f in feeds), strict=True)]  # fmt: skip
    batches = [*setup, [feed.institution(keys[0], lab, "LAB-1")],
               [feed.calibration("D1", bad[0])], *periods]  # fmt: skip
    for k, txs in enumerate(batches, start=1):
        if not commit(txs):
            return False
        print(f"\r  {k}/{len(batches)} batches committed", end="", file=sys.stderr)
    print(file=sys.stderr)
    for f in feeds:
        print_estimates(nodes[2], f)
    if not commit([feed.calibration("D2", good), feed.calibration("D3", bad[1])]):
        return False
    print_answers(nodes[3].get, ("D1", "D2", "D3"))
    return run_replacement(nodes, feed, commit, lab, bad[1])


def print_estimates(node: Daemon, feed: AreaFeed) -> None:
    shown = node.get(f"/v1/meter/areas/{feed.area_id}")
    print(f"{feed.area_id + ': meter (barcode)':28} {'true error':>10} {'estimate':>9} "
          f"{'± 1 s.e.':>9}  verdict")  # fmt: skip
    for i, m in enumerate(shown["meters"]):
        print(f"  {m['meter']:26} {feed.truth_ppm(i) / 1e4:>9.2f}% {m['error_ppm'] / 1e4:>8.2f}% "
              f"{m['stderr_ppm'] / 1e4:>8.2f}%  {m['verdict']}")  # fmt: skip


def print_answers(get: Callable[[str], Any], requests: tuple[str, ...]) -> None:
    print("\nuser calibration requests (§6.1), D1 asked before the area had been judged:")
    for rid in requests:
        a = get(f"/v1/meter/calibrations/{rid}")
        order = a["order_progress"]
        extra = (
            f"hotline {a['hotline']}"
            if a["answer"] == "qualified"
            else (
                f"work order {order['order']} ({order['kind']}, {order['status']})" if order else ""
            )
        )
        print(f"  {rid}: meter {a['barcode']}, model {a['model']['verdict']:16} -> "
              f"{a['answer']}  {extra}")  # fmt: skip


Commit = Callable[[list[Transaction]], bool]


def run_replacement(nodes: list[Daemon], feed: AreaFeed, commit: Commit, lab: KeyPair,
                    meter: int) -> bool:  # fmt: skip
    """The replacement order the model opened for `meter`, step by step, then the KPIs."""
    answer = nodes[0].get("/v1/meter/calibrations/D3")["order_progress"]
    order = answer["order"]
    record = feed.calibration_record(lab, "LAB-1", "RT1", meter, NOT_QUALIFIED)
    steps = [[feed.step(order, "accept")], [record],
             [feed.step(order, "process", task_no="RT1")], [feed.step(order, "visit")],
             [feed.step(order, "evaluate", satisfaction="satisfied", opinion="quick")]]  # fmt: skip
    for txs in steps:
        if not commit(txs):
            return False
    done = nodes[1].get(f"/v1/meter/work_orders/{order}")
    print(
        f"\nreplacement work order {order} (§3.3), opened by the model's verdict: "
        f"{done['status']}, verification {done['result']}, satisfaction {done['satisfaction']}"
    )
    k = nodes[2].get("/v1/meter/kpis")
    r, c = k["replacement"], k["calibration"]
    print(f"  KPIs: {r['verdicts']} out-of-tolerance verdicts, {r['opened']} replacement orders "
          f"(conversion {pct(r['conversion_rate_ppm'])}, accuracy {pct(r['accuracy_ppm'])}); "
          f"calibration orders {c['total']}, {c['in_progress']} in progress")  # fmt: skip
    return True


def pct(ppm: int | None) -> str:
    return "-" if ppm is None else f"{ppm / 1e4:.0f} %"
