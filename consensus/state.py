"""Bookkeeping of one replica: log slots, pending client requests, restored state."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from consensus.events import Record
from consensus.messages import Commit, Prepare, PrePrepare
from consensus.reasons import Reason
from ledger.membership import Membership
from ledger.types import Transaction


@dataclass
class Slot:
    """Messages for one sequence number in the current view (PBFT section 4.2)."""

    seq: int
    view: int
    primary: int
    pre_prepare: PrePrepare | None = None
    prepares: dict[int, Prepare] = field(default_factory=dict)
    commits: dict[int, Commit] = field(default_factory=dict)
    prepared: bool = False
    committed: bool = False

    @property
    def digest(self) -> bytes | None:
        return self.pre_prepare.digest if self.pre_prepare else None

    def matching_prepares(self) -> list[Prepare]:
        """Prepares from backups (never the primary) that match the pre-prepare."""
        d = self.digest
        return [p for s, p in sorted(self.prepares.items()) if p.digest == d and s != self.primary]

    def matching_commits(self) -> list[Commit]:
        d = self.digest
        return [c for _, c in sorted(self.commits.items()) if c.digest == d]


@dataclass
class PendingTx:
    tx: Transaction
    size_bytes: int
    arrived_ms: int


# How far below a client's highest committed sequence number a request may still commit.
# One client key sending 1,000 transactions a second through all the nodes (an
# institution's records) has hundreds in flight, forwarded ones arriving after later
# direct ones: a window of 64 refused 3 % of them as replays (bench n4_records_1000).
REPLAY_WINDOW = 1024
ClientWindow = tuple[int, int]  # (highest committed seq, bitmask of the WINDOW below it)
FRESH_CLIENT: ClientWindow = (0, 1)  # client sequence numbers start at 1


def is_replay(window: ClientWindow, seq: int) -> bool:
    """Anti-replay window as in IPsec (RFC 4303 3.4.3): a client's requests may
    commit out of order (pipelining, view changes) within REPLAY_WINDOW."""
    high, mask = window
    if seq > high:
        return False
    distance = high - seq
    return distance >= REPLAY_WINDOW or bool(mask >> distance & 1)


def record_committed(window: ClientWindow, seq: int) -> ClientWindow:
    high, mask = window
    if seq - high >= REPLAY_WINDOW:  # a far jump keeps nothing below: never shift by it
        return seq, 1  # (a shift by 10**12 would need terabytes: one client could halt us)
    if seq > high:
        return seq, ((mask << (seq - high)) | 1) & ((1 << REPLAY_WINDOW) - 1)
    return high, mask | (1 << (high - seq))


class RequestQueue:
    """Client requests not yet committed, with per-client replay protection.

    `clients[sender]` is the anti-replay window of committed client sequence
    numbers. Requests the current view has put in a proposal are kept apart so
    the primary never proposes them twice.
    """

    def __init__(self, max_pending: int, clients: dict[bytes, ClientWindow] | None = None):
        self.max_pending = max_pending
        self.clients: dict[bytes, ClientWindow] = dict(clients or {})
        # Ordered dicts: the oldest entry is read at every request and tick, and a plain
        # dict emptied from the front skips its deleted slots on each such read.
        self.unproposed: OrderedDict[tuple[bytes, int], PendingTx] = OrderedDict()
        self.proposed: OrderedDict[tuple[bytes, int], PendingTx] = OrderedDict()

    def __len__(self) -> int:
        return len(self.unproposed) + len(self.proposed)

    def admit(self, tx: Transaction, size_bytes: int, now_ms: int) -> Reason | None:
        if is_replay(self.clients.get(tx.sender, FRESH_CLIENT), tx.seq):
            return Reason.REPLAY
        if tx.key in self.unproposed or tx.key in self.proposed:
            return Reason.DUPLICATE_REQUEST
        if len(self) >= self.max_pending:
            return Reason.MEMPOOL_FULL
        self.unproposed[tx.key] = PendingTx(tx, size_bytes, now_ms)
        return None

    def take_batch(self, max_txs: int, max_bytes: int) -> tuple[Transaction, ...]:
        """Oldest unproposed requests, sorted by (client, seq) so replays are decided in order."""
        batch: list[PendingTx] = []
        total = 0
        while self.unproposed and len(batch) < max_txs:
            key, entry = next(iter(self.unproposed.items()))
            if batch and total + entry.size_bytes > max_bytes:
                break
            del self.unproposed[key]
            self.proposed[key] = entry
            batch.append(entry)
            total += entry.size_bytes
        return tuple(sorted((e.tx for e in batch), key=lambda tx: tx.key))

    def mark_proposed(self, txs: tuple[Transaction, ...]) -> None:
        for tx in txs:
            entry = self.unproposed.pop(tx.key, None)
            if entry is not None:
                self.proposed[tx.key] = entry

    def unpropose_all(self, now_ms: int) -> None:
        """A new view starts: proposals of the old one may be gone; timers restart."""
        merged = OrderedDict({**self.proposed, **self.unproposed})
        self.proposed, self.unproposed = OrderedDict(), merged
        for entry in merged.values():
            entry.arrived_ms = now_ms

    def apply_committed(
        self, txs: tuple[Transaction, ...]
    ) -> tuple[tuple[int, ...], tuple[tuple[bytes, ClientWindow], ...]]:
        """Record a committed block's requests. Returns the indices of replayed txs, and
        the anti-replay window after this block of every client it committed a request of
        (storage persists those, so it need not read and recompute them)."""
        replays = []
        changed: dict[bytes, ClientWindow] = {}
        for index, tx in enumerate(txs):
            self.unproposed.pop(tx.key, None)
            self.proposed.pop(tx.key, None)
            window = self.clients.get(tx.sender, FRESH_CLIENT)
            if is_replay(window, tx.seq):
                replays.append(index)
            else:
                self.clients[tx.sender] = changed[tx.sender] = record_committed(window, tx.seq)
        return tuple(replays), tuple(changed.items())

    def oldest_unproposed_ms(self) -> int | None:
        return next(iter(self.unproposed.values())).arrived_ms if self.unproposed else None

    def oldest_ms(self) -> int | None:
        """Arrival of the oldest request still waiting to commit, if any."""
        firsts = [d[next(iter(d))].arrived_ms for d in (self.unproposed, self.proposed) if d]
        return min(firsts) if firsts else None


@dataclass(frozen=True)
class ChainState:
    """What the node's storage says about the delivered chain."""

    height: int = 0
    last_hash: bytes = b"\x00" * 32
    clients: dict[bytes, ClientWindow] = field(default_factory=dict)
    last_time_ms: int = 0  # the last block's time (0: unknown)


@dataclass(frozen=True)
class RestoredState:
    """Everything a restarted replica gets back: its chain and its persisted records."""

    chain: ChainState = field(default_factory=ChainState)
    records: tuple[Record, ...] = ()
    # Membership after the chain's last block (None: the genesis members, all active),
    # and the hash of the block its epoch starts after.
    membership: Membership | None = None
    epoch_start_hash: bytes = b""
