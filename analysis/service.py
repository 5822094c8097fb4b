"""User active calibration, work orders and their alerts (Tianjin specification §6.1,
§6.2.2, §6.4; payloads in ledger.service).

A calibration request runs §6.1.2's pre-checks in order: the asset is running (else the
answer is `not_running`); it has no unfinished work order (else `work_order_open`, with
that order's progress). Then §6.1.3: the remote error model's last verdict on the meter
(analysis.areas; a meter's device id is its barcode): `within` answers `qualified` with
the service hotline; out of tolerance, undecided, or no verdict at all ("cannot be
computed") answers `further_verification`, records an anomaly for the regulator and
opens a calibration work order. Each out-of-tolerance verdict the area contract
publishes opens a replacement work order for a meter that has none open (§3.3).

A work order takes its steps in order: created, accepted, processed (with the
verification record that settled it), visited, evaluated; evaluated is finished (办结).
Alerts (§6.4.2) are decided from block time at the start of each block: accepted no
later than `accept_limit_s` after creation, processed no later than `process_limit_s`
after acceptance (else `overdue_unaccepted`, `overdue_unprocessed`), and an
`unsatisfied` evaluation raises `customer_unsatisfied`. An alert is raised by the first
block whose time has passed its deadline, so an idle network raises it late, never early.

State:
  request/<id> = {asset_no, barcode, channel, applicant, time_ms, answer, order, model}
  order/<id>   = {kind, barcode, origin, status, created_ms, accepted_ms, processed_ms,
                  visited_ms, evaluated_ms, staff, task_no, result, satisfaction, opinion,
                  model, alerts}; ids C-<request id> (calibration), R-<flag n> (replacement)
  open/<barcode> = the unfinished order's id, or "" (none)
  orders = [count of calibration, count of replacement]
  anomaly/<n>, alert/<n>: numbered from 1; anomalies, alerts = their counts
  deadlines = [[due ms, order id, alert]] sorted; flags_seen = area flags read so far
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from analysis.contracts import TxResult
from analysis.state import ContractState
from ledger.service import (
    ACTIONS,
    KIND_CALIBRATION,
    KIND_WORK_ORDER,
    CalibrationRequest,
    WorkOrderStep,
    parse_service,
)
from ledger.types import Transaction
from ledger.verification import RECORD_KINDS, InvalidRecord

STATUSES = ("created", "accepted", "processed", "visited", "evaluated")
STATUS_AFTER = dict(zip(ACTIONS, STATUSES[1:], strict=True))  # the step -> the status it gives
STEP_OF = dict(zip(STATUSES[:-1], ACTIONS, strict=True))  # the status -> the step it waits for
KINDS = ("calibration", "replacement")


@dataclass(frozen=True)
class ServiceRules:
    utilities: frozenset[bytes]
    accept_limit_s: int = 86_400  # 超期未受理: one day to accept
    process_limit_s: int = 5 * 86_400  # 超期未处理: five days from acceptance to result
    hotline: str = "95598"

    @classmethod
    def from_config(cls, raw: dict[str, Any], utilities: frozenset[bytes]) -> ServiceRules:
        unknown = set(raw) - {"accept_limit_s", "process_limit_s", "hotline"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        limits = [raw.get(k, getattr(cls, k)) for k in ("accept_limit_s", "process_limit_s")]
        if any(type(v) is not int or not 1 <= v <= 366 * 86_400 for v in limits):
            raise ValueError("accept_limit_s and process_limit_s: seconds in [1, 366 days]")
        hotline = raw.get("hotline", cls.hotline)
        if not isinstance(hotline, str) or not 1 <= len(hotline) <= 32:
            raise ValueError("hotline: text of 1..32 characters")
        return cls(utilities, limits[0], limits[1], hotline)


@dataclass
class ServiceContract:
    rules: ServiceRules
    name: str = "service"
    kinds: tuple[str, ...] = (KIND_CALIBRATION, KIND_WORK_ORDER)
    observes: tuple[str, ...] = ()

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        if tx.sender not in self.rules.utilities:
            return TxResult(False, "not_utility")
        try:
            payload = parse_service(tx.kind, tx.payload)
        except InvalidRecord as exc:
            return TxResult(False, f"invalid:{exc.rule}:{exc.field}")
        if isinstance(payload, CalibrationRequest):
            return self._request(state, payload)
        return self._step(state, payload)

    def begin_block(self, state: ContractState, height: int) -> list[tuple[str, Any]]:
        return [*self._open_replacements(state), *_raise_due(state)]

    # ---- §6.1: the user's request ------------------------------------------------------

    def _request(self, state: ContractState, p: CalibrationRequest) -> TxResult:
        if f"request/{p.request_id}" in state:
            return TxResult(False, "request_exists")
        assets = state.peer("verification")
        barcode = assets.get(f"assetno/{p.asset_no}")
        if barcode is None:
            return TxResult(False, "unknown_asset")
        answer: dict[str, Any] = {"answer": "", "order": "", "model": model_of(state, barcode)}
        open_order = state.get(f"open/{barcode}") or ""
        if assets.get(f"asset/{barcode}")["status"] != "running":
            answer["answer"] = "not_running"
        elif open_order:
            answer.update(answer="work_order_open", order=open_order)
        elif answer["model"]["verdict"] == "within":
            answer.update(answer="qualified", hotline=self.rules.hotline)
        else:
            answer.update(answer="further_verification", order=f"C-{p.request_id}")
        state.put(f"request/{p.request_id}", {
            "applicant": p.applicant, "asset_no": p.asset_no, "barcode": barcode,
            "channel": p.channel, "time_ms": state.time_ms, **answer})  # fmt: skip
        events: list[tuple[str, Any]] = [("calibration_answered", {
            "request": p.request_id, "barcode": barcode, "answer": answer["answer"],
            "order": answer["order"]})]  # fmt: skip
        if answer["answer"] == "further_verification":
            events.append(_anomaly(state, p.request_id, barcode, answer["model"]))
            events.append(self._open(state, answer["order"], "calibration", barcode,
                                     p.request_id, answer["model"]))  # fmt: skip
        return TxResult(True, events=tuple(events))

    # ---- work orders -----------------------------------------------------------------

    def _open(self, state: ContractState, order_id: str, kind: str, barcode: str, origin: str,
              model: dict[str, Any]) -> tuple[str, Any]:  # fmt: skip
        now = state.time_ms
        state.put(f"order/{order_id}", {
            "accepted_ms": 0, "alerts": [], "barcode": barcode, "created_ms": now,
            "evaluated_ms": 0, "kind": kind, "model": model, "opinion": "", "origin": origin,
            "processed_ms": 0, "result": "", "satisfaction": "", "staff": [],
            "status": "created", "task_no": "", "visited_ms": 0})  # fmt: skip
        state.put(f"open/{barcode}", order_id)
        counts = list(state.get("orders", [0, 0]))
        counts[KINDS.index(kind)] += 1
        state.put("orders", counts)
        _add_deadline(state, now + self.rules.accept_limit_s * 1000, order_id, "overdue_unaccepted")
        return ("work_order_opened", {"order": order_id, "kind": kind, "barcode": barcode})

    def _step(self, state: ContractState, p: WorkOrderStep) -> TxResult:
        order = state.get(f"order/{p.order_id}")
        if order is None:
            return TxResult(False, "unknown_order")
        if STEP_OF.get(order["status"]) != p.action:
            return TxResult(False, f"invalid:order_step:{order['status']}->{p.action}")
        result = ""
        if p.action == "process":
            result = _record_result(state.peer("verification"), order["barcode"], p.task_no)
            if not result:
                return TxResult(False, "unknown_record")
        order, now = state.edit(f"order/{p.order_id}"), state.time_ms
        order["status"] = STATUS_AFTER[p.action]
        order[f"{order['status']}_ms"] = now
        if p.staff:
            order["staff"].append([p.action, p.staff])
        events: list[tuple[str, Any]] = [
            ("work_order_step", {"order": p.order_id, "status": order["status"]})
        ]
        if p.action == "accept":
            _add_deadline(state, now + self.rules.process_limit_s * 1000, p.order_id,
                          "overdue_unprocessed")  # fmt: skip
        elif p.action == "process":
            order.update(task_no=p.task_no, result=result)
        elif p.action == "evaluate":
            order.update(satisfaction=p.satisfaction, opinion=p.opinion)
            state.put(f"open/{order['barcode']}", "")
            if p.satisfaction == "unsatisfied":
                events.append(_alert(state, p.order_id, order, "customer_unsatisfied", now))
        return TxResult(True, events=tuple(events))

    def _open_replacements(self, state: ContractState) -> list[tuple[str, Any]]:
        """A replacement order for each new out-of-tolerance verdict of a known, running
        meter with no order open (one open already follows the meter)."""
        published, seen = state.peer("areas").get("flags", 0), state.get("flags_seen", 0)
        if published == seen:
            return []
        events, assets = [], state.peer("verification")
        for n in range(seen + 1, published + 1):
            flag = state.peer("areas").get(f"flag/{n}")
            barcode, asset = flag["meter"], assets.get(f"asset/{flag['meter']}")
            if asset is None or asset["status"] != "running" or state.get(f"open/{barcode}"):
                continue
            model = {"verdict": "out_of_tolerance", "error_ppm": flag["error_ppm"],
                     "stderr_ppm": flag["stderr_ppm"], "area": flag["area"]}  # fmt: skip
            events.append(self._open(state, f"R-{n}", "replacement", barcode, f"flag/{n}", model))
        state.put("flags_seen", published)
        return events


def model_of(state: ContractState, barcode: str) -> dict[str, Any]:
    """The remote error model's last verdict on a meter: verdict `none` when the meter is
    in no area or its area was not judged yet."""
    areas = state.peer("areas")
    member = areas.get(f"member/{barcode}")
    if member is None:
        return {"verdict": "none", "error_ppm": 0, "stderr_ppm": 0, "area": ""}
    area_id, index = member
    found = areas.get(f"area/{area_id}")["estimate"]
    if found is None or index >= len(found["verdicts"]):  # the summary meter is not judged
        return {"verdict": "none", "error_ppm": 0, "stderr_ppm": 0, "area": area_id}
    return {"verdict": found["verdicts"][index], "error_ppm": found["error_ppm"][index],
            "stderr_ppm": found["stderr_ppm"][index], "area": area_id}  # fmt: skip


def _record_result(assets: ContractState, barcode: str, task_no: str) -> str:
    """The conclusion of the meter's verification record of that task ('' if none)."""
    for kind in ("user_calibration", *RECORD_KINDS):
        stored = assets.get(f"record/{barcode}/{task_no}/{kind}")
        if stored is not None:
            return str(stored["result"])
    return ""


