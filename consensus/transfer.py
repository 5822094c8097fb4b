"""Checkpoints, garbage collection and state transfer (PBFT 4.3 and 5.3),
as functions on a replica.

Every K blocks a replica signs the hash of the block at that height (the hash
chains the whole history); 2f+1 matching checkpoints that we reached too make it
stable and the log below it is dropped. A replica that is behind fetches
committed blocks from one peer at a time and checks each one's certificate.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from consensus.errors import InvariantBroken
from consensus.events import Broadcast, Persist, Send, ServeBlocks, StableRecord
from consensus.messages import BlockRequest, BlockResponse, Checkpoint, encode_message
from consensus.reasons import Reason
from ledger.types import Block, CommitCertificate, check_block_body, check_certificate

if TYPE_CHECKING:
    from consensus.replica import Replica

# ---- checkpoints and garbage collection (PBFT 4.3) ---------------------------------------


def send_checkpoint(r: Replica, seq: int, block_hash: bytes) -> None:
    checkpoint = r._sign(Checkpoint(seq, block_hash, r.me))
    r.own_checkpoints[seq] = block_hash
    r.checkpoints.setdefault(seq, {})[r.me] = checkpoint
    r._emit(Broadcast(encode_message(checkpoint)))
    try_stable(r, seq)


def on_checkpoint(r: Replica, peer: int, c: Checkpoint) -> None:
    if c.seq <= r.stable_seq:
        r._reject(Reason.STALE, peer, "checkpoint")
        return
    if c.seq % r.cfg.checkpoint_interval:
        r._reject(Reason.UNEXPECTED, peer, f"checkpoint at seq {c.seq}")
        return
    r.peer_checkpoint[c.sender] = max(c.seq, r.peer_checkpoint.get(c.sender, 0))
    if c.seq <= r.stable_seq + 4 * r.cfg.watermark_window:
        by_sender = r.checkpoints.setdefault(c.seq, {})
        if not r._store_once(by_sender, c, peer, "checkpoint"):
            return
        try_stable(r, c.seq)
    maybe_fetch(r)


def try_stable(r: Replica, seq: int) -> None:
    """A checkpoint with 2f+1 matching messages that we also reached becomes stable."""
    if seq <= r.stable_seq or seq > r.delivered_height:
        return
    ours = r.own_checkpoints.get(seq)
    matching = [c for _, c in sorted(r.checkpoints.get(seq, {}).items())
                if c.block_hash == ours]  # fmt: skip
    if ours is None or len(matching) < r.cfg.quorum:
        others = [c for c in r.checkpoints.get(seq, {}).values() if c.block_hash != ours]
        if ours is not None and len({c.sender for c in others}) >= r.cfg.quorum:
            raise InvariantBroken(f"our block hash at {seq} differs from a quorum's")
        return
    make_stable(r, seq, ours, tuple(matching[: r.cfg.quorum]))
    r._maybe_propose()  # the window moved


def make_stable(r: Replica, seq: int, block_hash: bytes, proof: tuple[Checkpoint, ...]) -> None:
    r.stable_seq, r.stable_hash, r.stable_proof = seq, block_hash, proof
    r._emit(Persist(StableRecord(seq, block_hash, tuple(encode_message(c) for c in proof))))
    collect_garbage(r)


def collect_garbage(r: Replica) -> None:
    s = r.stable_seq
    _drop_up_to(r.slots, s)
    _drop_up_to(r.prepared_certs, s)
    _drop_up_to(r.committed, s)
    _drop_up_to(r.delivered_digests, s)
    _drop_up_to(r.checkpoints, s)
    for seq in [k for k in r.own_checkpoints if k < s]:
        del r.own_checkpoints[seq]
    for key in [k for k in r.votes if k[2] <= s]:
        del r.votes[key]
    low = s - r.cfg.watermark_window
    for height in [h for h in r.executed_roots if h < low]:
        del r.executed_roots[height]
    r.next_seq = max(r.next_seq, s + 1)


# ---- state transfer -------------------------------------------------------------------


def lag_target(r: Replica) -> int:
    """Highest checkpoint that f+1 peers (so at least one honest) claim to have reached."""
    claims = sorted(r.peer_checkpoint.values(), reverse=True)
    known = claims[r.cfg.f] if len(claims) > r.cfg.f else 0
    return max(known, r.fetch_target)


def maybe_fetch(r: Replica, poll: bool = False) -> None:
    target = lag_target(r)
    if target <= r.delivered_height and not poll:
        return
    if r.now_ms < r.fetch_deadline_ms and not poll:
        return
    peers = [p for p in r.cfg.active if p != r.me]
    # A poll asks everyone in turn: a peer's old checkpoint claim says little of now.
    ahead = [p for p in peers if r.peer_checkpoint.get(p, 0) >= target]
    if poll or not ahead:
        ahead = peers
    if not ahead:  # a network of one: nobody to ask
        return
    peer = ahead[r.fetch_attempt % len(ahead)]
    r.fetch_attempt += 1
    lo = r.delivered_height + 1
    hi = lo + r.cfg.fetch_max_blocks - 1
    request = r._sign(BlockRequest(lo, hi, r.me))
    r.fetch_deadline_ms = r.now_ms + r.cfg.request_timeout_ms
    r._emit(Send(peer, encode_message(request)))


def on_block_request(r: Replica, peer: int, request: BlockRequest) -> None:
    lo, hi = request.from_height, request.to_height
    if lo > hi or hi - lo >= r.cfg.fetch_max_blocks:
        r._reject(Reason.BAD_REQUEST, peer, "block range")
        return
    if lo == 0 or lo > r.delivered_height:
        return
    r._emit(ServeBlocks(peer, lo, min(hi, r.delivered_height)))


def on_block_response(r: Replica, peer: int, response: BlockResponse) -> None:
    start = r.delivered_height
    for block, cert in response.blocks:
        height = block.header.height
        if height <= r.delivered_height:
            continue
        problem = check_fetched(r, block, cert)
        if problem:
            r._reject(Reason.BAD_BLOCK, peer, problem)
            break
        r.committed.pop(height, None)
        r._deliver(block.header.proposal, block.txs, cert)
        r._deliver_ready()
    for seq in sorted(r.checkpoints):
        try_stable(r, seq)
    r.next_seq = max(r.next_seq, r.delivered_height + 1)
    if r.delivered_height > start:  # progress: go on at once; else wait and ask another
        r.fetch_deadline_ms = 0
        full = len(response.blocks) >= r.cfg.fetch_max_blocks  # the peer may hold more
        if full or lag_target(r) > r.delivered_height:
            maybe_fetch(r, poll=full)


def check_fetched(r: Replica, block: Block, cert: CommitCertificate) -> str | None:
    if block.header.height != r.delivered_height + 1:
        return f"expected height {r.delivered_height + 1}, got {block.header.height}"
    if block.header.prev_hash != r.last_block_hash:
        return "prev_hash does not extend our chain"
    return check_block_body(r.cfg.suite, block) or check_certificate(
        r.cfg.suite, r.cfg.active_set, r.signer.verify, cert, block.header.proposal
    )


def _drop_up_to(table: MutableMapping[int, Any], seq: int) -> None:
    for key in [k for k in table if k <= seq]:
        del table[key]
