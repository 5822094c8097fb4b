"""A small HTTP load of signed sample transactions (the demo and end-to-end tests)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ledger.crypto import KeyPair, get_suite
from ledger.types import Transaction, compute_tx_hash, sign_transaction
from node.config import load_genesis


@dataclass(frozen=True)
class Submitted:
    tx_hash: str
    status: int
    body: dict[str, object]


def chain_of(genesis_file: Path) -> bytes:
    """The chain hash a network's transactions must be signed for."""
    return load_genesis(genesis_file).genesis_hash


def sample_txs(
    suite_name: str,
    count: int,
    clients: int = 20,
    first_seq: int = 1,
    start: int = 0,
    payload_bytes: int = 120,
    *,
    chain: bytes,
) -> list[Transaction]:
    """Notes number start..start+count-1 of a stream spread over `clients` clients in turn,
    each client's sequence numbers increasing; ~250 bytes each. Any slice of the stream can
    be signed on its own (the benchmark signs slices in parallel processes)."""
    suite = get_suite(suite_name)
    keys: dict[int, KeyPair] = {}
    txs = []
    for k in range(start, start + count):
        client = k % clients
        key = keys.get(client) or suite.keypair_from_seed(f"demo-client-{client}".encode())
        keys[client] = key
        payload = f"reading {k}".encode().ljust(payload_bytes, b".")
        seq = first_seq + k // clients
        txs.append(
            sign_transaction(suite, key.secret_key, key.public_key, seq, "note", payload, chain)
        )
    return txs


def post_tx(
    api: str,
    tx: Transaction,
    timeout_s: float = 5,
    context: ssl.SSLContext | None = None,
    wait_s: int = 0,
) -> Submitted:
    """POST one transaction; with `wait_s`, the node answers once it is committed (or
    after wait_s with "pending"). A refusal comes back as its status and body."""
    request = urllib.request.Request(
        api + "/v1/tx" + (f"?wait_s={wait_s}" if wait_s else ""),
        data=tx.encoded(),
        method="POST",
        headers={"content-type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            return Submitted("", response.status, json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return Submitted("", exc.code, json.loads(exc.read() or b"{}"))


def submit_all(
    apis: list[str],
    txs: list[Transaction],
    suite_name: str,
    context: ssl.SSLContext | None = None,
) -> list[str]:
    """Round-robin over the APIs (https ones verified with `context`); a node that fails
    is skipped for the next one."""
    suite = get_suite(suite_name)
    hashes = []
    for k, tx in enumerate(txs):
        for attempt in range(len(apis)):
            api = apis[(k + attempt) % len(apis)]
            try:
                result = post_tx(api, tx, context=context)
            except OSError:
                continue
            if result.status in (200, 202):
                hashes.append(compute_tx_hash(suite, tx).hex())
                break
        else:
            raise RuntimeError(f"no node accepted tx {k}")
    return hashes
