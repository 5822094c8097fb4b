"""Meter verification queries: Appendix B's envelope, and plain JSON reads.

`POST /v1/meter/query` takes Appendix B's payload `{barCode, tableCode, veriTaskNo}` and
answers in its envelope `{"code", "data", "msg"}` with its field names, so an existing
client of the specification works unchanged; its errors come in the same envelope (with
the HTTP status matching `code`). An empty `tableCode` means every item.
"""

from __future__ import annotations

import json
from typing import Any

from analysis.state import ContractState
from analysis.verification import stored_record, stored_validity
from ledger.verification import (
    ITEMS,
    RECORD_KINDS,
    WIRING,
    InvalidRecord,
    parse_verification,
    record_digest,
)
from node import schemas as s
from node.private_store import PrivateStore
from node.routes import Param, Route
from node.service import Service
from node.web import Request, Response, json_response

SUCCESS = "成功!"
ENVELOPE = s.obj({"code": s.INT, "data": {"type": ["object", "null"]}, "msg": s.STR})
QUERY = s.obj({"barCode": s.STR, "veriTaskNo": s.STR}, {"tableCode": s.STR})


def appendix_b(view: ContractState, barcode: str, task: str, table_code: str) -> dict[str, Any]:
    """The envelope for one meter's record of one task."""
    asset = view.get(f"asset/{barcode}")
    records = (view.get(f"record/{barcode}/{task}/{kind}") for kind in RECORD_KINDS)
    found = next((r for r in records if r is not None), None)
    if asset is None or found is None:
        return {"code": 404, "data": None, "msg": f"no record of {barcode} in task {task}"}
    if table_code and table_code not in ITEMS:
        return {"code": 400, "data": None, "msg": f"unknown tableCode {table_code}"}
    if "record" not in found:
        return {"code": 404, "data": None, "msg": f"the record of {barcode} in task {task} is "
                "not public: only its digest is on the ledger"}  # fmt: skip
    all_items = stored_record(found).items
    items = [i for i in all_items if not table_code or i[0] == table_code]
    data: dict[str, Any] = {"faultResult": "--", "tableNames": []}
    for code, conclusion, _ in sorted(items, key=lambda i: ITEMS[i[0]][1]):
        field, sort, name = ITEMS[code]
        data["tableNames"].append({"tableField": field, "tableCode": code, "sort": sort,
                                   "subResultId": sort, "tableName": name})  # fmt: skip
        data[field] = conclusion
    data.update({"veriResult": found["result"], "veriDate": found["date"], "barCode": barcode,
                 "wireModeName": WIRING[asset["wiring"]], "wireModel": asset["wiring"],
                 "m": 1, "veriTaskNo": task})  # fmt: skip
    return {"code": 200, "data": data, "msg": SUCCESS}


def asset_view(view: ContractState, barcode: str) -> dict[str, Any] | None:
    """An asset and its records, as GET /v1/meter/assets/{barcode} answers."""
    asset = view.get(f"asset/{barcode}")
    if asset is None:
        return None
    records = []
    for task, kind in asset["records"]:
        stored = view.get(f"record/{barcode}/{task}/{kind}")
        shown = {k: stored[k] for k in ("date", "height", "institution", "result")}
        if "digest" in stored:
            shown["digest"] = stored["digest"].hex()
        else:
            whole = stored_record(stored)
            shown.update(certificate_no=whole.certificate_no, verifier=whole.verifier,
                         standard_id=whole.standard_id, temperature_dc=whole.temperature_dc,
                         humidity_pct=whole.humidity_pct,
                         items=[list(i) for i in whole.items],
                         points=[list(x) for x in whole.points],
                         validity=stored_validity(stored))  # fmt: skip
        records.append({"task": task, "kind": kind, **shown})
    fields = ("asset_no", "batch", "manufacturer", "meter_type", "wiring", "accuracy_class",
              "owner_unit", "status", "registered_at")  # fmt: skip
    return {"barcode": barcode, **{f: asset[f] for f in fields},
            "history": [{"height": h, "event": e, "detail": d} for h, e, d in asset["history"]],
            "records": records}  # fmt: skip


def area_view(area_id: str, area: dict[str, Any]) -> dict[str, Any]:
    """An area as GET /v1/meter/areas/{area} answers: each meter with its last estimate."""
    estimate = area["estimate"]
    meters = []
    for i, meter in enumerate(area["meters"]):
        row: dict[str, Any] = {"meter": meter, "limit_ppm": area["limits_ppm"][i]}
        if estimate is not None:
            row.update(error_ppm=estimate["error_ppm"][i], stderr_ppm=estimate["stderr_ppm"][i],
                       verdict=estimate["verdicts"][i])  # fmt: skip
        meters.append(row)
    return {"area": area_id, "summary_meter": area["summary"], "period_s": area["period_s"],
            "periods_added": area["added"], "periods_dropped": area["dropped"],
            "judged_at_period": estimate["at_period"] if estimate else None,
            "meters": meters}  # fmt: skip


