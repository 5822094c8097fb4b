"""Membership changes on real daemons, under load: 4 -> 5 -> 4 members (the one removed
is not the one added). Every change is drafted, approved by a quorum of members each with
its own key, and submitted with `metroledger members`; the fifth organisation catches up
by state transfer; afterwards every member holds the same chain and state, nothing
submitted is lost, and receipts of epoch 0 and epoch 2 verify offline from the genesis
plus the changes' receipts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ledger.receipt import ReceiptInvalid, load_trust_anchor, members_at, verify_receipt_json
from node.ceremony import member_card, new_home_key
from node.load import sample_txs, submit_all
from node.testnet import Daemon, _write_config, free_port, running
from tests.e2e.test_network import chain, settled, wait_until

SUITE = "ed25519"


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "metroledger", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def change(tmp: Path, api: str, epoch: int, op: list[str], approvers: list[int]) -> None:
    """Draft, approve (each member with its own home), submit: the CLI, as operators do."""
    draft = tmp / f"change{epoch}.json"
    cli("members", "propose", "--epoch", str(epoch), *op, "--out", str(draft))
    approvals = []
    for i in approvers:
        path = tmp / f"approval{epoch}-{i}.json"
        cli("members", "approve", str(draft), "--home", str(tmp / f"node{i}"), "--out", str(path))
        approvals.append(str(path))
    answer = json.loads(cli("members", "submit", str(draft), *approvals,
                            "--home", str(tmp / f"node{approvers[0]}"), "--api", api))  # fmt: skip
    assert answer["status"] == "committed" and answer["reason"] is None, answer


class Load(threading.Thread):
    """Submits batches of notes until stopped; keeps every hash."""

    def __init__(self, apis: list[str], chain_hash: bytes):
        super().__init__(daemon=True)
        self.apis, self.chain_hash = apis, chain_hash
        self.hashes: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = 0
        while not self.stop.is_set():
            txs = sample_txs(SUITE, 40, clients=8, start=start, chain=self.chain_hash)
            self.hashes += submit_all(self.apis, txs, SUITE)
            start += 40
            self.stop.wait(0.2)


def receipt(node: Daemon, tx_hash: str) -> dict[str, Any]:
    found: dict[str, Any] = node.get(f"/v1/tx/{tx_hash}/receipt")
    return found


def test_four_to_five_to_four_members_under_load(tmp_path: Path) -> None:
    with running(tmp_path, 4, SUITE) as nodes:
        wait_until("linked", lambda: all(d.get("/v1/status")["peers_connected"] == 3
                                         for d in nodes))  # fmt: skip
        fifth = _fifth_member(tmp_path)
        load = Load([d.api for d in nodes[2:]], nodes[0].chain())  # not via the removed one
        load.start()
        try:
            wait_until("load committing", lambda: len(load.hashes) >= 80)
            early = load.hashes[0]
            card = tmp_path / "node4" / "card.json"
            maker = "ab" * 32  # a manufacturer admitted to the device registry with node4
            change(tmp_path, nodes[0].api, 0, ["--add", str(card), "--manufacturer-add", maker],
                   [0, 1, 2])  # fmt: skip
            (tmp_path / "node4" / "members.json").write_text(
                json.dumps(nodes[0].get("/v1/members"))
            )
            fifth.start()
            everyone = [*nodes, fifth]
            wait_until("epoch 1 with five members", lambda: all(
                d.get("/v1/status")["epoch"] == 1 for d in everyone
            ) and fifth.get("/v1/status")["is_member"], timeout_s=120)  # fmt: skip
            (scheduled,) = nodes[0].get("/v1/events?name=registry_lists_scheduled")["events"]
            assert "manufacturers" in str(scheduled)
            removed = nodes[1].get("/v1/members")["roster"][1]["public_key"]
            change(tmp_path, nodes[0].api, 1, ["--remove", removed], [0, 2, 3, 4])
            members = [nodes[0], nodes[2], nodes[3], fifth]
            wait_until("epoch 2 without member 1", lambda: all(
                d.get("/v1/status")["epoch"] == 2 for d in members), timeout_s=120)  # fmt: skip
            assert not nodes[1].get("/v1/status")["is_member"] or (
                nodes[1].get("/v1/status")["epoch"] < 2
            )
            mark = len(load.hashes)
            wait_until("load in epoch 2", lambda: len(load.hashes) >= mark + 80)
        finally:
            load.stop.set()
            load.join(60)
        try:
            _check_outcome(tmp_path, members, load.hashes, early)
        finally:
            fifth.kill()


def _fifth_member(tmp: Path) -> Daemon:
    """An organisation outside the genesis: its own key, card and node config."""
    home = tmp / "node4"
    new_home_key(home, SUITE)
    taken: set[int] = set()
    p2p, api = free_port(taken), free_port(taken)
    listen = f"/ip4/127.0.0.1/tcp/{p2p}"
    config = _write_config(tmp, home, 4, listen, "127.0.0.1", api, False)
    text = config.read_text().replace("[node]\n", '[node]\nroster = "members.json"\n', 1)
    config.write_text(text)
    card = member_card(home, "node4", "volunteer", listen, f"http://127.0.0.1:{api}")
    (home / "card.json").write_text(json.dumps(card))
    return Daemon(config, f"http://127.0.0.1:{api}")


def _check_outcome(tmp: Path, members: list[Daemon], hashes: list[str], early: str) -> None:
    wait_until("members settled", lambda: settled(members, hashes), timeout_s=120)
    chains = [chain(d) for d in members]
    assert all(c == chains[0] for c in chains), "members' chains differ"
    roots = {d.get("/v1/status")["state_root"] for d in members}
    assert len(roots) == 1, roots
    history = members[0].get("/v1/members")["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    changes = [receipt(members[0], h["tx_hash"]) for h in history]
    anchor = load_trust_anchor(tmp / "genesis.json").with_changes(changes)
    late = receipt(members[0], hashes[-1])
    assert late["height"] > history[1]["start_after"]  # committed in epoch 2
    for doc in (receipt(members[0], early), late):
        verify_receipt_json(doc, anchor)
    assert members_at(anchor, late["height"]).epoch.active == (0, 2, 3, 4)
    # following only the first change, the block would be epoch 1's (5 members, quorum 4):
    # its 3 votes (a quorum of epoch 2's 4) do not make a certificate there
    partial = load_trust_anchor(tmp / "genesis.json").with_changes(changes[:1])
    try:
        verify_receipt_json(late, partial)
        raise AssertionError("an epoch-2 receipt verified as epoch 1's")
    except ReceiptInvalid as exc:
        assert "needs 4" in str(exc)
