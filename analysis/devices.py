"""The device registry: a meter and vehicle PKI kept on the ledger, with no trusted third party.

A manufacturer (a member or a manufacturer key listed in genesis) registers a
device and its key; the device becomes active once `endorsements_required`
distinct authorities have endorsed that key (INMETRO's design: endorsers inspect,
then endorse). Revocation needs the same number of authority votes, or the
device's own manufacturer, and takes effect at a block height, never earlier
than the block that completes it. The device's current key may hand over to a new
key that proves possession. Readings pass only from active, unrevoked devices,
signed by the current key, with increasing sequence numbers.

State (keys and values; integers, text and bytes):
  device/<id> = {kind, key, manufacturer, model, accuracy_class, registered_at,
                 endorsers[], active_from, revokers{hex: height}, revoked_from,
                 last_seq, readings, last_energy_wh, history[[height, action, by, detail]]}
  key/<hex>   = id    every key ever bound to a device (a key serves one device, once)
  type/<model> = a type approval and its approved software (analysis.device_types)
  tank/<model> = a vehicle tank model's calibration, levels to litres (analysis.tanks)
A device that reports a software hash also keeps `software`, the last it reported; a
vehicle registered with its tank model keeps `tank_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import TxResult
from analysis.device_lists import current_lists, observe_change
from analysis.device_types import approve_type, software_change, software_problem, type_key
from analysis.state import ContractState
from analysis.tanks import calibrate_tank, tank_key, volume_problem
from ledger.crypto import get_suite
from ledger.membership import KIND_MEMBERSHIP
from ledger.readings import (
    KIND_ENDORSE,
    KIND_METER,
    KIND_REFUEL,
    KIND_REGISTER,
    KIND_REVOKE,
    KIND_ROTATE,
    KIND_TANK,
    KIND_TYPE,
    EndorseDevice,
    InvalidReading,
    MeterReading,
    RefuelReading,
    RegisterDevice,
    RevokeDevice,
    RotateKey,
    TankCalibration,
    TypeApproval,
    parse_payload,
    rotation_proof_bytes,
)
from ledger.types import Transaction

READING_DEVICE_KIND = {KIND_REFUEL: "vehicle", KIND_METER: "meter"}
NOT_ACTIVE = 0


@dataclass(frozen=True)
class DeviceRules:
    suite_name: str
    endorsements_required: int
    authorities: frozenset[bytes]  # at genesis: membership changes may change both lists
    manufacturers: frozenset[bytes]
    checkpoint_interval: int = 16  # K and L of the protocol: when a list change applies
    watermark_window: int = 64

    @classmethod
    def from_config(
        cls, suite_name: str, raw: dict[str, Any], members: tuple[bytes, ...]
    ) -> DeviceRules:
        """Authorities default to the members; members may always act as manufacturers."""
        authorities = frozenset(_keys(raw.get("authorities"), "authorities") or members)
        k = raw.get("endorsements_required", min(2, len(authorities)))
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(authorities):
            raise ValueError(f"endorsements_required must be 1..{len(authorities)}, got {k!r}")
        manufacturers = frozenset(_keys(raw.get("manufacturers"), "manufacturers")) | set(members)
        return cls(suite_name, k, authorities, manufacturers)


def _keys(raw: Any, what: str) -> list[bytes]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise ValueError(f"{what} must be a list of hex public keys")
    try:
        return [bytes.fromhex(k) for k in raw]
    except ValueError:
        raise ValueError(f"{what}: not hex") from None


@dataclass
class DeviceRegistry:
    rules: DeviceRules
    name: str = "devices"
    kinds: tuple[str, ...] = field(
        default=(
            KIND_REGISTER,
            KIND_ENDORSE,
            KIND_REVOKE,
            KIND_ROTATE,
            KIND_TYPE,
            KIND_TANK,
            KIND_REFUEL,
            KIND_METER,
        )
    )
    observes: tuple[str, ...] = (KIND_MEMBERSHIP,)

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        if tx.kind == KIND_MEMBERSHIP:  # accepted by the membership contract
            r = self.rules
            return TxResult(True, events=observe_change(
                state, tx.payload, height, (r.authorities, r.manufacturers),
                r.endorsements_required, r.checkpoint_interval, r.watermark_window,
            ))  # fmt: skip
        try:
            payload = parse_payload(tx.kind, tx.payload)
        except InvalidReading as exc:
            return TxResult(False, exc.reason)
        if isinstance(payload, RegisterDevice):
            return self._register(state, tx, payload, height)
        if isinstance(payload, EndorseDevice):
            return self._endorse(state, tx, payload, height)
        if isinstance(payload, RevokeDevice):
            return self._revoke(state, tx, payload, height)
        if isinstance(payload, RotateKey):
            return self._rotate(state, tx, payload, height)
        if isinstance(payload, TypeApproval):
            return approve_type(state, tx, payload, height, self._lists(state, height)[0])
        if isinstance(payload, TankCalibration):
            return calibrate_tank(state, tx, payload, height, self._lists(state, height)[0])
        assert isinstance(payload, RefuelReading | MeterReading)
        return self._reading(state, tx, payload, height)

    def precheck(self, state: ContractState, tx: Transaction, height: int) -> str | None:
        """Why a reading would be refused against committed state (mempool), or None."""
        if tx.kind not in READING_DEVICE_KIND:
            return None
        try:
            payload = parse_payload(tx.kind, tx.payload)
        except InvalidReading as exc:
            return exc.reason
        assert isinstance(payload, RefuelReading | MeterReading)
        device = state.get(device_key(payload.device_id))
        return self._reading_problem(state, device, tx, payload, height + 1)

    # ---- registry requests ----------------------------------------------------------

    def _register(
        self, state: ContractState, tx: Transaction, p: RegisterDevice, h: int
    ) -> TxResult:
        if tx.sender not in self._lists(state, h)[1]:
            return TxResult(False, "not_manufacturer")
        if device_key(p.device_id) in state:
            return TxResult(False, "device_exists")
        if len(p.public_key) != len(tx.sender):
            return TxResult(False, "bad_public_key")
        if f"key/{p.public_key.hex()}" in state:
            return TxResult(False, "key_in_use")
        state.put(f"key/{p.public_key.hex()}", p.device_id)
        # keys in sorted order: the canonical encoding of each write then copies nothing
        state.put(device_key(p.device_id), {
            "accuracy_class": p.accuracy_class, "active_from": NOT_ACTIVE, "endorsers": [],
            "history": [[h, "registered", tx.sender, p.model]], "key": p.public_key,
            "kind": p.device_kind, "last_energy_wh": 0, "last_seq": 0,
            "manufacturer": tx.sender, "model": p.model, "readings": 0, "registered_at": h,
            "revoked_from": 0, "revokers": {},
            **({"tank_model": p.tank_model} if p.tank_model else {}),
        })  # fmt: skip
        return TxResult(True, events=(("device_registered", {"device_id": p.device_id}),))

    def _endorse(self, state: ContractState, tx: Transaction, p: EndorseDevice, h: int) -> TxResult:
        device = state.get(device_key(p.device_id))
        problem = self._authority_problem(device, tx, self._lists(state, h)[0])
        if problem is None and device is not None and p.public_key != device["key"]:
            problem = "endorsed_key_mismatch"
        if problem is None and device is not None and tx.sender in device["endorsers"]:
            problem = "already_endorsed"
        if problem is not None or device is None:
            return TxResult(False, problem or "unknown_device")
        device = state.edit(device_key(p.device_id))
        device["endorsers"] = sorted([*device["endorsers"], tx.sender])
        device["history"].append([h, "endorsed", tx.sender, ""])
        events: tuple[tuple[str, Any], ...] = ()
        if (
            device["active_from"] == NOT_ACTIVE
            and len(device["endorsers"]) >= self.rules.endorsements_required
        ):
            device["active_from"] = h
            device["history"].append([h, "activated", b"", ""])
            events = (("device_activated", {"device_id": p.device_id, "height": h}),)
        return TxResult(True, events=events)

    def _revoke(self, state: ContractState, tx: Transaction, p: RevokeDevice, h: int) -> TxResult:
        device = state.get(device_key(p.device_id))
        if device is None:
            return TxResult(False, "unknown_device")
        if device["revoked_from"]:
            return TxResult(False, "device_revoked")
        effective = max(p.effective_height, h)
        if tx.sender == device["manufacturer"]:
            return self._revoked(state.edit(device_key(p.device_id)), p, h, effective, tx.sender)
        problem = self._authority_problem(device, tx, self._lists(state, h)[0])
        if problem is None and tx.sender.hex() in device["revokers"]:
            problem = "already_voted"
        if problem is not None:
            return TxResult(False, problem)
        device = state.edit(device_key(p.device_id))
        device["revokers"][tx.sender.hex()] = effective
        device["history"].append([h, "revocation_vote", tx.sender, p.reason])
        if len(device["revokers"]) < self.rules.endorsements_required:
            return TxResult(True)
        return self._revoked(device, p, h, min(device["revokers"].values()), b"")

    def _revoked(
        self, device: dict[str, Any], p: RevokeDevice, h: int, effective: int, by: bytes
    ) -> TxResult:
        device["revoked_from"] = max(effective, h)
        device["history"].append(
            [h, "revoked", by, f"from height {device['revoked_from']}: {p.reason}"]
        )
        event = {
            "device_id": p.device_id,
            "from_height": device["revoked_from"],
            "reason": p.reason,
        }
        return TxResult(True, events=(("device_revoked", event),))

    def _rotate(self, state: ContractState, tx: Transaction, p: RotateKey, h: int) -> TxResult:
        device = state.get(device_key(p.device_id))
        if device is None:
            return TxResult(False, "unknown_device")
        if device["revoked_from"] and h >= device["revoked_from"]:
            return TxResult(False, "device_revoked")
        if tx.sender != device["key"]:
            return TxResult(False, "wrong_device_key")
        if len(p.new_public_key) != len(tx.sender):
            return TxResult(False, "bad_public_key")
        if f"key/{p.new_public_key.hex()}" in state:
            return TxResult(False, "key_in_use")
        proof = rotation_proof_bytes(p.device_id, tx.sender, p.new_public_key)
        if not get_suite(self.rules.suite_name).verify(
            p.new_public_key, proof, p.new_key_signature
        ):
            return TxResult(False, "bad_key_proof")
        state.put(f"key/{p.new_public_key.hex()}", p.device_id)
        device = state.edit(device_key(p.device_id))
        device["key"] = p.new_public_key
        device["last_seq"] = max(device["last_seq"], tx.seq)
        device["history"].append([h, "key_rotated", tx.sender, p.new_public_key.hex()])
        return TxResult(True, events=(("device_key_rotated", {"device_id": p.device_id}),))

    def _lists(self, state: ContractState, h: int) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """(authorities, manufacturers) at height h."""
        return current_lists(state, self.rules.authorities, self.rules.manufacturers, h)

    def _authority_problem(
        self, device: dict[str, Any] | None, tx: Transaction, authorities: frozenset[bytes]
    ) -> str | None:
        if tx.sender not in authorities:
            return "not_authority"
        if device is None:
            return "unknown_device"
        if device["revoked_from"]:
            return "device_revoked"
        return None

    # ---- readings -------------------------------------------------------------------

    def _reading(
        self, state: ContractState, tx: Transaction, p: RefuelReading | MeterReading, h: int
    ) -> TxResult:
        device = state.get(device_key(p.device_id))
        problem = self._reading_problem(state, device, tx, p, h)
        if problem is not None or device is None:
            return TxResult(False, problem or "unknown_device")
        energy = p.energy_wh if isinstance(p, MeterReading) else device["last_energy_wh"]
        state.update(device_key(p.device_id), last_energy_wh=energy, last_seq=tx.seq,
                     readings=device["readings"] + 1,
                     **software_change(device, p, h, tx.sender))  # fmt: skip
        return TxResult(True)

    def _reading_problem(
        self,
        state: ContractState,
        device: dict[str, Any] | None,
        tx: Transaction,
        p: RefuelReading | MeterReading,
        h: int,
    ) -> str | None:
        if device is None:
            return "unknown_device"
        if device["kind"] != READING_DEVICE_KIND[tx.kind]:
            return "wrong_device_kind"
        if device["revoked_from"] and h >= device["revoked_from"]:
            return "device_revoked"
        if device["active_from"] == NOT_ACTIVE:
            return "device_not_active"
        if tx.sender != device["key"]:
            return "wrong_device_key"
        if tx.seq <= device["last_seq"]:
            return "sequence_not_increasing"
        if isinstance(p, MeterReading) and p.energy_wh < device["last_energy_wh"]:
            return "energy_decreased"
        if isinstance(p, RefuelReading) and "tank_model" in device:
            problem = volume_problem(state.get(tank_key(device["tank_model"])), p)
            if problem is not None:
                return problem
        return software_problem(state.get(type_key(device["model"])), p)


def device_key(device_id: str) -> str:
    return f"device/{device_id}"


def device_view(device: dict[str, Any], height: int) -> dict[str, Any]:
    """A device's record for the API: its status at `height` and its history, JSON-ready."""
    revoked_from = device["revoked_from"]
    if revoked_from and height >= revoked_from:
        status = "revoked"
    elif device["active_from"] != NOT_ACTIVE:
        status = "active"
    else:
        status = "registered"
    return {
        "status": status,
        "kind": device["kind"],
        "public_key": device["key"].hex(),
        "manufacturer": device["manufacturer"].hex(),
        "model": device["model"],
        "tank_model": device.get("tank_model"),
        "accuracy_class": device["accuracy_class"],
        "registered_at": device["registered_at"],
        "active_from": device["active_from"] or None,
        "revoked_from": revoked_from or None,
        "endorsers": [e.hex() for e in device["endorsers"]],
        "last_seq": device["last_seq"],
        "readings": device["readings"],
        "history": [
            {"height": hh, "action": a, "by": by.hex(), "detail": d}
            for hh, a, by, d in device["history"]
        ],
    }