def overview(view: ContractState) -> dict[str, Any]:
    """§6.3.1: pass rates (parts per million) per institution and per batch, full
    inspection and sampling apart, and the ten items failed most often."""
    index = view.get("stats/index") or {"institution": [], "batch": []}

    def rates(group: str) -> list[dict[str, Any]]:
        out = []
        for name in sorted(index[group]):
            stats = view.get(f"stats/{group}/{name}")
            row: dict[str, Any] = {"id": name}
            for column in ("full", "sampling"):
                total, passed = stats[column]
                row[column] = {
                    "records": total,
                    "passed": passed,
                    "pass_rate_ppm": passed * 1_000_000 // total if total else None,
                }
            out.append(row)
        return out

    failing = sorted((view.get("stats/items") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    top = [{"tableCode": code, "tableField": ITEMS[code][0], "tableName": ITEMS[code][2],
            "failures": count} for code, count in failing[:10]]  # fmt: skip
    return {
        "institutions": rates("institution"),
        "batches": rates("batch"),
        "top_failing_items": top,
    }


def show_private(view: ContractState, store: PrivateStore, barcode: str, task: str,
                 kind: str) -> dict[str, Any] | None:  # fmt: skip
    """A non-public record from this node's store, with whether it matches the chain."""
    stored = store.get(barcode, task, kind)
    if stored is None:
        return None
    anchored = view.get(f"record/{barcode}/{task}/{kind}")
    digest = record_digest(stored)
    on_chain = anchored.get("digest") if anchored else None
    check = ("not on the chain" if on_chain is None
             else "digest matches" if on_chain == digest else "digest does not match")  # fmt: skip
    record = parse_verification("meter.record", stored) if on_chain == digest else None
    return {"barCode": barcode, "veriTaskNo": task, "kind": kind, "check": check,
            "digest": digest.hex(), "digest_on_chain": on_chain.hex() if on_chain else None,
            "record": None if record is None else {
                "veriDate": record.date, "veriResult": record.result,
                "items": [list(i) for i in record.items]},
            "stored_hex": stored.hex()}  # fmt: skip


def private_routes(node: Service) -> list[Route]:
    """Operator routes (the caller guards them with the operator token)."""
    store = PrivateStore(node.cfg.data_dir / "private.sqlite3")

    async def put_private(request: Request) -> Response:
        try:
            record = store.put(bytes.fromhex(json.loads(request.body)["record"]))
        except InvalidRecord as exc:
            return json_response(
                {"error": f"invalid:{exc.rule}:{exc.field}", "detail": str(exc)}, 400
            )
        except (ValueError, KeyError, TypeError):
            return json_response({"error": "bad_body", "detail": '{"record": HEX}'}, 400)
        digest = record_digest(record.encode())
        return json_response({"stored": True, "digest": digest.hex()})

    async def get_private(request: Request) -> Response:
        q = request.path_params
        found = show_private(node.snapshot.view_of("verification"), store, q["barcode"],
                             q["task"], request.query.get("kind", "first"))  # fmt: skip
        if found is None:
            return json_response({"error": "unknown_record", "detail": q["barcode"]}, 404)
        return json_response(found)

    return [
        Route("POST", "/v1/operator/meter/private", put_private,
              "Keep a non-public record in this node's store (its digest goes on the ledger)",
              {200: ("stored", None), 400: ("not a record", None)},
              body={"application/json": s.obj({"record": s.HEX_STR})}),
        Route("GET", "/v1/operator/meter/private/{barcode}/{task}", get_private,
              "A non-public record from this node's store, checked against the chain's digest",
              {200: ("record and check", None), 404: ("not stored here", None)},
              (Param("barcode", s.ID_PARAM, "path"), Param("task", s.ID_PARAM, "path"))),
    ]  # fmt: skip


def verification_routes(node: Service) -> list[Route]:
    async def query(request: Request) -> Response:
        try:
            body = json.loads(request.body)
            barcode, task = str(body["barCode"]), str(body["veriTaskNo"])
            table_code = str(body.get("tableCode") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            bad = {"code": 400, "data": None, "msg": "expected {barCode, tableCode, veriTaskNo}"}
            return json_response(bad, 400)
        answer = appendix_b(node.snapshot.view_of("verification"), barcode, task, table_code)
        return json_response(answer, answer["code"])

    async def batch(request: Request) -> Response:
        batch_id = request.path_params["batch"]
        found = node.snapshot.view_of("verification").get(f"batch/{batch_id}")
        if found is None:
            return json_response({"error": "unknown_batch", "detail": batch_id}, 404)
        return json_response({"batch": batch_id, "meters": found["meters"],
                              "status": found["status"],
                              "disagreements": [{"barcode": b, "institution": i}
                                                for b, i in found["disagreeing"]]})  # fmt: skip

    async def asset(request: Request) -> Response:
        view = node.snapshot.view_of("verification")
        found = asset_view(view, request.path_params["barcode"])
        if found is None:
            return json_response({"error": "unknown_asset",
                                  "detail": request.path_params["barcode"]}, 404)  # fmt: skip
        return json_response(found)

    async def institution(request: Request) -> Response:
        iid = request.path_params["institution"]
        view = node.snapshot.view_of("verification")
        found = view.get(f"institution/{iid}")
        if found is None:
            return json_response({"error": "unknown_institution", "detail": iid}, 404)
        stats = view.get(f"stats/institution/{iid}") or {"full": [0, 0], "sampling": [0, 0]}
        return json_response({"institution": iid, "name": found["name"],
                              "key": found["key"].hex(), "registered_at": found["registered_at"],
                              "revoked_at": found["revoked_at"] or None,
                              "records": {k: {"records": n, "passed": p}
                                          for k, (n, p) in stats.items()}})  # fmt: skip

    async def area(request: Request) -> Response:
        area_id = request.path_params["area"]
        found = node.snapshot.view_of("areas").get(f"area/{area_id}")
        if found is None:
            return json_response({"error": "unknown_area", "detail": area_id}, 404)
        return json_response(area_view(area_id, found))

    async def get_overview(request: Request) -> Response:
        return json_response(overview(node.snapshot.view_of("verification")))

    async def get_task(request: Request) -> Response:
        task_no = request.path_params["task"]
        found = node.snapshot.view_of("verification").get(f"task/{task_no}")
        if found is None:
            return json_response({"error": "unknown_task", "detail": task_no}, 404)
        return json_response({"task": task_no, **{k: v.hex() if isinstance(v, bytes) else v
                                                  for k, v in found.items()}})  # fmt: skip

    return [
        Route("GET", "/v1/meter/assets/{barcode}", asset,
              "A meter asset: its registration, status and history, and every record of it "
              "with the result of each Validity rule (a non-public one: its digest)",
              {200: ("asset", s.obj({"barcode": s.STR, "status": s.STR, "batch": s.STR,
                                     "history": {"type": "array"},
                                     "records": {"type": "array"}})),
               404: ("unknown asset", None)}, (Param("barcode", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/institutions/{institution}", institution,
              "A verification institution: its key, registration, revocation, record counts",
              {200: ("institution", s.obj({"institution": s.STR, "name": s.STR, "key": s.HEX_STR,
                                           "registered_at": s.INT,
                                           "revoked_at": {"type": ["integer", "null"]},
                                           "records": {"type": "object"}})),
               404: ("unknown institution", None)},
              (Param("institution", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/areas/{area}", area,
              "A transformer area (§6.1.3): its meters, periods balanced, and the remote "
              "error model's last judgement of each user meter",
              {200: ("area", s.obj({"area": s.STR, "summary_meter": s.STR, "period_s": s.INT,
                                    "periods_added": s.INT, "periods_dropped": s.INT,
                                    "judged_at_period": {"type": ["integer", "null"]},
                                    "meters": {"type": "array"}})),
               404: ("unknown area", None)}, (Param("area", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/tasks/{task}", get_task,
              "A sampling task: its plan, the drawn barcodes, the seed, the re-check's result",
              {200: ("task", s.obj({"task": s.STR, "plan": {"type": "object"},
                                    "barcodes": {"type": "array"}, "seed": s.HEX_STR})),
               404: ("unknown task", None)}, (Param("task", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/overview", get_overview,
              "§6.3.1: pass rates per institution and batch (full, sampling), top 10 items",
              {200: ("overview", s.obj({"institutions": {"type": "array"},
                                        "batches": {"type": "array"},
                                        "top_failing_items": {"type": "array"}}))}),
        Route("POST", "/v1/meter/query", query,
              "Appendix B: a meter's verification record of a task, in the spec's envelope",
              {200: ("record", ENVELOPE), 400: ("bad query", ENVELOPE),
               404: ("no such record", ENVELOPE)}, body={"application/json": QUERY}),
        Route("GET", "/v1/meter/batches/{batch}", batch,
              "An arrival batch: meters, first-verification status (§5.2), disagreements",
              {200: ("batch", s.obj({"batch": s.STR, "meters": s.INT, "status": s.STR,
                                     "disagreements": {"type": "array"}})),
               404: ("unknown batch", None)},
              (Param("batch", s.ID_PARAM, "path"),)),
    ]  # fmt: skip
