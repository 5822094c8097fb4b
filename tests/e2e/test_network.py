"""Four real daemons on loopback: py-libp2p, SQLite on disk, HTTP. Slow (about a minute)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.crypto import get_suite
from ledger.encoding import encode
from ledger.types import compute_tx_hash, join_encoded
from node.load import post_tx, sample_txs, submit_all
from node.testnet import Daemon, daemons, init_testnet, running, wait_ready
from tests.factories import client_tx

SUITE = "ed25519"


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")


def caught_up(nodes: list[Daemon], i: int) -> None:
    """Commit is answered by the node that was asked; another applies the block a moment
    later, so a read there waits for it to reach the highest height any node has."""
    top = max(d.get("/v1/status")["height"] for d in nodes)
    wait_until(f"node {i} at height {top}", lambda: nodes[i].get("/v1/status")["height"] >= top)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[Daemon]]:
    with running(tmp_path, 4, SUITE) as nodes:
        yield nodes


def statuses(nodes: list[Daemon]) -> list[dict[str, object]]:
    return [d.get("/v1/status") for d in nodes]


def settled(nodes: list[Daemon], hashes: list[str]) -> bool:
    """Same height everywhere, nothing pending, and every node has the sample committed."""
    st = statuses(nodes)
    if len({s["height"] for s in st}) != 1 or any(s["mempool_size"] for s in st):
        return False
    sample = hashes[:: max(1, len(hashes) // 20)] + hashes[-1:]
    return all(d.get(f"/v1/tx/{h}")["status"] == "committed" for d in nodes for h in sample)


def chain(node: Daemon) -> list[tuple[str, str]]:
    height = int(node.get("/v1/status")["height"])
    blocks = [node.get(f"/v1/blocks/{h}") for h in range(1, height + 1)]
    return [(b["encoded"], b["state_root"]) for b in blocks]


def test_commit_view_change_catch_up_and_full_restart(network: list[Daemon]) -> None:
    nodes = network
    apis = [d.api for d in nodes]
    hashes = submit_all(apis, sample_txs(SUITE, 1000, chain=nodes[0].chain()), SUITE)
    wait_until("1000 txs committed everywhere", lambda: settled(nodes, hashes))
    chains = [chain(d) for d in nodes]
    assert chains[0] and all(c == chains[0] for c in chains), "nodes hold different blocks"
    assert all(nodes[1].get(f"/v1/tx/{h}")["status"] == "committed" for h in hashes[::50])

    primary = int(nodes[0].get("/v1/status")["primary"])
    nodes[primary].kill()
    alive = [d for i, d in enumerate(nodes) if i != primary]
    more = submit_all(
        [d.api for d in alive], sample_txs(SUITE, 100, first_seq=51, chain=nodes[0].chain()), SUITE
    )
    wait_until("view change", lambda: all(int(s["view"]) > 0 for s in statuses(alive)))
    wait_until("new txs committed", lambda: settled(alive, more))

    nodes[primary].start()
    wait_ready([nodes[primary]])
    wait_until("restarted node caught up", lambda: settled(nodes, hashes + more), timeout_s=90)
    before = chain(nodes[0])
    assert chain(nodes[primary]) == before

    for d in nodes:
        d.kill()
    for d in nodes:
        d.start()
    wait_ready(nodes)
    for d in nodes:
        assert chain(d)[: len(before)] == before
    assert all(nodes[2].get(f"/v1/tx/{h}")["status"] == "committed" for h in (hashes + more)[::37])
    after_restart = submit_all(
        apis, sample_txs(SUITE, 40, first_seq=61, chain=nodes[0].chain()), SUITE
    )
    wait_until("commits after a full restart", lambda: settled(nodes, after_restart))
    more += after_restart

    wiped = nodes[(primary + 1) % 4]
    wiped.kill()
    shutil.rmtree(wiped.config.parent / "data")
    wiped.start()
    wait_ready([wiped])
    wait_until("wiped node rejoined from scratch", lambda: settled(nodes, hashes + more), 90)
    assert chain(wiped) == chain(nodes[primary])


def test_bad_http_input_is_rejected_counted_and_changes_nothing(network: list[Daemon]) -> None:
    node = network[0]
    first = submit_all([node.api], sample_txs(SUITE, 5, chain=node.chain()), SUITE)
    wait_until("first txs committed", lambda: settled(network, first))
    before = node.get("/v1/status")

    def post(
        body: bytes, content_type: str = "application/octet-stream", path: str = "/v1/tx"
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            node.api + path, data=body, method="POST", headers={"content-type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post(b"\xc1 not msgpack")[0] == 400
    assert post(b"x" * 200_000)[0] == 413
    assert post(b'{"tx": 5}', "application/json")[0] == 400
    forged = client_tx(1, 1, chain=node.chain())
    import dataclasses

    status, body = post(dataclasses.replace(forged, signature=bytes(64)).encoded())
    assert (status, body["error"]) == (400, "bad_signature")
    replay = sample_txs(SUITE, 1, chain=node.chain())[0]
    assert post_tx(node.api, replay).status == 409
    assert post(encode([1, b"short", 1, "note", b"", b""]))[0] == 400
    batch = encode([replay.to_wire(), dataclasses.replace(forged, signature=bytes(64)).to_wire()])
    status, body = post(batch, path="/v1/txs")
    assert status == 200
    assert [(r["status"], r.get("error")) for r in body["results"]] == [
        ("refused", "replay"),
        ("refused", "bad_signature"),
    ]
    assert post(b"\x93\x01", path="/v1/txs")[0] == 400
    after = node.get("/v1/status")
    assert (after["height"], after["state_root"]) == (before["height"], before["state_root"])
    metrics = urllib.request.urlopen(node.api + "/metrics", timeout=2).read().decode()
    for reason in ("invalid_tx", "replay"):
        assert f'metroledger_rejected_messages_total{{reason="{reason}"}}' in metrics


def test_a_backup_that_cannot_reach_the_primary_gets_its_requests_committed_without_suspecting(
    tmp_path: Path,
) -> None:
    """Node 2's frames to the primary (node 0) are all dropped. Half-way through its
    request timeout it shares its waiting requests with nodes 1 and 3, which relay them
    to the primary: they commit and node 2 never starts a view change alone (before the
    two-step timer it did, and stayed in that view change)."""
    init_testnet(tmp_path, 4, SUITE)
    nodes = daemons(tmp_path)
    for d in nodes:
        d.start()
    try:
        wait_ready(nodes)
        public = urllib.request.Request(
            nodes[2].api + "/v1/admin/faults", data=json.dumps({"drop_to": [0]}).encode(),
            method="POST",
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:  # not on the public API
            urllib.request.urlopen(public, timeout=5)
        assert refused.value.code == 404
        assert nodes[2].admin_post("/v1/admin/faults", {"drop_to": [9]})[0] == 400
        assert nodes[2].admin_post("/v1/admin/faults", {"drop_to": [0]}) == (200, {"ok": True})
        txs = sample_txs(SUITE, 20, chain=nodes[0].chain())
        batch = urllib.request.Request(
            nodes[2].api + "/v1/txs", data=join_encoded([tx.encoded() for tx in txs]),
            method="POST", headers={"content-type": "application/octet-stream"},
        )  # fmt: skip
        with urllib.request.urlopen(batch, timeout=10) as response:
            assert response.status == 202
        hashes = [compute_tx_hash(get_suite(SUITE), tx).hex() for tx in txs]
        wait_until("the cut-off backup's txs committed everywhere", lambda: settled(nodes, hashes))
        time.sleep(3)  # past the full request timeout (2 s): a lone suspicion would show now
        assert [s["view"] for s in statuses(nodes)] == [0, 0, 0, 0]
        log = (tmp_path / "node2" / "node.log").read_text()
        assert "view_change_started" not in log
    finally:
        for d in nodes:
            d.kill()