def _anomaly(state: ContractState, request: str, barcode: str, model: dict[str, Any]) -> Any:
    n = state.get("anomalies", 0) + 1
    state.put("anomalies", n)
    found = {"request": request, "barcode": barcode, "time_ms": state.time_ms, **model}
    state.put(f"anomaly/{n}", found)
    return ("calibration_anomaly", {"n": n, **found})


def _add_deadline(state: ContractState, due_ms: int, order_id: str, alert: str) -> None:
    deadlines = list(state.get("deadlines", []))
    bisect.insort(deadlines, [due_ms, order_id, alert])
    state.put("deadlines", deadlines)


def _raise_due(state: ContractState) -> list[tuple[str, Any]]:
    """The alerts whose deadline this block's time has passed, for orders still waiting
    for that step."""
    deadlines, now = state.get("deadlines", []), state.time_ms
    if not deadlines or deadlines[0][0] >= now:
        return []
    due = bisect.bisect_left(deadlines, [now])  # those strictly before now
    state.put("deadlines", deadlines[due:])
    events = []
    for due_ms, order_id, alert in deadlines[:due]:
        waiting = {"overdue_unaccepted": "created", "overdue_unprocessed": "accepted"}[alert]
        if state.get(f"order/{order_id}")["status"] == waiting:
            events.append(_alert(state, order_id, state.edit(f"order/{order_id}"), alert, due_ms))
    return events


def _alert(state: ContractState, order_id: str, order: dict[str, Any], alert: str,
           due_ms: int) -> tuple[str, Any]:  # fmt: skip
    """Raise one alert; `order` is the order's value being written."""
    n = state.get("alerts", 0) + 1
    state.put("alerts", n)
    found = {"alert": alert, "order": order_id, "kind": order["kind"],
             "barcode": order["barcode"], "due_ms": due_ms, "time_ms": state.time_ms}  # fmt: skip
    state.put(f"alert/{n}", found)
    order["alerts"].append(alert)
    return ("work_order_alert", {"n": n, **found})
