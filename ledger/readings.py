"""Device readings and device-registry requests: the payloads of signed transactions.

Each type is a tagged canonical-msgpack list in `Transaction.payload`; the
transaction's `kind` names the type and its `seq` is the device's (or signer's)
sequence number. `parse_payload` returns a valid object or raises
`InvalidReading` with a reason code; structure errors and range errors both land
there, so a caller has one thing to catch. Integers only, units in the names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.crypto import KeyPair, SignatureSuite
from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.types import Transaction, sign_transaction
from ledger.wire import blob, expect_tagged, text, u64

KIND_REFUEL = "refuel"
KIND_METER = "meter"
KIND_REGISTER = "device.register"
KIND_ENDORSE = "device.endorse"
KIND_REVOKE = "device.revoke"
KIND_ROTATE = "device.rotate"
KIND_TYPE = "device.type"
KIND_TANK = "device.tank"
DEVICE_KINDS = ("vehicle", "meter")

MAX_VOLUME_ML = 2_000_000  # a 2,000 L truck fill
MAX_OBD_LEVEL = 255  # OBD-II PID 0x2F: 100/255 % of the tank per step
MAX_ODOMETER_M = 10_000_000_000
MAX_ENERGY_WH = 10**15
MAX_INTERVAL_S = 31 * 86_400
SOFTWARE_HASH_BYTES = 32  # SHA-256 or SM3 of the legally relevant software
MAX_APPROVED_SOFTWARE = 16
MAX_TANK_POINTS = 64
MIN_TIME_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class InvalidReading(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _id(value: Any, what: str) -> str:
    raw = text(value, what, 64)
    if not ID_PATTERN.fullmatch(raw):
        raise InvalidReading("invalid_id", f"{what} {raw!r}: 1-64 of A-Z a-z 0-9 . _ : -")
    return raw


def _within(value: int, lo: int, hi: int, reason: str, what: str) -> int:
    if not lo <= value <= hi:
        raise InvalidReading(reason, f"{what} = {value}, allowed {lo}..{hi}")
    return value


def _time(value: Any) -> int:
    return _within(u64(value, "time_ms"), MIN_TIME_MS, MAX_TIME_MS, "time_out_of_range", "time_ms")


class Payload:
    TAG: ClassVar[int]
    KIND: ClassVar[str]
    OPTIONAL_LAST: ClassVar[bool] = False  # the last field is left out when empty

    def encode(self) -> bytes:
        fields = list(vars(self).values())  # in declaration order
        if self.OPTIONAL_LAST and not fields[-1]:
            fields.pop()  # a payload without its optional field keeps its earlier encoding
        return encode([self.TAG, *fields])


def _optional_last(value: Any, length: int, parse: Callable[[Any], Any], empty: Any) -> Any:
    """A payload's fields and its optional last one, parsed (an empty one is refused by
    `parse`: it would be a second encoding of the payload without it), or `empty`."""
    if isinstance(value, list) and len(value) == length + 2:
        return value[:-1], parse(value[-1])
    return value, empty


def _software_hash(value: Any) -> bytes:
    """The hash of the legally relevant software that took a reading: exactly 32 bytes."""
    return blob(value, "software_hash", SOFTWARE_HASH_BYTES, SOFTWARE_HASH_BYTES)


@dataclass(frozen=True)
class RefuelReading(Payload):
    """What a vehicle reports after a refuel (its tank sensor against the dispenser)."""

    TAG: ClassVar[int] = 30
    KIND: ClassVar[str] = KIND_REFUEL
    OPTIONAL_LAST: ClassVar[bool] = True
    vehicle_id: str
    dispenser_id: str
    station_id: str
    dispensed_volume_ml: int  # what the dispenser claimed
    measured_volume_ml: int  # what the vehicle's tank-level sensor saw
    tank_level_before_obd: int
    tank_level_after_obd: int
    odometer_m: int
    time_ms: int
    software_hash: bytes = b""  # of its legally relevant software; b"": not reported

    @classmethod
    def from_wire(cls, value: Any) -> RefuelReading:
        value, software = _optional_last(value, 9, _software_hash, b"")
        f = expect_tagged(value, cls.TAG, 9, "refuel reading")
        volume, obd = (
            (MAX_VOLUME_ML, "volume_out_of_range"),
            (MAX_OBD_LEVEL, "tank_level_out_of_range"),
        )
        return cls(
            _id(f[0], "vehicle_id"),
            _id(f[1], "dispenser_id"),
            _id(f[2], "station_id"),
            _within(u64(f[3], "dispensed_volume_ml"), 1, *volume, "dispensed_volume_ml"),
            _within(u64(f[4], "measured_volume_ml"), 0, *volume, "measured_volume_ml"),
            _within(u64(f[5], "tank_level_before_obd"), 0, *obd, "tank_level_before_obd"),
            _within(u64(f[6], "tank_level_after_obd"), 0, *obd, "tank_level_after_obd"),
            _within(
                u64(f[7], "odometer_m"), 0, MAX_ODOMETER_M, "odometer_out_of_range", "odometer_m"
            ),
            _time(f[8]),
            software,
        )

    @property
    def device_id(self) -> str:
        return self.vehicle_id


@dataclass(frozen=True)
class MeterReading(Payload):
    """A smart meter's cumulative active energy at the end of an interval."""

    TAG: ClassVar[int] = 31
    KIND: ClassVar[str] = KIND_METER
    OPTIONAL_LAST: ClassVar[bool] = True
    meter_id: str
    energy_wh: int
    interval_s: int
    time_ms: int
    software_hash: bytes = b""

    @classmethod
    def from_wire(cls, value: Any) -> MeterReading:
        value, software = _optional_last(value, 4, _software_hash, b"")
        f = expect_tagged(value, cls.TAG, 4, "meter reading")
        return cls(
            _id(f[0], "meter_id"),
            _within(u64(f[1], "energy_wh"), 0, MAX_ENERGY_WH, "energy_out_of_range", "energy_wh"),
            _within(
                u64(f[2], "interval_s"), 1, MAX_INTERVAL_S, "interval_out_of_range", "interval_s"
            ),
            _time(f[3]),
            software,
        )

    @property
    def device_id(self) -> str:
        return self.meter_id


