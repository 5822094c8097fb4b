"""The area contract: the remote error model (analysis/error_model.py) fed by the ledger.

A utility registers a transformer area (`meter.area`): its summary meter and its user
meters, devices of the device registry. The contract observes the meter readings the
registry accepted. A reading carries the meter's cumulative energy at the end of its
interval; the energy of a period is the difference between a meter's readings at the ends
of two consecutive periods. A period whose every meter's energy is known is added to the
area's normal equations; one still missing a meter when a reading MAX_OPEN periods later
arrives is dropped and counted. Every EVAL_EVERY periods added, the area is judged: each
user meter's error, its standard error and its verdict against its accuracy class. A
meter newly found out of tolerance raises `meter_out_of_tolerance`.

State:
  area/<id>   = {meters: [id], summary: id, limits_ppm: [ppm], period_s, added, dropped,
                 last: [[period, cumulative Wh] | None] (user meters, then the summary),
                 open: [[period, [Wh or -1]]], acc: the normal equations (as text: their
                 integers outgrow msgpack's 64 bits), estimate: {...} | None}
  member/<id> = [area id, index] (the summary meter's index is the number of user meters)
  flags       = how many out-of-tolerance verdicts were raised; flag/<n> = the n-th
                {area, meter, error_ppm, stderr_ppm, time_ms} (published for analysis.service)

An electricity meter's device id is its asset barcode (ledger.verification): the work
orders find a meter's asset by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import TxResult
from analysis.error_model import Accumulator, judge
from analysis.state import ContractState
from ledger.areas import KIND_AREA, AreaRegistration, parse_area
from ledger.readings import KIND_METER, MeterReading, parse_payload
from ledger.types import Transaction
from ledger.verification import ERROR_LIMIT_PPM, InvalidRecord

MAX_OPEN = 3  # periods a late reading may still complete
EVAL_EVERY = 24  # periods added between two judgements of an area
MISSING = -1


@dataclass
class AreaContract:
    utilities: frozenset[bytes]
    name: str = "areas"
    kinds: tuple[str, ...] = (KIND_AREA,)
    observes: tuple[str, ...] = field(default=(KIND_METER,))  # readings the registry accepted

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        if tx.kind == KIND_METER:
            reading = parse_payload(tx.kind, tx.payload)
            assert isinstance(reading, MeterReading)
            return TxResult(True, events=tuple(observe(state, reading)))
        if tx.sender not in self.utilities:
            return TxResult(False, "not_utility")
        try:
            return register(state, parse_area(tx.payload))
        except InvalidRecord as exc:
            return TxResult(False, f"invalid:{exc.rule}:{exc.field}")


def register(state: ContractState, p: AreaRegistration) -> TxResult:
    if f"area/{p.area_id}" in state:
        return TxResult(False, "area_exists")
    meters = [m for m, _ in p.meters]
    taken = next((m for m in (*meters, p.summary_meter) if f"member/{m}" in state), None)
    if taken is not None:
        return TxResult(False, f"meter_in_another_area:{taken}")
    for index, meter in enumerate((*meters, p.summary_meter)):
        state.put(f"member/{meter}", [p.area_id, index])
    state.put(f"area/{p.area_id}", {
        "acc": save(Accumulator(len(meters))), "added": 0, "dropped": 0, "estimate": None,
        "last": [None] * (len(meters) + 1),
        "limits_ppm": [ERROR_LIMIT_PPM[c] for _, c in p.meters], "meters": meters,
        "open": [], "period_s": p.period_s, "summary": p.summary_meter,
    })  # fmt: skip
    return TxResult(True, events=(("area_registered", {"area": p.area_id, "meters": len(meters)}),))


def observe(state: ContractState, reading: MeterReading) -> list[tuple[str, Any]]:
    member = state.get(f"member/{reading.meter_id}")
    if member is None:
        return []  # a meter of no area
    area_id, index = member
    area = state.edit(f"area/{area_id}")
    period = (reading.time_ms - 1) // (area["period_s"] * 1000)  # the period it ends
    last = area["last"][index]
    area["last"][index] = [period, reading.energy_wh]
    if last is None or last[0] != period - 1:
        return []  # the first reading, or one after a gap: no period's energy yet
    _record(area, period, index, reading.energy_wh - last[1])
    events = _close_complete(area, area_id)
    for name, data in events:
        if name == "meter_out_of_tolerance":
            publish_flag(state, data)
    return events


def publish_flag(state: ContractState, found: dict[str, Any]) -> None:
    """Out-of-tolerance verdicts numbered in ledger order, for the work-order contract to
    read (analysis.service): flags = their count, flag/<n> = the verdict, from 1."""
    count = state.get("flags", 0) + 1
    state.put("flags", count)
    state.put(f"flag/{count}", {**found, "time_ms": state.time_ms})


def _record(area: dict[str, Any], period: int, index: int, energy_wh: int) -> None:
    open_periods = area["open"]
    row = next((r for r in open_periods if r[0] == period), None)
    if row is None:
        row = [period, [MISSING] * (len(area["meters"]) + 1)]
        open_periods.append(row)
        open_periods.sort(key=lambda r: r[0])
    row[1][index] = energy_wh
    stale = [r for r in open_periods if r[0] <= period - MAX_OPEN]  # can no longer complete
    for r in stale:
        open_periods.remove(r)
    area["dropped"] += len(stale)


def _close_complete(area: dict[str, Any], area_id: str) -> list[tuple[str, Any]]:
    complete = [r for r in area["open"] if MISSING not in r[1]]
    if not complete:
        return []
    acc = load(area["acc"], len(area["meters"]))
    events: list[tuple[str, Any]] = []
    for period, energies in complete:
        area["open"].remove([period, energies])
        acc.add(energies[:-1], energies[-1])
        area["added"] += 1
        if area["added"] % EVAL_EVERY == 0:
            events += _judge(area, area_id, acc)
    area["acc"] = save(acc)
    return events


def _judge(area: dict[str, Any], area_id: str, acc: Accumulator) -> list[tuple[str, Any]]:
    judged = judge(acc, area["limits_ppm"])
    if judged is None:
        return []
    found, verdicts = judged
    before = (area["estimate"] or {}).get("verdicts", [])
    area["estimate"] = {"at_period": area["added"], "error_ppm": list(found.error_ppm),
                        "fixed_loss_wh": found.fixed_loss_wh,
                        "residual_ppm": found.residual_ppm,
                        "stderr_ppm": list(found.stderr_ppm), "verdicts": verdicts}  # fmt: skip
    return [("meter_out_of_tolerance", {"area": area_id, "meter": area["meters"][i],
                                        "error_ppm": found.error_ppm[i],
                                        "stderr_ppm": found.stderr_ppm[i]})
            for i, v in enumerate(verdicts)
            if v == "out_of_tolerance" and (i >= len(before) or before[i] != v)]  # fmt: skip


def save(acc: Accumulator) -> str:
    """The normal equations as text: hexadecimal integers, row by row."""
    numbers = [acc.periods, acc.y_squares, *acc.moment, *(v for row in acc.gram for v in row)]
    return ",".join(format(v, "x") for v in numbers)


def load(text: str, meters: int) -> Accumulator:
    numbers = [int(v, 16) for v in text.split(",")]
    size = meters + 2
    periods, y_squares, moment = numbers[0], numbers[1], numbers[2 : 2 + size]
    flat = numbers[2 + size :]
    gram = [flat[i * size : (i + 1) * size] for i in range(size)]
    return Accumulator(meters, gram, moment, y_squares, periods)
