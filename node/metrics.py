"""Prometheus metrics of one node (its own registry, so tests can run several)."""

from __future__ import annotations

import gc
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge(
            "metroledger_committed_height", "Height of the last committed block", registry=r
        )
        self.view = Gauge("metroledger_view", "Current consensus view", registry=r)
        self.txs = Counter("metroledger_tx_committed_total", "Transactions committed", registry=r)
        self.block_txs = Histogram(
            "metroledger_block_size_txs",
            "Transactions per committed block",
            registry=r,
            buckets=(0, 1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
        )
        self.latency = Histogram(
            "metroledger_commit_latency_seconds",
            "From admission at this node to commit",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.view_changes = Counter("metroledger_view_changes_total", "Views installed", registry=r)
        self.rejected = Counter(
            "metroledger_rejected_messages_total",
            "Inputs refused, by reason",
            ["reason"],
            registry=r,
        )
        self.peers = Gauge(
            "metroledger_peers_connected", "Members with a live outbound link", registry=r
        )
        self.mempool = Gauge(
            "metroledger_mempool_size", "Client requests not yet committed", registry=r
        )
        self.members = Gauge("metroledger_members", "Members of the network (n)", registry=r)
        self.quorum = Gauge(
            "metroledger_quorum_size", "Votes a certificate needs (n - f)", registry=r
        )
        self.last_commit = Gauge(
            "metroledger_last_commit_timestamp_seconds",
            "Wall time of the last block this node committed (0: none since start)",
            registry=r,
        )

        self.gc_seconds = Counter(
            "metroledger_gc_seconds_total", "Time spent in Python's cyclic garbage collector",
            registry=r,
        )  # fmt: skip

        from node.history import NetworkHistory  # it reads this registry

        self.history = NetworkHistory(self)  # the last minutes, for the dashboard

    def track_gc(self) -> None:
        """Count the collector's pauses (once per process: callbacks are global)."""
        started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.gc_seconds.inc(time.perf_counter() - started[0])

        gc.callbacks.append(on_gc)

    def render(self) -> bytes:
        return generate_latest(self.registry)
