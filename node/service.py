"""What the HTTP listeners see of a node: a small protocol, so `node.api` and
`node.admin` depend on it and not on the daemon (`node.daemon.Node` implements it)."""

from __future__ import annotations

from typing import Protocol

from analysis.contracts import Registry
from ledger.crypto import SignatureSuite
from ledger.types import Transaction
from node.commits import Commits
from node.config import Genesis, NodeConfig
from node.metrics import Metrics
from node.reads import Reads
from node.snapshot import Snapshot
from node.trace import Tracer
from node.transport import FaultRules


class Service(Protocol):
    cfg: NodeConfig
    genesis: Genesis
    me: int  # this node's roster index (ledger.membership)
    public_key: bytes  # its consensus key (operator tokens are signed by it)
    suite: SignatureSuite
    registry: Registry
    metrics: Metrics
    commits: Commits

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def reads(self) -> Reads: ...

    @property
    def tracer(self) -> Tracer: ...

    def peers_connected(self) -> int: ...

    def is_valid_signature(self, tx: Transaction) -> bool: ...

    async def submit(self, txs: list[Transaction]) -> list[list[str]]: ...

    def set_faults(self, rules: FaultRules) -> None: ...
