"""The public verification registry (Rosstandart's FGIS, seed 001; issue 19): every public
verification record as one searchable entry with its valid-until date, and reminders to
the owner before the interval runs out.

The contract observes the verification records the verification contract accepted. A
record found 合格 is valid until its verification date plus the interval of its meter
type (`intervals_days` in the genesis `registry` section, "*" for any type; default 8
years, the rotation period of electricity meters in China); a failed one has no validity.
A meter's newest record is the one that counts. `reminder_lead_days` (default 90) before
the valid-until date, the first block whose time has reached that day raises
`verification_due` for the owner (the asset's owning unit): decided from block time, so
every node raises it in the same block.

State:
  entry/<barcode>/<task>/<kind> = {barcode, task, kind, date, result, certificate_no,
        institution, meter_type, manufacturer, wiring, owner, valid_until ("" if none)}
  current/<barcode> = the entry key of the meter's newest record
  due/<YYYY-MM-DD>  = [barcode]: reminders to raise on that day
  reminder/<owner>/<barcode> = {valid_until, raised_ms}
  checked = the last day (YYYY-MM-DD) whose reminders were raised
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import TxResult
from analysis.state import ContractState
from ledger.types import Transaction
from ledger.verification import KIND_RECORD, QUALIFIED, VerificationRecord, parse_verification

DEFAULT_INTERVAL_DAYS = 8 * 365 + 2  # eight years
DEFAULT_LEAD_DAYS = 90


@dataclass(frozen=True)
class RegistryRules:
    intervals_days: dict[str, int] = field(default_factory=lambda: {"*": DEFAULT_INTERVAL_DAYS})
    reminder_lead_days: int = DEFAULT_LEAD_DAYS

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> RegistryRules:
        unknown = set(raw) - {"intervals_days", "reminder_lead_days"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        intervals = raw.get("intervals_days", {"*": DEFAULT_INTERVAL_DAYS})
        if not isinstance(intervals, dict) or not all(
            isinstance(k, str) and type(v) is int and 1 <= v <= 100 * 366
            for k, v in intervals.items()
        ):
            raise ValueError("intervals_days: {meter type or '*': days in [1, 36600]}")
        lead = raw.get("reminder_lead_days", DEFAULT_LEAD_DAYS)
        if type(lead) is not int or not 0 <= lead <= 3660:
            raise ValueError("reminder_lead_days: days in [0, 3660]")
        return cls(dict(intervals), lead)

    def interval_days(self, meter_type: str) -> int | None:
        return self.intervals_days.get(meter_type, self.intervals_days.get("*"))


@dataclass
class RegistryContract:
    rules: RegistryRules
    name: str = "registry"
    kinds: tuple[str, ...] = ()
    observes: tuple[str, ...] = (KIND_RECORD,)  # records the verification contract accepted

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        record = parse_verification(tx.kind, tx.payload)
        assert isinstance(record, VerificationRecord)
        return TxResult(True, events=tuple(self._enter(state, record)))

    def begin_block(self, state: ContractState, height: int) -> list[tuple[str, Any]]:
        """Raise the reminders of every day up to this block's day not yet checked."""
        if not state.time_ms:
            return []
        today = day_of(state.time_ms)
        checked = state.get("checked")
        if checked is None:  # the first block with a time: start checking from here
            state.put("checked", today)
            return self._raise(state, today)
        events: list[tuple[str, Any]] = []
        day = checked
        while day < today:
            day = shift(day, 1)
            events += self._raise(state, day)
        if day != checked:
            state.put("checked", day)
        return events

    def _enter(self, state: ContractState, r: VerificationRecord) -> list[tuple[str, Any]]:
        asset = state.peer("verification").get(f"asset/{r.barcode}")
        interval = self.rules.interval_days(asset["meter_type"])
        try:
            valid_until = shift(r.date[:10], interval) if r.result == QUALIFIED and interval else ""
        except ValueError:  # the record's format allows 2024-02-31: no such day, no validity
            valid_until = ""
        key = f"entry/{r.barcode}/{r.task_no}/{r.record_kind}"
        state.put(key, {"barcode": r.barcode, "certificate_no": r.certificate_no,
                        "date": r.date, "institution": r.institution_id, "kind": r.record_kind,
                        "manufacturer": asset["manufacturer"], "meter_type": asset["meter_type"],
                        "owner": asset["owner_unit"], "result": r.result, "task": r.task_no,
                        "valid_until": valid_until, "wiring": asset["wiring"]})  # fmt: skip
        newest = state.get(f"current/{r.barcode}")
        if newest is not None and state.get(newest)["date"] > r.date:
            return []  # an older record entered late: the newer one still counts
        state.put(f"current/{r.barcode}", key)
        if not valid_until:
            return []
        remind_on = shift(valid_until, -self.rules.reminder_lead_days)
        checked = state.get("checked")
        if checked is not None and remind_on <= checked:  # that day is passed: remind now
            return [self._remind(state, r.barcode, key)]
        bucket = list(state.get(f"due/{remind_on}", []))
        bucket.append(r.barcode)
        state.put(f"due/{remind_on}", bucket)
        return []

    def _raise(self, state: ContractState, day: str) -> list[tuple[str, Any]]:
        events = []
        for barcode in state.get(f"due/{day}", []):
            key = state.get(f"current/{barcode}")
            entry = state.get(key)
            if shift(entry["valid_until"], -self.rules.reminder_lead_days) == day:
                events.append(self._remind(state, barcode, key))  # still the newest record's
        return events

    def _remind(self, state: ContractState, barcode: str, key: str) -> tuple[str, Any]:
        entry = state.get(key)
        state.put(f"reminder/{entry['owner']}/{barcode}",
                  {"raised_ms": state.time_ms, "valid_until": entry["valid_until"]})  # fmt: skip
        return ("verification_due", {"barcode": barcode, "owner": entry["owner"],
                                     "valid_until": entry["valid_until"]})  # fmt: skip


def day_of(time_ms: int) -> str:
    return datetime.datetime.fromtimestamp(time_ms // 1000, datetime.UTC).date().isoformat()


def shift(day: str, days: int) -> str:
    """A YYYY-MM-DD date `days` later (earlier if negative): calendar arithmetic, the same
    on every node."""
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=days)).isoformat()
