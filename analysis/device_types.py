"""Type approval on the ledger, and the legally relevant software fixed by it (INMETRO's
case: the software a measuring instrument runs is part of what was approved).

An authority publishes a model's type approval (`device.type`: approval number,
accuracy class, the hashes of the approved software versions). From then on, a reading
from a device of that model must carry one of those hashes, or it is refused:
`software_hash_missing` when it carries none, `unapproved_software` when it carries
another. A model with no approval, or one approving no software, is not checked (a
network adopts this model by model). A later approval of the model replaces the
earlier one, and the record keeps every earlier version.

State (in the device registry's state):
  type/<model> = {device_kind, approval_no, accuracy_class, software[], approved_by,
                  approved_at, history[[height, by, approval_no, software[]]]}
"""

from __future__ import annotations

from typing import Any

from analysis.contracts import TxResult
from analysis.state import ContractState
from ledger.readings import MeterReading, RefuelReading, TypeApproval
from ledger.types import Transaction


def type_key(model: str) -> str:
    return f"type/{model}"


def approve_type(
    state: ContractState, tx: Transaction, p: TypeApproval, h: int, authorities: frozenset[bytes]
) -> TxResult:
    if tx.sender not in authorities:
        return TxResult(False, "not_authority")
    earlier = state.get(type_key(p.model))
    if earlier is not None and earlier["device_kind"] != p.device_kind:
        return TxResult(False, "wrong_device_kind")
    software = list(p.software_hashes)
    history = [*(earlier["history"] if earlier else []), [h, tx.sender, p.approval_no, software]]
    state.put(type_key(p.model), {
        "accuracy_class": p.accuracy_class, "approval_no": p.approval_no, "approved_at": h,
        "approved_by": tx.sender, "device_kind": p.device_kind, "history": history,
        "software": software,
    })  # fmt: skip
    data = {"model": p.model, "approval_no": p.approval_no, "software": len(software)}
    return TxResult(True, events=(("type_approved", data),))


def software_problem(
    approval: dict[str, Any] | None, p: RefuelReading | MeterReading
) -> str | None:
    """Why the reading's software is not what its model's approval allows, or None."""
    if approval is None or not approval["software"]:
        return None
    if not p.software_hash:
        return "software_hash_missing"
    if p.software_hash not in approval["software"]:
        return "unapproved_software"
    return None


def software_change(device: dict[str, Any], p: RefuelReading | MeterReading, h: int,
                    sender: bytes) -> dict[str, Any]:  # fmt: skip
    """The device record's fields to update when a reading reports software other than
    the last it reported (kept in its history: the twin shows each version it ran)."""
    if not p.software_hash or p.software_hash == device.get("software", b""):
        return {}
    entry = [h, "software", sender, p.software_hash.hex()]
    return {"software": p.software_hash, "history": [*device["history"], entry]}


def type_view(model: str, approval: dict[str, Any]) -> dict[str, Any]:
    """A type approval for the API, JSON-ready."""
    return {
        "model": model,
        "device_kind": approval["device_kind"],
        "approval_no": approval["approval_no"],
        "accuracy_class": approval["accuracy_class"],
        "approved_software": [h.hex() for h in approval["software"]],
        "approved_by": approval["approved_by"].hex(),
        "approved_at": approval["approved_at"],
        "history": [
            {
                "height": hh,
                "by": by.hex(),
                "approval_no": no,
                "approved_software": [x.hex() for x in sw],
            }
            for hh, by, no, sw in approval["history"]
        ],
    }
