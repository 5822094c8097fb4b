"""Transaction admission over HTTP: one (`POST /v1/tx`) or a batch (`POST /v1/txs`).

Each transaction goes through the same checks in the same order: signature (cached),
already committed (409), registry precheck against committed state (400/422), then the
consensus core's mempool (replay 409, full 429). A batch answers per transaction.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from analysis.devices import DeviceRegistry
from analysis.verification import VerificationContract
from consensus.reasons import Reason
from ledger.encoding import decode
from ledger.errors import InvalidEncoding
from ledger.readings import PAYLOAD_TYPES, InvalidReading, parse_payload
from ledger.tx import chain_tag
from ledger.types import Transaction, compute_tx_hash, decode_tx_list
from ledger.verification import PAYLOADS as VERIFICATION_PAYLOADS
from ledger.verification import InvalidRecord, VerificationRecord, parse_verification
from node import schemas
from node.derived import TxStatus
from node.routes import Route
from node.service import Service
from node.web import Request, Response, error, json_response

MAX_BODY_BYTES = 128 * 1024
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_BATCH_TXS = 5_000
STATUS_OF_REASON = {
    Reason.REPLAY.value: 409,
    Reason.DUPLICATE_REQUEST.value: 409,
    Reason.MEMPOOL_FULL.value: 429,
}


def _count(node: Service, reason: str) -> None:
    node.metrics.rejected.labels(reason).inc()


def refusal(
    node: Service, tx: Transaction, tx_hash: bytes, height: int | None
) -> tuple[int, str, str] | None:
    """(HTTP status, reason, detail) if the tx is refused before the mempool, else None.
    `height` is the block holding the tx already, if any."""
    ours = chain_tag(node.genesis.genesis_hash)
    if tx.chain != ours:
        _count(node, Reason.WRONG_CHAIN.value)
        return (
            400,
            Reason.WRONG_CHAIN.value,
            (
                f"signed for chain tag {tx.chain.hex()}; this is {node.genesis.chain_id} "
                f"(chain tag {ours.hex()}): sign for this chain's hash (GET /v1/status)"
            ),
        )
    if not node.is_valid_signature(tx):
        _count(node, Reason.INVALID_TX.value)
        return 400, "bad_signature", "transaction signature does not verify"
    if height is not None:  # a resubmission of a committed tx: say so, check nothing else
        _count(node, Reason.REPLAY.value)
        return 409, Reason.REPLAY.value, f"tx {tx_hash.hex()} is in block {height}"
    refused = precheck(node, tx)
    if refused is not None:
        _count(node, refused[1])
        return refused[0], refused[1], f"tx {tx_hash.hex()}"
    return None


def precheck(node: Service, tx: Transaction) -> tuple[int, str] | None:
    """Refuse early what execution would refuse: malformed payloads (400), readings from
    devices that are unknown, inactive, revoked or replaying (422), against the state of
    the last published snapshot."""
    if tx.kind in VERIFICATION_PAYLOADS:
        return _precheck_verification(node, tx)
    if tx.kind not in PAYLOAD_TYPES:
        return None
    try:
        parse_payload(tx.kind, tx.payload)
    except InvalidReading as exc:
        return 400, exc.reason
    registry = node.registry.named("devices")
    if not isinstance(registry, DeviceRegistry):
        return None
    snapshot = node.snapshot
    reason = registry.precheck(snapshot.view_of("devices"), tx, snapshot.height)
    return None if reason is None else (422, reason)


def _precheck_verification(node: Service, tx: Transaction) -> tuple[int, str] | None:
    """A malformed verification payload, or a non-public record sent whole, is refused
    before it can reach a block: on the ledger, even refused, its content would be public
    for ever (§4.3.3); such a record goes as its digest (`meter.record_digest`)."""
    try:
        payload = parse_verification(tx.kind, tx.payload)
    except InvalidRecord as exc:
        return 400, f"invalid:{exc.rule}:{exc.field}"
    contract = node.registry.named("verification")
    whole = isinstance(payload, VerificationRecord) and isinstance(contract, VerificationContract)
    if whole and payload.record_kind not in contract.rules.public_kinds:  # type: ignore[union-attr]
        return 400, "invalid:not_public:kind"
    return None


def outcome(reasons: list[str]) -> tuple[int, str]:
    """HTTP status and reason of the mempool's answer; resubmitting a pending tx is fine."""
    if not reasons or reasons == [Reason.DUPLICATE_REQUEST.value]:
        return 202, ""
    return STATUS_OF_REASON.get(reasons[0], 400), reasons[0]


