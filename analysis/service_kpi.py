"""The supervision figures of §6.2 and §6.4.1, computed from the published states of the
service, area and verification contracts when asked (queries, not consensus state: every
node computes them from the same state, so they agree). Rates in parts per million of
their denominator, None when it is 0; times in ms of block time.

- calibration (§6.4.1): orders in total, in progress, done (evaluated), the mean handling
  time from creation to the verification result;
- replacement (§6.2.2): conversion rate (orders opened per out-of-tolerance verdict),
  accuracy (processed orders whose verification found the meter 不合格), timely handling
  (processed orders that raised no overdue alert), overdue alerts;
- model (§6.2.1): judgements of the areas, the period between them, meters judged, found
  out of tolerance;
- quality (§6.2.3): meters delivered and found out of tolerance per manufacturer and per
  arrival batch; running meters and those out of tolerance per supply station (the
  asset's owning unit). The 8-year running figure needs installation dates, which the
  asset registry does not carry yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from analysis.areas import EVAL_EVERY
from analysis.state import ContractState
from ledger.verification import NOT_QUALIFIED

OVERDUE = ("overdue_unaccepted", "overdue_unprocessed")


def rate_ppm(part: int, whole: int) -> int | None:
    return None if whole == 0 else part * 1_000_000 // whole


def scan(view: ContractState, prefix: str) -> list[tuple[str, Any]]:
    """The committed keys under `prefix`, sorted (queries read committed state only)."""
    return sorted((k, v) for k, v in view.committed.items() if k.startswith(prefix))


def under(view: ContractState, prefix: str) -> list[Any]:
    """The committed values under `prefix` in no set order: for sums and counts, where
    the order cannot change the answer and sorting 100,000 keys costs most of it."""
    return [v for k, v in view.committed.items() if k.startswith(prefix)]


def kpis(service: ContractState, areas: ContractState, assets: ContractState) -> dict[str, Any]:
    orders = under(service, "order/")
    return {"calibration": _calibration([o for o in orders if o["kind"] == "calibration"]),
            "replacement": _replacement([o for o in orders if o["kind"] == "replacement"],
                                        areas.get("flags", 0)),
            "model": _model(areas), "quality": _quality(areas, assets),
            "alerts": _counted(a["alert"] for a in under(service, "alert/"))}  # fmt: skip


def _counted(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _calibration(orders: list[dict[str, Any]]) -> dict[str, Any]:
    done = [o for o in orders if o["status"] == "evaluated"]
    handled = [o["processed_ms"] - o["created_ms"] for o in orders if o["processed_ms"]]
    return {"total": len(orders), "in_progress": len(orders) - len(done), "done": len(done),
            "mean_handling_ms": sum(handled) // len(handled) if handled else None,
            "by_status": _counted(o["status"] for o in orders)}  # fmt: skip


def _replacement(orders: list[dict[str, Any]], flags: int) -> dict[str, Any]:
    processed = [o for o in orders if o["processed_ms"]]
    confirmed = sum(o["result"] == NOT_QUALIFIED for o in processed)
    timely = sum(not set(o["alerts"]) & set(OVERDUE) for o in processed)
    overdue = sum(a in OVERDUE for o in orders for a in o["alerts"])
    return {"verdicts": flags, "opened": len(orders), "processed": len(processed),
            "conversion_rate_ppm": rate_ppm(len(orders), flags),
            "accuracy_ppm": rate_ppm(confirmed, len(processed)),
            "timely_rate_ppm": rate_ppm(timely, len(processed)), "overdue": overdue}  # fmt: skip


def _model(areas: ContractState) -> dict[str, Any]:
    every = under(areas, "area/")
    judged = [a for a in every if a["estimate"] is not None]
    return {"areas": len(every), "judged_areas": len(judged),
            "judgements": sum(a["added"] // EVAL_EVERY for a in judged),
            "periods_between_s": sorted({a["period_s"] * EVAL_EVERY for a in judged}),
            "meters_judged": sum(len(a["meters"]) for a in judged),
            "out_of_tolerance": sum(a["estimate"]["verdicts"].count("out_of_tolerance")
                                    for a in judged)}  # fmt: skip


def _quality(areas: ContractState, assets: ContractState) -> dict[str, Any]:
    flagged = {f["meter"] for f in under(areas, "flag/")}
    groups: dict[str, dict[str, list[int]]] = {"manufacturer": {}, "batch": {}, "station": {}}
    for key, asset in assets.committed.items():
        if not key.startswith("asset/"):
            continue
        bad = key[len("asset/") :] in flagged
        for group, name in (("manufacturer", asset["manufacturer"]), ("batch", asset["batch"])):
            row = groups[group].setdefault(name, [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + bad
        if asset["status"] == "running":
            row = groups["station"].setdefault(asset["owner_unit"], [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + bad
    label = {"manufacturer": "delivered", "batch": "delivered", "station": "running"}
    return {group: [{"name": name, label[group]: n, "out_of_tolerance": bad,
                     "rate_ppm": rate_ppm(bad, n)} for name, (n, bad) in sorted(rows.items())]
            for group, rows in groups.items()}  # fmt: skip
