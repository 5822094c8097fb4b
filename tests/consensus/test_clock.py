"""Block time (consensus.clock): a backup refuses a fresh proposal whose time is far from
its clock or not after the block before it; a primary stamps its wall clock, never
earlier than the block before; a null proposal's block keeps the time before it."""

from __future__ import annotations

from consensus.clock import block_time_ms
from consensus.events import ClientRequest, Tick
from consensus.messages import Prepare, PrePrepare, ViewChange
from consensus.reasons import Reason
from ledger.types import null_proposal
from tests.consensus.harness import feed, make_replica, receive, rejections, sent
from tests.factories import SUITE, client_tx, pre_prepare

SKEW, LAG = 5_000, 60_000  # the defaults of max_clock_skew_ms and max_proposal_lag_ms


def backup_at(wall_ms: int):  # type: ignore[no-untyped-def]
    r = make_replica(1)
    feed(r, Tick(0, wall_ms))
    return r


def test_a_proposal_far_from_the_backups_clock_is_refused_with_a_view_change() -> None:
    r = backup_at(1_001)  # the factory's proposal for seq 1 says 1,001
    actions = receive(r, 0, pre_prepare(0, 1, (client_tx(),), timestamp_delta=SKEW + 1))
    assert rejections(actions) == [Reason.BAD_PROPOSAL]
    assert any(isinstance(m, ViewChange) for m in sent(actions))


def test_a_proposal_later_than_the_lag_behind_the_backups_clock_is_refused() -> None:
    r = backup_at(1_001 + LAG + 1)
    assert rejections(receive(r, 0, pre_prepare(0, 1, (client_tx(),)))) == [Reason.BAD_PROPOSAL]


def test_a_proposal_within_the_bounds_is_accepted() -> None:
    for delta in (SKEW, -LAG):  # ahead by the skew, or arriving a minute late
        r = backup_at(1_001 - delta)
        actions = receive(r, 0, pre_prepare(0, 1, (client_tx(),)))
        assert rejections(actions) == [] and any(isinstance(m, Prepare) for m in sent(actions))


def test_a_proposal_not_after_the_block_before_it_is_refused() -> None:
    r = backup_at(1_002)
    assert rejections(receive(r, 0, pre_prepare(0, 1, (client_tx(),)))) == []  # at 1,001
    same = pre_prepare(0, 2, (client_tx(2, 1),), timestamp_delta=-1)  # 1,002 - 1
    assert rejections(receive(r, 0, same)) == [Reason.BAD_PROPOSAL]


def test_the_primary_stamps_its_wall_clock_and_never_runs_backwards() -> None:
    primary = make_replica(0, batch_max_txs=1)
    feed(primary, Tick(0, 1_800_000_000_000))
    first = [m for m in sent(feed(primary, ClientRequest(client_tx(1, 1))))
             if isinstance(m, PrePrepare)]  # fmt: skip
    feed(primary, Tick(10, 1_700_000_000_000))  # its clock stepped back: it keeps the later
    second = [m for m in sent(feed(primary, ClientRequest(client_tx(2, 1))))
              if isinstance(m, PrePrepare)]  # fmt: skip
    assert first[0].proposal.timestamp_ms == 1_800_000_000_000
    assert second[0].proposal.timestamp_ms == 1_800_000_000_001


def test_a_null_proposals_block_keeps_the_time_before_it() -> None:
    null = null_proposal(SUITE, 7, 1)
    assert null.timestamp_ms == 0 and block_time_ms(1_800_000_000_000, null) == 1_800_000_000_000
