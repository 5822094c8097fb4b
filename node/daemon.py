"""The peer daemon: components built once from the config, then run in one nursery.

- the transport (py-libp2p) only enqueues what peers send;
- the core (`node.core`) owns the replica, the executor and the storage writer, and
  publishes a snapshot after each group of events;
- the intake (`node.intake`) brings client transactions to the core;
- the public API (`node.api`) and, if the config enables it, the admin listener
  (`node.admin`) read snapshots and stored rows and send commands.

Any task that raises ends the nursery, and so the node, with its cause in the log.
"""

from __future__ import annotations

import gc
import logging
import signal
from dataclasses import dataclass, replace

import trio

from analysis.contracts import Registry
from consensus.events import Receive
from consensus.reasons import Reason
from consensus.replica import Replica
from consensus.signer import SuiteSigner
from ledger.crypto import SignatureSuite
from ledger.quorum import max_faulty
from ledger.types import Transaction
from node.commits import Commits
from node.config import ConfigError, Genesis, NodeConfig, load_genesis
from node.core import Core
from node.intake import Intake, SignatureCache
from node.keys import load_keys
from node.logs import event
from node.membership import peers_of, resume
from node.metrics import Metrics
from node.reads import Reads
from node.restore import membership_state, restore
from node.snapshot import Snapshot
from node.storage import Storage, StorageError
from node.tls import check_server_files
from node.trace import Tracer
from node.transport import CHANNEL_CONSENSUS, CHANNEL_TX, FaultRules, Libp2pTransport, Transport

log = logging.getLogger("metroledger.node")
# The collector's generation thresholds (CPython's default is 700, 10, 10). Every
# transaction allocates a few dozen tracked objects, so at the default a busy node ran
# about a hundred young collections a second (7-8 % of its CPU, metroledger_gc_seconds).
GC_THRESHOLDS = (20_000, 20, 20)


@dataclass
class Node:
    """What a running node is made of; `build_node` makes it, `run` runs it."""

    cfg: NodeConfig
    genesis: Genesis
    me: int
    public_key: bytes
    suite: SignatureSuite
    registry: Registry
    metrics: Metrics
    transport: Transport
    commits: Commits
    core: Core
    intake: Intake

    # ---- what the listeners see (`node.service.Service`) ------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self.core.snapshot

    @property
    def reads(self) -> Reads:
        return self.core.reads

    @property
    def tracer(self) -> Tracer:
        return self.core.tracer

    def peers_connected(self) -> int:
        return self.transport.connected()

    def is_valid_signature(self, tx: Transaction) -> bool:
        return self.intake.sig_cache.is_valid(tx)

    async def submit(self, txs: list[Transaction]) -> list[list[str]]:
        return await self.intake.submit(txs)

    def set_faults(self, rules: FaultRules) -> None:
        self.transport.faults = rules

    async def run(self) -> None:
        from node.admin import serve_admin
        from node.api import serve_api

        snapshot, f = self.core.snapshot, max_faulty(self.core.n)
        event(log, "node_starting", member=self.me, height=snapshot.height, view=snapshot.view,
              config=self.cfg.describe(), chain_id=self.genesis.chain_id,
              suite=self.genesis.suite, n=self.core.n, epoch=snapshot.epoch, f=f)  # fmt: skip
        if f == 0:
            log.warning("f = 0: %d members tolerate no faulty or stopped member", self.core.n)
        self.metrics.track_gc()
        gc.freeze()  # what startup built (genesis, state, registry) lives on: never rescan it
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
                await nursery.start(self.transport.run)
                nursery.start_soon(self.core.run)
                nursery.start_soon(self.core.delivery.run)
                nursery.start_soon(self.intake.run)
                await nursery.start(serve_api, self)
                if self.cfg.admin_listen:
                    await nursery.start(serve_admin, self)
                event(log, "node_ready", api=f"http://{self.cfg.api_host}:{self.cfg.api_port}",
                      admin=self.cfg.admin_listen or None)  # fmt: skip
        except BaseException as exc:
            if not isinstance(exc, trio.Cancelled | KeyboardInterrupt):
                log.critical("node halted: %r", exc, exc_info=exc)
            raise
        finally:
            await self.core.close()
        event(log, "node_stopped")


def build_node(cfg: NodeConfig, transport: Transport | None = None) -> Node:
    """Check the config, keys, genesis and stored chain, and wire the components; every
    refusal is a ConfigError naming the file and the field. `transport` replaces
    py-libp2p (tests)."""
    genesis = load_genesis(cfg.genesis_file)
    keys = load_keys(cfg.key_file)
    check_server_files(cfg.api_tls, cfg.path)
    protocol = genesis.protocol_config()
    suite, registry = protocol.suite, genesis.registry()
    storage = Storage(cfg.data_dir / "ledger.sqlite3", suite)
    chain = genesis.genesis_hash
    try:  # another chain's blocks are refused before any is executed again
        storage.claim_chain(chain)
        # blocks stored after the last batch of derived rows are executed again
        executor, clients = restore(storage, suite, registry)
    except StorageError as exc:
        raise ConfigError(cfg.data_dir, "ledger.sqlite3", str(exc)) from None
    me, membership, start_hash = resume(cfg, genesis, keys, membership_state(executor), storage)
    signer = SuiteSigner(suite, membership.keys, keys.signing.secret_key, chain)
    sig_cache = SignatureCache(genesis.suite, chain)
    restored = replace(storage.restored_state(protocol.genesis_hash, clients),
                       membership=membership, epoch_start_hash=start_hash)  # fmt: skip
    replica = Replica(protocol, me, signer, sig_cache, restored)
    metrics = Metrics()
    metrics.height.set(restored.chain.height)
    commits = Commits(metrics)
    links = _Links(metrics)
    if transport is None:
        peers = peers_of(membership)
        transport = Libp2pTransport(me, keys.identity, cfg.listen, peers, links.on_frame,
                                    links.on_reject)  # fmt: skip
    core = Core(replica, executor, storage, transport, commits, metrics, signer)
    core.tracer = Tracer(cfg.trace_every)
    intake = Intake(core, transport, commits, sig_cache, metrics)
    links.core, links.intake = core, intake
    return Node(cfg, genesis, me, keys.signing.public_key, suite, registry, metrics, transport,
                commits, core, intake)  # fmt: skip


class _Links:
    """The transport's callbacks: each frame goes to the queue of the component that
    decodes it; nothing else happens in a transport task."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.core: Core | None = None
        self.intake: Intake | None = None

    def on_frame(self, member: int, channel: int, payload: bytes) -> None:
        if self.core is None or self.intake is None:
            return  # not wired yet: nothing is received before `run`
        if channel == CHANNEL_CONSENSUS:
            tag = self.core.tag
            if payload[: len(tag)] != tag:
                self.on_reject(Reason.WRONG_CHAIN.value, member)
                return
            self.core.enqueue(Receive(member, payload[len(tag) :]))
        elif channel == CHANNEL_TX:
            self.intake.on_forwarded(member, payload)
        else:
            self.on_reject("unknown_channel", member)

    def on_reject(self, reason: str, member: int | None) -> None:
        self.metrics.rejected.labels(reason).inc()


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
