"""Block time a Byzantine primary cannot move far: what a primary proposes, what a
backup accepts.

A primary stamps a fresh proposal with its wall clock, and never earlier than the block
before it plus 1 ms. A backup refuses a fresh proposal (and asks for a view change) when
its time is ahead of the backup's own wall clock by more than `max_clock_skew_ms` (5 s),
or behind it by more than `max_proposal_lag_ms` (60 s), or not after the time of the
block before it when the backup knows that block. The bounds differ because a proposal
can reach a backup late, never early: under load a backup handles a pre-prepare seconds
after it arrived (a bound of 5 s both ways once turned an overload into a cascade of
view changes). A block is committed only with the prepares of 2f+1 members, f+1 of them
honest, so its time is within those bounds of an honest clock at the time it was
prepared: f Byzantine members, the primary among them, can move block time at most 5 s
ahead or hold it at most 60 s back (a deadline passes at most a minute late), and cannot
stop it or run it backwards. (CometBFT's BFT time, the median of the committers' clocks, would
bound it tighter; it needs the votes' times in the next block.) Re-proposals of a new
view keep their original times and are checked by their prepared certificates.

The time of a block is `block_time_ms`: its proposal's time, or the block before it's
when that is later. A new view's null proposals carry no time (0: every member must
compute them alike), and a primary's slightly slow clock must not run time backwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consensus.replica import Replica
    from ledger.types import Proposal


def block_time_ms(before_ms: int, proposal: Proposal) -> int:
    """The time of the block of `proposal`, the block before it being at `before_ms`."""
    return max(before_ms, proposal.timestamp_ms)


def proposal_time_ms(r: Replica, seq: int) -> int:
    before = previous_time_ms(r, seq)
    return max(r.wall_ms, (before or 0) + 1)


def previous_time_ms(r: Replica, seq: int) -> int | None:
    """The time of block seq - 1, if this replica knows it."""
    slot = r.slots.get(seq - 1)
    if slot is not None and slot.pre_prepare is not None:
        return slot.pre_prepare.proposal.timestamp_ms
    if seq - 1 == r.delivered_height and r.last_block_time_ms:
        return r.last_block_time_ms
    return None


def check_time(r: Replica, proposal: Proposal) -> str | None:
    """Why a fresh proposal's time is not acceptable here, or None."""
    skew, cfg = proposal.timestamp_ms - r.wall_ms, r.cfg
    if r.wall_ms and not -cfg.max_proposal_lag_ms <= skew <= cfg.max_clock_skew_ms:  # 0: no tick
        return (f"proposal time is {skew} ms from ours (at most {cfg.max_clock_skew_ms} "
                f"ahead, {cfg.max_proposal_lag_ms} behind)")  # fmt: skip
    before = previous_time_ms(r, proposal.height)
    if before is not None and proposal.timestamp_ms <= before:
        return "proposal time is not after the previous block's"
    return None
