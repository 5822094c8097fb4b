"""Meter verification payloads (Tianjin specification §4.2.1, Tables 1-2, Appendix B).

Transaction kinds, each a tagged canonical-msgpack list like `ledger.readings`:

- `meter.institution`: a regulator registers or revokes a verification institution and
  its signing key;
- `meter.asset`: a utility registers an electricity meter asset (barcode, asset number,
  arrival batch, manufacturer, type, wiring mode, accuracy class, owning unit);
- `meter.asset_status`: the utility moves a meter between in stock, running and removed;
- `meter.record`: a registered institution signs a verification record (JJG 596 items,
  Appendix B's table codes, the certificate's data and the basic error per load point)
  for one meter and task;
- `meter.record_digest`, `meter.sampling_task`, `meter.recheck`: below.

Parsing checks structure and formats and raises `InvalidRecord(rule, field)`; whether a
signer may submit it, and the cross-record rules, are the contract's
(`analysis.verification`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.crypto import get_suite
from ledger.encoding import decode
from ledger.errors import InvalidEncoding
from ledger.readings import Payload
from ledger.wire import blob, expect_list, expect_tagged, text, u64

KIND_INSTITUTION = "meter.institution"
KIND_ASSET = "meter.asset"
KIND_RECORD = "meter.record"
KIND_SAMPLING_TASK = "meter.sampling_task"
KIND_RECHECK = "meter.recheck"
KIND_RECORD_DIGEST = "meter.record_digest"  # a non-public record: its SM3 digest, its index
KIND_ASSET_STATUS = "meter.asset_status"
# an asset's life (Table 2): what each status may become
ASSET_MOVES = {"in_stock": ("running", "removed"), "running": ("removed", "in_stock"),
               "removed": ("in_stock",)}  # fmt: skip
TASK_MODES = ("physical", "data_recheck")  # §6.3.2
MAX_RECHECK = 2000  # the largest single sample of GB/T 2828.1 (letter R)
RECORD_KINDS = ("first", "sampling", "physical_recheck", "user_calibration")
QUALIFIED, NOT_QUALIFIED = "合格", "不合格"
CONCLUSIONS = (QUALIFIED, NOT_QUALIFIED, "-", "--")  # "-": not applicable
# Appendix B: tableCode -> (tableField, sort, tableName)
ITEMS = {
    "VOLT_Meter_CONC": ("VOLT_CONC_CODE", 1, "交流电压试验"),
    "BASICERR_Meter_CONC": ("BASIC_ERROR_CONC_CODE", 2, "基本误差试验"),
    "INTUIT_Meter_CONC": ("INTUIT_CONC_CODE", 3, "外观检查"),
    "CONST_Meter_CONC": ("CONST_CONC_CODE", 5, "仪表常数实验"),
    "DAYERR_Meter_CONC": ("DAYERR_CONC_CODE", 6, "日计时误差"),
    "Deviation_Meter_Conc": ("DEVIATION_MET_CONC", 7, "标准偏差"),
    "CREEPING_Meter_CONC": ("CREEPING_CONC_CODE", 8, "潜动试验"),
    "Starting_Meter_Conc": ("STARTING_CONC_CODE", 9, "起动试验"),
    "CLOCK_VALUE_Meter_CONC": ("CLOCK_VALUE_CONC_CODE", 11, "时钟示值误差"),
}
WIRING = {"01": "单相", "03": "三相四线"}  # Appendix B's wireModel -> wireModeName
BARCODE = re.compile(r"[0-9]{22}")
TASK_NO = re.compile(r"[0-9A-Za-z]{1,32}")
NAME_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,31}")  # institutions, batches
DAY = r"(20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE = re.compile(DAY + r" ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
ACCURACY_CLASSES = ("0.2S", "0.5S", "1", "2", "A", "B", "C", "D")
# the basic error's limit at the reference load, parts per million (JJG 596: class 2 and
# A ±2 %, class 1 and B ±1 %, 0.5S and C ±0.5 %, 0.2S and D ±0.2 %)
ERROR_LIMIT_PPM = {"0.2S": 2_000, "0.5S": 5_000, "1": 10_000, "2": 20_000,
                   "A": 20_000, "B": 10_000, "C": 5_000, "D": 2_000}  # fmt: skip
CERTIFICATE_NO = re.compile(r"[0-9A-Za-z-]{0,40}")  # empty: no certificate (a failed meter)
LOAD_POINT = re.compile(r"[0-9A-Za-z.:/]{1,16}")  # e.g. "Ib/1.0", "0.1Ib/0.5L", "A:Imax/1.0"
MAX_POINTS = 48
MAX_POINT_PPM = 10**6
ANY_64, ANY_200 = re.compile(r".{0,64}"), re.compile(r".{0,200}")


class InvalidRecord(ValueError):
    """A verification payload breaks a rule; `rule` and `field` name which."""

    def __init__(self, rule: str, field: str, detail: str = ""):
        super().__init__(f"{rule}: {field}" + (f" ({detail})" if detail else ""))
        self.rule, self.field, self.detail = rule, field, detail


def _match(value: Any, pattern: re.Pattern[str], field: str, max_len: int = 64) -> str:
    try:
        raw = text(value, field, max_len)
    except InvalidEncoding:
        raise InvalidRecord("required", field, "text expected") from None
    if not pattern.fullmatch(raw):
        raise InvalidRecord("format", field, repr(raw))
    return raw


def _text(value: Any, field: str, max_len: int = 64) -> str:
    try:
        return text(value, field, max_len)
    except InvalidEncoding:
        raise InvalidRecord("required", field, f"text of 1..{max_len} characters") from None


def _one_of(value: Any, allowed: tuple[str, ...] | dict[str, Any], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidRecord("allowed_values", field, f"one of {list(allowed)}")
    return value


@dataclass(frozen=True)
class InstitutionChange(Payload):
    TAG: ClassVar[int] = 50
    KIND: ClassVar[str] = KIND_INSTITUTION
    action: str  # register | revoke
    institution_id: str
    name: str
    public_key: bytes

    @classmethod
    def from_wire(cls, value: Any) -> InstitutionChange:
        action, iid, name, key = expect_tagged(value, cls.TAG, 4, "institution")
        return cls(_one_of(action, ("register", "revoke"), "action"),
                   _match(iid, NAME_ID, "institution_id"), _text(name, "name", 200),
                   blob(key, "public_key", 32, 65))  # fmt: skip


@dataclass(frozen=True)
class MeterAsset(Payload):
    TAG: ClassVar[int] = 51
    KIND: ClassVar[str] = KIND_ASSET
    barcode: str
    asset_no: str
    batch: str  # arrival batch number
    manufacturer: str
    meter_type: str
    wiring: str  # "01" single phase, "03" three phase (Appendix B's wireModel)
    accuracy_class: str
    owner_unit: str

    @classmethod
    def from_wire(cls, value: Any) -> MeterAsset:
        f = expect_tagged(value, cls.TAG, 8, "asset")
        return cls(_match(f[0], BARCODE, "barCode"), _text(f[1], "asset_no"),
                   _match(f[2], NAME_ID, "batch"), _text(f[3], "manufacturer", 200),
                   _text(f[4], "meter_type"), _one_of(f[5], WIRING, "wireModel"),
                   _one_of(f[6], ACCURACY_CLASSES, "accuracy_class"),
                   _text(f[7], "owner_unit", 200))  # fmt: skip


@dataclass(frozen=True)
class AssetStatus(Payload):
    """A utility installs, removes or returns to stock one of its meters."""

    TAG: ClassVar[int] = 56
    KIND: ClassVar[str] = KIND_ASSET_STATUS
    barcode: str
    status: str  # in_stock | running | removed
    detail: str  # where it was installed, why it was removed

    @classmethod
    def from_wire(cls, value: Any) -> AssetStatus:
        barcode, status, detail = expect_tagged(value, cls.TAG, 3, "asset status")
        return cls(_match(barcode, BARCODE, "barCode"), _one_of(status, ASSET_MOVES, "status"),
                   _optional(detail, ANY_200, "detail"))  # fmt: skip


@dataclass(frozen=True)
class VerificationRecord(Payload):
    TAG: ClassVar[int] = 52
    KIND: ClassVar[str] = KIND_RECORD
    task_no: str  # veriTaskNo
    barcode: str
    date: str  # veriDate, "YYYY-MM-DD hh:mm:ss"
    institution_id: str
    record_kind: str
    items: tuple[tuple[str, str, int], ...]  # (tableCode, conclusion, value in its unit)
    result: str  # veriResult
    # what a verification certificate states besides the conclusions (JJG 596)
    certificate_no: str = ""  # empty when none was issued (a failed meter gets a notice)
    verifier: str = ""
    standard_id: str = ""  # the standard meter or test bench used
    temperature_dc: int = 230  # tenths of °C
    humidity_pct: int = 50
    points: tuple[tuple[str, int], ...] = ()  # basic error per load point, signed ppm

    @classmethod
    def from_wire(cls, value: Any) -> VerificationRecord:
        f = expect_tagged(value, cls.TAG, 13, "record")
        if not isinstance(f[5], list) or not 1 <= len(f[5]) <= len(ITEMS):
            raise InvalidRecord("required", "tableNames", f"1..{len(ITEMS)} items")
        parsed = tuple(_item(item) for item in f[5])
        codes = [code for code, _, _ in parsed]
        if len(set(codes)) != len(codes):
            raise InvalidRecord("duplicate", "tableCode")
        return cls(_match(f[0], TASK_NO, "veriTaskNo"), _match(f[1], BARCODE, "barCode"),
                   _match(f[2], DATE, "veriDate"), _match(f[3], NAME_ID, "institution_id"),
                   _one_of(f[4], RECORD_KINDS, "kind"), parsed,
                   _one_of(f[6], (QUALIFIED, NOT_QUALIFIED), "veriResult"),
                   _optional(f[7], CERTIFICATE_NO, "certificate_no"),
                   _optional(f[8], ANY_64, "verifier"),
                   _optional(f[9], ANY_64, "standard_id"),
                   _integer(f[10], -500, 800, "temperature_dc"),
                   _integer(f[11], 0, 100, "humidity_pct"), _points(f[12]))  # fmt: skip


def _item(value: Any) -> tuple[str, str, int]:
    try:
        code, conclusion, measured = expect_list(value, 3, "item")
        number = u64(measured, "value", 10**12)
    except InvalidEncoding:
        raise InvalidRecord("format", "tableNames", "[tableCode, conclusion, value]") from None
    return (_one_of(code, ITEMS, "tableCode"), _one_of(conclusion, CONCLUSIONS, ITEMS[code][0]),
            number)  # fmt: skip


def _optional(value: Any, pattern: re.Pattern[str], field: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRecord("format", field, f"text matching {pattern.pattern}")
    return value


def _integer(value: Any, low: int, high: int, field: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise InvalidRecord("range", field, f"an integer in [{low}, {high}]")
    return value


def _points(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list) or len(value) > MAX_POINTS:
        raise InvalidRecord("format", "points", f"at most {MAX_POINTS} [loadPoint, ppm]")
    points, match = [], LOAD_POINT.fullmatch
    for point in value:  # checked inline: a three-phase record has 28 of them
        if type(point) is not list or len(point) != 2:
            raise InvalidRecord("format", "points", "[loadPoint, error in ppm]")
        name, ppm = point
        if type(name) is not str or not match(name):
            raise InvalidRecord("format", "points", f"text matching {LOAD_POINT.pattern}")
        if type(ppm) is not int or not -MAX_POINT_PPM <= ppm <= MAX_POINT_PPM:
            raise InvalidRecord("range", f"points.{name}", f"within ±{MAX_POINT_PPM}")
        points.append((name, ppm))
    if len({name for name, _ in points}) != len(points):
        raise InvalidRecord("duplicate", "points")
    return tuple(points)


@dataclass(frozen=True)
class RecordDigest(Payload):
    """A non-public record (§4.3.3): only its indexing fields and the SM3 digest of the
    full record's encoding enter the ledger; the record stays with its owner."""

    TAG: ClassVar[int] = 55
    KIND: ClassVar[str] = KIND_RECORD_DIGEST
    task_no: str
    barcode: str
    date: str
    institution_id: str
    record_kind: str
    result: str
    digest: bytes  # SM3 of VerificationRecord.encode()

    @classmethod
    def of(cls, record: VerificationRecord) -> RecordDigest:
        return cls(record.task_no, record.barcode, record.date, record.institution_id,
                   record.record_kind, record.result, record_digest(record.encode()))  # fmt: skip

    @classmethod
    def from_wire(cls, value: Any) -> RecordDigest:
        task, barcode, date, iid, kind, result, digest = expect_tagged(value, cls.TAG, 7, "digest")
        return cls(_match(task, TASK_NO, "veriTaskNo"), _match(barcode, BARCODE, "barCode"),
                   _match(date, DATE, "veriDate"), _match(iid, NAME_ID, "institution_id"),
                   _one_of(kind, RECORD_KINDS, "kind"),
                   _one_of(result, (QUALIFIED, NOT_QUALIFIED), "veriResult"),
                   blob(digest, "digest", 32, 32))  # fmt: skip


