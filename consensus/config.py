"""Protocol constants every member must share (they come from the genesis file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.crypto import SignatureSuite, get_suite
from ledger.quorum import max_faulty, primary_of, quorum_size, weak_quorum_size


@dataclass(frozen=True)
class ProtocolConfig:
    members: tuple[bytes, ...]  # public keys, indexed by member number
    suite_name: str = "ed25519"
    batch_max_txs: int = 1000
    batch_max_bytes: int = 1 << 20
    batch_timeout_ms: int = 100  # see node/testnet.py for the measurement
    checkpoint_interval: int = 16  # K: a checkpoint every K blocks
    watermark_window: int = 64  # L: sequence numbers in flight above the stable checkpoint
    request_timeout_ms: int = 1000  # requests pending and no block for this long -> view change
    censorship_timeout_ms: int = 10_000  # any request waiting this long -> view change
    view_change_timeout_ms: int = 1000  # a new view not installed in time -> next view
    max_backoff_exponent: int = 5  # timeouts double per failed view, up to 2**5 times
    max_pending_requests: int = 100_000
    max_buffered_messages: int = 1024
    fetch_max_blocks: int = 64
    sync_interval_ms: int = 5_000  # ask a peer for newer blocks this often (anti-entropy)
    # a backup refuses a fresh proposal whose time is ahead of its own clock by more than
    # the skew, or behind it by more than the lag: a proposal can reach a backup late (in
    # the network, or queued behind the backup's own work under load), never early
    max_clock_skew_ms: int = 5_000
    max_proposal_lag_ms: int = 60_000
    genesis_hash: bytes = b"\x00" * 32  # hash of 'block 0': the genesis file's hash
    # The epoch (ledger.membership): `members` is the roster of every key ever admitted,
    # `active` the indices voting now (empty: all), and the epoch starts after block
    # `epoch_start`, whose hash serves as its stable checkpoint (no proof needed).
    active: tuple[int, ...] = ()
    epoch: int = 0
    epoch_start: int = 0
    epoch_start_hash: bytes = b""  # empty: the genesis hash
    suite: SignatureSuite = field(init=False, repr=False, compare=False)
    active_set: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", get_suite(self.suite_name))
        if not self.active:
            object.__setattr__(self, "active", tuple(range(len(self.members))))
        if not self.epoch_start_hash:
            object.__setattr__(self, "epoch_start_hash", self.genesis_hash)
        object.__setattr__(self, "active_set", frozenset(self.active))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        if not self.members:
            raise ValueError("members: need at least one")
        if len(set(self.members)) != len(self.members):
            raise ValueError("members: public keys must be distinct")
        if list(self.active) != sorted(self.active_set) or not self.active_set <= set(
            range(len(self.members))
        ):
            raise ValueError("active: expected ascending indices into members")
        if self.watermark_window < 2 * self.checkpoint_interval:
            raise ValueError("watermark_window: must be at least 2 * checkpoint_interval")
        for name in (
            "batch_max_txs",
            "checkpoint_interval",
            "request_timeout_ms",
            "view_change_timeout_ms",
            "censorship_timeout_ms",
            "fetch_max_blocks",
            "max_pending_requests",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be positive")

    @property
    def n(self) -> int:
        """Members of the current epoch."""
        return len(self.active)

    def is_member(self, index: int) -> bool:
        return index in self.active_set

    @property
    def f(self) -> int:
        return max_faulty(self.n)

    @property
    def quorum(self) -> int:
        return quorum_size(self.n)

    @property
    def weak_quorum(self) -> int:
        return weak_quorum_size(self.n)

    def primary(self, view: int) -> int:
        return self.active[primary_of(view, self.n)]