def full(node: Service) -> Response | None:
    """Back-pressure before any work: a full mempool refuses at once, so an overloaded
    node spends its CPU on consensus rather than on verifying what it cannot hold.

    The primary's clients get half of its mempool; the other half is kept for the
    requests backups admit and forward, and each backup's clients get an equal share of
    that half. Were a forward refused, the primary would never see that request, its
    sender would wait for the censorship timeout, and an overload would end in a view
    change. A backup's own queue does not show the primary's backlog (it holds its own
    clients' requests and the primary's clients'), so a backup counts only the requests
    its clients gave it that have not committed yet."""
    snapshot = node.snapshot
    half = snapshot.max_pending // 2
    if snapshot.primary == node.me:
        waiting, limit = snapshot.mempool_size, half
    else:
        waiting, limit = node.commits.pending_count(), half // max(1, len(snapshot.members) - 1)
    if waiting < limit:
        return None
    _count(node, Reason.MEMPOOL_FULL.value)
    return busy_answer()


RETRY_AFTER_S = 1  # about what the testnet's mempool holds at full speed


def busy_answer() -> Response:
    """429 with Retry-After, so a client backs off rather than spinning."""
    return error(429, Reason.MEMPOOL_FULL.value, f"retry in {RETRY_AFTER_S} s",
                 (("retry-after", str(RETRY_AFTER_S)),))  # fmt: skip


def parse_wait(request: Request, max_wait_s: int) -> float | None:
    """`?wait_s=N`: seconds to wait for the commit, 0 <= N <= max_wait_s; None if not."""
    try:
        wait_s = float(request.query.get("wait_s", "0"))
    except ValueError:
        return None
    return wait_s if 0 <= wait_s <= max_wait_s else None  # NaN fails both


async def wait_for_commit(node: Service, tx_hash: bytes, wait_s: float) -> TxStatus | None:
    """The tx's place in a stored block, waiting up to wait_s for it (no await between
    the look and the waiter's registration, so a commit in between is not missed)."""
    found = node.reads.tx_status(tx_hash)
    if found is None and wait_s:
        await node.commits.wait(tx_hash, wait_s)
        found = node.reads.tx_status(tx_hash)
    return found


async def wait_for_batch(
    node: Service, hashes: list[bytes], results: list[dict[str, Any]], deadline: float
) -> None:
    """Each pending result becomes its commit, waiting until `deadline` at most."""
    for tx_hash, result in zip(hashes, results, strict=True):
        if result["status"] != "pending":
            continue
        remaining_s = max(0.0, deadline - trio.current_time())
        found = await wait_for_commit(node, tx_hash, remaining_s)
        if found is not None:
            result.update(status_json(tx_hash, found))


def status_json(tx_hash: bytes, found: TxStatus) -> dict[str, Any]:
    height, index, reason = found
    return {"tx_hash": tx_hash.hex(), "status": "rejected" if reason else "committed",
            "height": height, "index": index, "reason": reason or None}  # fmt: skip