def record_digest(encoded_record: bytes) -> bytes:
    """SM3 (GB/T 32905) of a record's canonical encoding, whatever the chain's suite."""
    return get_suite("sm2").hash(encoded_record)


@dataclass(frozen=True)
class SamplingTask(Payload):
    """A regulator's re-check of an arrival batch (§6.3.2): the plan follows from the
    batch's verified count, the level and the AQL; the contract draws the barcodes."""

    TAG: ClassVar[int] = 53
    KIND: ClassVar[str] = KIND_SAMPLING_TASK
    task_no: str
    batch: str
    level: str  # S-1..S-4, I, II, III
    aql: str  # a column of GB/T 2828.1, e.g. "1.0"
    severity: str  # normal | tightened | reduced
    mode: str  # physical | data_recheck (draws only meters not drawn before)

    @classmethod
    def from_wire(cls, value: Any) -> SamplingTask:
        task, batch, level, aql, severity, mode = expect_tagged(value, cls.TAG, 6, "task")
        return cls(_match(task, TASK_NO, "veriTaskNo"), _match(batch, NAME_ID, "batch"),
                   _text(level, "level", 4), _text(aql, "aql", 6), _text(severity, "severity"),
                   _one_of(mode, TASK_MODES, "mode"))  # fmt: skip


