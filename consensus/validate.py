"""Stateless checks of proposals and proofs. Each returns None or the reason it fails."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.config import ProtocolConfig
from consensus.messages import Checkpoint, NewView, PreparedCert, PrePrepare, ViewChange
from consensus.signer import Signer
from ledger.types import Proposal, Transaction, compute_tx_root, null_proposal


def check_batch(cfg: ProtocolConfig, pp: PrePrepare) -> str | None:
    """The pre-prepare's digest, proposal and transactions agree with each other."""
    proposal = pp.proposal
    if proposal.height != pp.seq:
        return "proposal height differs from seq"
    if pp.digest != proposal.digest(cfg.suite):
        return "digest differs from the proposal"
    if proposal.tx_count != len(pp.txs):
        return "tx_count differs from the transactions"
    if proposal.state_height >= proposal.height:
        return "state_height must be below the proposal height"
    if compute_tx_root(cfg.suite, pp.txs) != proposal.tx_root:
        return "tx_root differs from the transactions"
    if len({tx.key for tx in pp.txs}) != len(pp.txs):
        return "a (client, seq) pair appears twice in the batch"
    return None


def check_new_batch(cfg: ProtocolConfig, pp: PrePrepare, txs_valid: bool) -> str | None:
    """Extra rules for a fresh proposal by the primary of pp.view."""
    if pp.proposal.proposer != pp.sender:
        return "proposer differs from the sender"
    if len(pp.txs) > cfg.batch_max_txs:
        return f"batch of {len(pp.txs)} exceeds batch_max_txs"
    if not txs_valid:
        return "a transaction has an invalid signature"
    return check_batch(cfg, pp)


def check_checkpoint_proof(
    cfg: ProtocolConfig, signer: Signer, seq: int, block_hash: bytes, proof: tuple[Checkpoint, ...]
) -> str | None:
    """2f+1 signed checkpoints from distinct members for (seq, block_hash). The block
    an epoch starts after is known to all its members and needs no proof."""
    if seq < cfg.epoch_start:
        return f"checkpoint {seq} is from before epoch {cfg.epoch} (starts after {cfg.epoch_start})"
    if seq == cfg.epoch_start:
        ok = block_hash == cfg.epoch_start_hash and not proof
        return None if ok else "bad checkpoint at the epoch's start"
    senders = {c.sender for c in proof}
    if len(senders) != len(proof) or len(senders) < cfg.quorum:
        return "checkpoint proof needs 2f+1 distinct members"
    for c in proof:
        if (c.seq, c.block_hash) != (seq, block_hash) or not cfg.is_member(c.sender):
            return "checkpoint proof does not match"
        if not signer.verify(c.sender, c.signing_bytes(), c.signature):
            return "checkpoint proof has a bad signature"
    return None


def check_prepared_cert(cfg: ProtocolConfig, signer: Signer, cert: PreparedCert) -> str | None:
    """A pre-prepare by the view's primary and 2f matching prepares by distinct backups."""
    pp = cert.pre_prepare
    primary = cfg.primary(pp.view)
    if pp.sender != primary:
        return "prepared cert: pre-prepare not from the primary"
    if not signer.verify(pp.sender, pp.signing_bytes(), pp.signature):
        return "prepared cert: bad pre-prepare signature"
    problem = check_batch(cfg, pp)
    if problem:
        return f"prepared cert: {problem}"
    senders = {p.sender for p in cert.prepares}
    if len(senders) != len(cert.prepares) or len(senders) < 2 * cfg.f or primary in senders:
        return "prepared cert: needs 2f prepares from distinct backups"
    for p in cert.prepares:
        if (p.view, p.seq, p.digest) != (pp.view, pp.seq, pp.digest) or not cfg.is_member(p.sender):
            return "prepared cert: prepare does not match"
        if not signer.verify(p.sender, p.signing_bytes(), p.signature):
            return "prepared cert: bad prepare signature"
    return None


