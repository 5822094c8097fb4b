"""What goes into a replica (events) and what comes out (actions and records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consensus.messages import Message, PreparedCert
from consensus.reasons import Reason
from ledger.types import Block, CommitCertificate, Transaction

if TYPE_CHECKING:  # consensus.state imports this module
    from consensus.state import ClientWindow

# ---- events -----------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The driver's clocks; the only way time enters the core. `now_ms` is monotonic (the
    timers); `wall_ms` is the node's clock of the world, ms since 1970 (block times), or
    None where the driver has only one clock (then now_ms serves as both)."""

    now_ms: int
    wall_ms: int | None = None


@dataclass(frozen=True)
class Receive:
    """Raw bytes from an authenticated peer (the transport knows who sent them)."""

    peer: int
    data: bytes


@dataclass(frozen=True)
class ClientRequest:
    """A transaction whose signature the caller (mempool) has already checked."""

    tx: Transaction


@dataclass(frozen=True)
class Executed:
    """The executor's state root after applying the block at `height`, at `now_ms` on the
    replica's clock (0: unknown)."""

    height: int
    state_root: bytes
    now_ms: int = 0


Event = Tick | Receive | ClientRequest | Executed

# ---- records the driver must write to disk before acting further -------------


@dataclass(frozen=True)
class VoteRecord:
    """This replica signed `kind` (pre-prepare/prepare/commit) for (view, seq, digest)."""

    kind: str
    view: int
    seq: int
    digest: bytes


@dataclass(frozen=True)
class PreparedRecord:
    """A prepared certificate this replica holds; needed in its view changes."""

    cert: PreparedCert


@dataclass(frozen=True)
class ViewRecord:
    """This replica moved to `view` (and, if `installed`, entered it through a NEW-VIEW);
    it never goes back to a lower one."""

    view: int
    installed: bool = False


@dataclass(frozen=True)
class StableRecord:
    """Checkpoint `seq` is stable with this proof; records at or below it may be pruned."""

    seq: int
    block_hash: bytes
    proof: tuple[bytes, ...]  # encoded Checkpoint messages


Record = VoteRecord | PreparedRecord | ViewRecord | StableRecord

# ---- actions -----------------------------------------------------------------


@dataclass(frozen=True)
class Persist:
    """Write `record` durably before performing any later action of the same batch."""

    record: Record


@dataclass(frozen=True)
class Send:
    to: int
    data: bytes


@dataclass(frozen=True)
class Broadcast:
    """Send to every other member."""

    data: bytes


@dataclass(frozen=True)
class Deliver:
    """Block committed at the next height; `replays` are indices of txs to skip;
    `windows` the anti-replay windows, after this block, of the clients it committed."""

    block: Block
    certificate: CommitCertificate
    replays: tuple[int, ...]
    windows: tuple[tuple[bytes, ClientWindow], ...]


@dataclass(frozen=True)
class ServeBlocks:
    """A peer asked for committed blocks: read them from storage and send a BlockResponse."""

    to: int
    from_height: int
    to_height: int


@dataclass(frozen=True)
class Rejected:
    """An input was refused; `reason` is the metric label."""

    reason: Reason
    peer: int | None
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    """Two conflicting messages signed by the same member."""

    member: int
    first: Message
    second: Message


@dataclass(frozen=True)
class ViewChanged:
    view: int
    primary: int


@dataclass(frozen=True)
class ViewChangeStarted:
    new_view: int
    reason: str


@dataclass(frozen=True)
class ShareRequests:
    """Requests wait here without progress: send every waiting one to every member, so
    that if the primary is at fault the others hold them too and suspect it together."""


@dataclass(frozen=True)
class EpochScheduled:
    """A membership change committed: epoch `epoch` starts after block `start_height`
    with the members `active` (roster indices into `keys`). The shell learns new peers
    now, so that a joining member can catch up before the epoch starts."""

    epoch: int
    start_height: int
    active: tuple[int, ...]
    keys: tuple[bytes, ...]


@dataclass(frozen=True)
class EpochStarted:
    """From now on only `active` vote; the shell may drop links to the others."""

    epoch: int
    active: tuple[int, ...]
    member: bool  # whether this replica is one of them


Action = (
    Persist | Send | Broadcast | Deliver | ServeBlocks | Rejected | Evidence | ViewChanged
    | ViewChangeStarted | ShareRequests | EpochScheduled | EpochStarted
)  # fmt: skip
