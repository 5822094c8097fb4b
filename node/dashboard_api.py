"""The read-only dashboard every node serves (`/dashboard/`), and the few lists only its
pages need: the last minutes of the network, stations with the dispensers seen at each,
the sampling tasks.

The pages are plain HTML, CSS and JavaScript of this project (no framework, no CDN, no
map tiles: they work on a network with no internet) that read the public API; plots and
maps are SVG drawn in the browser. The files are read once at start and served from
memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.surveillance import DispenserSurveillance, SurveillanceRules
from node import schemas as s
from node.routes import Param, Route
from node.service import Service
from node.web import Request, Response, error, json_response

ASSETS_DIR = Path(__file__).with_name("dashboard")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# the pages may read other members' status (their API addresses are in the roster)
ASSET_HEADERS = (
    ("content-security-policy",
     "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-cache"),
)  # fmt: skip


def load_assets(directory: Path = ASSETS_DIR) -> dict[str, tuple[bytes, str]]:
    """file name -> (bytes, content type), for the files of a known type in `directory`."""
    return {
        path.name: (path.read_bytes(), CONTENT_TYPES[path.suffix])
        for path in sorted(directory.iterdir())
        if path.suffix in CONTENT_TYPES
    }


def surveillance_rules(node: Service) -> SurveillanceRules | None:
    """The chain's surveillance rules, or None if its registry has no such contract."""
    contract = node.registry.named("surveillance")
    return contract.rules if isinstance(contract, DispenserSurveillance) else None


def stations_json(node: Service) -> list[dict[str, Any]]:
    """Every station a reading named or the configuration places, with its coordinates
    (null when unknown) and its dispensers' ids."""
    rules = surveillance_rules(node)
    placed = {sid: (lat, lon) for sid, lat, lon in (rules.stations if rules else ())}
    dispensers: dict[str, list[str]] = {sid: [] for sid in placed}
    state = node.snapshot.view_of("surveillance").committed
    for key, record in sorted(state.items()):
        if key.startswith("disp/") and record.get("station"):
            dispensers.setdefault(record["station"], []).append(key[5:])
    return [
        {
            "station_id": sid,
            "lat_e6": placed[sid][0] if sid in placed else None,
            "lon_e6": placed[sid][1] if sid in placed else None,
            "dispensers": ids,
        }
        for sid, ids in sorted(dispensers.items())
    ]


def votes_json(node: Service, dispenser_id: str) -> list[dict[str, Any]]:
    """The evidence behind a dispenser's verdict: each vehicle's vote there (its bias-
    corrected mean error), its readings there, and whether it is a suspected colluder
    (whose votes no longer count)."""
    state = node.snapshot.view_of("surveillance").committed
    return [
        {"vehicle_id": key[4:], "vote_ppm": v["m"].get(dispenser_id),
         "readings": v["n"][dispenser_id], "suspected_colluder": v["suspect"]}
        for key, v in sorted(state.items())
        if key.startswith("veh/") and dispenser_id in v["n"]
    ]  # fmt: skip


def tasks_json(node: Service) -> list[dict[str, Any]]:
    state = node.snapshot.view_of("verification").committed
    return [
        {"task": key[5:], "batch": t["batch"], "mode": t["mode"], "status": t["status"],
         "plan": t["plan"], "drawn": len(t["barcodes"]), "result": t.get("result")}
        for key, t in sorted(state.items()) if key.startswith("task/")
    ]  # fmt: skip


def dashboard_routes(node: Service, assets: dict[str, tuple[bytes, str]]) -> list[Route]:
    async def dashboard_root(request: Request) -> Response:
        return Response(302, b"", "text/plain", (("location", "/dashboard/"),))

    async def dashboard_index(request: Request) -> Response:
        body, kind = assets["index.html"]
        return Response(200, body, kind, ASSET_HEADERS)

    async def dashboard_file(request: Request) -> Response:
        found = assets.get(request.path_params["file"])
        if found is None:
            return error(404, "not_found", request.path_params["file"])
        return Response(200, found[0], found[1], ASSET_HEADERS)

    async def network_history(request: Request) -> Response:
        return json_response(
            node.metrics.history.to_json(), headers=(("access-control-allow-origin", "*"),)
        )

    async def list_stations(request: Request) -> Response:
        return json_response({"stations": stations_json(node)})

    async def dispenser_votes(request: Request) -> Response:
        dispenser_id = request.path_params["dispenser_id"]
        if node.snapshot.view_of("surveillance").get(f"disp/{dispenser_id}") is None:
            return error(404, "unknown_dispenser", dispenser_id)
        return json_response(
            {"dispenser_id": dispenser_id, "votes": votes_json(node, dispenser_id)}
        )

    async def list_tasks(request: Request) -> Response:
        return json_response({"tasks": tasks_json(node)})

    nullable = {"type": ["integer", "null"]}
    return [
        Route("GET", "/", dashboard_root, "The dashboard's address",
              {302: ("to /dashboard/", None)}, content_type="text/plain"),
        Route("GET", "/dashboard/", dashboard_index, "The dashboard (read-only web pages)",
              {200: ("HTML", None)}, content_type="text/html"),
        Route("GET", "/dashboard/{file}", dashboard_file, "A file of the dashboard",
              {200: ("the file", None), 404: ("no such file", None)},
              (Param("file", s.ID_PARAM, "path"),), content_type="text/plain"),
        Route("GET", "/v1/network/history", network_history,
              "This node's last minutes, one sample a second: committed tx/s, mean commit "
              "latency, height, view, view changes and refusals by reason",
              {200: ("samples", s.obj({"interval_s": {"type": "number"},
                                       "samples": {"type": "array"},
                                       "view_changes_total": s.INT,
                                       "refused_total": {"type": "object"}}))}),
        Route("GET", "/v1/stations", list_stations,
              "Fuel stations: coordinates from the genesis configuration, dispensers seen",
              {200: ("stations", s.obj({"stations": {"type": "array", "items": s.obj(
                  {"station_id": s.STR, "lat_e6": nullable, "lon_e6": nullable,
                   "dispensers": {"type": "array", "items": s.STR}})}}))}),
        Route("GET", "/v1/dispensers/{dispenser_id}/votes", dispenser_votes,
              "The evidence behind a verdict: every vehicle's vote at the dispenser",
              {200: ("votes", s.obj({"dispenser_id": s.STR, "votes": {"type": "array"}})),
               404: ("unknown dispenser", None)}, (Param("dispenser_id", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/meter/tasks", list_tasks,
              "Sampling tasks (§6.3): batch, mode, plan, meters drawn, status, re-check result",
              {200: ("tasks", s.obj({"tasks": {"type": "array"}}))}),
    ]  # fmt: skip