@dataclass(frozen=True)
class RegisterDevice(Payload):
    """A manufacturer declares a device and its public key; authorities then endorse it.
    A vehicle's unit may name the tank model of the vehicle it is fitted to, whose
    calibration (`TankCalibration`) turns its OBD levels into litres."""

    TAG: ClassVar[int] = 32
    KIND: ClassVar[str] = KIND_REGISTER
    OPTIONAL_LAST: ClassVar[bool] = True
    device_id: str
    device_kind: str
    public_key: bytes
    model: str
    accuracy_class: str
    tank_model: str = ""

    @classmethod
    def from_wire(cls, value: Any) -> RegisterDevice:
        value, tank_model = _optional_last(value, 5, lambda v: _id(v, "tank_model"), "")
        f = expect_tagged(value, cls.TAG, 5, "device registration")
        kind = text(f[1], "device_kind", 16)
        if kind not in DEVICE_KINDS:
            raise InvalidReading("unknown_device_kind", f"{kind!r}; known: {DEVICE_KINDS}")
        if tank_model and kind != "vehicle":
            raise InvalidReading("tank_model_not_vehicle", "only a vehicle has a tank")
        return cls(
            _id(f[0], "device_id"),
            kind,
            blob(f[2], "public_key", 32, 65),
            text(f[3], "model", 64),
            text(f[4], "accuracy_class", 16),
            tank_model,
        )


@dataclass(frozen=True)
class EndorseDevice(Payload):
    """An authority vouches for a device with this key (after inspecting it)."""

    TAG: ClassVar[int] = 33
    KIND: ClassVar[str] = KIND_ENDORSE
    device_id: str
    public_key: bytes

    @classmethod
    def from_wire(cls, value: Any) -> EndorseDevice:
        f = expect_tagged(value, cls.TAG, 2, "device endorsement")
        return cls(_id(f[0], "device_id"), blob(f[1], "public_key", 32, 65))


@dataclass(frozen=True)
class RevokeDevice(Payload):
    """A vote to revoke a device from a block height on (no retroactive effect)."""

    TAG: ClassVar[int] = 34
    KIND: ClassVar[str] = KIND_REVOKE
    device_id: str
    effective_height: int
    reason: str

    @classmethod
    def from_wire(cls, value: Any) -> RevokeDevice:
        f = expect_tagged(value, cls.TAG, 3, "device revocation")
        return cls(_id(f[0], "device_id"), u64(f[1], "effective_height"), text(f[2], "reason", 128))


@dataclass(frozen=True)
class RotateKey(Payload):
    """Signed (as a transaction) by the device's current key; the new key proves possession."""

    TAG: ClassVar[int] = 35
    KIND: ClassVar[str] = KIND_ROTATE
    device_id: str
    new_public_key: bytes
    new_key_signature: bytes

    @classmethod
    def from_wire(cls, value: Any) -> RotateKey:
        f = expect_tagged(value, cls.TAG, 3, "key rotation")
        return cls(
            _id(f[0], "device_id"),
            blob(f[1], "new_public_key", 32, 65),
            blob(f[2], "new_key_signature", 64, 64),
        )


