"""The peer daemon: one trio process wrapping the PBFT core.

Tasks in one nursery: the transport, a ticker, the HTTP API, and the core loop,
which is the only task that touches the replica. Everything reaches the core
through one bounded channel as (event, reply), client requests as one item per
HTTP batch or forwarded frame (`node.intake`); the core persists the records of
an event before performing its sends, applies delivered blocks through the
executor, and stores each block in one SQLite transaction.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from typing import Any

import trio
from libp2p.crypto.keys import KeyPair as P2PKeyPair

from consensus.events import (
    Action,
    Broadcast,
    ClientRequest,
    Deliver,
    Event,
    Evidence,
    Executed,
    Persist,
    Receive,
    Rejected,
    Send,
    ServeBlocks,
    ShareRequests,
    Tick,
    ViewChanged,
    ViewChangeStarted,
)
from consensus.messages import BlockResponse, encode_message
from consensus.reasons import Reason
from consensus.replica import Replica
from consensus.signer import SuiteSigner
from ledger.errors import InvalidEncoding
from ledger.types import (
    Transaction,
    compute_tx_hash,
    decode_tx_list,
    encode_tx_list,
)
from node.config import ConfigError, NodeConfig, load_genesis
from node.derived import PendingDerived, TxStatus, restore
from node.intake import Answer, BatchAnswers, Requests, SignatureCache
from node.keys import load_keys
from node.logs import event, jsonable
from node.metrics import Metrics
from node.storage import Storage, StorageError
from node.tcp_transport import TcpTransport
from node.transport import CHANNEL_CONSENSUS, CHANNEL_TX, Libp2pTransport, Transport

log = logging.getLogger("metroledger.node")
TICK_S = 0.01
EVENT_QUEUE = 10_000
GROUP_EVENTS = 2_000  # events handled per group commit
MAX_FORWARD = 5_000  # transactions in one forwarded frame
REFORWARD_S = 1.0  # how often to look for requests waiting too long
FORWARD_WAIT_S = 1.0  # longest a client's answer waits for its forward to be written
# The collector's generation thresholds (CPython's default is 700, 10, 10). Every
# transaction allocates a few dozen tracked objects, so at the default a busy node ran
# about a hundred young collections a second (7-8 % of its CPU, metroledger_gc_seconds).
GC_THRESHOLDS = (20_000, 20, 20)


class Node:
    def __init__(self, cfg: NodeConfig):
        self.cfg = cfg
        self.genesis = load_genesis(cfg.genesis_file)
        keys = load_keys(cfg.key_file)
        if keys.suite != self.genesis.suite:
            raise ConfigError(
                cfg.key_file, "suite", f"keys are {keys.suite}, genesis {self.genesis.suite}"
            )
        public = keys.signing.public_key
        indices = [i for i, m in enumerate(self.genesis.members) if m.public_key == public]
        if not indices:
            raise ConfigError(cfg.key_file, "signing key", "not a member listed in genesis")
        self.me = indices[0]
        if self.genesis.members[self.me].peer_id != keys.peer_id:
            raise ConfigError(cfg.key_file, "identity key", "peer id differs from genesis")
        self.protocol = self.genesis.protocol_config()
        self.suite = self.protocol.suite
        self.storage = Storage(cfg.data_dir / "ledger.sqlite3", self.suite)
        self.reader = Storage(cfg.data_dir / "ledger.sqlite3", self.suite)
        try:  # blocks stored after the last batch of derived rows are executed again
            self.executor, clients = restore(self.storage, self.suite, self.genesis.registry())
        except StorageError as exc:
            raise ConfigError(cfg.data_dir, "ledger.sqlite3", str(exc)) from None
        self.pending = PendingDerived()
        self.signer = SuiteSigner(self.suite, self.protocol.members, keys.signing.secret_key)
        self.sig_cache = SignatureCache(self.genesis.suite)
        restored = self.storage.restored_state(self.protocol.genesis_hash, clients)
        self.replica = Replica(self.protocol, self.me, self.signer, self.sig_cache, restored)
        self.metrics = Metrics()
        self.metrics.height.set(restored.chain.height)
        self.transport = self._open_transport(keys.identity)
        self.events_send, self.events_recv = trio.open_memory_channel[tuple[Event | Requests, Any]](
            EVENT_QUEUE
        )
        self.queued_requests = 0  # client requests inside queued Requests items
        self.admitted_at: dict[bytes, float] = {}
        self.commit_waiters: dict[bytes, trio.Event] = {}  # long-polls of GET /v1/tx/{hash}
        self.reforwarded: set[tuple[bytes, int]] = set()
        self.started = time.monotonic()

    def _open_transport(self, identity: P2PKeyPair) -> Transport:
        cfg, members = self.cfg, self.genesis.members
        if cfg.transport == "libp2p":
            peers = [(m.peer_id, m.address) for m in members]
            return Libp2pTransport(
                self.me, identity, cfg.listen, peers, self._on_frame, self._on_transport_reject
            )
        try:
            return TcpTransport(
                self.me, self.signer, self.protocol.genesis_hash, cfg.listen,
                [m.address for m in members], self._on_frame, self._on_transport_reject,
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(
                cfg.path, "p2p.listen or a genesis member address", str(exc)
            ) from None

    # ---- inputs -------------------------------------------------------------------

    def _on_frame(self, member: int, channel: int, payload: bytes) -> None:
        if channel == CHANNEL_CONSENSUS:
            self._enqueue(Receive(member, payload), None)
        elif channel == CHANNEL_TX:
            self._on_forwarded_tx(member, payload)
        else:
            self._count_reject("unknown_channel")

    def _on_forwarded_tx(self, member: int, payload: bytes) -> None:
        """A peer forwards the client transactions it admitted, as one list.

        A backup sends to another backup only requests that waited too long (a share,
        `_reforward(everyone=True)`); those go on to the primary at once, so a backup whose
        own link to the primary is slow or down still gets its requests proposed."""
        try:
            txs = decode_tx_list(payload, MAX_FORWARD)
        except InvalidEncoding:
            self._count_reject(Reason.MALFORMED.value)
            return
        valid = [tx for tx in txs if self.sig_cache.is_valid(tx)]
        if len(valid) < len(txs):
            self._count_reject(Reason.INVALID_TX.value, len(txs) - len(valid))
        if not valid:
            return
        if not self._enqueue_requests(Requests(valid, None)):
            self._count_reject("event_queue_full", len(valid))
        primary = self.replica.primary
        if member != primary and self.me != primary:
            relayed = payload if len(valid) == len(txs) else encode_tx_list(valid)
            self.transport.send(primary, CHANNEL_TX, relayed)

    def _on_transport_reject(self, reason: str, member: int | None) -> None:
        self._count_reject(reason)

    def _enqueue(self, ev: Event, reply: Any) -> None:
        try:
            self.events_send.send_nowait((ev, reply))
        except trio.WouldBlock:
            self._count_reject("event_queue_full")

    def _enqueue_requests(self, requests: Requests) -> bool:
        """Queue client requests unless EVENT_QUEUE of them already wait for the core."""
        if self.queued_requests + len(requests.txs) > EVENT_QUEUE:
            return False
        try:
            self.events_send.send_nowait((requests, None))
        except trio.WouldBlock:
            return False
        self.queued_requests += len(requests.txs)
        return True

    def _count_reject(self, reason: str, count: int = 1) -> None:
        self.metrics.rejected.labels(reason).inc(count)

    async def submit_many(self, txs: list[Transaction]) -> list[list[str]]:
        """Admit verified client transactions; per tx, rejection reasons ([] = accepted).
        The accepted ones are forwarded in one frame: a backup's to the primary, the
        primary's to every backup, so a crash of the primary strands none (`_reforward`)."""
        batch = BatchAnswers(len(txs))
        if not self._enqueue_requests(Requests(txs, batch)):
            for index in range(len(txs)):
                Answer(batch, index).send_nowait([Reason.MEMPOOL_FULL.value])
        answers = await batch.wait()
        accepted = [tx for tx, reasons in zip(txs, answers, strict=True) if not reasons]
        now = time.monotonic()
        for tx in accepted:
            self.admitted_at[compute_tx_hash(self.suite, tx)] = now
        if accepted:
            data = encode_tx_list(accepted)
            await self._await_written(self._forward(data, everyone=self.replica.is_primary))
        return answers

    def _forward(self, data: bytes, everyone: bool, track: bool = True) -> trio.Event | None:
        """Client requests (an encoded list) to every other member, or to the primary.
        With `track`, the event returned is set once one of them holds the frame in its
        kernel socket buffer; None if no link to them is up, or without `track`."""
        written = trio.Event() if track else None  # set by whichever link writes first
        targets = self._others() if everyone else [self.replica.primary]
        for member in targets:
            self.transport.send(member, CHANNEL_TX, data, written)
        return written if track and any(self.transport.is_up(m) for m in targets) else None

    async def _await_written(self, written: trio.Event | None) -> None:
        """Answer a client `pending` only once its requests left this process: a crash
        then loses them only if two members fail. Waits at most FORWARD_WAIT_S, and not
        at all while no link to them is up (the requests wait here for `_reforward`)."""
        if written is not None:
            with trio.move_on_after(FORWARD_WAIT_S):
                await written.wait()

    def _others(self) -> list[int]:
        return [member for member in range(self.protocol.n) if member != self.me]

    def _send_to_others(self, channel: int, data: bytes) -> None:
        for member in self._others():
            self.transport.send(member, channel, data)

    # ---- the core loop ------------------------------------------------------------

    async def core(self) -> None:
        """Group commit: handle every event already waiting (up to GROUP_EVENTS), write
        all their records in one transaction (one fsync), then perform their actions.
        Write-before-speak holds for each of them, and a busy node fsyncs far less."""
        while True:
            group = [await self.events_recv.receive()]
            while len(group) < GROUP_EVENTS:
                try:
                    group.append(self.events_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            handled = [handled for item in group for handled in self._handle(*item)]
            self._persist([a for actions, _ in handled for a in actions])
            for actions, reply in handled:
                # most client requests yield no action: no coroutine for those
                reasons = await self._perform(actions, persisted=True) if actions else []
                if reply is not None:
                    reply.send_nowait(reasons)

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
                self.transport.send(action.to, CHANNEL_CONSENSUS, action.data)
            elif isinstance(action, Broadcast):
                self._send_to_others(CHANNEL_CONSENSUS, action.data)
            elif isinstance(action, Deliver):
                await self._deliver(action)
            elif isinstance(action, ServeBlocks):
                self._serve(action)
            elif isinstance(action, Rejected):
                reasons.append(action.reason.value)
                self._count_reject(action.reason.value)
            elif isinstance(action, ViewChanged):
                self.metrics.view_changes.inc()
                self.metrics.view.set(action.view)
                event(log, "view_changed", view=action.view, primary=action.primary)
                self._reforward(older_than_ms=0)  # the new primary may never have seen them
            elif isinstance(action, ViewChangeStarted):
                event(log, "view_change_started", new_view=action.new_view, reason=action.reason)
                self._reforward(older_than_ms=0, everyone=True)  # so others can suspect too
            elif isinstance(action, ShareRequests):
                self._reforward(older_than_ms=0, everyone=True)
            elif isinstance(action, Evidence):
                kind = type(action.first).__name__
                event(log, "misbehaviour_evidence", member=action.member, kind=kind)
                first, second = encode_message(action.first), encode_message(action.second)
                await trio.to_thread.run_sync(
                    self.storage.add_evidence, action.member, kind, first, second
                )
        return reasons

    async def _deliver(self, action: Deliver) -> None:
        block = action.block
        result = self.executor.apply(block, action.replays)
        derived = self.pending.take() if self.pending.due() else None
        started = time.monotonic()
        await trio.to_thread.run_sync(
            self.storage.append_block, block, action.certificate, result, derived
        )
        if derived is not None:
            self.pending.written()
            event(log, "derived_written", height=derived.height, blocks=derived.blocks,
                  txs=len(derived.txs), clients=len(derived.clients), keys=len(derived.writes),
                  ms=round(1000 * (time.monotonic() - started), 1))  # fmt: skip
        self.pending.add(result, action.windows)  # only now: its block is stored
        now = time.monotonic()
        for tx_hash, _, _ in result.tx_results:
            waiter = self.commit_waiters.pop(tx_hash, None)
            if waiter is not None:
                waiter.set()
            admitted = self.admitted_at.pop(tx_hash, None)
            if admitted is not None:
                self.metrics.latency.observe(now - admitted)
        self.metrics.height.set(block.header.height)
        self.metrics.txs.inc(len(block.txs) - len(action.replays))
        self.metrics.block_txs.observe(len(block.txs))
        self.metrics.mempool.set(len(self.replica.requests))
        for index, name, data in result.events:
            event(log, "contract_event", height=block.header.height, tx_index=index, kind=name,
                  data=jsonable(data))  # fmt: skip
        event(
            log,
            "block_committed",
            height=block.header.height,
            txs=len(block.txs),
            view=action.certificate.view,
            state_root=result.state_root.hex(),
        )
        await self._perform(self.replica.handle(Executed(block.header.height, result.state_root)))

    def _serve(self, action: ServeBlocks) -> None:
        blocks = tuple(self.storage.blocks(action.from_height, action.to_height))
        unsigned = BlockResponse(blocks, self.me)
        response = BlockResponse(blocks, self.me, self.signer.sign(unsigned.signing_bytes()))
        self.transport.send(action.to, CHANNEL_CONSENSUS, encode_message(response))

    async def ticker(self) -> None:
        next_reforward = time.monotonic() + REFORWARD_S
        while True:
            self._enqueue(Tick(int((time.monotonic() - self.started) * 1000)), None)
            self.metrics.peers.set(self.transport.connected())
            if time.monotonic() >= next_reforward:
                next_reforward = time.monotonic() + REFORWARD_S
                older_than_ms = self.protocol.censorship_timeout_ms // 2
                self._reforward(older_than_ms, everyone=True)
                self._forget_admitted(older_than_s=2 * self.protocol.censorship_timeout_ms / 1000)
            await trio.sleep(TICK_S)

    def _forget_admitted(self, older_than_s: float) -> None:
        """Admissions this old will not commit (their node crashed, say): they must not
        count against this node's clients for ever (`node.submit.full`)."""
        cutoff = time.monotonic() - older_than_s
        while self.admitted_at:
            first = next(iter(self.admitted_at))
            if self.admitted_at[first] >= cutoff:
                return
            del self.admitted_at[first]

    def _reforward(self, older_than_ms: int, everyone: bool = False) -> None:
        """Send requests still waiting here again, as PBFT clients retransmit: a forward lost
        to a partition or a crash must not strand a request. Only requests waiting longer
        than older_than_ms go, each once, so an overloaded primary is not flooded with
        duplicates; everything waiting goes when older_than_ms = 0.

        A backup forwards what its clients give it to the primary alone; the other backups
        see it first in the pre-prepare (forwarding to every member cost each of them a
        second copy of every transaction to receive, decode and queue). The primary sends
        its own clients' requests to every backup, so each request is held by two members
        or more and no single crash loses one. A primary that censors a request must
        still be caught by more than one backup, so a request waiting longer than half the
        censorship timeout goes to every member (`everyone`), as a PBFT client multicasts
        a request that did not commit in time, and so does everything waiting when this
        node starts to suspect the primary. After a view change everything waiting goes
        to the new primary once."""
        primary, now_ms = self.replica.primary, self.replica.now_ms
        pending = self.replica.requests.unproposed
        if older_than_ms == 0:
            self.reforwarded.clear()
        self.reforwarded &= pending.keys()
        if primary == self.me and not everyone:
            return
        waiting = [
            key for key, p in pending.items()
            if now_ms - p.arrived_ms >= older_than_ms and key not in self.reforwarded
        ][:MAX_FORWARD]  # fmt: skip
        if waiting:
            self.reforwarded.update(waiting)
            requests = encode_tx_list(pending[key].tx for key in waiting)
            self._forward(requests, everyone, track=False)  # nobody waits for these

    # ---- queries (SQLite first: a transaction committed twice keeps its first block) ----

    def tx_status(self, tx_hash: bytes) -> TxStatus | None:
        found = self.reader.tx_status(tx_hash)
        return found if found is not None else self.pending.tx_status(tx_hash)

    def committed(self, tx_hashes: list[bytes]) -> dict[bytes, int]:
        """tx hash -> height, for those of `tx_hashes` in a block."""
        return {**self.pending.committed(tx_hashes), **self.reader.committed(tx_hashes)}

    # ---- run -------------------------------------------------------------------------

    async def run(self) -> None:
        from node.api import serve_api

        event(
            log,
            "node_starting",
            member=self.me,
            height=self.storage.height(),
            view=self.replica.view,
            config=self.cfg.describe(),
            chain_id=self.genesis.chain_id,
            suite=self.genesis.suite,
            n=self.protocol.n,
            f=self.protocol.f,
        )
        self.metrics.track_gc()
        gc.freeze()  # what startup built (genesis, state, registry) lives on: never rescan it
        gc.set_threshold(*GC_THRESHOLDS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stop_on_signal, nursery.cancel_scope)
            await nursery.start(self.transport.run)
            nursery.start_soon(self.core)
            nursery.start_soon(self.ticker)
            await nursery.start(serve_api, self)
            event(log, "node_ready", api=f"http://{self.cfg.api_host}:{self.cfg.api_port}")
        if self.pending.current.blocks:  # so the next start has nothing to replay
            self.storage.write_derived(self.pending.take())
        self.storage.close()
        event(log, "node_stopped")

    async def _stop_on_signal(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                scope.cancel()
                return
