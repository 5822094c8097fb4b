"""View change, new view, timers and restart safety (PBFT 4.4, 4.5.2)."""

from dataclasses import replace

from consensus.events import (
    Broadcast,
    ClientRequest,
    Executed,
    Persist,
    ShareRequests,
    Tick,
    ViewChanged,
    ViewChangeStarted,
    ViewRecord,
    VoteRecord,
)
from consensus.messages import NewView, Prepare, PrePrepare, ViewChange
from consensus.reasons import Reason
from consensus.state import RestoredState
from tests.consensus.harness import feed, make_replica, persisted, receive, rejections, sent
from tests.factories import client_tx, pre_prepare, prepared_cert, signed, signers, view_change


def test_silent_primary_is_suspected_after_the_request_timeout() -> None:
    r = make_replica(2, request_timeout_ms=1000)
    feed(r, Tick(0), ClientRequest(client_tx()))
    assert not [a for a in feed(r, Tick(999)) if isinstance(a, ViewChangeStarted)]
    actions = feed(r, Tick(1000))
    assert [a.new_view for a in actions if isinstance(a, ViewChangeStarted)] == [1]
    assert persisted(actions)[0] == ViewRecord(1)
    (vc,) = sent(actions)
    assert isinstance(vc, ViewChange) and vc.new_view == 1 and vc.sender == 2


def test_a_stalled_backup_shares_its_requests_once_half_way_then_suspects() -> None:
    r = make_replica(2, request_timeout_ms=1000)
    feed(r, Tick(0), ClientRequest(client_tx()))
    assert not [a for a in feed(r, Tick(499)) if isinstance(a, ShareRequests)]
    first = feed(r, Tick(500))
    assert [a for a in first if isinstance(a, ShareRequests)] == [ShareRequests()]
    assert not [a for a in first if isinstance(a, ViewChangeStarted)]
    assert not [a for a in feed(r, Tick(700), Tick(999)) if isinstance(a, ShareRequests)]
    assert [a.new_view for a in feed(r, Tick(1000)) if isinstance(a, ViewChangeStarted)] == [1]


def test_a_new_stall_shares_again() -> None:
    r = make_replica(2, request_timeout_ms=1000)
    feed(r, Tick(0), ClientRequest(client_tx()))
    assert [a for a in feed(r, Tick(500)) if isinstance(a, ShareRequests)]
    r.last_progress_ms = 800  # a block committed, the request still waits
    assert not [a for a in feed(r, Tick(1200)) if isinstance(a, ShareRequests)]
    assert [a for a in feed(r, Tick(1300)) if isinstance(a, ShareRequests)]
    assert not [a for a in feed(r, Tick(1799)) if isinstance(a, ViewChangeStarted)]
    assert [a for a in feed(r, Tick(1800)) if isinstance(a, ViewChangeStarted)]


def test_the_time_a_node_takes_to_execute_its_blocks_is_not_a_stall() -> None:
    """A block delivered at 100 but executed and stored only at 900 (a loaded node, whose
    group of deliveries took that long): the timeout counts from 900, so this node does
    not suspect a primary that the others see progressing."""
    r = make_replica(2, request_timeout_ms=1000)
    feed(r, Tick(0), ClientRequest(client_tx()))
    r.last_progress_ms = 100  # a block delivered, the request still waits
    feed(r, Executed(1, b"\x00" * 32, now_ms=900))
    assert not [a for a in feed(r, Tick(1500), Tick(1899)) if isinstance(a, ViewChangeStarted)]
    assert [a for a in feed(r, Tick(1900)) if isinstance(a, ViewChangeStarted)]


def test_new_primary_sends_new_view_carrying_the_prepared_proposal() -> None:
    pp = pre_prepare(0, 1, (client_tx(),))
    r = make_replica(1)  # primary of view 1
    feed(r, Tick(0))
    r_actions = []
    for sender in (2, 3):
        r_actions += receive(r, sender, view_change(1, sender, (prepared_cert(pp),)))
    # f + 1 = 2 others want view 1: it joins, and as its primary with 2f+1 it installs it
    new_views = [m for m in sent(r_actions) if isinstance(m, NewView)]
    assert len(new_views) == 1
    (reproposed,) = new_views[0].pre_prepares
    assert (reproposed.view, reproposed.seq, reproposed.digest) == (1, 1, pp.digest)
    assert not r.in_view_change and r.view == 1


def new_view_carrying_one_prepared_proposal() -> tuple[PrePrepare, NewView]:
    """Replica 1 (primary of view 1) builds a NEW-VIEW from two view changes."""
    pp = pre_prepare(0, 1, (client_tx(),))
    primary = make_replica(1)
    out = []
    for sender in (2, 3):
        out += receive(primary, sender, view_change(1, sender, (prepared_cert(pp),)))
    (nv,) = [m for m in sent(out) if isinstance(m, NewView)]
    return pp, nv


def test_backup_accepts_a_valid_new_view_and_prepares_its_proposals() -> None:
    pp, nv = new_view_carrying_one_prepared_proposal()
    backup = make_replica(2)
    backup.view, backup.in_view_change = 1, True
    actions = receive(backup, 1, nv)
    assert any(isinstance(a, ViewChanged) and a.view == 1 for a in actions)
    prepares = [m for m in sent(actions) if isinstance(m, Prepare)]
    assert [(p.view, p.seq, p.digest) for p in prepares] == [(1, 1, pp.digest)]


