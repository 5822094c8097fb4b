"""The replica driver: PBFT normal case, batching, requests and timers.

`Replica.handle(event)` is the whole interface. Every peer message passes the
same ordered checks in `_on_receive` (decodes? member? sender is the peer?
signature?) and then its handler's checks (view, window, duplicate, conflict,
content). Votes are emitted as `Persist` before the `Broadcast` that sends them
("write before you speak"). View changes live in `consensus.viewchange`,
checkpoints and state transfer in `consensus.transfer`.
Section numbers refer to Castro and Liskov, "Practical Byzantine Fault
Tolerance" (OSDI 1999).
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from consensus import clock, epochs, transfer, viewchange
from consensus.clock import block_time_ms
from consensus.config import ProtocolConfig
from consensus.errors import InvariantBroken
from consensus.events import (
    Action,
    Broadcast,
    ClientRequest,
    Deliver,
    Event,
    Evidence,
    Executed,
    Persist,
    PreparedRecord,
    Receive,
    Record,
    Rejected,
    ShareRequests,
    StableRecord,
    Tick,
    ViewRecord,
    VoteRecord,
)
from consensus.messages import (
    BlockRequest,
    BlockResponse,
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
    decode_message,
    encode_message,
)
from consensus.reasons import Reason
from consensus.signer import Signer, TxVerifier
from consensus.state import RequestQueue, RestoredState, Slot
from consensus.validate import check_new_batch
from ledger.errors import InvalidEncoding
from ledger.membership import bare_membership
from ledger.types import (
    Block,
    BlockHeader,
    CommitCertificate,
    Proposal,
    Transaction,
    compute_tx_root,
)

MAX_EVIDENCE = 64
VIEW_CHANGE_POLL_MS = 10
M = TypeVar("M", bound=Message)


class Replica:
    def __init__(
        self,
        cfg: ProtocolConfig,
        me: int,
        signer: Signer,
        tx_verifier: TxVerifier,
        restored: RestoredState | None = None,
    ):
        if me < 0:
            raise ValueError(f"replica index {me} is negative")
        restored = restored or RestoredState()
        chain = restored.chain
        self.membership = restored.membership or bare_membership(cfg.members)
        start_hash = restored.epoch_start_hash or cfg.genesis_hash
        cfg = epochs.config_for(cfg, self.membership, start_hash)
        self.cfg, self.me, self.signer, self.tx_verifier = cfg, me, signer, tx_verifier
        signer.learn_members(cfg.members)
        self.now_ms = 0
        self.wall_ms = 0  # the node's clock of the world (block times: consensus.clock)
        self.last_block_time_ms = chain.last_time_ms
        self.view = 0
        self.in_view_change = False
        self.delivered_height = chain.height
        self.last_block_hash = chain.last_hash if chain.height else cfg.genesis_hash
        # seq -> (digest, view of its commit certificate) of the blocks delivered
        self.delivered_digests: dict[int, tuple[bytes, int]] = {}
        self.own_checkpoints: dict[int, bytes] = {}
        self.stable_seq, self.stable_hash = cfg.epoch_start, cfg.epoch_start_hash
        self.stable_proof: tuple[Checkpoint, ...] = ()
        self.slots: dict[int, Slot] = {}
        self.committed: dict[int, tuple[Proposal, tuple[Transaction, ...], CommitCertificate]] = {}
        self.prepared_certs: dict[int, PreparedCert] = {}
        self.votes: dict[tuple[str, int, int], bytes] = {}
        self.requests = RequestQueue(cfg.max_pending_requests, chain.clients)
        self.checkpoints: dict[int, dict[int, Checkpoint]] = {}
        self.peer_checkpoint: dict[int, int] = {}
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        self.new_views: dict[int, NewView] = {}
        self.own_view_changes: dict[int, ViewChange] = {}
        self.helped: dict[tuple[int, int], int] = {}  # (peer, view) -> when we last helped
        self.buffer: list[tuple[int, Message]] = []
        self.evidence: list[Evidence] = []
        self.executed_roots: dict[int, bytes] = {}
        self.exec_height, self.exec_root = 0, b"\x00" * 32
        self.unexecuted = 0  # blocks delivered since the start whose Executed is to come
        self.next_seq = chain.height + 1
        self.backoff = 0
        self.vc_deadline_ms: int | None = None
        self.vc_needs_broadcast = False
        self.in_new_view_setup = False
        self.vc_resend_ms = 0
        self.last_progress_ms = 0
        self.shared_ms = -1  # when this stall's waiting requests went to every member
        self.fetch_target = 0
        self.fetch_deadline_ms = 0
        self.fetch_attempt = 0
        self._out: list[Action] = []
        # A restarted replica asks a peer for newer blocks at its first tick.
        restarted = bool(restored.records) or chain.height > 0
        self.next_sync_ms = 0 if restarted else cfg.sync_interval_ms
        self._restore(restored.records)

    # ---- the interface ---------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Process one event; return the actions to perform, in order."""
        if isinstance(event, Tick):
            self._on_tick(event.now_ms, event.now_ms if event.wall_ms is None else event.wall_ms)
        elif isinstance(event, Receive):
            self._on_receive(event.peer, event.data)
        elif isinstance(event, ClientRequest):
            self._on_request(event.tx)
        elif isinstance(event, Executed):
            self._on_executed(event.height, event.state_root, event.now_ms)
        else:
            raise TypeError(f"unknown event {event!r}")
        out, self._out = self._out, []
        return out

    def next_deadline_ms(self) -> int:
        """The earliest time at which a `Tick` can do anything: the shell ticks then, or
        with its next event, instead of polling (the simulator ticks as it likes)."""
        if self.vc_needs_broadcast:
            return self.now_ms
        if not self.is_member:  # an observer only follows the chain
            return min(
                [self.next_sync_ms] + [self.fetch_deadline_ms] * bool(self.fetch_deadline_ms)
            )
        if self.in_view_change:  # rare and short: its timers are set by ticks, so poll
            return self.now_ms + VIEW_CHANGE_POLL_MS
        times = [self.next_sync_ms]
        if self.fetch_deadline_ms:
            times.append(self.fetch_deadline_ms)
        oldest = self._oldest_waiting_ms()
        if oldest is not None:  # the two-step request timers (`_check_request_timers`)
            stalled_since = max(oldest, self.last_progress_ms)
            timeout_ms = self._timeout_ms(self.cfg.request_timeout_ms)
            times += [
                stalled_since + timeout_ms,
                oldest + self._timeout_ms(self.cfg.censorship_timeout_ms),
            ]
            if self.shared_ms < stalled_since:
                times.append(stalled_since + timeout_ms // 2)
        unproposed = self.requests.oldest_unproposed_ms()
        in_window = self.next_seq <= epochs.window_top(self)
        idle = self._idle()
        if self.is_primary and in_window:  # `_maybe_propose`
            if unproposed is not None:
                full = len(self.requests.unproposed) >= self.cfg.batch_max_txs
                at = self.now_ms if full or idle else unproposed + self.cfg.batch_timeout_ms
                times.append(at)
            elif idle and epochs.epoch_end_pending(self):
                times.append(self.now_ms)
        return min(times)

    @property
    def primary(self) -> int:
        return self.cfg.primary(self.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.me

    @property
    def is_member(self) -> bool:
        """A member of the current epoch (else an observer)."""
        return self.cfg.is_member(self.me)

    # ---- restore ---------------------------------------------------------------

    def _restore(self, records: tuple[Record, ...]) -> None:
        """Rebuild votes, prepared certs, view and stable checkpoint from disk."""
        installed = 0
        for record in records:
            if isinstance(record, VoteRecord):
                self.votes[(record.kind, record.view, record.seq)] = record.digest
            elif isinstance(record, PreparedRecord):
                self._keep_prepared(record.cert)
            elif isinstance(record, ViewRecord):
                self.view = max(self.view, record.view)
                if record.installed:
                    installed = max(installed, record.view)
            elif isinstance(record, StableRecord) and record.seq > self.stable_seq:
                proof = tuple(_decode_checkpoint(raw) for raw in record.proof)
                self.stable_seq, self.stable_hash, self.stable_proof = (
                    record.seq, record.block_hash, proof
                )  # fmt: skip
        voted = [s for (kind, v, s) in self.votes if kind == "pre-prepare" and v == self.view]
        self.next_seq = max(
            [self.delivered_height + 1, self.stable_seq + 1] + [s + 1 for s in voted]
        )
        if any(v == self.view for (_, v, _) in self.votes):
            installed = self.view  # we voted in it, so we had entered it
        if self.view > 0 and self.is_member:
            # Announce where we are: peers in a later view answer with their NEW-VIEW
            # (help_straggler). A view we had installed resumes in normal operation: asking
            # for it again could not succeed if every replica restarted, since a view
            # change may not carry certificates from the view it asks for.
            self.in_view_change = installed < self.view
            self.vc_needs_broadcast = True

    # ---- helpers -----------------------------------------------------------------

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _reject(self, reason: Reason, peer: int | None, detail: str = "") -> None:
        self._out.append(Rejected(reason, peer, detail))

    def _sign(self, message: M) -> M:
        return dataclasses.replace(message, signature=self.signer.sign(message.signing_bytes()))

    def _vote(self, kind: str, view: int, seq: int, digest: bytes) -> bool:
        """Record our vote, persisting it first; False if it would contradict an earlier one."""
        previous = self.votes.get((kind, view, seq))
        if previous is not None:
            return previous == digest
        self.votes[(kind, view, seq)] = digest
        self._emit(Persist(VoteRecord(kind, view, seq, digest)))
        return True

    def _record_evidence(self, member: int, first: Message, second: Message) -> None:
        evidence = Evidence(member, first, second)
        if len(self.evidence) < MAX_EVIDENCE:
            self.evidence.append(evidence)
        self._emit(evidence)

    def _store_once(self, by_sender: dict[int, M], message: M, peer: int, kind: str) -> bool:
        """Keep one `kind` message per sender and slot: the same signed content again
        is a duplicate; different content from the same sender is kept as evidence."""
        existing = by_sender.get(message.sender)
        if existing is None:
            by_sender[message.sender] = message
            return True
        if existing.signing_bytes() == message.signing_bytes():
            self._reject(Reason.DUPLICATE, peer, kind)
        else:
            self._reject(Reason.CONFLICTING, peer, f"two {kind}s")
            self._record_evidence(message.sender, existing, message)
        return False

    def _timeout_ms(self, base_ms: int) -> int:
        return base_ms << self.backoff

    def _in_window(self, seq: int, peer: int) -> bool:
        if seq <= self.stable_seq:
            self._reject(Reason.STALE, peer, f"seq {seq} <= stable {self.stable_seq}")
            return False
        if seq > epochs.window_top(self):
            self._reject(Reason.OUTSIDE_WINDOW, peer, f"seq {seq}")
            return False
        return True

    def _slot(self, seq: int) -> Slot:
        slot = self.slots.get(seq)
        if slot is None:
            slot = self.slots[seq] = Slot(seq, self.view, self.primary)
        return slot

    # ---- incoming messages: the ordered checks ---------------------------------------

    def _on_receive(self, peer: int, data: bytes) -> None:
        if not 0 <= peer < len(self.membership.keys) or peer == self.me:
            self._reject(Reason.NOT_MEMBER, None, f"peer {peer}")
            return
        try:
            message = decode_message(data)
        except InvalidEncoding as exc:
            self._reject(Reason.MALFORMED, peer, str(exc))
            return
        if not self._may_send(peer, message):
            self._reject(
                Reason.NOT_MEMBER, peer, f"{type(message).__name__} in epoch {self.cfg.epoch}"
            )
            return
        if message.sender != peer:
            self._reject(Reason.SENDER_MISMATCH, peer, f"claims {message.sender}")
            return
        if not self.signer.verify(message.sender, message.signing_bytes(), message.signature):
            self._reject(Reason.BAD_SIGNATURE, peer, type(message).__name__)
            return
        self._dispatch(peer, message)

    def _may_send(self, peer: int, message: Message) -> bool:
        """Members of the epoch take part; anyone on the roster may fetch blocks (a joining
        member catches up); an observer listens to block responses and checkpoints only."""
        if isinstance(message, BlockRequest):
            return True
        if not self.cfg.is_member(peer):
            return False
        return self.is_member or isinstance(message, BlockResponse | Checkpoint)

    def _dispatch(self, peer: int, message: Message) -> None:
        """Route a message whose sender and signature are already checked."""
        if isinstance(message, PrePrepare | Prepare | Commit) and not self._current_view(
            peer, message
        ):
            return
        if isinstance(message, PrePrepare):
            self._on_pre_prepare(peer, message)
        elif isinstance(message, Prepare):
            self._on_prepare(peer, message)
        elif isinstance(message, Commit):
            self._on_commit(peer, message)
        elif isinstance(message, Checkpoint):
            transfer.on_checkpoint(self, peer, message)
        elif isinstance(message, ViewChange):
            viewchange.on_view_change(self, peer, message)
        elif isinstance(message, NewView):
            viewchange.on_new_view(self, peer, message)
        elif isinstance(message, BlockRequest):
            transfer.on_block_request(self, peer, message)
        else:
            transfer.on_block_response(self, peer, message)

    def _current_view(self, peer: int, message: PrePrepare | Prepare | Commit) -> bool:
        """Old view -> drop; future view (or ours while changing) -> buffer, bounded."""
        if message.view < self.view:
            self._reject(Reason.OLD_VIEW, peer, f"view {message.view} < {self.view}")
            return False
        if message.view > self.view or self.in_view_change:
            if len(self.buffer) >= self.cfg.max_buffered_messages:
                self._reject(Reason.BUFFER_FULL, peer)
            else:
                self.buffer.append((peer, message))
            return False
        return self._in_window(message.seq, peer)

    # ---- normal case (PBFT 4.2) --------------------------------------------------------

    def _on_pre_prepare(self, peer: int, pp: PrePrepare) -> None:
        if pp.sender != self.primary:
            self._reject(Reason.NOT_PRIMARY, peer, f"primary of view {self.view} is {self.primary}")
            return
        slot = self._slot(pp.seq)
        if slot.pre_prepare is not None:
            if slot.pre_prepare.digest == pp.digest:
                self._reject(Reason.DUPLICATE, peer, "pre-prepare")
            else:
                self._reject(Reason.CONFLICTING, peer, "primary equivocated")
                self._record_evidence(pp.sender, slot.pre_prepare, pp)
                viewchange.start_view_change(self, self.view + 1, "primary equivocated")
            return
        txs_valid = all(self.tx_verifier.is_valid(tx) for tx in pp.txs)
        problem = (check_new_batch(self.cfg, pp, txs_valid) or clock.check_time(self, pp.proposal)
                   or self._check_state_root(pp.proposal))  # fmt: skip
        if problem:
            self._reject(Reason.BAD_PROPOSAL, peer, problem)
            viewchange.start_view_change(self, self.view + 1, f"bad proposal: {problem}")
            return
        self._accept_pre_prepare(pp, peer)

    def _check_state_root(self, proposal: Proposal) -> str | None:
        ours = self.executed_roots.get(proposal.state_height)
        if ours is not None and ours != proposal.state_root:
            return f"state root at height {proposal.state_height} differs from ours"
        return None

    def _accept_pre_prepare(self, pp: PrePrepare, peer: int | None) -> None:
        """Store a valid pre-prepare of the current view and, as a backup, vote for it."""
        delivered, committed_view = self.delivered_digests.get(pp.seq, (None, 0))
        if delivered is not None and delivered != pp.digest:
            # Normal for a proposal of a view that was abandoned while we were away, and
            # for a new view older than the view the block was committed in (a replica
            # that fetched the block while it lagged in views); impossible (more than f
            # faulty) for a new view of that view or later that re-proposes it.
            in_new_view = peer is not None and peer == self.primary and self.in_new_view_setup
            if in_new_view and pp.view >= committed_view:
                raise InvariantBroken(f"new view re-proposes delivered seq {pp.seq} differently")
            self._reject(Reason.STALE, peer, f"seq {pp.seq} delivered with another value")
            return
        kind = "pre-prepare" if pp.sender == self.me else "prepare"
        if not self._vote(kind, pp.view, pp.seq, pp.digest):
            self._reject(Reason.CONFLICTS_OWN_VOTE, peer, f"seq {pp.seq}")
            return
        slot = self._slot(pp.seq)
        slot.pre_prepare = pp
        self.requests.mark_proposed(pp.txs)
        if pp.sender != self.me:
            prepare = self._sign(Prepare(pp.view, pp.seq, pp.digest, self.me))
            slot.prepares[self.me] = prepare
            self._emit(Broadcast(encode_message(prepare)))
        self._try_prepared(slot)

    def _on_prepare(self, peer: int, p: Prepare) -> None:
        if p.sender == self.primary:
            self._reject(Reason.UNEXPECTED, peer, "the primary does not prepare")
            return
        slot = self._slot(p.seq)
        if self._store_once(slot.prepares, p, peer, "prepare"):
            self._try_prepared(slot)

    def _try_prepared(self, slot: Slot) -> None:
        """prepared(m, v, n, i): the pre-prepare and 2f matching prepares (4.2)."""
        pp = slot.pre_prepare
        if slot.prepared or pp is None:
            return
        prepares = slot.matching_prepares()
        if len(prepares) < 2 * self.cfg.f:
            return
        if not self._vote("commit", pp.view, pp.seq, pp.digest):
            self._reject(Reason.CONFLICTS_OWN_VOTE, None, f"commit for seq {pp.seq}")
            return
        slot.prepared = True
        cert = PreparedCert(pp, tuple(prepares[: 2 * self.cfg.f]))
        self._keep_prepared(cert)
        self._emit(Persist(PreparedRecord(cert)))
        commit = self._sign(Commit(pp.view, pp.seq, pp.digest, self.me))
        slot.commits[self.me] = commit
        self._emit(Broadcast(encode_message(commit)))
        self._try_committed(slot)

    def _keep_prepared(self, cert: PreparedCert) -> None:
        seq = cert.pre_prepare.seq
        current = self.prepared_certs.get(seq)
        if current is None or current.pre_prepare.view < cert.pre_prepare.view:
            self.prepared_certs[seq] = cert

    def _on_commit(self, peer: int, c: Commit) -> None:
        slot = self._slot(c.seq)
        if self._store_once(slot.commits, c, peer, "commit"):
            self._try_committed(slot)

    def _try_committed(self, slot: Slot) -> None:
        """committed-local(m, v, n, i): prepared and 2f+1 matching commits (4.2)."""
        pp = slot.pre_prepare
        if slot.committed or not slot.prepared or pp is None:
            return
        commits = slot.matching_commits()
        if len(commits) < self.cfg.quorum:
            return
        slot.committed = True
        votes = tuple((c.sender, c.signature) for c in commits[: self.cfg.quorum])
        cert = CommitCertificate(pp.view, pp.seq, pp.digest, votes)
        if pp.seq > self.delivered_height:
            self.committed[pp.seq] = (pp.proposal, pp.txs, cert)
        self._deliver_ready()

    def _deliver_ready(self) -> None:
        """Execute in sequence-number order (4.2): a gap waits for its block,
        and is fetched from peers, who committed it if we hold a later one."""
        while self.delivered_height + 1 in self.committed:
            proposal, txs, cert = self.committed.pop(self.delivered_height + 1)
            self._deliver(proposal, txs, cert)
        if self.committed:
            self.fetch_target = max(self.fetch_target, min(self.committed) - 1)
            transfer.maybe_fetch(self)

    def _deliver(
        self, proposal: Proposal, txs: tuple[Transaction, ...], cert: CommitCertificate
    ) -> None:
        header = BlockHeader(self.last_block_hash, proposal)
        replays, windows = self.requests.apply_committed(txs)
        self.delivered_height = proposal.height
        self.last_block_time_ms = block_time_ms(self.last_block_time_ms, proposal)
        self.last_block_hash = header.hash(self.cfg.suite)
        if proposal.height == self.stable_seq and self.last_block_hash != self.stable_hash:
            raise InvariantBroken(f"block {proposal.height} differs from the stable checkpoint")
        self.delivered_digests[proposal.height] = (cert.proposal_digest, cert.view)
        self.last_progress_ms = self.now_ms
        self.unexecuted += 1
        if not self.in_view_change:
            self.backoff = 0
        self._emit(Deliver(Block(header, txs), cert, replays, windows))
        if proposal.height % self.cfg.checkpoint_interval == 0 and self.is_member:
            transfer.send_checkpoint(self, proposal.height, self.last_block_hash)
        epochs.on_delivered(self, proposal.height, txs, replays)

    # ---- client requests and batching ------------------------------------------------------

    def _on_request(self, tx: Transaction) -> None:
        if not self.is_member:
            self._reject(Reason.NOT_MEMBER, None, f"epoch {self.cfg.epoch}: not a member")
            return
        reason = self.requests.admit(tx, len(tx.encoded()), self.now_ms)
        if reason is not None:
            self._reject(reason, None, f"client request seq {tx.seq}")
            return
        self._maybe_propose()

    def _maybe_propose(self) -> None:
        """Adaptive batching: propose when a batch is full, when the oldest request
        has waited batch_timeout_ms, or at once when nothing is in flight. (Asked at
        every request the primary admits: the cheap tests come first.)"""
        if self.in_view_change or not self.is_primary:
            return
        cfg, requests = self.cfg, self.requests
        while requests.unproposed and self.next_seq <= epochs.window_top(self):
            full = len(requests.unproposed) >= cfg.batch_max_txs
            if not (full or self._idle() or self._oldest_waited(cfg.batch_timeout_ms)):
                return
            self._propose(requests.take_batch(cfg.batch_max_txs, cfg.batch_max_bytes))
        if self._idle() and not requests.unproposed and epochs.epoch_end_pending(self):
            self._propose(())  # an empty block brings the epoch's boundary nearer

    def _idle(self) -> bool:
        """Nothing in flight: every block proposed is delivered and executed. (Counting
        execution too, a batch that is not full waits for its predecessor's execution
        and fsync and gathers the requests that arrive meanwhile, as it did when the
        node executed each block before handling its next event.)"""
        return self.next_seq == self.delivered_height + 1 and not self.unexecuted

    def _oldest_waited(self, wait_ms: int) -> bool:
        oldest = self.requests.oldest_unproposed_ms()
        return oldest is not None and self.now_ms - oldest >= wait_ms

    def _propose(self, txs: tuple[Transaction, ...]) -> None:
        seq = self.next_seq
        self.next_seq += 1
        proposal = Proposal(
            seq, clock.proposal_time_ms(self, seq), self.me, compute_tx_root(self.cfg.suite, txs),
            len(txs),
            self.exec_height, self.exec_root,
        )  # fmt: skip
        pp = self._sign(
            PrePrepare(self.view, seq, proposal.digest(self.cfg.suite), proposal, txs, self.me)
        )
        if ("pre-prepare", self.view, seq) in self.votes:
            return  # voted before a restart; the view change will fill this seq
        self._accept_pre_prepare(pp, None)
        self._emit(Broadcast(encode_message(pp)))

    # ---- time and execution results ---------------------------------------------------------

    def _on_tick(self, now_ms: int, wall_ms: int) -> None:
        self.now_ms, self.wall_ms = max(self.now_ms, now_ms), max(self.wall_ms, wall_ms)
        if self.vc_needs_broadcast:  # restarted: first tick
            self.vc_needs_broadcast = False
            viewchange.broadcast_view_change(self)
        if not self.is_member:
            pass
        elif self.in_view_change:
            viewchange.tick_view_change(self)
        else:
            self._check_request_timers()
            self._maybe_propose()
        if self.fetch_deadline_ms and self.now_ms >= self.fetch_deadline_ms:
            self.fetch_deadline_ms = 0
            transfer.maybe_fetch(self)
        if self.now_ms >= self.next_sync_ms:
            self.next_sync_ms = self.now_ms + self.cfg.sync_interval_ms
            transfer.maybe_fetch(self, poll=True)

    def _check_request_timers(self) -> None:
        """PBFT 4.4: a backup whose requests do not commit in time suspects the primary.

        In two steps, as BFT-SMaRt does: half-way through the request timeout of a stall,
        the waiting requests go to every member once (`ShareRequests`); the primary is
        suspected only at the full timeout. A backup forwards its clients' requests to
        the primary alone, so without the first step a forward that reached the primary
        late would make this backup suspect alone, and stay in a view change that the
        others, who never held its requests, would not join."""
        oldest = self._oldest_waiting_ms()
        if oldest is None:
            return
        stalled_since = max(oldest, self.last_progress_ms)
        timeout_ms = self._timeout_ms(self.cfg.request_timeout_ms)
        if self.now_ms - stalled_since >= timeout_ms:
            viewchange.start_view_change(self, self.view + 1, "requests pending without progress")
        elif self.now_ms - oldest >= self._timeout_ms(self.cfg.censorship_timeout_ms):
            viewchange.start_view_change(self, self.view + 1, "a request was not proposed in time")
        elif self.now_ms - stalled_since >= timeout_ms // 2 and self.shared_ms < stalled_since:
            self.shared_ms = self.now_ms
            self._emit(ShareRequests())

    def _oldest_waiting_ms(self) -> int | None:
        """Since when something waits for a block: a client request, or a scheduled
        epoch's boundary (the empty blocks that bring it must not stall either)."""
        oldest = self.requests.oldest_ms()
        if oldest is None and epochs.boundary_pending(self):
            return self.last_progress_ms
        return oldest

    def _on_executed(self, height: int, state_root: bytes, now_ms: int) -> None:
        """A block executed and stored is progress when it happens, not when it was
        delivered: a node whose own executor and disk lag (a loaded machine: blocks
        delivered in one group took it seconds to store) must not count that time as
        the primary's stall and suspect it alone."""
        self.last_progress_ms = max(self.last_progress_ms, now_ms)
        self.executed_roots[height] = state_root
        if height > self.exec_height:
            self.exec_height, self.exec_root = height, state_root
        self.unexecuted = max(0, self.unexecuted - 1)
        if not self.unexecuted:
            self._maybe_propose()  # a primary that waited for this block is idle now


def _decode_checkpoint(raw: bytes) -> Checkpoint:
    message = decode_message(raw)
    if not isinstance(message, Checkpoint):
        raise InvalidEncoding("stable record holds a non-checkpoint")
    return message
