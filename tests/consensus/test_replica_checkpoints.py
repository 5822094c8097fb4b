"""Checkpoints, garbage collection and state transfer (PBFT 4.3, 5.3)."""

import dataclasses

from consensus.events import Deliver, ServeBlocks, StableRecord
from consensus.messages import BlockRequest, BlockResponse
from consensus.reasons import Reason
from consensus.replica import Replica
from ledger.types import Block, CommitCertificate
from tests.consensus.harness import make_replica, persisted, receive, rejections, sent
from tests.factories import checkpoint, client_tx, commit, pre_prepare, prepare, signed, signers


def commit_blocks(r: Replica, count: int) -> list[Deliver]:
    out = []
    for seq in range(1, count + 1):
        pp = pre_prepare(0, seq, (client_tx(seq, 1),))
        receive(r, 0, pp)
        receive(r, 2, prepare(pp, 2))
        receive(r, 0, commit(pp, 0))
        out += [a for a in receive(r, 2, commit(pp, 2)) if isinstance(a, Deliver)]
    return out


def test_checkpoint_becomes_stable_with_2f_plus_1_and_log_is_collected() -> None:
    r = make_replica(1)  # checkpoint_interval = 4
    delivered = commit_blocks(r, 4)
    block_hash = r.last_block_hash
    assert r.stable_seq == 0 and 4 in r.checkpoints
    receive(r, 0, checkpoint(4, block_hash, 0))
    actions = receive(r, 2, checkpoint(4, block_hash, 2))
    assert r.stable_seq == 4
    assert [rec.seq for rec in persisted(actions) if isinstance(rec, StableRecord)] == [4]
    assert not r.slots and not r.prepared_certs and all(k[2] > 4 for k in r.votes)
    assert len(delivered) == 4


def test_checkpoint_with_a_different_hash_does_not_stabilise() -> None:
    r = make_replica(1)
    commit_blocks(r, 4)
    receive(r, 0, checkpoint(4, b"\x09" * 32, 0))
    receive(r, 2, checkpoint(4, b"\x09" * 32, 2))
    assert r.stable_seq == 0


def served_blocks(count: int) -> list[tuple[Block, CommitCertificate]]:
    source = make_replica(3)
    return [(d.block, d.certificate) for d in commit_blocks(source, count)]


def test_lagging_replica_fetches_blocks_and_verifies_them() -> None:
    blocks = served_blocks(4)
    r = make_replica(1)
    receive(r, 0, checkpoint(4, b"\x01" * 32, 0))
    actions = receive(r, 2, checkpoint(4, b"\x01" * 32, 2))  # f+1 peers are ahead
    (request,) = sent(actions)
    assert isinstance(request, BlockRequest) and request.from_height == 1
    response = signed(signers()[2], BlockResponse(tuple(blocks), 2))
    delivered = [a for a in receive(r, 2, response) if isinstance(a, Deliver)]
    assert [d.block.header.height for d in delivered] == [1, 2, 3, 4]
    assert r.delivered_height == 4


def test_tampered_fetched_block_is_rejected() -> None:
    blocks = served_blocks(2)
    block, cert = blocks[1]
    tampered = dataclasses.replace(block, txs=(client_tx(99, 1),))
    response = signed(signers()[2], BlockResponse((blocks[0], (tampered, cert)), 2))
    r = make_replica(1)
    actions = receive(r, 2, response)
    assert rejections(actions) == [Reason.BAD_BLOCK]
    assert r.delivered_height == 1


def test_block_with_a_forged_certificate_is_rejected() -> None:
    ((block, cert),) = served_blocks(1)
    forged = dataclasses.replace(cert, votes=tuple((m, bytes(64)) for m, _ in cert.votes))
    r = make_replica(1)
    response = signed(signers()[2], BlockResponse(((block, forged),), 2))
    assert rejections(receive(r, 2, response)) == [Reason.BAD_BLOCK]
    assert r.delivered_height == 0


def test_block_request_is_served_from_storage() -> None:
    r = make_replica(1)
    commit_blocks(r, 3)
    actions = receive(r, 2, signed(signers()[2], BlockRequest(2, 9, 2)))
    assert [a for a in actions if isinstance(a, ServeBlocks)] == [ServeBlocks(2, 2, 3)]
    bad = receive(r, 2, signed(signers()[2], BlockRequest(5, 2, 2)))
    assert rejections(bad) == [Reason.BAD_REQUEST]