def test_new_view_that_drops_a_prepared_proposal_is_rejected() -> None:
    _, nv = new_view_carrying_one_prepared_proposal()
    forged = signed(signers()[1], replace(nv, pre_prepares=()))
    backup = make_replica(2)
    backup.view, backup.in_view_change = 1, True
    assert rejections(receive(backup, 1, forged)) == [Reason.BAD_NEW_VIEW]
    assert backup.in_view_change


def test_view_change_with_a_forged_prepared_certificate_is_rejected() -> None:
    pp = pre_prepare(0, 1, (client_tx(),))
    cert = prepared_cert(pp)
    bad_cert = replace(cert, prepares=cert.prepares[:1])
    r = make_replica(1)
    assert rejections(receive(r, 2, view_change(1, 2, (bad_cert,)))) == [Reason.BAD_VIEW_CHANGE]


def test_timeouts_double_while_views_fail() -> None:
    r = make_replica(2, request_timeout_ms=100, view_change_timeout_ms=100)
    feed(r, Tick(0), ClientRequest(client_tx()), Tick(100))
    assert r.view == 1 and r.backoff == 1
    for sender in (0, 3):  # 2f+1 want view 1: the new-view timer starts
        receive(r, sender, view_change(1, sender))
    feed(r, Tick(101))
    assert r.vc_deadline_ms == 101 + 200
    feed(r, Tick(300))
    assert r.view == 1
    feed(r, Tick(301))
    assert r.view == 2 and r.backoff == 2


def test_restored_replica_never_signs_a_conflicting_vote() -> None:
    first = make_replica(1)
    pp = pre_prepare(0, 1, (client_tx(),))
    records = tuple(p for p in persisted(receive(first, 0, pp)))
    assert VoteRecord("prepare", 0, 1, pp.digest) in records
    restarted = make_replica(1, RestoredState(records=records))
    conflicting = pre_prepare(0, 1, (client_tx(7),))
    actions = receive(restarted, 0, conflicting)
    assert rejections(actions) == [Reason.CONFLICTS_OWN_VOTE]
    assert not [m for m in sent(actions) if isinstance(m, Prepare)]
    again = receive(restarted, 0, pp)  # the same proposal is fine: the vote is re-sent
    assert [m.digest for m in sent(again) if isinstance(m, Prepare)] == [pp.digest]


def test_restored_primary_does_not_reuse_a_sequence_number() -> None:
    first = make_replica(0)
    records = tuple(persisted(feed(first, ClientRequest(client_tx(0, 1)))))
    restarted = make_replica(0, RestoredState(records=records))
    timeout_ms = restarted.cfg.batch_timeout_ms  # seq 1 is in flight: wait for the batch
    actions = feed(restarted, ClientRequest(client_tx(1, 1)), Tick(timeout_ms))
    (pp,) = [m for m in sent(actions) if isinstance(m, PrePrepare)]
    assert pp.seq == 2


def test_restart_in_a_later_view_asks_for_it_again() -> None:
    r = make_replica(3, RestoredState(records=(ViewRecord(2),)))
    assert r.view == 2 and r.in_view_change
    (vc,) = [m for m in sent(feed(r, Tick(5))) if isinstance(m, ViewChange)]
    assert vc.new_view == 2


def test_restart_in_an_installed_view_resumes_it_and_announces_itself() -> None:
    records = (ViewRecord(1), ViewRecord(2, installed=True))
    r = make_replica(3, RestoredState(records=records))
    assert r.view == 2 and not r.in_view_change
    (vc,) = [m for m in sent(feed(r, Tick(5))) if isinstance(m, ViewChange)]
    assert vc.new_view == 2  # peers in a later view answer with their NEW-VIEW


def test_installing_a_view_is_persisted_before_its_messages() -> None:
    r = make_replica(1)
    actions = []
    for i in (0, 2, 3):  # 2f+1 view changes reach the new primary
        actions += receive(r, i, signed(signers()[i], view_change(1, i)))
    assert r.view == 1 and not r.in_view_change
    broadcasts = [i for i, a in enumerate(actions) if isinstance(a, Broadcast)]
    new_view_at = next(i for i in broadcasts if isinstance(sent([actions[i]])[0], NewView))
    assert ViewRecord(1, installed=True) in persisted(actions[:new_view_at])


def test_persist_comes_before_every_send_of_a_vote() -> None:
    r = make_replica(2, request_timeout_ms=10)
    actions = feed(r, Tick(0), ClientRequest(client_tx()), Tick(10))
    first_send = next(
        i for i, a in enumerate(actions) if not isinstance(a, Persist | ViewChangeStarted)
    )
    assert any(isinstance(a, Persist) for a in actions[:first_send])


def test_votes_in_a_view_prove_it_was_installed() -> None:
    records = (ViewRecord(1), VoteRecord("prepare", 1, 5, b"\x01" * 32))
    r = make_replica(2, RestoredState(records=records))
    assert r.view == 1 and not r.in_view_change
