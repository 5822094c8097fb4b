"""The operator's actions on a running node (today the benchmark fault layer, and the
effective configuration): on the admin listener, loopback or a Unix socket, with no
credential; on the public API under /v1/operator/, only with the node's operator token
(`node.auth`)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from typing import Any

import trio

from node import schemas
from node.auth import check_token, require_operator
from node.http_server import serve_listeners
from node.routes import Route, Router, with_document
from node.service import Service
from node.transport import FaultRules
from node.web import Request, Response, error, json_response

MAX_ADMIN_BODY = 64 * 1024
FAULT_FIELDS = {"drop_to", "loss_pct", "delay_ms", "jitter_ms", "seed"}


def build_admin_routes(node: Service) -> list[Route]:
    return with_document([_faults_route(node, "/v1/admin/faults")], "metroledger admin API")


def build_operator_routes(node: Service, extra: tuple[Route, ...] = ()) -> list[Route]:
    """The operator's routes on the public API (and `extra` ones, such as private data):
    each needs this node's operator token."""
    suite, chain = node.suite, node.genesis.genesis_hash
    key = node.public_key

    def check(token: str) -> str | None:
        return check_token(suite, key, chain, node.me, token, time.time())

    async def get_config(request: Request) -> Response:
        return json_response({"config": node.cfg.describe(), "member": node.me})

    config = Route("GET", "/v1/operator/config", get_config,
                   "This node's effective configuration (operator token required)",
                   {200: ("configuration", schemas.OPERATOR_CONFIG)})  # fmt: skip
    guarded = []
    for route in (_faults_route(node, "/v1/operator/faults"), config, *extra):
        responses = {**route.responses, 401: ("no operator token", None),
                     403: ("a token that does not authorise this node", None)}  # fmt: skip
        handler = require_operator(route.handler, check)
        guarded.append(dataclasses.replace(route, handler=handler, responses=responses))
    return guarded


def _faults_route(node: Service, path: str) -> Route:
    async def set_faults(request: Request) -> Response:
        try:
            raw = json.loads(request.body)
            rules = parse_faults(raw, len(node.genesis.members))
        except (ValueError, TypeError) as exc:
            return error(400, "bad_faults", str(exc))
        node.set_faults(rules)
        return json_response({"ok": True})

    return Route("POST", path, set_faults,
                 "Link faults this node imposes on what it sends: partition (drop_to), "
                 "random loss, delay with jitter (benchmarks and tests)",
                 {200: ("applied", schemas.OK), 400: ("not a valid rule set", None)},
                 body={"application/json": schemas.FAULTS})  # fmt: skip


def parse_faults(raw: Any, members: int) -> FaultRules:
    """A fault rule set from its JSON; ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    unknown = set(raw) - FAULT_FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    drop_to = raw.get("drop_to", [])
    if not isinstance(drop_to, list) or not all(_is_int(m, 0, members - 1) for m in drop_to):
        raise ValueError(f"drop_to: member indices 0..{members - 1}")
    bounds = {"loss_pct": 100, "delay_ms": 60_000, "jitter_ms": 60_000}
    for name, top in bounds.items():
        if not _is_int(raw.get(name, 0), 0, top):
            raise ValueError(f"{name}: an integer 0..{top}")
    seed = raw.get("seed", 0)
    if not _is_int(seed, -(2**63), 2**63):
        raise ValueError("seed: an integer")
    return FaultRules({int(m) for m in drop_to}, raw.get("loss_pct", 0), raw.get("delay_ms", 0),
                      raw.get("jitter_ms", 0), random.Random(seed))  # fmt: skip


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


async def open_admin_listeners(listen: str) -> list[Any]:
    """`unix:PATH` (mode 0600) or `HOST:PORT` on loopback (checked by the config)."""
    if listen.startswith("unix:"):
        path = listen[5:]
        if os.path.exists(path):
            os.unlink(path)  # a stale socket of an earlier run
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
        return [trio.SocketListener(sock)]
    host, _, port = listen.rpartition(":")
    return list(await trio.open_tcp_listeners(int(port), host=host.strip("[]")))


async def serve_admin(node: Service, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    listeners = await open_admin_listeners(node.cfg.admin_listen)
    task_status.started(listeners)
    router = Router(build_admin_routes(node))
    await serve_listeners(router, listeners, MAX_ADMIN_BODY, lambda reason: None)
