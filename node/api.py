"""The public HTTP API: its routes (one list: the router and the OpenAPI document) and
the read handlers. Submission is in `node.submit`; operator actions are not here but on
the admin listener (`node.admin`)."""

from __future__ import annotations

from typing import Any

import trio

from analysis.devices import device_key, device_view
from ledger.receipt import build_receipt
from ledger.types import Block, CommitCertificate, compute_tx_hash
from node import schemas as s
from node.admin import build_operator_routes
from node.auth import RateLimiter, rate_limited
from node.dashboard_api import dashboard_routes, load_assets, surveillance_rules
from node.http_server import serve_http
from node.logs import jsonable
from node.membership import members_json
from node.registry_api import registry_routes
from node.routes import Route, Router, with_document
from node.service import Service
from node.service_api import service_routes
from node.submit import (
    MAX_BATCH_BYTES,
    parse_wait,
    status_json,
    submit_routes,
    wait_for_commit,
)
from node.tls import server_context
from node.twin_api import twin_routes
from node.verification_api import private_routes, verification_routes
from node.web import Handler, Request, Response, error, json_response


def build_routes(node: Service) -> list[Route]:
    """Every public route, with what it answers."""
    max_wait_s = node.cfg.api_max_wait_s

    async def get_tx(request: Request) -> Response:
        tx_hash, wait_s = _hash(request), parse_wait(request, max_wait_s)
        if tx_hash is None or wait_s is None:
            return error(400, "bad_query", f"hash: 64 hex digits; 0 <= wait_s <= {max_wait_s}")
        found = await wait_for_commit(node, tx_hash, wait_s)
        if found is not None:
            return json_response(status_json(tx_hash, found))
        if node.commits.is_pending(tx_hash):
            return json_response({"tx_hash": tx_hash.hex(), "status": "pending"})
        return error(404, "unknown_tx", tx_hash.hex())

    async def get_receipt(request: Request) -> Response:
        tx_hash = _hash(request)
        if tx_hash is None:
            return error(400, "bad_hash", "expected 64 hex digits")
        found = node.reads.tx_status(tx_hash)
        if found is None:
            return error(404, "not_committed" if node.commits.is_pending(tx_hash) else "unknown_tx")
        height, index, reason = found
        if reason:
            return error(409, "rejected", f"the transaction was refused at execution: {reason}")
        stored = node.reads.block(height)
        if stored is None:  # a bug: the index says stored, the block is not
            raise RuntimeError(f"block {height} of tx {tx_hash.hex()} is not stored")
        block, cert, _ = stored
        receipt = build_receipt(node.suite, block, cert, index)
        return json_response(
            receipt.to_json(node.suite, node.genesis.chain_id, node.genesis.genesis_hash)
        )

    async def get_client(request: Request) -> Response:
        raw = request.path_params["public_key"]
        try:
            sender = bytes.fromhex(raw)
        except ValueError:
            return error(400, "bad_key", "expected hex")
        return json_response({"public_key": sender.hex(),
                              "committed_high_seq": node.reads.client_high(sender)})  # fmt: skip

    async def get_device(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        snapshot = node.snapshot
        device = snapshot.view_of("devices").get(device_key(device_id))
        if device is None:
            return error(404, "unknown_device", device_id)
        return json_response({"device_id": device_id, **device_view(device, snapshot.height)})

    async def get_dispenser(request: Request) -> Response:
        dispenser_id = request.path_params["dispenser_id"]
        record = node.snapshot.view_of("surveillance").get(f"disp/{dispenser_id}")
        if record is None:
            return error(404, "unknown_dispenser", dispenser_id)
        return json_response(dispenser_json(dispenser_id, record))

    async def list_dispensers(request: Request) -> Response:
        wanted = request.query.get("status")
        if wanted not in (None, "suspect", "cleared", "undecided"):
            return error(400, "bad_status", "status is suspect, cleared or undecided")
        state = node.snapshot.view_of("surveillance").committed
        found = [
            dispenser_json(key[5:], record)
            for key, record in sorted(state.items())
            if key.startswith("disp/") and wanted in (None, record["status"])
        ]
        rules = surveillance_rules(node)
        return json_response(
            {"dispensers": found, "tolerance_ppm": rules.tolerance_ppm if rules else None}
        )

    async def get_vehicle(request: Request) -> Response:
        vehicle_id, snapshot = request.path_params["vehicle_id"], node.snapshot
        record = snapshot.view_of("surveillance").get(f"veh/{vehicle_id}")
        device = snapshot.view_of("devices").get(device_key(vehicle_id))
        if record is None and device is None:
            return error(404, "unknown_vehicle", vehicle_id)
        record = record or {"n": {}, "m": {}, "suspect": False}
        status = device_view(device, snapshot.height)["status"] if device else None
        return json_response({"vehicle_id": vehicle_id, "suspected_colluder": record["suspect"],
                              "votes_withdrawn": bool(record.get("doubt")),
                              "device_status": status, "readings_by_dispenser": record["n"],
                              "echoes_by_dispenser": record.get("e", {}),
                              "votes_ppm": record["m"]})  # fmt: skip

    async def get_events(request: Request) -> Response:
        start = _int(request.query.get("from_height", "0"))
        after = _int(request.query.get("after", "0"))
        limit = _int(request.query.get("limit", "100"))
        if start is None or after is None or limit is None or not 1 <= limit <= 1000:
            return error(400, "bad_query", "from_height >= 0, after >= 0, 1 <= limit <= 1000")
        name = request.query.get("name")
        if after:
            paged = node.reads.events_after(after, (name,) if name else (), limit)
            return json_response({"events": jsonable([e for e in paged if e["height"] >= start])})
        found = node.reads.events(name, start, limit)
        return json_response({"events": jsonable(found)})

    async def get_evidence(request: Request) -> Response:
        return json_response({"evidence": node.reads.evidence()})

    async def get_block(request: Request) -> Response:
        raw = request.path_params["height"]
        height = node.snapshot.height if raw == "latest" else _int(raw)
        if height is None:
            return error(400, "bad_height", "a height or 'latest'")
        found = node.reads.block(height)
        if found is None:
            return error(404, "unknown_block", f"height {raw}")
        return json_response(block_json(node, *found))

    async def get_status(request: Request) -> Response:
        snap = node.snapshot
        return json_response(
            {
                "member": node.me,
                "name": node.cfg.name,
                "view": snap.view,
                "primary": snap.primary,
                "in_view_change": snap.in_view_change,
                "height": snap.height,
                "block_hash": snap.block_hash.hex(),
                "stable_checkpoint": snap.stable_checkpoint,
                "state_root": snap.state_root.hex(),
                "peers_connected": node.peers_connected(),
                "mempool_size": snap.mempool_size,
                "chain_id": node.genesis.chain_id,
                "chain_hash": node.genesis.genesis_hash.hex(),
                "suite": node.genesis.suite,
                "epoch": snap.epoch,
                "members": list(snap.members),
                "is_member": snap.is_member,
            },
            headers=(("access-control-allow-origin", "*"),),  # the dashboards of other members
        )

    async def get_members(request: Request) -> Response:
        snap = node.snapshot
        return json_response(members_json(node.genesis, snap.view_of("membership"), snap.height))

    async def healthz(request: Request) -> Response:
        return json_response({"ok": True})

    async def metrics(request: Request) -> Response:
        return Response(200, node.metrics.render(), "text/plain; version=0.0.4")

    bad_request = {400: ("malformed parameter", None)}
    routes = [
        *submit_routes(node),
        Route("GET", "/v1/tx/{hash}", get_tx,
              f"Status of a transaction; ?wait_s=N long-polls up to {max_wait_s} s for its commit",
              {200: ("pending, committed or rejected", s.TX_STATUS), 404: ("unknown here", None),
               **bad_request}, (s.TX_HASH, s.wait_param(max_wait_s))),
        Route("GET", "/v1/tx/{hash}/receipt", get_receipt,
              "Offline-verifiable receipt: tx, Merkle path, signed proposal, commit certificate",
              {200: ("receipt", s.RECEIPT), 404: ("unknown or not committed yet", None),
               409: ("refused at execution", None), **bad_request}, (s.TX_HASH,)),
        Route("GET", "/v1/clients/{public_key}", get_client,
              "Highest committed sequence number of a signer",
              {200: ("window", s.CLIENT), **bad_request}, (s.PUBLIC_KEY,)),
        Route("GET", "/v1/devices/{device_id}", get_device,
              "A registered device: status at the stored height, history",
              {200: ("device", s.DEVICE), 404: ("unknown device", None)},
              (s.Param("device_id", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/dispensers", list_dispensers,
              "Dispensers under surveillance; ?status=suspect|cleared|undecided",
              {200: ("list", s.DISPENSERS), **bad_request}, (s.DISPENSER_STATUS,)),
        Route("GET", "/v1/dispensers/{dispenser_id}", get_dispenser,
              "A dispenser's verdict: status, estimate, interval, readings, vehicles",
              {200: ("dispenser", s.DISPENSER), 404: ("unknown dispenser", None)},
              (s.Param("dispenser_id", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/vehicles/{vehicle_id}", get_vehicle,
              "A vehicle: suspected colluder?, readings and votes by dispenser",
              {200: ("vehicle", s.VEHICLE), 404: ("unknown vehicle", None)},
              (s.Param("vehicle_id", s.ID_PARAM, "path"),)),
        Route("GET", "/v1/events", get_events,
              "Contract events in ledger order, each with its id; ?name=dispenser_flagged"
              "&from_height=0&limit=100, ?after=ID for the next page",
              {200: ("events", s.EVENTS), **bad_request}, s.EVENT_QUERY),
        Route("GET", "/v1/evidence", get_evidence,
              "Conflicting messages signed by one member (equivocation)",
              {200: ("evidence", s.EVIDENCE)}),
        Route("GET", "/v1/blocks/{height}", get_block,
              "A stored block ('latest' for the newest)",
              {200: ("block", s.BLOCK), 404: ("not stored here", None), **bad_request},
              (s.HEIGHT,)),
        Route("GET", "/v1/status", get_status,
              "The last published snapshot: stored height, view, primary, peers, mempool",
              {200: ("status", s.STATUS)}),
        Route("GET", "/v1/members", get_members,
              "Membership: the epoch, a scheduled change, the roster with cards, the changes",
              {200: ("members", s.MEMBERS)}),
        Route("GET", "/healthz", healthz, "Liveness", {200: ("ok", s.OK)}),
        Route("GET", "/metrics", metrics, "Prometheus metrics",
              {200: ("text exposition format", None)}, content_type="text/plain"),
        *verification_routes(node),
        *service_routes(node),
        *registry_routes(node),
        *twin_routes(node),
        *dashboard_routes(node, load_assets()),
        *build_operator_routes(node, tuple(private_routes(node))),
    ]  # fmt: skip
    return with_document(routes, "metroledger node API")


def block_json(
    node: Service, block: Block, cert: CommitCertificate, state_root: bytes
) -> dict[str, Any]:
    p = block.header.proposal
    hashes = [compute_tx_hash(node.suite, tx) for tx in block.txs]
    return {
        "height": p.height,
        "hash": block.header.hash(node.suite).hex(),
        "prev_hash": block.header.prev_hash.hex(),
        "timestamp_ms": p.timestamp_ms,
        "proposer": p.proposer,
        "tx_root": p.tx_root.hex(),
        "tx_count": p.tx_count,
        "state_height": p.state_height,
        "proposal_state_root": p.state_root.hex(),
        "state_root": state_root.hex(),
        "txs": [h.hex() for h in hashes],
        "refused": refused_in(node, p.height, hashes),
        "certificate": {"view": cert.view, "votes": [[m, sig.hex()] for m, sig in cert.votes]},
        "encoded": block.encode().hex(),
    }


def refused_in(node: Service, height: int, hashes: list[bytes]) -> list[list[Any]]:
    """[index, reason] of each transaction of block `height` that changed nothing: refused
    by its contract, a replay, or already committed in an earlier block."""
    out: list[list[Any]] = []
    for index, tx_hash in enumerate(hashes):
        status = node.reads.tx_status(tx_hash)
        if status is not None and status[0] != height:
            out.append([index, f"already_committed_at:{status[0]}"])
        elif status is not None and status[2]:
            out.append([index, status[2]])
    return out


def dispenser_json(dispenser_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "dispenser_id": dispenser_id,
        "status": record["status"],
        "estimate_ppm": record["estimate"],
        "interval_ppm": [record["lower"], record["upper"]],
        "readings": record["n"],
        "vehicles": record["k"],
        "echoing_vehicles": record.get("q", 0),  # echoed the claim there (echoes do not vote)
        "flagged_at_readings": record["flagged_at"] or None,
        "station_id": record.get("station"),
        "changed_at_readings": record.get("changed_at") or None,
    }


def _hash(request: Request) -> bytes | None:
    raw = request.path_params["hash"]
    if len(raw) != 64:
        return None
    try:
        return bytes.fromhex(raw)
    except ValueError:
        return None


def _int(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and raw.isascii() and len(raw) < 19 else None


async def serve_api(node: Service, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The public API: TLS unless the config allows plain HTTP on loopback, and a request
    rate per client address."""
    handler: Handler = Router(build_routes(node))

    def refused(reason: str) -> None:
        node.metrics.rejected.labels(f"http_{reason}").inc()

    if node.cfg.api_rate_per_s:
        limiter = RateLimiter(node.cfg.api_rate_per_s)
        handler = rate_limited(handler, limiter, lambda: refused("rate_limited"))
    tls = server_context(*node.cfg.api_tls) if node.cfg.api_tls else None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.metrics.history.run)  # what the dashboard's network page reads
        await serve_http(handler, node.cfg.api_host, node.cfg.api_port, MAX_BATCH_BYTES,
                         refused, tls, task_status=task_status)  # fmt: skip
