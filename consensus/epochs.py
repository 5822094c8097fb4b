"""Membership epochs (ledger.membership), as functions on a replica.

A change committed in block h is scheduled for the boundary B after h + L; the replica
never accepts or proposes a sequence number beyond B, nor beyond what it has delivered
plus L (so it always knows every change that could govern a number it accepts), and
while a change waits the primary proposes empty blocks so that B comes even without
traffic. When it has delivered B the replica enters the new epoch at once: B's hash is
the epoch's stable checkpoint (every member of the epoch delivered it), nothing below
it is kept, and view changes of the old epoch no longer count. A replica that is not a
member of its epoch is an observer: it follows the chain by state transfer and votes
for nothing (a joining member before its epoch, a removed one after).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING

from consensus.config import ProtocolConfig
from consensus.events import EpochScheduled, EpochStarted, Persist, StableRecord
from ledger.membership import KIND_MEMBERSHIP, Membership, VerifyFn, apply_block
from ledger.types import Block, Transaction

if TYPE_CHECKING:
    from consensus.replica import Replica


def config_for(base: ProtocolConfig, m: Membership, start_hash: bytes) -> ProtocolConfig:
    """The protocol configuration of `m`'s epoch."""
    return dataclasses.replace(
        base, members=m.keys, active=m.epoch.active, epoch=m.epoch.number,
        epoch_start=m.epoch.start_height, epoch_start_hash=start_hash,
    )  # fmt: skip


def window_top(r: Replica) -> int:
    """The highest sequence number this replica may accept or propose now."""
    top = min(r.stable_seq, r.delivered_height) + r.cfg.watermark_window
    upcoming = r.membership.next
    return top if upcoming is None else min(top, upcoming.start_height)


def epoch_end_pending(r: Replica) -> bool:
    """A change waits for its boundary: the primary fills the gap with empty blocks."""
    upcoming = r.membership.next
    return upcoming is not None and r.next_seq <= upcoming.start_height


def follow_block(
    m: Membership,
    cfg: ProtocolConfig,
    verify: VerifyFn,
    height: int,
    txs: tuple[Transaction, ...],
    replays: Collection[int] = (),
) -> Membership:
    """The membership after block `height` (its replayed transactions do not count).
    Shells restoring a chain from disk run the same function as the replica."""
    changes = [(tx.kind, tx.payload) for i, tx in enumerate(txs)
               if tx.kind == KIND_MEMBERSHIP and i not in replays]  # fmt: skip
    if not changes:
        return m
    interval, window = cfg.checkpoint_interval, cfg.watermark_window
    return apply_block(m, height, changes, interval, window, verify, cfg.suite_name)[0]


def boundary_pending(r: Replica) -> bool:
    """A scheduled epoch's boundary block is not delivered yet."""
    upcoming = r.membership.next
    return upcoming is not None and r.delivered_height < upcoming.start_height


def on_delivered(
    r: Replica, height: int, txs: tuple[Transaction, ...], replays: tuple[int, ...]
) -> None:
    """Follow the membership through block `height`; enter a new epoch at its boundary."""
    before = r.membership
    r.membership = follow_block(before, r.cfg, r.signer.verify, height, txs, replays)
    upcoming = r.membership.next
    if upcoming is not None and before.next is None:
        r.signer.learn_members(r.membership.keys)
        r._emit(EpochScheduled(upcoming.number, upcoming.start_height, upcoming.active,
                               r.membership.keys))  # fmt: skip
    if upcoming is not None and height == upcoming.start_height:
        enter_epoch(r)


def enter_epoch(r: Replica) -> None:
    """Delivered B: the next epoch starts with B as its stable checkpoint."""
    from consensus import transfer  # a cycle at import time: transfer imports replica types

    r.membership = r.membership.at_height(r.delivered_height + 1)
    r.cfg = config_for(r.cfg, r.membership, r.last_block_hash)
    seq, block_hash = r.delivered_height, r.last_block_hash
    r.stable_seq, r.stable_hash, r.stable_proof = seq, block_hash, ()
    r._emit(Persist(StableRecord(seq, block_hash, ())))
    transfer.collect_garbage(r)
    r.view_changes.clear()
    r.own_view_changes.clear()
    r.new_views.clear()
    r.helped.clear()
    r.buffer.clear()
    r.peer_checkpoint = {p: s for p, s in r.peer_checkpoint.items() if r.cfg.is_member(p)}
    r.next_seq = max(r.next_seq, seq + 1)
    r.last_progress_ms = r.now_ms
    if r.in_view_change and r.is_member:  # old view changes are void: ask again, validly
        r.vc_needs_broadcast = True
    r._emit(EpochStarted(r.cfg.epoch, r.cfg.active, r.is_member))


def follow_stored_block(
    m: Membership,
    start_hash: bytes,
    cfg: ProtocolConfig,
    verify: VerifyFn,
    block: Block,
    replays: Collection[int] = (),
) -> tuple[Membership, bytes]:
    """A shell's copy of the replica's bookkeeping, for restoring from disk: the
    membership after `block`, entering a new epoch at its boundary, and the hash of the
    block its epoch starts after (`RestoredState.epoch_start_hash`)."""
    height = block.header.height
    m = follow_block(m, cfg, verify, height, block.txs, replays)
    if m.next is not None and height == m.next.start_height:
        return m.at_height(height + 1), block.header.hash(cfg.suite)
    return m, start_hash
