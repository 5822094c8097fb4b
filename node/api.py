"""HTTP API (Starlette on our own small HTTP/1.1 server, `node.http_server`)."""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING, Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from analysis.devices import device_key, device_view
from ledger.receipt import build_receipt
from ledger.types import Block, CommitCertificate, compute_tx_hash
from node.http_server import serve_http
from node.logs import jsonable
from node.submit import MAX_BATCH_BYTES, error, post_tx, post_txs
from node.transport import FaultRules

if TYPE_CHECKING:
    from node.daemon import Node


def block_json(
    node: Node, block: Block, cert: CommitCertificate, state_root: bytes
) -> dict[str, Any]:
    p = block.header.proposal
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
        "txs": [compute_tx_hash(node.suite, tx).hex() for tx in block.txs],
        "certificate": {"view": cert.view, "votes": [[m, s.hex()] for m, s in cert.votes]},
        "encoded": block.encode().hex(),
    }


def build_app(node: Node) -> Starlette:
    async def submit_one(request: Request) -> Response:
        return await post_tx(node, request)

    async def submit_batch(request: Request) -> Response:
        return await post_txs(node, request)

    async def get_tx(request: Request) -> Response:
        try:
            tx_hash = bytes.fromhex(request.path_params["hash"])
        except ValueError:
            return error(400, "bad_hash", "expected hex")
        found = node.tx_status(tx_hash)
        wait_s = _wait_seconds(request)
        if found is None and wait_s:
            waiter = node.commit_waiters.setdefault(tx_hash, trio.Event())
            with trio.move_on_after(wait_s):
                await waiter.wait()
            if not waiter.is_set():  # bound the table: a later poll makes a new waiter
                node.commit_waiters.pop(tx_hash, None)
            found = node.tx_status(tx_hash)
        if found is not None:
            height, index, reason = found
            status = "committed" if not reason else "rejected"
            return JSONResponse(
                {
                    "tx_hash": tx_hash.hex(),
                    "status": status,
                    "height": height,
                    "index": index,
                    "reason": reason or None,
                }
            )
        if tx_hash in node.admitted_at:
            return JSONResponse({"tx_hash": tx_hash.hex(), "status": "pending"})
        return error(404, "unknown_tx")

    async def get_receipt(request: Request) -> Response:
        try:
            tx_hash = bytes.fromhex(request.path_params["hash"])
        except ValueError:
            return error(400, "bad_hash", "expected hex")
        found = node.tx_status(tx_hash)
        if found is None:
            pending = tx_hash in node.admitted_at
            return error(404, "not_committed" if pending else "unknown_tx")
        height, index, reason = found
        if reason:
            return error(409, "rejected", f"the transaction was refused at execution: {reason}")
        stored = node.reader.block(height)
        if stored is None:
            return error(503, "not_stored", f"block {height} not readable yet")
        block, cert, _ = stored
        receipt = build_receipt(node.suite, block, cert, index)
        return JSONResponse(receipt.to_json(node.suite, node.genesis.chain_id))

    async def get_client(request: Request) -> Response:
        try:
            sender = bytes.fromhex(request.path_params["public_key"])
        except ValueError:
            return error(400, "bad_key", "expected hex")
        high, _ = node.replica.requests.clients.get(sender, (0, 0))
        return JSONResponse({"public_key": sender.hex(), "committed_high_seq": high})

    async def get_device(request: Request) -> Response:
        device = node.executor.view("devices").get(device_key(request.path_params["device_id"]))
        if device is None:
            return error(404, "unknown_device", request.path_params["device_id"])
        view = device_view(device, node.replica.delivered_height)
        return JSONResponse({"device_id": request.path_params["device_id"], **view})

    async def get_dispenser(request: Request) -> Response:
        dispenser_id = request.path_params["dispenser_id"]
        record = node.executor.view("surveillance").get(f"disp/{dispenser_id}")
        if record is None:
            return error(404, "unknown_dispenser", dispenser_id)
        return JSONResponse(dispenser_json(dispenser_id, record))

    async def list_dispensers(request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted not in (None, "suspect", "cleared", "undecided"):
            return error(400, "bad_status", "status is suspect, cleared or undecided")
        state = node.executor.state.get("surveillance", {})
        found = [
            dispenser_json(key[5:], record)
            for key, record in sorted(state.items())
            if key.startswith("disp/") and wanted in (None, record["status"])
        ]
        return JSONResponse({"dispensers": found})

    async def get_vehicle(request: Request) -> Response:
        vehicle_id = request.path_params["vehicle_id"]
        record = node.executor.view("surveillance").get(f"veh/{vehicle_id}")
        device = node.executor.view("devices").get(device_key(vehicle_id))
        if record is None and device is None:
            return error(404, "unknown_vehicle", vehicle_id)
        record = record or {"n": {}, "m": {}, "suspect": False}
        return JSONResponse(
            {
                "vehicle_id": vehicle_id,
                "suspected_colluder": record["suspect"],
                "device_status": device_view(device, node.replica.delivered_height)["status"]
                if device
                else None,
                "readings_by_dispenser": record["n"],
                "votes_ppm": record["m"],
            }
        )

    async def get_events(request: Request) -> Response:
        start = _int(request.query_params.get("from_height", "0"))
        limit = _int(request.query_params.get("limit", "100"))
        if start is None or limit is None or not 1 <= limit <= 1000:
            return error(400, "bad_query", "from_height >= 0, 1 <= limit <= 1000")
        found = node.reader.events(request.query_params.get("name"), start, limit)
        return JSONResponse({"events": jsonable(found)})

    async def set_faults(request: Request) -> Response:
        if not os.environ.get("METROLEDGER_FAULTS"):
            return error(404, "not_enabled", "start the node with METROLEDGER_FAULTS=1")
        try:
            raw = json.loads(await request.body())
            rules = FaultRules(
                drop_to={int(m) for m in raw.get("drop_to", [])},
                loss_pct=int(raw.get("loss_pct", 0)),
                delay_ms=int(raw.get("delay_ms", 0)),
                jitter_ms=int(raw.get("jitter_ms", 0)),
                rng=random.Random(int(raw.get("seed", 0))),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            return error(400, "bad_faults", str(exc))
        node.transport.faults = rules
        return JSONResponse({"ok": True})

    async def get_evidence(request: Request) -> Response:
        return JSONResponse({"evidence": node.reader.evidence()})

    async def get_block(request: Request) -> Response:
        raw = request.path_params["height"]
        height = node.reader.height() if raw == "latest" else _int(raw)
        found = node.reader.block(height) if height is not None else None
        if found is None:
            return error(404, "unknown_block", f"height {raw}")
        return JSONResponse(block_json(node, *found))

    async def status(request: Request) -> Response:
        r = node.replica
        return JSONResponse(
            {
                "member": node.me,
                "name": node.cfg.name,
                "view": r.view,
                "primary": r.primary,
                "in_view_change": r.in_view_change,
                "height": r.delivered_height,
                "stable_checkpoint": r.stable_seq,
                "state_root": node.executor.state_root.hex(),
                "peers_connected": node.transport.connected(),
                "mempool_size": len(r.requests),
                "chain_id": node.genesis.chain_id,
                "suite": node.genesis.suite,
            }
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def metrics(request: Request) -> Response:
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[
            Route("/v1/tx", submit_one, methods=["POST"]),
            Route("/v1/txs", submit_batch, methods=["POST"]),
            Route("/v1/tx/{hash}", get_tx),
            Route("/v1/tx/{hash}/receipt", get_receipt),
            Route("/v1/devices/{device_id}", get_device),
            Route("/v1/clients/{public_key}", get_client),
            Route("/v1/dispensers", list_dispensers),
            Route("/v1/dispensers/{dispenser_id}", get_dispenser),
            Route("/v1/vehicles/{vehicle_id}", get_vehicle),
            Route("/v1/events", get_events),
            Route("/v1/evidence", get_evidence),
            Route("/v1/admin/faults", set_faults, methods=["POST"]),
            Route("/v1/blocks/{height}", get_block),
            Route("/v1/status", status),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
        ]
    )


def dispenser_json(dispenser_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "dispenser_id": dispenser_id,
        "status": record["status"],
        "estimate_ppm": record["estimate"],
        "interval_ppm": [record["lower"], record["upper"]],
        "readings": record["n"],
        "vehicles": record["k"],
        "flagged_at_readings": record["flagged_at"] or None,
    }


def _wait_seconds(request: Request) -> float:
    """`?wait_s=N`: long-poll up to N seconds (at most 30) for the tx to commit."""
    raw = request.query_params.get("wait_s", "0")
    try:
        return min(max(float(raw), 0.0), 30.0)
    except ValueError:
        return 0.0


def _int(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


async def serve_api(node: Node, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    app = build_app(node)
    await serve_http(
        app, node.cfg.api_host, node.cfg.api_port, MAX_BATCH_BYTES, task_status=task_status
    )


def _path(summary: str, responses: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "responses": {k: {"description": v} for k, v in responses.items()},
        **extra,
    }


TX_POST_RESPONSES = {
    "202": "accepted, pending",
    "400": "malformed or bad signature",
    "409": "replay",
    "422": "refused by the device registry (unknown, inactive or revoked device; old sequence)",
    "413": "body too large",
    "429": "mempool full",
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "metroledger node API", "version": "1"},
    "paths": {
        "/v1/tx": {
            "post": _path(
                'Submit a signed transaction (canonical msgpack bytes, or JSON {"tx": hex})',
                TX_POST_RESPONSES,
                requestBody={"content": {"application/octet-stream": {}, "application/json": {}}},
            )
        },
        "/v1/txs": {
            "post": _path(
                "Submit a batch: the canonical encoding of a list of signed transactions "
                "(at most 5,000, 8 MiB); per-transaction results",
                {"202": "all pending", "200": "some refused (see results)", "400": "malformed"},
            )
        },
        "/v1/tx/{hash}": {
            "get": _path(
                "Status of a transaction; ?wait_s=N long-polls up to 30 s for its commit",
                {"200": "pending/committed/rejected", "404": "unknown here"},
            )
        },
        "/v1/clients/{public_key}": {
            "get": _path("Highest committed sequence number of a signer", {"200": "window"})
        },
        "/v1/tx/{hash}/receipt": {
            "get": _path(
                "Offline-verifiable receipt: tx, Merkle path, signed proposal, commit certificate",
                {"200": "receipt", "404": "unknown or not committed", "409": "refused"},
            )
        },
        "/v1/devices/{device_id}": {
            "get": _path(
                "A registered device: status at the current height, history", {"200": "device"}
            )
        },
        "/v1/dispensers": {
            "get": _path(
                "Dispensers under surveillance; ?status=suspect|cleared|undecided", {"200": "list"}
            )
        },
        "/v1/dispensers/{dispenser_id}": {
            "get": _path(
                "A dispenser's verdict: status, estimate, interval, readings, vehicles",
                {"200": "dispenser"},
            )
        },
        "/v1/vehicles/{vehicle_id}": {
            "get": _path(
                "A vehicle: suspected colluder?, readings and votes by dispenser",
                {"200": "vehicle"},
            )
        },
        "/v1/events": {
            "get": _path(
                "Contract events; ?name=dispenser_flagged&from_height=0&limit=100",
                {"200": "events"},
            )
        },
        "/v1/evidence": {
            "get": _path(
                "Conflicting messages signed by one member (equivocation)", {"200": "list"}
            )
        },
        "/v1/blocks/{height}": {
            "get": _path("A committed block ('latest' for the newest)", {"200": "block"})
        },
        "/v1/status": {"get": _path("View, height, primary, peers, mempool", {"200": "status"})},
        "/healthz": {"get": _path("Liveness", {"200": "ok"})},
        "/metrics": {"get": _path("Prometheus metrics", {"200": "text exposition format"})},
    },
}
