"""Where a daemon sends its clients' requests: to the primary at once; to every member
once they wait too long or the node suspects the primary (as PBFT clients multicast).
Real daemons' Node objects on a real testnet folder, with a transport that records."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trio.testing

from consensus import viewchange
from consensus.events import ClientRequest, Rejected, ShareRequests, ViewChangeStarted
from ledger.types import Transaction, decode_tx_list, join_encoded
from node.config import load_node_config
from node.daemon import Node, build_node
from node.submit import full
from node.testnet import init_testnet
from node.transport import CHANNEL_TX, FaultRules
from tests.factories import client_tx


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int, bytes]] = []
        self.faults = FaultRules()
        self.unwritten: list[trio.Event] = []
        self.writes_at_once, self.links_up = True, True

    def send(
        self, member: int, channel: int, payload: bytes, written: trio.Event | None = None
    ) -> None:
        self.sent.append((member, channel, payload))
        if written is not None:
            self.unwritten.append(written)
        if self.writes_at_once:
            self.flush()

    def flush(self) -> None:
        for written in self.unwritten:
            written.set()
        self.unwritten = []

    def connected(self) -> int:
        return 3 if self.links_up else 0

    def is_up(self, member: int) -> bool:
        return self.links_up

    def add_members(self, members: list[tuple[str, str]]) -> None:
        self.added = members


@pytest.fixture
def nodes(tmp_path: Path) -> list[Node]:
    configs = init_testnet(tmp_path, 4, "ed25519")
    return [build_node(load_node_config(path), Recorder()) for path in configs]


def sent(node: Node) -> list[tuple[int, int, bytes]]:
    assert isinstance(node.transport, Recorder)
    return node.transport.sent


def admit(node: Node, count: int, now_ms: int = 0) -> None:
    node.core.replica.now_ms = now_ms
    for i in range(count):
        actions = node.core.replica.handle(
            ClientRequest(client_tx(client=i, seq=1, chain=node.genesis.genesis_hash))
        )
        assert not [a for a in actions if isinstance(a, Rejected)]
    node.core.publish()


def submit_through_the_core(node: Node, txs: list[Transaction]) -> list[list[str]]:
    async def submit() -> list[list[str]]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.core.run)
            answers = await node.submit(txs)
            nursery.cancel_scope.cancel()
        return answers

    return trio.run(submit)


def test_a_backup_forwards_what_its_clients_give_it_to_the_primary_only(
    nodes: list[Node],
) -> None:
    backup = nodes[2]
    txs = [client_tx(client=i, seq=1, chain=nodes[0].genesis.genesis_hash) for i in range(3)]
    assert submit_through_the_core(backup, txs) == [[], [], []]
    assert [(member, channel) for member, channel, _ in sent(backup)] == [(0, CHANNEL_TX)]
    assert decode_tx_list(sent(backup)[0][2], 10) == tuple(txs)
    assert backup.commits.pending_count() == 3  # counted against its clients until they commit


def test_the_primary_forwards_its_clients_requests_to_every_backup(nodes: list[Node]) -> None:
    primary = nodes[0]
    txs = [client_tx(client=i, seq=1, chain=nodes[0].genesis.genesis_hash) for i in range(2)]
    assert submit_through_the_core(primary, txs) == [[], []]
    forwards = [(member, data) for member, channel, data in sent(primary) if channel == CHANNEL_TX]
    assert sorted(member for member, _ in forwards) == [1, 2, 3]
    assert all(decode_tx_list(data, 10) == tuple(txs) for _, data in forwards)


def test_requests_waiting_too_long_go_to_every_member_once(nodes: list[Node]) -> None:
    backup = nodes[1]
    admit(backup, 4, now_ms=0)
    backup.core.replica.now_ms = 4_000
    backup.core.reforward(older_than_ms=5_000, everyone=True)
    assert sent(backup) == []  # none waited long enough
    backup.core.replica.now_ms = 6_000
    backup.core.reforward(older_than_ms=5_000, everyone=True)
    assert sorted(member for member, _, _ in sent(backup)) == [0, 2, 3]
    assert all(len(decode_tx_list(data, 10)) == 4 for _, _, data in sent(backup))
    backup.core.reforward(older_than_ms=5_000, everyone=True)
    assert len(sent(backup)) == 3  # each request once


def test_a_node_that_suspects_the_primary_tells_everyone_even_as_the_next_primary(
    nodes: list[Node],
) -> None:
    suspicious = nodes[1]  # a backup of view 0, and the primary of view 1
    admit(suspicious, 2)
    viewchange.start_view_change(suspicious.core.replica, 1, "requests pending without progress")
    # the next event's actions include what start_view_change emitted
    actions = suspicious.core.replica.handle(
        ClientRequest(client_tx(client=99, seq=1, chain=suspicious.genesis.genesis_hash))
    )
    assert suspicious.core.replica.primary == suspicious.me
    trio.run(suspicious.core._perform, [a for a in actions if isinstance(a, ViewChangeStarted)])
    assert sorted(member for member, _, _ in sent(suspicious)) == [0, 2, 3]
    assert all(len(decode_tx_list(data, 10)) == 3 for _, _, data in sent(suspicious))
    nodes[3].core.reforward(older_than_ms=0)  # after a view change: to the primary alone
    assert sent(nodes[3]) == []  # nothing waits there


def test_each_backups_clients_get_a_share_of_the_primarys_reserved_half(
    nodes: list[Node],
) -> None:
    primary, backup = nodes[0], nodes[1]
    half = primary.snapshot.max_pending // 2
    share = half // 3
    admit(backup, half)  # forwarded by the primary: they do not count against its clients
    for i in range(share - 1):
        backup.commits.admitted_at[i.to_bytes(32, "big")] = 0.0
    assert full(backup) is None
    admit(primary, share)
    assert full(primary) is None  # the primary's clients may fill half of its mempool
    backup.commits.admitted_at[b"last"] = 0.0
    refused = full(backup)
    assert refused is not None and refused.status == 429
    assert dict(refused.headers)["retry-after"] == "1"
    backup.commits.forget_older_than(1.0)  # admissions that will never commit
    assert not backup.commits.pending_count() and full(backup) is None


def test_a_stalled_node_shares_everything_waiting_with_every_member(nodes: list[Node]) -> None:
    backup = nodes[2]
    admit(backup, 3)
    trio.run(backup.core._perform, [ShareRequests()])
    assert sorted(member for member, _, _ in sent(backup)) == [0, 1, 3]
    assert all(len(decode_tx_list(data, 10)) == 3 for _, _, data in sent(backup))


def test_a_backup_relays_another_backups_share_to_the_primary(nodes: list[Node]) -> None:
    relay = nodes[3]
    txs = [client_tx(client=i, seq=1, chain=nodes[0].genesis.genesis_hash) for i in range(2)]
    shared = join_encoded([tx.encoded() for tx in txs])
    relay.intake.admit_forwarded(2, shared)  # from a backup: a share, the primary may lack it
    assert sent(relay) == [(0, CHANNEL_TX, shared)]
    relay.intake.admit_forwarded(0, shared)  # from the primary: it holds them already
    assert len(sent(relay)) == 1
    nodes[0].intake.admit_forwarded(2, shared)  # the primary relays nothing
    assert sent(nodes[0]) == []


def test_a_relay_drops_what_does_not_verify(nodes: list[Node]) -> None:
    good = client_tx(client=1, seq=1, chain=nodes[0].genesis.genesis_hash)
    forged = dataclasses.replace(good, seq=good.seq + 1)
    nodes[3].intake.admit_forwarded(2, join_encoded([good.encoded(), forged.encoded()]))
    ((member, channel, relayed),) = sent(nodes[3])
    assert (member, channel) == (0, CHANNEL_TX)
    assert decode_tx_list(relayed, 10) == (good,)


def test_a_client_is_answered_only_once_its_requests_reached_another_members_socket(
    nodes: list[Node],
) -> None:
    backup = nodes[1]
    recorder = backup.transport
    assert isinstance(recorder, Recorder)
    recorder.writes_at_once = False
    answered: list[list[list[str]]] = []

    async def submit_then_write() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(backup.core.run)

            async def submit() -> None:
                answered.append(
                    await backup.submit(
                        [client_tx(client=1, seq=1, chain=backup.core.replica.cfg.genesis_hash)]
                    )
                )

            nursery.start_soon(submit)
            await trio.testing.wait_all_tasks_blocked()
            assert answered == [] and len(sent(backup)) == 1  # forwarded, not yet written
            recorder.flush()
            await trio.testing.wait_all_tasks_blocked()
            assert answered == [[[]]]
            recorder.links_up = False  # no link up: answer at once, the request waits here
            answered.append(
                await backup.submit(
                    [client_tx(client=2, seq=1, chain=backup.core.replica.cfg.genesis_hash)]
                )
            )
            nursery.cancel_scope.cancel()

    trio.run(submit_then_write)
    assert answered == [[[]], [[]]]