@dataclass(frozen=True)
class RecheckImport(Payload):
    """The physical re-check results of a task (§6.3.3): per meter its overall result
    and its item conclusions."""

    TAG: ClassVar[int] = 54
    KIND: ClassVar[str] = KIND_RECHECK
    task_no: str
    batch: str
    results: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]

    @classmethod
    def from_wire(cls, value: Any) -> RecheckImport:
        task, batch, rows = expect_tagged(value, cls.TAG, 3, "recheck")
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_RECHECK:
            raise InvalidRecord("required", "results", f"1..{MAX_RECHECK} meters")
        return cls(_match(task, TASK_NO, "veriTaskNo"), _match(batch, NAME_ID, "batch"),
                   tuple(_recheck_row(row) for row in rows))  # fmt: skip


def _recheck_row(row: Any) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    if not (isinstance(row, list) and len(row) == 3 and isinstance(row[2], list)):
        raise InvalidRecord("format", "results", "[barCode, veriResult, [[tableCode, conc]]]")
    items = []
    for item in row[2]:
        if not (isinstance(item, list) and len(item) == 2):
            raise InvalidRecord("format", "results", "[tableCode, conclusion]")
        code = _one_of(item[0], ITEMS, "tableCode")
        items.append((code, _one_of(item[1], CONCLUSIONS, ITEMS[code][0])))
    return (_match(row[0], BARCODE, "barCode"),
            _one_of(row[1], (QUALIFIED, NOT_QUALIFIED), "veriResult"), tuple(items))  # fmt: skip


