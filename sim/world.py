"""One seeded simulation run: replicas, a lossy network, clients, faults, checkers.

Everything random comes from one `random.Random(seed)`, and events are ordered
by (time, insertion counter), so a seed replays exactly. Faults act during the
fault phase; then they heal (Byzantine replicas stay Byzantine) and the run
continues until every honest replica has committed every request (liveness)
or the time limit passes. Safety is checked at every delivery.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from consensus.config import ProtocolConfig
from consensus.epochs import follow_stored_block
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
    Receive,
    Record,
    Rejected,
    Send,
    ServeBlocks,
    Tick,
    ViewChanged,
)
from consensus.messages import BlockResponse, encode_message
from consensus.replica import Replica
from consensus.state import FRESH_CLIENT, ChainState, ClientWindow, RestoredState, record_committed
from ledger.membership import Membership, bare_membership
from ledger.types import Block, CommitCertificate, Transaction
from sim.byzantine import Adversary
from sim.fakes import MacSigner, MacTxVerifier, make_client_tx, member_secret
from sim.plan import CLOCK_OFFSET_MS, FaultPlan, SimParams, make_plan
from sim.reconfig import change_tx, draw_changes, final_members, member_card

WALL_BASE_MS = 1_800_000_000_000  # the simulated world starts in 2027


@dataclass
class Disk:
    """What survives a crash: persisted records and the delivered chain."""

    records: list[Record] = field(default_factory=list)
    blocks: list[tuple[Block, CommitCertificate]] = field(default_factory=list)
    clients: dict[bytes, ClientWindow] = field(default_factory=dict)
    state_root: bytes = b"\x00" * 32
    committed_keys: set[tuple[bytes, int]] = field(default_factory=set)
    membership: Membership | None = None
    epoch_start_hash: bytes = b""


@dataclass
class RunResult:
    seed: int
    safety_ok: bool
    liveness_ok: bool
    committed_blocks: int
    committed_txs: int
    view_changes: int
    sim_time_ms: int
    faults: frozenset[str]
    rejected: Counter[str]
    evidence: int
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "safety_ok": self.safety_ok, "liveness_ok": self.liveness_ok,
            "committed_blocks": self.committed_blocks, "committed_txs": self.committed_txs,
            "view_changes": self.view_changes, "sim_time_ms": self.sim_time_ms,
            "faults": sorted(self.faults), "rejected": dict(sorted(self.rejected.items())),
            "evidence": self.evidence, "detail": self.detail,
        }  # fmt: skip


class World:
    def __init__(self, params: SimParams, cfg: ProtocolConfig | None = None):
        self.params = params
        self.rng = random.Random(params.seed)
        self.plan: FaultPlan = make_plan(params, self.rng)
        n = params.n
        self.changes = (
            draw_changes(n, set(self.plan.byzantine), random.Random(self.rng.random()))
            if params.reconfig else ()
        )  # fmt: skip
        self.submitted: list[Transaction] = []
        roster_size = n + sum(c.new_index >= 0 for c in self.changes)
        secrets = tuple(member_secret(params.seed, i) for i in range(roster_size))
        self.signers: list[MacSigner] = [MacSigner(secrets, i) for i in range(roster_size)]
        members = tuple(hashlib.sha256(s).digest() for s in secrets[:n])
        self.cfg = cfg or params.protocol_config(members)
        self.roster = list(members) + [
            bytes.fromhex(member_card(params.seed, c.new_index)["card"]["public_key"])
            for c in self.changes if c.new_index >= 0
        ]  # fmt: skip
        self.disks = [Disk() for _ in range(n)]
        self.replicas: list[Replica | None] = [self._boot(i) for i in range(n)]
        self.adversaries = {
            i: Adversary(i, behaviours, self.cfg, self.signers[i], random.Random(self.rng.random()))
            for i, behaviours in self.plan.byzantine.items()
        }
        self.queue: list[tuple[int, int, str, Any]] = []
        self.counter = 0
        self.now_ms = 0
        self.canonical: dict[int, bytes] = {}
        self.violation = ""
        self.requests: list[Transaction] = []
        self.view_changes = 0
        self.rejected: Counter[str] = Counter()
        self.evidence = 0
        self.client_fifo: dict[tuple[int, int], int] = {}
        self.offsets: dict[int, int] = {}
        self.block_times: dict[int, int] = {}

    # ---- set-up ------------------------------------------------------------------------

    def _boot(self, i: int) -> Replica:
        disk = self.disks[i]
        last_hash = disk.blocks[-1][0].header.hash(self.cfg.suite) if disk.blocks else b"\x00" * 32
        last_time = disk.blocks[-1][0].header.proposal.timestamp_ms if disk.blocks else 0
        chain = ChainState(len(disk.blocks), last_hash, dict(disk.clients), last_time)
        restored = RestoredState(chain, tuple(disk.records), disk.membership, disk.epoch_start_hash)
        return Replica(self.cfg, i, self.signers[i], MacTxVerifier(), restored)

    def honest(self) -> list[int]:
        return [i for i in range(len(self.replicas)) if i not in self.plan.byzantine]

    def _push(self, time_ms: int, kind: str, payload: Any) -> None:
        self.counter += 1
        heapq.heappush(self.queue, (time_ms, self.counter, kind, payload))

    def _schedule(self) -> None:
        p = self.params
        for k in range(p.requests):
            client = k % p.clients
            tx = make_client_tx(client, k // p.clients + 1, k.to_bytes(4, "big") * 8)
            self.requests.append(tx)
            self._push(self.rng.randrange(0, p.fault_phase_ms * 4 // 5), "client", (client, tx))
        for t in range(0, p.max_time_ms + 1, p.tick_ms):
            self._push(t, "tick", None)
        if self.plan.crash is not None:
            victim, down_ms, up_ms = self.plan.crash
            self._push(down_ms, "crash", victim)
            self._push(up_ms, "restart", victim)
        self._push(p.fault_phase_ms, "heal", None)

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> RunResult:
        self._schedule()
        healed_at: int | None = None
        while self.queue and not self.violation:
            self.now_ms, _, kind, payload = heapq.heappop(self.queue)
            if kind == "tick":
                self._maybe_submit_change()
                self._tick_all()
                if healed_at is not None and self._live():
                    break
            elif kind == "deliver":
                dst, src, data = payload
                self._feed(dst, Receive(src, data))
            elif kind == "client":
                client, tx = payload
                self._client_send(client, tx)
            elif kind == "client_deliver":
                i, tx = payload
                self._feed(i, ClientRequest(tx))
            elif kind == "crash":
                self.replicas[payload] = None
            elif kind == "restart":
                self.replicas[payload] = self._boot(payload)
            elif kind == "heal":
                healed_at = self.now_ms
                self.plan = self.plan.healed()
                self._client_retransmit()
        return self._result()

    def _tick_all(self) -> None:
        for i in range(len(self.replicas)):
            self._feed(i, Tick(self.now_ms, WALL_BASE_MS + self.now_ms + self.clock_offset(i)))

    def clock_offset(self, i: int) -> int:
        """Replica i's wall clock error: honest ones within ±CLOCK_OFFSET_MS (drawn from
        their own stream, so the rest of the run's draws do not move)."""
        if i not in self.offsets:
            rng = random.Random(f"clock-{self.params.seed}-{i}")
            self.offsets[i] = rng.randint(-CLOCK_OFFSET_MS, CLOCK_OFFSET_MS)
        return self.offsets[i]

    def _check_block_time(self, height: int, proposal_ms: int) -> None:
        """A committed block's time (consensus.clock.block_time_ms) is never ahead of the
        honest clocks by more than the skew bound, and a proposal with a time is never
        from before the run (which lasts less than an hour): a lie of an hour either way
        would show. (A new view re-proposes old proposals with their old times, so a
        block's own time may be earlier than the block before it.)"""
        bound = self.cfg.max_clock_skew_ms + CLOCK_OFFSET_MS
        if proposal_ms and proposal_ms < WALL_BASE_MS - bound:
            self.violation = f"block {height}'s time is {WALL_BASE_MS - proposal_ms} ms early"
        time_ms = max(self.block_times.get(height - 1, 0), proposal_ms)
        ahead = time_ms - WALL_BASE_MS - self.now_ms
        if ahead > bound:
            self.violation = f"block {height}'s time is {ahead} ms ahead of the honest clocks"
        self.block_times[height] = time_ms

    def _feed(self, i: int, event: Event) -> None:
        replica = self.replicas[i]
        if replica is None:
            return
        try:
            actions = replica.handle(event)
        except InvariantBroken as exc:
            if i not in self.plan.byzantine:
                self.violation = f"replica {i} halted: {exc}"
            return
        self._perform(i, actions)

    def _perform(self, i: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.disks[i].records.append(action.record)
            elif isinstance(action, Send):
                self._route(i, action.to, action.data)
            elif isinstance(action, Broadcast):
                for j in range(len(self.replicas)):
                    if j != i:
                        self._route(i, j, action.data)
            elif isinstance(action, Deliver):
                self._on_deliver(i, action)
            elif isinstance(action, ServeBlocks):
                self._serve(i, action)
            elif isinstance(action, Rejected):
                self.rejected[action.reason.value] += 1
            elif isinstance(action, Evidence):
                self.evidence += 1
            elif isinstance(action, ViewChanged):
                self.view_changes += 1

    # ---- network -------------------------------------------------------------------------

    def _route(self, src: int, dst: int, data: bytes) -> None:
        adversary = self.adversaries.get(src)
        outgoing = adversary.transform(dst, data) if adversary else [data]
        for payload in outgoing:
            self._transmit(src, dst, payload)
        for j, adv in self.adversaries.items():
            if j == dst:
                adv.observe(data)

    def _transmit(self, src: int, dst: int, data: bytes) -> None:
        plan = self.plan
        if plan.is_cut(src, dst, self.now_ms) or self.rng.random() < plan.loss:
            return
        self._push(self.now_ms + plan.sample_delay_ms(self.rng), "deliver", (dst, src, data))
        if self.rng.random() < plan.duplicate:
            self._push(self.now_ms + plan.sample_delay_ms(self.rng), "deliver", (dst, src, data))

    def _client_send(self, client: int, tx: Transaction) -> None:
        """Clients keep one ordered connection per replica (FIFO, like TCP)."""
        for i in range(len(self.replicas)):
            at = max(self.now_ms + self.plan.sample_delay_ms(self.rng),
                     self.client_fifo.get((client, i), 0))  # fmt: skip
            self.client_fifo[(client, i)] = at
            self._push(at, "client_deliver", (i, tx))

    def _client_retransmit(self) -> None:
        """After the faults heal, clients resend what they have not seen committed."""
        for i in self.honest():
            for tx in self.requests:
                if tx.key not in self.disks[i].committed_keys:
                    self._feed(i, ClientRequest(tx))

    def _serve(self, i: int, action: ServeBlocks) -> None:
        blocks = tuple(self.disks[i].blocks[action.from_height - 1 : action.to_height])
        response = BlockResponse(blocks, i)
        signed = BlockResponse(blocks, i, self.signers[i].sign(response.signing_bytes()))
        self._route(i, action.to, encode_message(signed))

    # ---- checkers ------------------------------------------------------------------------

    def _on_deliver(self, i: int, action: Deliver) -> None:
        disk, block = self.disks[i], action.block
        if block.header.height != len(disk.blocks) + 1:
            self.violation = f"replica {i} delivered height {block.header.height} out of order"
            return
        disk.blocks.append((block, action.certificate))
        disk.membership, disk.epoch_start_hash = follow_stored_block(
            disk.membership or bare_membership(self.cfg.members), disk.epoch_start_hash,
            self.cfg, self.signers[0].verify, block, action.replays,
        )  # fmt: skip
        for index, tx in enumerate(block.txs):
            if index not in action.replays:
                window = disk.clients.get(tx.sender, FRESH_CLIENT)
                disk.clients[tx.sender] = record_committed(window, tx.seq)
                disk.committed_keys.add(tx.key)
        block_hash = block.header.hash(self.cfg.suite)
        disk.state_root = hashlib.sha256(disk.state_root + block_hash).digest()
        if i not in self.plan.byzantine:
            if block.header.height not in self.canonical:
                self._check_block_time(block.header.height, block.header.proposal.timestamp_ms)
            expected = self.canonical.setdefault(block.header.height, block_hash)
            if expected != block_hash:
                self.violation = f"replica {i} committed a different block at {block.header.height}"
                return
        self._feed(i, Executed(block.header.height, disk.state_root, self.now_ms))

    def _live(self) -> bool:
        keys = {tx.key for tx in self.requests}
        judged = self._judged()
        return judged is not None and all(keys <= self.disks[i].committed_keys for i in judged)

    def _judged(self) -> list[int] | None:
        """Whose progress liveness needs: the honest members of the last epoch, once
        every planned change is in force at each of them (None: not yet)."""
        if not self.changes:
            return self.honest()
        final = final_members(self.params.n, self.changes) - set(self.plan.byzantine)
        ready = len(self.submitted) == len(self.changes) and all(
            i < len(self.replicas) and (r := self.replicas[i]) is not None
            and r.cfg.epoch == len(self.changes) for i in final
        )  # fmt: skip
        return sorted(final) if ready else None

    def _exercised(self) -> frozenset[str]:
        kinds = {f"reconfig_{c.kind}" for c in self.changes}
        if any(c.kind == "remove" and c.target in self.plan.byzantine for c in self.changes):
            kinds.add("reconfig_remove_byzantine")
        return self.plan.kinds | kinds

    def _maybe_submit_change(self) -> None:
        k = len(self.submitted)
        if k == len(self.changes) or self.now_ms < self.params.fault_phase_ms // 4:
            return
        epochs = [r.cfg for i in self.honest() if (r := self.replicas[i]) is not None]
        cfg = next((c for c in epochs if c.epoch == k), None)
        if cfg is None:
            return
        change = self.changes[k]
        signers = dict(enumerate(self.signers))
        tx = change_tx(k, change, self.roster, list(cfg.active), signers, set(self.honest()),
                       self.params.seed)  # fmt: skip
        self.submitted.append(tx)
        self.requests.append(tx)
        if change.new_index >= 0:
            self.disks.append(Disk())
            self.replicas.append(self._boot(change.new_index))
        self._client_send(-1, tx)

    def _result(self) -> RunResult:
        honest = self.honest()
        live = not self.violation and self._live()
        detail = self.violation
        if not live and not detail:
            missing = {i: len({tx.key for tx in self.requests} - self.disks[i].committed_keys)
                       for i in honest}  # fmt: skip
            epochs = {i: r.cfg.epoch for i in honest if (r := self.replicas[i]) is not None}
            detail = (f"requests still missing per honest replica: {missing}; epochs {epochs}, "
                      f"{len(self.submitted)}/{len(self.changes)} changes submitted")  # fmt: skip
        return RunResult(
            seed=self.params.seed,
            safety_ok=not self.violation,
            liveness_ok=live,
            committed_blocks=max(len(self.disks[i].blocks) for i in honest),
            committed_txs=len(self.requests) if live else 0,
            view_changes=self.view_changes,
            sim_time_ms=self.now_ms,
            faults=self._exercised(),
            rejected=self.rejected,
            evidence=self.evidence,
            detail=detail,
        )
