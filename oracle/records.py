"""Verification records as an institution's test bench would write them (JJG 596).

The simulator, the records benchmark and the tests build their records here: the nine
Appendix B items, the certificate's data, and the basic error at each load point the
regulation lists for the meter's wiring, the values derived from the barcode so that a
record is the same whoever builds it. A record reports what the institution decided: a
lax institution that passes a failing meter also writes load points that pass, as a
forged certificate would.
"""

from __future__ import annotations

from ledger.verification import ERROR_LIMIT_PPM, ITEMS, NOT_QUALIFIED, QUALIFIED, VerificationRecord

# load current / power factor: balanced load, then each element of a three-phase meter
SINGLE_PHASE_POINTS = ("Imax/1.0", "Ib/1.0", "0.5Ib/1.0", "0.1Ib/1.0", "0.05Ib/1.0",
                       "Imax/0.5L", "Ib/0.5L", "0.2Ib/0.5L", "Ib/0.8C", "0.2Ib/0.8C")  # fmt: skip
ELEMENT_POINTS = tuple(f"{phase}:{point}" for phase in "ABC"
                       for point in ("Imax/1.0", "Ib/1.0", "0.1Ib/1.0", "Imax/0.5L",
                                      "Ib/0.5L", "0.2Ib/0.5L"))  # fmt: skip
FAILING_POINT = 3  # a failing meter is out at 0.1Ib, where drift shows first


def load_points(barcode: str, wiring: str, result: str, accuracy_class: str
                ) -> tuple[tuple[str, int], ...]:  # fmt: skip
    """The basic error per load point (signed ppm): within a quarter of the class limit
    for a meter reported 合格, one point 25 % beyond it for one reported 不合格."""
    limit = ERROR_LIMIT_PPM[accuracy_class]
    names = SINGLE_PHASE_POINTS + (ELEMENT_POINTS if wiring == "03" else ())
    seed = int(barcode[-9:])
    values = [((seed * 7919 + i * 104_729) % 1001 - 500) * limit // 2000 for i in range(len(names))]
    if result == NOT_QUALIFIED:
        values[FAILING_POINT] = -limit * 5 // 4
    return tuple(zip(names, values, strict=True))


def items_for(result: str, points: tuple[tuple[str, int], ...]) -> tuple[tuple[str, str, int], ...]:
    """Appendix B's nine items: the basic error carries the worst point's magnitude."""
    worst = max((abs(ppm) for _, ppm in points), default=0)
    return tuple((code, result if code == "BASICERR_Meter_CONC" else QUALIFIED,
                  worst if code == "BASICERR_Meter_CONC" else 0) for code in ITEMS)  # fmt: skip


def bench_record(task: str, barcode: str, date: str, institution: str, kind: str, result: str,
                 wiring: str = "01", accuracy_class: str = "2") -> VerificationRecord:  # fmt: skip
    """A whole record of one meter, as `institution` reports it."""
    points = load_points(barcode, wiring, result, accuracy_class)
    certificate = f"JD{task[-8:]}{barcode[-8:]}" if result == QUALIFIED else ""
    return VerificationRecord(task, barcode, date, institution, kind, items_for(result, points),
                              result, certificate, f"{institution} verifier 1",
                              f"{institution}-STD-1", 231, 48, points)  # fmt: skip
