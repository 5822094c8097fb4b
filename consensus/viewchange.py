"""View change and new view (PBFT sections 4.4 and 4.5.2), as functions on a replica.

A replica that suspects the primary stops taking part in the view, persists the
new view number, and broadcasts a VIEW-CHANGE carrying its stable checkpoint
(with proof) and its prepared certificates. The new primary gathers 2f+1 of
them and broadcasts a NEW-VIEW whose pre-prepares every replica recomputes from
the same view changes, so a value that may have committed is carried across.
Timeouts double per consecutive failed view (capped) and reset on progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consensus import transfer
from consensus.events import Broadcast, Persist, Send, ViewChanged, ViewChangeStarted, ViewRecord
from consensus.messages import NewView, PrePrepare, ViewChange, encode_message
from consensus.reasons import Reason
from consensus.validate import check_new_view, check_view_change, plan_new_view

if TYPE_CHECKING:
    from consensus.replica import Replica

OWN_VIEW_CHANGES_KEPT = 8


def start_view_change(r: Replica, new_view: int, why: str) -> None:
    """Move to `new_view` and ask for it (PBFT 4.4, first paragraph)."""
    if new_view <= r.view:
        return
    r.view, r.in_view_change = new_view, True
    r.slots.clear()
    r.backoff = min(r.backoff + 1, r.cfg.max_backoff_exponent)
    r._emit(Persist(ViewRecord(new_view)))
    r._emit(ViewChangeStarted(new_view, why))
    broadcast_view_change(r)
    r.vc_deadline_ms = None
    for views in [v for v in r.view_changes if v < new_view]:
        del r.view_changes[views]
    r.helped = {key: t for key, t in r.helped.items() if key[1] >= new_view - OWN_VIEW_CHANGES_KEPT}
    try_new_view(r)


def broadcast_view_change(r: Replica) -> None:
    prepared = tuple(
        cert
        for seq, cert in sorted(r.prepared_certs.items())
        if r.stable_seq < seq <= r.stable_seq + r.cfg.watermark_window
    )
    vc = r._sign(ViewChange(r.view, r.stable_seq, r.stable_hash, r.stable_proof, prepared, r.me))
    r.view_changes.setdefault(r.view, {})[r.me] = vc
    r.own_view_changes[r.view] = vc
    for view in [v for v in r.own_view_changes if v < r.view - OWN_VIEW_CHANGES_KEPT]:
        del r.own_view_changes[view]
    r.vc_resend_ms = r.now_ms + r.cfg.view_change_timeout_ms
    r._emit(Broadcast(encode_message(vc)))


def tick_view_change(r: Replica) -> None:
    """While waiting for a new view: resend our view change and poll for blocks.
    The timer for the next view starts only once 2f+1 replicas want this one
    (PBFT 4.5.2), so a replica cut off from the others does not race ahead."""
    if r.vc_deadline_ms is None and len(r.view_changes.get(r.view, {})) >= r.cfg.quorum:
        r.vc_deadline_ms = r.now_ms + r._timeout_ms(r.cfg.view_change_timeout_ms)
    if r.vc_deadline_ms is not None and r.now_ms >= r.vc_deadline_ms:
        start_view_change(r, r.view + 1, "new view not installed in time")
    elif r.now_ms >= r.vc_resend_ms:
        broadcast_view_change(r)
        transfer.maybe_fetch(r, poll=True)


def on_view_change(r: Replica, peer: int, vc: ViewChange) -> None:
    if vc.new_view < r.view or (vc.new_view == r.view and not r.in_view_change):
        help_straggler(r, peer, vc.new_view)
        return
    existing = r.view_changes.get(vc.new_view, {}).get(vc.sender)
    if existing == vc:
        r._reject(Reason.DUPLICATE, peer, "view change")
        return
    problem = check_view_change(r.cfg, r.signer, vc, verify_signature=False)
    if problem:
        r._reject(Reason.BAD_VIEW_CHANGE, peer, problem)
        return
    r.view_changes.setdefault(vc.new_view, {})[vc.sender] = vc
    join_if_others_moved(r)
    if vc.new_view == r.view:
        try_new_view(r)


def help_straggler(r: Replica, peer: int, view: int) -> None:
    """A peer still asks for an older view: it missed messages we have. Our
    installed NEW-VIEW lets it enter our view at once; else our own VIEW-CHANGE
    for its view may complete the quorum it lacks."""
    last = r.helped.get((peer, view))
    if last is not None and r.now_ms - last < r.cfg.view_change_timeout_ms:
        r._reject(Reason.OLD_VIEW, peer, f"view change to {view}")
        return  # at most once per period, or two replicas past `view` would ping-pong
    r.helped[(peer, view)] = r.now_ms
    installed = r.new_views.get(r.view)
    own = r.own_view_changes.get(view)
    if installed is not None and not r.in_view_change:
        r._emit(Send(peer, encode_message(installed)))
    elif own is not None:
        r._emit(Send(peer, encode_message(own)))
    else:
        r._reject(Reason.OLD_VIEW, peer, f"view change to {view}")


def join_if_others_moved(r: Replica) -> None:
    """f+1 replicas asking for views above ours include an honest one: join the
    smallest of those views rather than wait for our own timer (PBFT 4.5.2)."""
    wanting: dict[int, int] = {}
    for view, by_sender in r.view_changes.items():
        if view > r.view:
            for sender in by_sender:
                if sender != r.me:
                    wanting[sender] = min(view, wanting.get(sender, view))
    if len(wanting) >= r.cfg.weak_quorum:
        start_view_change(r, min(wanting.values()), "f+1 replicas moved to a later view")


def try_new_view(r: Replica) -> None:
    """As the new primary, with 2f+1 view changes: build and send NEW-VIEW."""
    if not r.in_view_change or r.cfg.primary(r.view) != r.me:
        return
    by_sender = r.view_changes.get(r.view, {})
    if len(by_sender) < r.cfg.quorum:
        return
    chosen = tuple(vc for _, vc in sorted(by_sender.items())[: r.cfg.quorum])
    plan = plan_new_view(r.cfg, r.view, chosen)
    pre_prepares = []
    for seq, proposal, txs in plan.proposals:
        digest = proposal.digest(r.cfg.suite)
        pre_prepares.append(r._sign(PrePrepare(r.view, seq, digest, proposal, txs, r.me)))
    nv = r._sign(NewView(r.view, chosen, tuple(pre_prepares), r.me))
    r._emit(Persist(ViewRecord(r.view, installed=True)))  # a restart resumes in this view
    r._emit(Broadcast(encode_message(nv)))
    enter_view(r, nv)


def on_new_view(r: Replica, peer: int, nv: NewView) -> None:
    if nv.view < r.view or (nv.view == r.view and not r.in_view_change):
        r._reject(Reason.OLD_VIEW if nv.view < r.view else Reason.DUPLICATE, peer, "new view")
        return
    problem = check_new_view(r.cfg, r.signer, nv, verify_signature=False)
    if problem:
        r._reject(Reason.BAD_NEW_VIEW, peer, problem)
        return
    r._emit(Persist(ViewRecord(nv.view, installed=True)))  # a restart resumes in this view
    enter_view(r, nv)


def enter_view(r: Replica, nv: NewView) -> None:
    """Install the new view: adopt its checkpoint, process its pre-prepares, replay buffers."""
    plan = plan_new_view(r.cfg, nv.view, nv.view_changes)
    r.view, r.in_view_change, r.vc_deadline_ms = nv.view, False, None
    r.new_views = {nv.view: nv}
    r.slots.clear()
    r.last_progress_ms = r.now_ms
    r.requests.unpropose_all(r.now_ms)
    if plan.stable_seq > r.stable_seq:
        r.fetch_target = max(r.fetch_target, plan.stable_seq)
        if r.delivered_height >= plan.stable_seq:
            r.own_checkpoints.setdefault(plan.stable_seq, plan.stable_hash)
        transfer.make_stable(r, plan.stable_seq, plan.stable_hash, plan.stable_proof)
    r._emit(ViewChanged(nv.view, r.cfg.primary(nv.view)))
    r.in_new_view_setup = True
    for pp in nv.pre_prepares:
        if pp.seq > r.stable_seq:
            r._accept_pre_prepare(pp, nv.sender)
    r.in_new_view_setup = False
    r.next_seq = max([r.next_seq, r.delivered_height + 1, r.stable_seq + 1]
                     + [pp.seq + 1 for pp in nv.pre_prepares])  # fmt: skip
    replay_buffer(r)
    transfer.maybe_fetch(r)
    r._maybe_propose()


def replay_buffer(r: Replica) -> None:
    """Messages that arrived early for this view are handled now; older ones dropped."""
    ready = [(peer, m) for peer, m in r.buffer if getattr(m, "view", -1) == r.view]
    r.buffer = [(peer, m) for peer, m in r.buffer if getattr(m, "view", -1) > r.view]
    for peer, message in ready:
        r._dispatch(peer, message)
