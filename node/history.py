"""The last minutes of a node's own metrics, sampled once a second, for the dashboard's
network page (`GET /v1/network/history`).

Prometheus keeps history for operators who run one; a regulator opening the dashboard of
a node with none still wants to see the last minutes. The sampler reads the node's own
registry (the metrics stay the one owner of the counts) and keeps differences per
interval in a ring, so an answer costs nothing on the hot path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from node.metrics import Metrics

HISTORY_SAMPLES = 300  # five minutes at one sample a second
SAMPLE_INTERVAL_S = 1.0


class NetworkHistory:
    """A ring of per-interval samples: committed transactions per second, mean commit
    latency, height, view, view changes and refusals by reason in that interval."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time):
        self.metrics = metrics
        self.clock = clock
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY_SAMPLES)
        self.last = self._totals()
        self.last_time_s = clock()

    def _totals(self) -> dict[str, Any]:
        value = self.metrics.registry.get_sample_value
        rejected: dict[str, float] = {}
        for family in self.metrics.rejected.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    rejected[sample.labels["reason"]] = sample.value
        return {
            "txs": value("metroledger_tx_committed_total") or 0.0,
            "latency_sum": value("metroledger_commit_latency_seconds_sum") or 0.0,
            "latency_count": value("metroledger_commit_latency_seconds_count") or 0.0,
            "view_changes": value("metroledger_view_changes_total") or 0.0,
            "height": int(value("metroledger_committed_height") or 0),
            "view": int(value("metroledger_view") or 0),
            "peers": int(value("metroledger_peers_connected") or 0),
            "mempool": int(value("metroledger_mempool_size") or 0),
            "rejected": rejected,
        }

    def sample(self) -> dict[str, Any]:
        """Take one sample: the differences since the previous one."""
        now_s, totals = self.clock(), self._totals()
        span_s = max(now_s - self.last_time_s, 1e-3)
        before = self.last
        committed = totals["latency_count"] - before["latency_count"]
        latency_ms = None
        if committed > 0:
            latency_ms = round(
                1000 * (totals["latency_sum"] - before["latency_sum"]) / committed, 1
            )
        refused = {reason: int(count - before["rejected"].get(reason, 0.0))
                   for reason, count in totals["rejected"].items()
                   if count > before["rejected"].get(reason, 0.0)}  # fmt: skip
        point = {
            "time_s": round(now_s, 3),
            "height": totals["height"],
            "view": totals["view"],
            "peers": totals["peers"],
            "mempool": totals["mempool"],
            "txs_per_s": round((totals["txs"] - before["txs"]) / span_s, 1),
            "latency_ms": latency_ms,
            "view_changes": int(totals["view_changes"] - before["view_changes"]),
            "refused": refused,
        }
        self.samples.append(point)
        self.last, self.last_time_s = totals, now_s
        return point

    def to_json(self) -> dict[str, Any]:
        totals = self._totals()
        return {
            "interval_s": SAMPLE_INTERVAL_S,
            "samples": list(self.samples),
            "view_changes_total": int(totals["view_changes"]),
            "refused_total": {k: int(v) for k, v in sorted(totals["rejected"].items())},
        }

    async def run(self) -> None:
        while True:
            await trio.sleep(SAMPLE_INTERVAL_S)
            self.sample()