def check_view_change(
    cfg: ProtocolConfig, signer: Signer, vc: ViewChange, verify_signature: bool = True
) -> str | None:
    """Signature, checkpoint proof, and prepared certs inside the window (PBFT 4.4)."""
    if not cfg.is_member(vc.sender):
        return "view change from a non-member"
    if verify_signature and not signer.verify(vc.sender, vc.signing_bytes(), vc.signature):
        return "bad view-change signature"
    problem = check_checkpoint_proof(
        cfg, signer, vc.stable_seq, vc.stable_hash, vc.checkpoint_proof
    )
    if problem:
        return problem
    seqs = [c.pre_prepare.seq for c in vc.prepared]
    if len(set(seqs)) != len(seqs):
        return "two prepared certs for one seq"
    for cert in vc.prepared:
        pp = cert.pre_prepare
        if pp.view >= vc.new_view:
            return "prepared cert from a view not below the new view"
        if not vc.stable_seq < pp.seq <= vc.stable_seq + cfg.watermark_window:
            return "prepared cert outside the watermark window"
        problem = check_prepared_cert(cfg, signer, cert)
        if problem:
            return problem
    return None


@dataclass(frozen=True)
class NewViewPlan:
    """What a new view starts from: the stable checkpoint and the re-proposals."""

    stable_seq: int
    stable_hash: bytes
    stable_proof: tuple[Checkpoint, ...]
    proposals: tuple[tuple[int, Proposal, tuple[Transaction, ...]], ...]


def plan_new_view(cfg: ProtocolConfig, view: int, vcs: tuple[ViewChange, ...]) -> NewViewPlan:
    """Compute O of PBFT 4.4 from valid view changes, deterministically.

    min-s is the latest stable checkpoint among them; for every seq above it up
    to the highest prepared one, re-propose the prepared proposal of the highest
    view (ties broken by digest), or a null proposal where none prepared.
    """
    base = max(vcs, key=lambda vc: (vc.stable_seq, vc.sender))
    best: dict[int, PrePrepare] = {}
    for vc in vcs:
        for cert in vc.prepared:
            pp = cert.pre_prepare
            if pp.seq <= base.stable_seq:
                continue
            current = best.get(pp.seq)
            if current is None or (pp.view, pp.digest) > (current.view, current.digest):
                best[pp.seq] = pp
    top = max(best, default=base.stable_seq)
    proposals: list[tuple[int, Proposal, tuple[Transaction, ...]]] = []
    for seq in range(base.stable_seq + 1, top + 1):
        chosen = best.get(seq)
        if chosen is None:
            proposals.append((seq, null_proposal(cfg.suite, seq, cfg.primary(view)), ()))
        else:
            proposals.append((seq, chosen.proposal, chosen.txs))
    return NewViewPlan(base.stable_seq, base.stable_hash, base.checkpoint_proof, tuple(proposals))


def check_new_view(
    cfg: ProtocolConfig, signer: Signer, nv: NewView, verify_signature: bool = True
) -> str | None:
    """The new view's pre-prepares are exactly what its view changes imply."""
    if nv.sender != cfg.primary(nv.view):
        return "new view not from the view's primary"
    if verify_signature and not signer.verify(nv.sender, nv.signing_bytes(), nv.signature):
        return "bad new-view signature"
    senders = {vc.sender for vc in nv.view_changes}
    if len(senders) != len(nv.view_changes) or len(senders) < cfg.quorum:
        return "new view needs 2f+1 view changes from distinct members"
    for vc in nv.view_changes:
        if vc.new_view != nv.view:
            return "view change for another view"
        problem = check_view_change(cfg, signer, vc)
        if problem:
            return f"member {vc.sender}: {problem}"
    plan = plan_new_view(cfg, nv.view, nv.view_changes)
    expected = [(seq, p.digest(cfg.suite)) for seq, p, _ in plan.proposals]
    got = [(pp.seq, pp.digest) for pp in nv.pre_prepares]
    if expected != got:
        return "pre-prepares differ from those the view changes imply"
    for pp in nv.pre_prepares:
        if pp.view != nv.view or pp.sender != nv.sender:
            return "pre-prepare of another view or sender"
        if not signer.verify(pp.sender, pp.signing_bytes(), pp.signature):
            return "bad pre-prepare signature in new view"
        problem = check_batch(cfg, pp)
        if problem:
            return problem
    return None