@dataclass(frozen=True)
class TypeApproval(Payload):
    """An authority's type approval of a device model (INMETRO's and OIML's type
    evaluation): its approval number, accuracy class and the hashes of the legally
    relevant software versions approved for it. Once a model has approved software, a
    reading of that model must carry one of those hashes. A later approval of the same
    model replaces it (a new software version, a withdrawn one)."""

    TAG: ClassVar[int] = 36
    KIND: ClassVar[str] = KIND_TYPE
    model: str
    device_kind: str
    approval_no: str
    accuracy_class: str
    software_hashes: tuple[bytes, ...]

    @classmethod
    def from_wire(cls, value: Any) -> TypeApproval:
        f = expect_tagged(value, cls.TAG, 5, "type approval")
        kind = text(f[1], "device_kind", 16)
        if kind not in DEVICE_KINDS:
            raise InvalidReading("unknown_device_kind", f"{kind!r}; known: {DEVICE_KINDS}")
        if not isinstance(f[4], list) or len(f[4]) > MAX_APPROVED_SOFTWARE:
            raise InvalidReading("invalid_software_list", f"at most {MAX_APPROVED_SOFTWARE}")
        hashes = tuple(blob(h, "software_hash", SOFTWARE_HASH_BYTES, SOFTWARE_HASH_BYTES)
                       for h in f[4])  # fmt: skip
        if list(hashes) != sorted(set(hashes)):
            raise InvalidReading("invalid_software_list", "hashes sorted, each once")
        return cls(text(f[0], "model", 64), kind, text(f[2], "approval_no", 64),
                   text(f[3], "accuracy_class", 16), hashes)  # fmt: skip


@dataclass(frozen=True)
class TankCalibration(Payload):
    """An authority's calibration of a vehicle tank model: OBD level steps to litres, as
    points (level, ml) from level 0 to MAX_OBD_LEVEL, linear between them (a tank's shape
    makes a step worth more litres in its middle than at its ends). With it in force, the
    contracts compute a refuel's volume from the raw levels themselves (analysis.tanks).
    A later calibration of the same model replaces it."""

    TAG: ClassVar[int] = 37
    KIND: ClassVar[str] = KIND_TANK
    tank_model: str
    points: tuple[tuple[int, int], ...]

    @classmethod
    def from_wire(cls, value: Any) -> TankCalibration:
        f = expect_tagged(value, cls.TAG, 2, "tank calibration")
        raw = f[1]
        if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_TANK_POINTS:
            raise InvalidReading("invalid_tank_points", f"2..{MAX_TANK_POINTS} [level, ml] points")
        points = tuple(_tank_point(p) for p in raw)
        levels, volumes = [p[0] for p in points], [p[1] for p in points]
        if levels[0] != 0 or levels[-1] != MAX_OBD_LEVEL or levels != sorted(set(levels)):
            raise InvalidReading(
                "invalid_tank_points", f"levels rise strictly from 0 to {MAX_OBD_LEVEL}"
            )
        if volumes != sorted(volumes) or volumes[-1] == volumes[0]:
            raise InvalidReading("invalid_tank_points", "volumes never fall, and rise in all")
        return cls(_id(f[0], "tank_model"), points)


def _tank_point(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidReading("invalid_tank_points", "each point is [level, ml]")
    level = _within(u64(value[0], "level"), 0, MAX_OBD_LEVEL, "invalid_tank_points", "level")
    return level, _within(u64(value[1], "ml"), 0, MAX_VOLUME_ML, "invalid_tank_points", "ml")


def rotation_proof_bytes(device_id: str, old_key: bytes, new_key: bytes) -> bytes:
    """What the new key signs to prove its holder asked for the rotation."""
    return encode(["metroledger/rotate/v1", device_id, old_key, new_key])


PAYLOAD_TYPES: dict[str, Any] = {
    t.KIND: t
    for t in (
        RefuelReading,
        MeterReading,
        RegisterDevice,
        EndorseDevice,
        RevokeDevice,
        RotateKey,
        TypeApproval,
        TankCalibration,
    )
}


def parse_payload(kind: str, payload: bytes) -> Payload:
    """The typed payload of a transaction of `kind`, or InvalidReading with a reason."""
    cls = PAYLOAD_TYPES.get(kind)
    if cls is None:
        raise InvalidReading("unknown_kind", kind)
    try:
        parsed: Payload = cls.from_wire(decode(payload))
    except InvalidEncoding as exc:
        raise InvalidReading("malformed_payload", str(exc)) from None
    return parsed


def sign_payload(
    suite: SignatureSuite, key: KeyPair, seq: int, payload: Payload, chain_hash: bytes
) -> Transaction:
    """A transaction of the payload's kind, signed by `key` with sequence number `seq`
    for the chain whose hash is `chain_hash`."""
    return sign_transaction(
        suite, key.secret_key, key.public_key, seq, payload.KIND, payload.encode(), chain_hash
    )


class SequencedSigner:
    """Signs payloads for one chain, each key's sequence numbers counting up from the
    highest it has used (`resume` with what the chain has already committed)."""

    def __init__(self, suite: SignatureSuite, chain_hash: bytes):
        self.suite, self.chain_hash = suite, chain_hash
        self.seqs: dict[bytes, int] = {}

    def resume(self, public_key: bytes, committed_high_seq: int) -> None:
        self.seqs[public_key] = max(self.seqs.get(public_key, 0), committed_high_seq)

    def sign(self, key: KeyPair, payload: Payload) -> Transaction:
        seq = self.seqs[key.public_key] = self.seqs.get(key.public_key, 0) + 1
        return sign_payload(self.suite, key, seq, payload, self.chain_hash)
