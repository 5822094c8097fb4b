"""The instrument's digital twin (the European Metrology Cloud, seed 004; issue 19, item 3):
one view of one instrument from everything the contracts publish about it.

`GET /v1/twins/{id}`, where id is a device id (a meter's is its asset barcode):
- `type`: what the instrument is (the device registry's model and accuracy class, the
  asset's meter type, wiring mode, manufacturer and arrival batch, the model's type
  approval with its approved software, analysis.device_types);
- `instance`: serial, owner, location (its transformer area), status in the device
  registry and as an asset, its readings summary, the software hash its last reading
  carried, and the remote error model's verdict;
- `authorised`: its current key, its manufacturer's key, the authorities that endorsed
  it, the institutions that verified it;
- `log`: every event of its life: registration, endorsements, key rotations,
  revocation, asset moves and verification records (with their validity), by block
  height; then its work orders' steps, by block time (the contracts record those).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analysis.device_types import type_key, type_view
from analysis.devices import device_key, device_view
from analysis.service_kpi import scan
from analysis.tanks import tank_key, tank_view
from node import schemas as s
from node.routes import Param, Route
from node.service import Service
from node.snapshot import Snapshot
from node.web import Request, Response, error, json_response


def twin(snap: Snapshot, device_id: str) -> dict[str, Any] | None:
    device = snap.view_of("devices").get(device_key(device_id))
    asset = snap.view_of("verification").get(f"asset/{device_id}")
    if device is None and asset is None:
        return None
    shown = device_view(device, snap.height) if device else None
    log: list[dict[str, Any]] = []
    if shown:
        log += [{"height": h["height"], "event": h["action"], "detail": h["detail"]}
                for h in shown["history"]]  # fmt: skip
    if asset:
        log += [{"height": h, "event": f"asset_{e}", "detail": d} for h, e, d in asset["history"]]
    entries = [e for _, e in scan(snap.view_of("registry"), f"entry/{device_id}/")]
    records = {(r["task"], r["kind"]): r for r in entries}
    for task, kind in asset["records"] if asset else []:
        stored = snap.view_of("verification").get(f"record/{device_id}/{task}/{kind}")
        validity = records.get((task, kind), {}).get("valid_until", "")
        log.append({"height": stored["height"], "event": f"verified_{kind}",
                    "detail": f"{task}: {stored['result']} ({stored['institution']})"
                              + (f", valid until {validity}" if validity else "")})  # fmt: skip
    orders = [(k[len("order/") :], o) for k, o in scan(snap.view_of("service"), "order/")
              if o["barcode"] == device_id]  # fmt: skip
    for order_id, o in orders:
        for status in ("created", "accepted", "processed", "visited", "evaluated"):
            if o[f"{status}_ms"]:
                log.append({"time_ms": o[f"{status}_ms"], "event": f"work_order_{status}",
                            "detail": f"{order_id} ({o['kind']})"})  # fmt: skip
    member = snap.view_of("areas").get(f"member/{device_id}")
    log.sort(key=lambda e: (e.get("height", 1 << 62), e.get("time_ms", 0)))
    return {
        "id": device_id,
        "type": {"device_kind": shown["kind"] if shown else None,
                 "model": shown["model"] if shown else None,
                 "accuracy_class": (shown or asset or {}).get("accuracy_class"),
                 **({k: asset[k] for k in ("meter_type", "wiring", "manufacturer", "batch")}
                    if asset else {}),
                 "type_approval": _approval(snap, shown["model"] if shown else None),
                 "tank": _tank(snap, shown.get("tank_model") if shown else None)},
        "instance": {"serial": device_id, "owner": asset["owner_unit"] if asset else None,
                     "area": member[0] if member else None,
                     "device_status": shown["status"] if shown else None,
                     "asset_status": asset["status"] if asset else None,
                     "readings": shown["readings"] if shown else 0,
                     "software_hash": device["software"].hex()
                                      if device and device.get("software") else None,
                     "model_verdict": _verdict(snap, member),
                     "valid_until": max((e["valid_until"] for e in entries), default="") or None},
        "authorised": {"key": shown["public_key"] if shown else None,
                       "manufacturer": shown["manufacturer"] if shown else None,
                       "endorsers": shown["endorsers"] if shown else [],
                       "institutions": sorted({r["institution"] for r in entries})},
        "work_orders": [{"order": i, "kind": o["kind"], "status": o["status"]} for i, o in orders],
        "log": log,
    }  # fmt: skip


def _tank(snap: Snapshot, model: str | None) -> dict[str, Any] | None:
    return _model_record(snap, model, tank_key, tank_view)


def _approval(snap: Snapshot, model: str | None) -> dict[str, Any] | None:
    return _model_record(snap, model, type_key, type_view)


def _model_record(
    snap: Snapshot,
    model: str | None,
    key: Callable[[str], str],
    view: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> dict[str, Any] | None:
    """A model's record in the device registry (its type approval or its tank
    calibration), JSON-ready, or None."""
    found = snap.view_of("devices").get(key(model)) if model else None
    return view(model, found) if model and found else None


def _verdict(snap: Snapshot, member: list[Any] | None) -> dict[str, Any] | None:
    if member is None:
        return None
    area_id, index = member
    estimate = snap.view_of("areas").get(f"area/{area_id}")["estimate"]
    if estimate is None or index >= len(estimate["verdicts"]):
        return None
    return {"verdict": estimate["verdicts"][index], "error_ppm": estimate["error_ppm"][index],
            "stderr_ppm": estimate["stderr_ppm"][index]}  # fmt: skip


def twin_routes(node: Service) -> list[Route]:
    async def get_type(request: Request) -> Response:
        found = _approval(node.snapshot, request.path_params["model"])
        if found is None:
            return error(404, "unknown_type", request.path_params["model"])
        return json_response(found)

    async def get_tank(request: Request) -> Response:
        found = _tank(node.snapshot, request.path_params["model"])
        if found is None:
            return error(404, "unknown_tank_model", request.path_params["model"])
        return json_response(found)

    async def get_twin(request: Request) -> Response:
        found = twin(node.snapshot, request.path_params["id"])
        if found is None:
            return error(404, "unknown_instrument", request.path_params["id"])
        return json_response(found)

    return [
        Route("GET", "/v1/twins/{id}", get_twin,
              "An instrument's digital twin: type, instance, who is authorised, its whole log",
              {200: ("twin", s.obj({"id": s.STR, "type": {"type": "object"},
                                    "instance": {"type": "object"},
                                    "authorised": {"type": "object"},
                                    "work_orders": {"type": "array"},
                                    "log": {"type": "array"}})),
               404: ("unknown instrument", None)}, (Param("id", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/types/{model}", get_type,
              "A model's type approval: approval number, accuracy class, the approved "
              "legally relevant software (hashes) and every earlier version",
              {200: ("type approval", s.obj({"model": s.STR, "approval_no": s.STR,
                                             "approved_software": {"type": "array"},
                                             "history": {"type": "array"}})),
               404: ("no approval of this model", None)},
              (Param("model", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/tanks/{model}", get_tank,
              "A vehicle tank model's calibration: OBD level points to millilitres, from "
              "which the contracts compute each refuel's volume, and every earlier version",
              {200: ("tank calibration", s.obj({"tank_model": s.STR, "points": {"type": "array"},
                                                "history": {"type": "array"}})),
               404: ("no calibration of this tank model", None)},
              (Param("model", s.ID_PARAM, "path"),)),
    ]  # fmt: skip
