"""The core component: the only code that touches the replica, the executor and the
storage writer.

It reads one bounded channel (consensus messages and client requests, put there by the
transport and the intake), handles every event already waiting as one group, writes the
group's records in one transaction (write before you speak), performs the actions
(delivered blocks go to `node.delivery`, which executes and stores them in order beside
this loop), and after each group publishes a frozen
`Snapshot`. The replica tells the core its next deadline, and the core ticks it then,
and while events arrive at least every CLOCK_MS (its clock moves only with ticks); an
idle node wakes only for deadlines, not every 10 ms.

Failure policy, in one place: a peer's bad input never reaches here undecoded (the
replica rejects it with a named reason, counted by `Rejected`); a storage failure or a
broken invariant raises out of `run`, which ends the node's nursery loudly.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from consensus.events import (
    Action,
    Broadcast,
    ClientRequest,
    Deliver,
    EpochScheduled,
    EpochStarted,
    Event,
    Evidence,
    Persist,
    Rejected,
    Send,
    ServeBlocks,
    ShareRequests,
    Tick,
    ViewChanged,
    ViewChangeStarted,
)
from consensus.messages import BlockResponse, encode_message
from consensus.replica import Replica
from consensus.signer import SuiteSigner
from ledger.tx import chain_tag
from ledger.types import Transaction, compute_tx_hash, encode_tx_list
from node.commits import Commits
from node.delivery import Delivery
from node.derived import PendingDerived
from node.executor import Executor
from node.intake import MAX_FORWARD, Answer, Requests
from node.logs import event
from node.membership import peers_of
from node.metrics import Metrics
from node.reads import Reads
from node.snapshot import Snapshot
from node.storage import Storage
from node.trace import Tracer
from node.transport import CHANNEL_CONSENSUS, CHANNEL_TX, Transport

log = logging.getLogger("metroledger.node")
EVENT_QUEUE = 10_000
GROUP_EVENTS = 2_000  # events handled per group commit
MAX_SLEEP_S = 0.25  # the core looks at the replica's timers at least this often
CLOCK_MS = 10  # while events arrive, the replica's clock is at most this far behind
REFORWARD_MS = 1_000  # how often to look for requests waiting too long
MAX_DELIVERY_LAG = 16  # blocks delivered and not yet stored before the loop waits
Item = tuple[Event | Requests, Any]  # what the channel carries: (event, reply)


class Core:
    def __init__(
        self,
        replica: Replica,
        executor: Executor,
        storage: Storage,
        transport: Transport,
        commits: Commits,
        metrics: Metrics,
        signer: SuiteSigner,
    ):
        self.replica, self.executor, self.storage = replica, executor, storage
        self.transport, self.commits, self.metrics, self.signer = (
            transport, commits, metrics, signer,
        )  # fmt: skip
        self.me = replica.me  # published: constant for a run
        self._count_others()
        metrics.members.set(self.n)
        metrics.quorum.set(replica.cfg.quorum)
        # consensus frames start with the chain tag, so one from another network is
        # named as such (its signatures would not verify here anyway: they bind the hash)
        self.tag = chain_tag(replica.cfg.genesis_hash)
        self.tracer = Tracer(0)  # set from the config by `build_node`
        self.pending = PendingDerived()
        self.delivery = Delivery(self)  # executes and stores delivered blocks: `run` it
        self.reads = Reads(storage.reopen(), self.pending)
        self.send_channel, self.receive_channel = trio.open_memory_channel[Item](EVENT_QUEUE)
        self.queued_requests = 0  # client requests inside queued Requests items
        self.reforwarded: set[tuple[bytes, int]] = set()
        self.started = time.monotonic()
        self.next_reforward_ms = REFORWARD_MS
        self.last_tick_ms = 0
        self.stored_height = storage.height()
        self.snapshot = self._snapshot(replica.last_block_hash)

    # ---- what others call: enqueue only ----------------------------------------------

    def enqueue(self, ev: Event) -> bool:
        try:
            self.send_channel.send_nowait((ev, None))
        except trio.WouldBlock:
            self.metrics.rejected.labels("event_queue_full").inc()
            return False
        return True

    def enqueue_requests(self, requests: Requests) -> bool:
        """Queue client requests unless EVENT_QUEUE of them already wait for the core."""
        if self.queued_requests + len(requests.txs) > EVENT_QUEUE:
            return False
        try:
            self.send_channel.send_nowait((requests, None))
        except trio.WouldBlock:
            return False
        self.queued_requests += len(requests.txs)
        return True

    # ---- the loop ------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def run(self) -> None:
        """Group commit: handle every event already waiting (up to GROUP_EVENTS), write
        all their records in one transaction (one fsync), then perform their actions.
        Write-before-speak holds for each of them, and a busy node fsyncs far less."""
        while True:
            group: list[Item] = []
            deadline_ms = self._deadline_ms()  # nothing changes the replica until handled
            wait_s = (deadline_ms - self.now_ms()) / 1000
            with trio.move_on_after(min(max(wait_s, 0.0), MAX_SLEEP_S)):
                group.append(await self.receive_channel.receive())
            while group and len(group) < GROUP_EVENTS:
                try:
                    group.append(self.receive_channel.receive_nowait())
                except trio.WouldBlock:
                    break
            now_ms = self.now_ms()
            # the replica's clock moves only with ticks: one at its deadline, and one at
            # least every CLOCK_MS while events arrive, so what they record is timed right
            if now_ms >= deadline_ms or (group and now_ms - self.last_tick_ms >= CLOCK_MS):
                group.insert(0, (Tick(now_ms, time.time_ns() // 1_000_000), None))
                self.last_tick_ms = now_ms
            await self._handle_group(group)
            # nothing else to do (let events gather), or too far behind (bound the queue)
            idle = not self.queued_events()
            if idle or self.delivery.queued > MAX_DELIVERY_LAG:
                await self.delivery.drained()
            if now_ms >= self.next_reforward_ms:
                self._on_reforward_timer(now_ms)
            self.publish()

    def queued_events(self) -> int:
        """Items waiting in the core's channel (events and groups of client requests)."""
        return self.receive_channel.statistics().current_buffer_used

    def publish(self) -> None:
        """A new snapshot of the replica's view and mempool (the stored height and state
        are those of the last stored block)."""
        self.snapshot = self._snapshot(self.snapshot.block_hash)

    def _deadline_ms(self) -> int:
        """The replica's next deadline, but never sooner than CLOCK_MS after the last tick:
        a timer that a tick does not clear must not make the core spin."""
        return max(self.replica.next_deadline_ms(), self.last_tick_ms + CLOCK_MS)

    async def _handle_group(self, group: list[Item]) -> None:
        proposed_from = self.replica.next_seq
        handled = [handled for item in group for handled in self._handle(*item)]
        if self.tracer.every and self.replica.next_seq > proposed_from:
            self._trace_proposed(proposed_from)
        self._persist([a for actions, _ in handled for a in actions])
        for actions, reply in handled:
            # most client requests yield no action: no coroutine for those
            reasons = await self._perform(actions, persisted=True) if actions else []
            if reply is not None:
                reply.send_nowait(reasons)

    def _trace_proposed(self, first_seq: int) -> None:
        for seq in range(first_seq, self.replica.next_seq):
            slot = self.replica.slots.get(seq)
            if slot is not None and slot.pre_prepare is not None:
                self.tracer.mark("proposed", self._hashes(slot.pre_prepare.txs))

    def _hashes(self, txs: tuple[Transaction, ...]) -> list[bytes]:
        return [compute_tx_hash(self.storage.suite, tx) for tx in txs]

    def _handle(self, item: Event | Requests, reply: Any) -> list[tuple[list[Action], Any]]:
        """Run one queue item through the replica: (actions, reply) per event."""
        if not isinstance(item, Requests):
            return [(self.replica.handle(item), reply)]
        self.queued_requests -= len(item.txs)
        answers = item.answers
        return [
            (self.replica.handle(ClientRequest(tx)), Answer(answers, index) if answers else None)
            for index, tx in enumerate(item.txs)
        ]

    def _persist(self, actions: list[Action]) -> None:
        records = [a.record for a in actions if isinstance(a, Persist)]
        if records:  # write before you speak
            # In the trio thread, not a worker: the core waits for this write either way,
            # and a thread hand-off costs about 140 us of CPU, as much as the small commit
            # itself (0.4 ms here, fsync included); measured 5 % less CPU per tx. Blocks and
            # evidence, larger writes, still go to a worker so intake runs meanwhile.
            self.storage.persist(records)

    async def _perform(self, actions: list[Action], persisted: bool = False) -> list[str]:
        if not persisted:
            self._persist(actions)
        reasons: list[str] = []
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.to, CHANNEL_CONSENSUS, self.tag + action.data)
            elif isinstance(action, Broadcast):
                data = self.tag + action.data
                for member in self.others():
                    self.transport.send(member, CHANNEL_CONSENSUS, data)
            elif isinstance(action, Deliver):
                self.delivery.put(action)  # executed and stored beside this loop
            elif isinstance(action, ServeBlocks):
                self._serve(action)
            elif isinstance(action, Rejected):
                reasons.append(action.reason.value)
                self.metrics.rejected.labels(action.reason.value).inc()
            elif isinstance(action, ViewChanged):
                self.metrics.view_changes.inc()
                self.metrics.view.set(action.view)
                event(log, "view_changed", view=action.view, primary=action.primary)
                self.reforward(older_than_ms=0)  # the new primary may never have seen them
            elif isinstance(action, ViewChangeStarted):
                # how far behind this node's own work is: a backlog suspects late news
                event(log, "view_change_started", new_view=action.new_view, reason=action.reason,
                      height=self.replica.delivered_height,
                      queued_events=self.queued_events())  # fmt: skip
                self.reforward(older_than_ms=0, everyone=True)  # so others can suspect too
            elif isinstance(action, ShareRequests):
                self.reforward(older_than_ms=0, everyone=True)
            elif isinstance(action, Evidence):
                await self._keep_evidence(action)
            elif isinstance(action, EpochScheduled | EpochStarted):
                self._on_epoch(action)
        return reasons

    @property
    def n(self) -> int:
        """Members of the current epoch (published: read by the intake and the daemon)."""
        return self.replica.cfg.n

    def _on_epoch(self, action: EpochScheduled | EpochStarted) -> None:
        """Dial the members a change admits at once (a joiner catches up before its
        epoch), and count the members of the epoch that starts."""
        m = self.replica.membership
        self._count_others()
        if isinstance(action, EpochScheduled):
            self.transport.add_members(peers_of(m))
            event(log, "epoch_scheduled", epoch=action.epoch, start_after=action.start_height,
                  members=list(action.active))  # fmt: skip
            return
        self.metrics.members.set(self.n)
        self.metrics.quorum.set(self.replica.cfg.quorum)
        event(log, "epoch_started", epoch=action.epoch, members=list(action.active),
              height=self.replica.delivered_height, member=action.member)  # fmt: skip
        if not action.member:
            log.warning("not a member of epoch %d: this node now only follows the chain",
                        action.epoch)  # fmt: skip

    async def _keep_evidence(self, action: Evidence) -> None:
        kind = type(action.first).__name__
        event(log, "misbehaviour_evidence", member=action.member, kind=kind)
        first, second = encode_message(action.first), encode_message(action.second)
        await trio.to_thread.run_sync(self.storage.add_evidence, action.member, kind, first, second)

    def _serve(self, action: ServeBlocks) -> None:
        blocks = tuple(self.storage.blocks(action.from_height, action.to_height))
        unsigned = BlockResponse(blocks, self.me)
        response = BlockResponse(blocks, self.me, self.signer.sign(unsigned.signing_bytes()))
        self.transport.send(action.to, CHANNEL_CONSENSUS, self.tag + encode_message(response))

    def _snapshot(self, block_hash: bytes) -> Snapshot:
        r, executor = self.replica, self.executor
        return Snapshot(
            height=self.stored_height,
            block_hash=block_hash,
            state_root=self.executor.state_root,
            view=r.view,
            primary=r.primary,
            in_view_change=r.in_view_change,
            stable_checkpoint=r.stable_seq,
            epoch=r.cfg.epoch,
            members=r.cfg.active,
            is_member=r.is_member,
            mempool_size=len(r.requests),
            max_pending=r.requests.max_pending,
            views={c.name: executor.view(c.name) for c in executor.registry.contracts},
        )

    # ---- forwarding of waiting requests ------------------------------------------------

    def others(self) -> list[int]:
        """Every member of the current epoch and of a scheduled one, but this node."""
        return self._others

    def _count_others(self) -> None:
        r = self.replica
        upcoming = r.membership.next.active if r.membership.next else ()
        self._others = sorted(set(r.cfg.active).union(upcoming) - {self.me})

    def _on_reforward_timer(self, now_ms: int) -> None:
        self.next_reforward_ms = now_ms + REFORWARD_MS
        self.metrics.peers.set(self.transport.connected())
        self.reforward(self.replica.cfg.censorship_timeout_ms // 2, everyone=True)
        self.commits.forget_older_than(2 * self.replica.cfg.censorship_timeout_ms / 1000)

    def reforward(self, older_than_ms: int, everyone: bool = False) -> None:
        """Send requests still waiting here again, as PBFT clients retransmit: a forward lost
        to a partition or a crash must not strand a request. Only requests waiting longer
        than older_than_ms go, each once, so an overloaded primary is not flooded with
        duplicates; everything waiting goes when older_than_ms = 0.

        A backup forwards what its clients give it to the primary alone (the intake); the
        other backups see it first in the pre-prepare. The primary sends its own clients'
        requests to every backup, so each request is held by two members or more and no
        single crash loses one. A primary that censors a request must still be caught by
        more than one backup, so a request waiting longer than half the censorship timeout
        goes to every member (`everyone`), as a PBFT client multicasts a request that did
        not commit in time, and so does everything waiting when this node starts to
        suspect the primary. After a view change everything waiting goes to the new
        primary once."""
        r = self.replica
        pending = r.requests.unproposed
        if older_than_ms == 0:
            self.reforwarded.clear()
        self.reforwarded &= pending.keys()
        if r.is_primary and not everyone:
            return
        waiting = [
            key for key, p in pending.items()
            if r.now_ms - p.arrived_ms >= older_than_ms and key not in self.reforwarded
        ][:MAX_FORWARD]  # fmt: skip
        if waiting:
            self.reforwarded.update(waiting)
            data = encode_tx_list(pending[key].tx for key in waiting)
            for member in self.others() if everyone else [r.primary]:
                self.transport.send(member, CHANNEL_TX, data)

    async def close(self) -> None:
        """A clean stop writes the derived rows, so the next start has nothing to replay:
        first a batch handed over but perhaps not written (rewriting it is harmless),
        then the rest."""
        for batch in (self.pending.writing, self.pending.current):
            if batch is not None and batch.blocks:
                self.storage.write_derived(batch)
        self.storage.close()
