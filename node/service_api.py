"""Calibration requests, work orders, anomalies, alerts and KPIs as JSON (analysis.service,
analysis.service_kpi), and every contract event pushed live as server-sent events.

`GET /v1/events/stream` answers `text/event-stream`: each stored event as `id: <n>`,
`event: <name>`, `data: <JSON>`, in ledger order, from the one after `Last-Event-ID` (or
`?after=`), so that a browser's EventSource resumes where it stopped; a comment every 15 s
keeps proxies from closing an idle stream, and the stream ends after `max_s` seconds (the
EventSource reconnects by itself), so no request holds a connection for ever.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import AsyncIterator
from typing import Any

import trio

from analysis.service_kpi import kpis
from node import schemas as s
from node.logs import jsonable
from node.routes import Param, Route
from node.service import Service
from node.web import Request, Response, error, json_response

KEEPALIVE_S = 15.0
MAX_STREAM_S = 3600
EVENTS_PER_READ = 500
MAX_ORDERS = 10_000  # work orders in one answer
ORDER = s.obj({"order": s.STR, "kind": s.STR, "barcode": s.STR, "status": s.STR,
               "created_ms": s.INT, "alerts": {"type": "array"}})  # fmt: skip
NUMBERED = (
    Param("from", {"type": "integer", "minimum": 1, "maximum": 10**12}, "query"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "query"),
)


def order_json(order_id: str, order: dict[str, Any]) -> dict[str, Any]:
    return {"order": order_id, **jsonable(order),
            "staff": [{"step": a, "staff": n} for a, n in order["staff"]]}  # fmt: skip


def numbered(request: Request, view: Any, prefix: str, count_key: str) -> Response:
    """Items numbered from 1 (alerts, anomalies), `limit` of them from `from`."""
    try:
        start, limit = int(request.query.get("from", "1")), int(request.query.get("limit", "100"))
    except ValueError:
        start, limit = 0, 0
    if not (1 <= start <= 10**12 and 1 <= limit <= 1000):
        return error(400, "bad_query", "1 <= from, 1 <= limit <= 1000")
    total = view.get(count_key, 0)
    items = [{"n": n, **jsonable(view.get(f"{prefix}{n}"))}
             for n in range(start, min(total, start + limit - 1) + 1)]  # fmt: skip
    return json_response({"total": total, "items": items})


def service_routes(node: Service) -> list[Route]:
    def view() -> Any:
        return node.snapshot.view_of("service")

    async def calibration(request: Request) -> Response:
        rid = request.path_params["request"]
        found = view().get(f"request/{rid}")
        if found is None:
            return error(404, "unknown_request", rid)
        order = view().get(f"order/{found['order']}") if found["order"] else None
        return json_response({"request": rid, **jsonable(found),
                              "order_progress": order_json(found["order"], order)
                              if order else None})  # fmt: skip

    async def work_order(request: Request) -> Response:
        oid = request.path_params["order"]
        found = view().get(f"order/{oid}")
        if found is None:
            return error(404, "unknown_order", oid)
        return json_response(order_json(oid, found))

    async def work_orders(request: Request) -> Response:
        kind, status = request.query.get("kind"), request.query.get("status")
        raw = request.query.get("limit", str(MAX_ORDERS))
        if not (raw.isdigit() and 1 <= int(raw) <= MAX_ORDERS):
            return error(400, "bad_query", f"limit: 1..{MAX_ORDERS}")
        orders = view().committed
        found = [k for k, o in orders.items() if k.startswith("order/")
                 and kind in (None, o["kind"]) and status in (None, o["status"])]  # fmt: skip
        last = heapq.nlargest(int(raw), found, key=lambda k: orders[k]["created_ms"])
        shown = [order_json(k[len("order/") :], orders[k]) for k in reversed(last)]
        return json_response({"total": len(found), "orders": shown})

    async def alerts(request: Request) -> Response:
        return numbered(request, view(), "alert/", "alerts")

    async def anomalies(request: Request) -> Response:
        return numbered(request, view(), "anomaly/", "anomalies")

    async def get_kpis(request: Request) -> Response:
        snap = node.snapshot
        return json_response(kpis(snap.view_of("service"), snap.view_of("areas"),
                                  snap.view_of("verification")))  # fmt: skip

    async def stream(request: Request) -> Response:
        cursor = request.header(b"last-event-id") or request.query.get("after", "0").encode()
        names = tuple(n for n in request.query.get("name", "").split(",") if n)
        try:
            after, max_s = int(cursor), float(request.query.get("max_s", "300"))
        except ValueError:
            return error(400, "bad_query", "after and Last-Event-ID: integers; max_s: seconds")
        if after < 0 or not 0 < max_s <= MAX_STREAM_S or len(names) > 20:
            detail = f"after >= 0, 0 < max_s <= {MAX_STREAM_S}, at most 20 names"
            return error(400, "bad_query", detail)
        parts = events(node, after, names, max_s)
        return Response(200, content_type="text/event-stream", stream=parts,
                        headers=(("cache-control", "no-store"),))  # fmt: skip

    return [
        Route("GET", "/v1/meter/calibrations/{request}", calibration,
              "§6.1: a user's calibration request, its answer and its work order's progress",
              {200: ("request", s.obj({"request": s.STR, "answer": s.STR, "barcode": s.STR})),
               404: ("unknown request", None)}, (Param("request", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/work_orders/{order}", work_order,
              "A work order (calibration C-…, replacement R-…) and its steps",
              {200: ("order", ORDER), 404: ("unknown order", None)},
              (Param("order", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/work_orders", work_orders,
              "Work orders, optionally of one kind and status: how many, and the `limit` "
              f"most recently created, oldest first (at most {MAX_ORDERS})",
              {200: ("orders", s.obj({"total": s.INT,
                                      "orders": {"type": "array", "items": ORDER}})),
               400: ("bad query", None)},
              (Param("kind", {"type": "string", "enum": ["calibration", "replacement"]}, "query"),
               Param("status", {"type": "string", "maxLength": 20}, "query"),
               Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ORDERS},
                     "query"))),
        Route("GET", "/v1/meter/alerts", alerts,
              "§6.4.2: overdue unaccepted, overdue unprocessed, customer unsatisfied",
              {200: ("alerts", s.obj({"total": s.INT, "items": {"type": "array"}})),
               400: ("bad query", None)}, NUMBERED),
        Route("GET", "/v1/meter/anomalies", anomalies,
              "§6.1.3: calibrations the model could not pass, for the regulator",
              {200: ("anomalies", s.obj({"total": s.INT, "items": {"type": "array"}})),
               400: ("bad query", None)}, NUMBERED),
        Route("GET", "/v1/meter/kpis", get_kpis,
              "§6.2 and §6.4.1: calibration, replacement, model and quality figures",
              {200: ("kpis", s.obj({"calibration": {"type": "object"},
                                    "replacement": {"type": "object"},
                                    "model": {"type": "object"},
                                    "quality": {"type": "object"}}))}),
        Route("GET", "/v1/events/stream", stream,
              "Contract events pushed as server-sent events (?name=a,b&after=N&max_s=300)",
              {200: ("text/event-stream", None), 400: ("bad query", None)},
              (Param("name", {"type": "string", "maxLength": 2000}, "query"),
               Param("after", {"type": "integer", "minimum": 0}, "query"),
               Param("max_s", {"type": "number", "exclusiveMinimum": 0,
                               "maximum": MAX_STREAM_S}, "query")),
              content_type="text/event-stream"),
    ]  # fmt: skip


async def events(
    node: Service, after: int, names: tuple[str, ...], max_s: float
) -> AsyncIterator[bytes]:
    """The stream's parts: stored events after row `after`, then each new block's. No
    cancel scope spans a yield (the consumer's writes would run inside it)."""
    deadline = trio.current_time() + max_s
    yield b"retry: 2000\n\n"
    while trio.current_time() < deadline:
        stored = node.commits.block_stored  # taken before reading: no block is missed
        found = node.reads.events_after(after, names, EVENTS_PER_READ)
        for item in found:
            data = json.dumps(jsonable(item), separators=(",", ":"), ensure_ascii=False)
            yield f"id: {item['id']}\nevent: {item['name']}\ndata: {data}\n\n".encode()
            after = item["id"]
        if len(found) == EVENTS_PER_READ:
            continue
        with trio.move_on_at(min(deadline, trio.current_time() + KEEPALIVE_S)) as idle:
            await stored.wait()
        if idle.cancelled_caught and trio.current_time() < deadline:
            yield b": keep-alive\n\n"
