"""The public verification registry as queries (analysis.registry): every public
verification result, searchable, paged, as JSON or CSV; the reminders per owner.

`GET /v1/registry?type=&manufacturer=&modification=&serial=&certificate=&from=&to=
&valid_until_from=&valid_until_to=&page=1&limit=100`: `type` is the meter
type, `modification` the wiring mode (01 single phase, 03 three phase), `serial` the
barcode (a prefix matches), `from`/`to` bound the verification date and the
`valid_until_*` the valid-until date (YYYY-MM-DD, inclusive). Entries come sorted by
verification date, newest first, then barcode. `GET /v1/registry.csv` with the same
parameters is that page as CSV, with a header.
"""

from __future__ import annotations

import csv
import heapq
import io
import re
from collections.abc import Callable
from typing import Any

from analysis.service_kpi import scan, under
from node import schemas as s
from node.routes import Param, Route
from node.service import Service
from node.web import Request, Response, error, json_response

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COLUMNS = ("barcode", "meter_type", "manufacturer", "wiring", "owner", "task", "kind", "date",
           "result", "certificate_no", "institution", "valid_until")  # fmt: skip
TEXT = {"type": "string", "maxLength": 64}
FILTERS = {"type": "meter_type", "manufacturer": "manufacturer", "modification": "wiring",
           "certificate": "certificate_no"}  # fmt: skip
RANGES = ("from", "to", "valid_until_from", "valid_until_to")
ENTRY = s.obj({c: s.STR for c in COLUMNS})


def matcher(q: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The query as one test of an entry, holding only the checks the query asks for
    (a search runs it on every entry: 100,000 of them in a national registry)."""
    equal = [(field, q[name]) for name, field in FILTERS.items() if name in q]
    serial = q.get("serial")
    low, high = q.get("from", ""), q.get("to", "9999-99-99")
    dated = "from" in q or "to" in q
    valid = "valid_until_from" in q or "valid_until_to" in q
    v_low, v_high = q.get("valid_until_from", ""), q.get("valid_until_to", "9999-99-99")

    def matches(entry: dict[str, Any]) -> bool:
        if serial is not None and not entry["barcode"].startswith(serial):
            return False
        if any(entry[field] != want for field, want in equal):
            return False
        if dated and not low <= entry["date"][:10] <= high:
            return False
        return not valid or (bool(entry["valid_until"]) and v_low <= entry["valid_until"] <= v_high)

    return matches


def bad_query(q: dict[str, str]) -> str | None:
    for name in ("from", "to", "valid_until_from", "valid_until_to"):
        if name in q and not DAY.fullmatch(q[name]):
            return f"{name}: YYYY-MM-DD"
    for name in ("page", "limit"):
        if name in q and not (q[name].isdigit() and len(q[name]) < 7 and int(q[name]) >= 1):
            return f"{name}: a positive integer"
    if int(q.get("limit", "100")) > 1000:
        return "limit: at most 1000"
    return None


def registry_routes(node: Service) -> list[Route]:
    def select(q: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
        entries = under(node.snapshot.view_of("registry"), "entry/")
        filtered = any(name in q for name in (*FILTERS, *RANGES, "serial"))
        found = list(filter(matcher(q), entries)) if filtered else entries
        page, limit = int(q.get("page", "1")), int(q.get("limit", "100"))
        # the page's end among the newest: no sort of 100,000 entries for a page of 50
        newest = heapq.nlargest(page * limit, found, key=lambda e: (e["date"], e["barcode"]))
        return len(found), newest[(page - 1) * limit :]

    async def search(request: Request) -> Response:
        problem = bad_query(request.query)
        if problem is not None:
            return error(400, "bad_query", problem)
        total, shown = select(request.query)
        page = int(request.query.get("page", "1"))
        return json_response({"total": total, "page": page, "entries": shown})

    async def search_csv(request: Request) -> Response:
        problem = bad_query(request.query)
        if problem is not None:
            return error(400, "bad_query", problem)
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(select(request.query)[1])
        return Response(
            200,
            out.getvalue().encode(),
            content_type="text/csv; charset=utf-8",
            headers=(("content-disposition", 'attachment; filename="registry.csv"'),),
        )

    async def reminders(request: Request) -> Response:
        owner = request.query.get("owner")
        if not owner:
            return error(400, "bad_query", "owner: the owning unit")
        view = node.snapshot.view_of("registry")
        prefix = f"reminder/{owner}/"
        found = [{"barcode": k[len(prefix) :], **v} for k, v in scan(view, prefix)]
        return json_response({"owner": owner, "reminders": found})

    query = tuple(Param(n, TEXT, "query") for n in ("type", "manufacturer", "modification",
                                                    "serial", "certificate"))  # fmt: skip
    days = tuple(Param(n, {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}, "query")
                 for n in ("from", "to", "valid_until_from", "valid_until_to"))  # fmt: skip
    paging = (
        Param("page", {"type": "integer", "minimum": 1, "maximum": 999_999}, "query"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "query"),
    )
    return [
        Route("GET", "/v1/registry", search,
              "The public verification registry: every public result with its valid-until "
              "date, searchable and paged",
              {200: ("entries", s.obj({"total": s.INT, "page": s.INT,
                                       "entries": {"type": "array", "items": ENTRY}})),
               400: ("bad query", None)}, (*query, *days, *paging)),
        Route("GET", "/v1/registry.csv", search_csv,
              "The same page of the registry as CSV (a header, then one row per entry)",
              {200: ("CSV", None), 400: ("bad query", None)}, (*query, *days, *paging),
              content_type="text/csv"),
        Route("GET", "/v1/registry/reminders", reminders,
              "Reminders raised for an owner before its meters' validity runs out",
              {200: ("reminders", s.obj({"owner": s.STR, "reminders": {"type": "array"}})),
               400: ("bad query", None)}, (Param("owner", TEXT, "query"),)),
    ]  # fmt: skip
