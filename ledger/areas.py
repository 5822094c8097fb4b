"""Transformer areas (Tianjin specification §6.1.3): which user meters a summary meter
balances. One kind, `meter.area`, a tagged canonical-msgpack list like `ledger.readings`:
a utility registers an area with its summary meter, its user meters (device ids of the
device registry, each with its accuracy class) and the period its balance is taken over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.encoding import decode
from ledger.errors import InvalidEncoding
from ledger.readings import ID_PATTERN, Payload
from ledger.verification import ERROR_LIMIT_PPM, NAME_ID, InvalidRecord, _match, _one_of
from ledger.wire import expect_tagged

KIND_AREA = "meter.area"
PERIODS_S = (3600, 86400)  # hourly or daily balances
MAX_AREA_METERS = 300


@dataclass(frozen=True)
class AreaRegistration(Payload):
    TAG: ClassVar[int] = 57
    KIND: ClassVar[str] = KIND_AREA
    area_id: str
    summary_meter: str
    meters: tuple[tuple[str, str], ...]  # (device id, accuracy class)
    period_s: int

    @classmethod
    def from_wire(cls, value: Any) -> AreaRegistration:
        area, summary, meters, period = expect_tagged(value, cls.TAG, 4, "area")
        if not isinstance(meters, list) or not 1 <= len(meters) <= MAX_AREA_METERS:
            raise InvalidRecord("required", "meters", f"1..{MAX_AREA_METERS} user meters")
        parsed = []
        for m in meters:
            if not (isinstance(m, list) and len(m) == 2):
                raise InvalidRecord("format", "meters", "[device id, accuracy class]")
            parsed.append((_match(m[0], ID_PATTERN, "meters"),
                           _one_of(m[1], ERROR_LIMIT_PPM, "accuracy_class")))  # fmt: skip
        ids = [summary, *(i for i, _ in parsed)]
        if len(set(ids)) != len(ids):
            raise InvalidRecord("duplicate", "meters")
        if type(period) is not int or period not in PERIODS_S:
            raise InvalidRecord("allowed_values", "period_s", f"one of {PERIODS_S}")
        return cls(_match(area, NAME_ID, "area_id"), _match(summary, ID_PATTERN, "summary_meter"),
                   tuple(parsed), period)  # fmt: skip


def parse_area(payload: bytes) -> AreaRegistration:
    try:
        return AreaRegistration.from_wire(decode(payload))
    except InvalidEncoding as exc:
        raise InvalidRecord("malformed", KIND_AREA, str(exc)) from None
