"""Table tests of single steps: the normal case, batching, requests (PBFT 4.2)."""

import dataclasses

from consensus.events import (
    Broadcast,
    ClientRequest,
    Deliver,
    Persist,
    PreparedRecord,
    Tick,
    VoteRecord,
)
from consensus.messages import Commit, Prepare, PrePrepare
from consensus.reasons import Reason
from consensus.state import ChainState, RestoredState
from ledger.types import check_certificate, member_verifier
from tests.consensus.harness import feed, make_replica, persisted, receive, rejections, sent
from tests.factories import CHAIN, SUITE, client_tx, commit, member_keys, pre_prepare, prepare


def test_backup_persists_its_prepare_before_sending_it() -> None:
    r = make_replica(1)
    actions = receive(r, 0, pre_prepare(0, 1, (client_tx(),)))
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["Persist", "Broadcast"]
    assert actions[0] == Persist(VoteRecord("prepare", 0, 1, actions and sent(actions)[0].digest))  # type: ignore[union-attr]
    assert isinstance(sent(actions)[0], Prepare)


def test_prepared_then_committed_then_delivered_with_a_valid_certificate() -> None:
    r = make_replica(1)
    pp = pre_prepare(0, 1, (client_tx(),))
    receive(r, 0, pp)
    actions = receive(r, 2, prepare(pp, 2))
    records = persisted(actions)
    assert {type(x) for x in records} == {VoteRecord, PreparedRecord}
    first_send = next(i for i, a in enumerate(actions) if isinstance(a, Broadcast))
    assert all(isinstance(a, Persist) for a in actions[:first_send])
    assert isinstance(sent(actions)[0], Commit)
    receive(r, 0, commit(pp, 0))
    actions = receive(r, 2, commit(pp, 2))
    delivered = [a for a in actions if isinstance(a, Deliver)]
    assert len(delivered) == 1 and delivered[0].block.txs == pp.txs
    members = tuple(k.public_key for k in member_keys(4))
    cert_check = check_certificate(
        SUITE,
        range(4),
        member_verifier(SUITE, members, CHAIN),
        delivered[0].certificate,
        pp.proposal,
    )
    assert cert_check is None
    assert r.delivered_height == 1


def test_blocks_are_delivered_in_order_even_if_committed_out_of_order() -> None:
    r = make_replica(1)
    pps = [pre_prepare(0, seq, (client_tx(seq, 1),)) for seq in (1, 2)]
    for pp in reversed(pps):
        receive(r, 0, pp)
        receive(r, 2, prepare(pp, 2))
        receive(r, 0, commit(pp, 0))
        actions = receive(r, 2, commit(pp, 2))
        if pp.seq == 2:
            assert not [a for a in actions if isinstance(a, Deliver)]
    assert r.delivered_height == 2


def test_primary_proposes_at_once_when_idle_then_batches() -> None:
    r = make_replica(0, batch_max_txs=3, batch_timeout_ms=50)
    first = feed(r, ClientRequest(client_tx(0, 1)))
    assert [type(m) for m in sent(first)] == [PrePrepare]
    waiting = feed(r, ClientRequest(client_tx(1, 1)), ClientRequest(client_tx(2, 1)))
    assert sent(waiting) == []  # one block in flight, batch not full, not yet due
    full = feed(r, ClientRequest(client_tx(3, 1)))
    (pp,) = sent(full)
    assert isinstance(pp, PrePrepare) and len(pp.txs) == 3
    feed(r, ClientRequest(client_tx(4, 1)))
    assert sent(feed(r, Tick(49))) == []
    (late,) = sent(feed(r, Tick(50)))
    assert isinstance(late, PrePrepare) and len(late.txs) == 1


def test_primary_votes_pre_prepare_before_broadcasting_it() -> None:
    r = make_replica(0)
    actions = feed(r, ClientRequest(client_tx()))
    assert isinstance(actions[0], Persist) and actions[0].record.kind == "pre-prepare"  # type: ignore[union-attr]
    assert isinstance(actions[-1], Broadcast)


def test_client_request_replay_and_duplicate_are_rejected() -> None:
    chain = ChainState(5, b"\x01" * 32, {client_tx(0, 1).sender: (3, 0b111)})
    r = make_replica(1, RestoredState(chain))
    assert rejections(feed(r, ClientRequest(client_tx(0, 2)))) == [Reason.REPLAY]
    assert rejections(feed(r, ClientRequest(client_tx(0, 4)))) == []
    assert rejections(feed(r, ClientRequest(client_tx(0, 4)))) == [Reason.DUPLICATE_REQUEST]


def test_replay_window_accepts_out_of_order_commits() -> None:
    from consensus.state import REPLAY_WINDOW

    high = 2 * REPLAY_WINDOW  # only this one committed
    chain = ChainState(5, b"\x01" * 32, {client_tx(0, 1).sender: (high, 0b1)})
    r = make_replica(1, RestoredState(chain))
    assert rejections(feed(r, ClientRequest(client_tx(0, high - 1)))) == []
    assert rejections(feed(r, ClientRequest(client_tx(0, high - REPLAY_WINDOW + 1)))) == []
    assert rejections(feed(r, ClientRequest(client_tx(0, high)))) == [Reason.REPLAY]
    assert rejections(feed(r, ClientRequest(client_tx(0, high - REPLAY_WINDOW)))) == [Reason.REPLAY]


def test_mempool_limit_gives_back_pressure() -> None:
    r = make_replica(1, max_pending_requests=2)
    feed(r, ClientRequest(client_tx(0, 1)), ClientRequest(client_tx(1, 1)))
    assert rejections(feed(r, ClientRequest(client_tx(2, 1)))) == [Reason.MEMPOOL_FULL]


def test_replayed_tx_inside_a_committed_block_is_marked_not_applied() -> None:
    r = make_replica(1)
    tx = client_tx(0, 1)
    for seq in (1, 2):
        pp = pre_prepare(0, seq, (tx,))
        receive(r, 0, pp)
        receive(r, 2, prepare(pp, 2))
        receive(r, 0, commit(pp, 0))
        (deliver,) = [a for a in receive(r, 2, commit(pp, 2)) if isinstance(a, Deliver)]
        assert deliver.replays == (() if seq == 1 else (0,))


def test_pre_prepare_with_a_forged_client_signature_is_a_bad_proposal() -> None:
    r = make_replica(1)
    tx = dataclasses.replace(client_tx(), signature=bytes(64))
    assert Reason.BAD_PROPOSAL in rejections(receive(r, 0, pre_prepare(0, 1, (tx,))))
    assert r.in_view_change  # a primary proposing garbage is replaced