def submit_routes(node: Service) -> list[Route]:
    max_wait_s = node.cfg.api_max_wait_s

    async def post_tx(request: Request) -> Response:
        wait_s = parse_wait(request, max_wait_s)
        if wait_s is None:
            return error(400, "bad_query", f"0 <= wait_s <= {max_wait_s}")
        if (busy := full(node)) is not None:
            return busy
        body = request.body
        if len(body) > MAX_BODY_BYTES:
            return error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        content_type = request.header(b"content-type") or b""
        if content_type.startswith(b"application/json"):
            try:
                body = bytes.fromhex(json.loads(body)["tx"])
            except (ValueError, KeyError, TypeError):
                return error(400, Reason.MALFORMED.value, 'expected {"tx": "<hex of encoded tx>"}')
        try:
            tx = Transaction.from_wire(decode(body))
        except InvalidEncoding as exc:
            return error(400, Reason.MALFORMED.value, str(exc))
        tx_hash = compute_tx_hash(node.suite, tx)
        node.tracer.mark("http_received", (tx_hash,))
        refused = refusal(node, tx, tx_hash, node.reads.committed([tx_hash]).get(tx_hash))
        if refused is not None:
            return error(*refused)
        status, reason = outcome((await node.submit([tx]))[0])
        if status == 429:
            return busy_answer()
        if status != 202:
            return error(status, reason, f"tx {tx_hash.hex()}")
        found = await wait_for_commit(node, tx_hash, wait_s) if wait_s else None
        if found is None:
            return json_response({"tx_hash": tx_hash.hex(), "status": "pending"}, 202)
        node.tracer.mark("answered", (tx_hash,))
        return json_response(status_json(tx_hash, found))

    async def post_txs(request: Request) -> Response:
        """A batch: the canonical encoding of a list of transactions. 202 if some are
        pending, else 200; either way `results` says, per transaction, `pending` or the
        refusal, and with `?wait_s=N` (a data concentrator's one wait for its batch) the
        commit of each that committed within N s."""
        wait_s = parse_wait(request, max_wait_s)
        if wait_s is None:
            return error(400, "bad_query", f"0 <= wait_s <= {max_wait_s}")
        if (busy := full(node)) is not None:
            return busy
        try:
            txs = decode_tx_list(request.body, MAX_BATCH_TXS)
        except InvalidEncoding as exc:
            return error(400, Reason.MALFORMED.value, str(exc))
        hashes = [compute_tx_hash(node.suite, tx) for tx in txs]
        results: list[dict[str, Any]] = [{"tx_hash": h.hex(), "status": "pending"} for h in hashes]
        admit = []
        committed = node.reads.committed(hashes)  # one query for the batch
        for i, (tx, tx_hash) in enumerate(zip(txs, hashes, strict=True)):
            refused = refusal(node, tx, tx_hash, committed.get(tx_hash))
            if refused is None:
                admit.append(i)
            else:
                results[i].update(status="refused", http_status=refused[0], error=refused[1])
        answers = await node.submit([txs[i] for i in admit])
        for i, reasons in zip(admit, answers, strict=True):
            status, reason = outcome(reasons)
            if status != 202:
                results[i].update(status="refused", http_status=status, error=reason)
        if wait_s:
            await wait_for_batch(node, hashes, results, trio.current_time() + wait_s)
        some_pending = any(r["status"] == "pending" for r in results)
        return json_response({"results": results}, 202 if some_pending else 200)

    refusals = {
        400: ("malformed, or a bad signature or reading", None),
        413: ("body too large", None),
        429: ("mempool full: retry later", None),
    }
    raw = {"type": "string", "format": "binary"}
    return [
        Route("POST", "/v1/tx", post_tx,
              'Submit a signed transaction (canonical msgpack bytes, or JSON {"tx": hex}); '
              "?wait_s=N answers once it is committed (200), or pending after N s (202)",
              {202: ("accepted, pending", schemas.TX_PENDING), 200: ("committed or refused "
               "at execution (with ?wait_s)", schemas.TX_DONE), **refusals,
               409: ("a replay, or already committed", None),
               422: ("refused by the device registry (unknown, inactive or revoked device; "
                     "old sequence)", None)},
              params=(schemas.wait_param(max_wait_s),),
              body={"application/octet-stream": raw,
                    "application/json": schemas.obj({"tx": schemas.HEX_STR})}),
        Route("POST", "/v1/txs", post_txs,
              "Submit a batch: the canonical encoding of a list of signed transactions "
              f"(at most {MAX_BATCH_TXS:,}, 8 MiB); per-transaction results; ?wait_s=N "
              "waits up to N s for their commits",
              {202: ("some pending", schemas.BATCH), 200: ("none pending", schemas.BATCH),
               **refusals}, params=(schemas.wait_param(max_wait_s),),
              body={"application/octet-stream": raw}),
    ]  # fmt: skip