def parse_rules(raw: Any) -> dict[str, Any]:
    """Validity rules (Appendix A.2) as the genesis or a quorum-approved change gives them:
    `required_items` (a list of table codes, or per wiring model {"01": [...], "03": [...]})
    and `ranges` ({tableCode: [low, high]} for the item's value, in its unit). Returns them
    normalised (per wiring, sorted); InvalidRecord names what is wrong."""
    if not isinstance(raw, dict) or not set(raw) <= {"required_items", "ranges"}:
        raise InvalidRecord("format", "rules", "an object with required_items and/or ranges")
    required = raw.get("required_items", list(ITEMS))
    if isinstance(required, list):
        required = {wiring: required for wiring in WIRING}
    if not isinstance(required, dict) or set(required) - set(WIRING):
        raise InvalidRecord("format", "rules.required_items", f"per wiring: {list(WIRING)}")
    items: dict[str, list[str]] = {}
    for wiring, codes in sorted(required.items()):
        if not isinstance(codes, list) or not set(codes) <= set(ITEMS):
            raise InvalidRecord("allowed_values", f"rules.required_items.{wiring}", "table codes")
        items[wiring] = sorted(set(codes), key=lambda c: ITEMS[c][1])  # Appendix B's order
    ranges: dict[str, list[int]] = {}
    for code, bounds in sorted(raw.get("ranges", {}).items()):
        pair = isinstance(bounds, list) and len(bounds) == 2 and all(type(b) is int for b in bounds)
        ok = code in ITEMS and pair and 0 <= bounds[0] <= bounds[1] <= 10**12
        if not ok:
            raise InvalidRecord("format", f"rules.ranges.{code}", "[low, high] integers")
        ranges[code] = list(bounds)
    return {"required_items": items, "ranges": ranges}


PAYLOADS: dict[str, Any] = {
    KIND_INSTITUTION: InstitutionChange, KIND_ASSET: MeterAsset, KIND_RECORD: VerificationRecord,
    KIND_SAMPLING_TASK: SamplingTask, KIND_RECHECK: RecheckImport,
    KIND_RECORD_DIGEST: RecordDigest, KIND_ASSET_STATUS: AssetStatus,
}  # fmt: skip


def parse_verification(kind: str, payload: bytes) -> Any:
    """The typed payload, or InvalidRecord naming the rule and the field."""
    cls = PAYLOADS.get(kind)
    if cls is None:
        raise InvalidRecord("unknown_kind", kind)
    try:
        return cls.from_wire(decode(payload))
    except InvalidEncoding as exc:
        raise InvalidRecord("malformed", kind, str(exc)) from None
