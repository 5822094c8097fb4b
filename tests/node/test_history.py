"""The network page's history: per-interval differences of the node's own metrics."""

from __future__ import annotations

from node.history import HISTORY_SAMPLES, NetworkHistory
from node.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_sample_holds_what_changed_in_its_interval() -> None:
    metrics, clock = Metrics(), Clock()
    history = NetworkHistory(metrics, clock)
    metrics.txs.inc(10)
    metrics.rejected.labels("bad_signature").inc(3)
    metrics.latency.observe(0.02)
    metrics.latency.observe(0.04)
    metrics.height.set(7)
    clock.now_s += 2
    point = history.sample()
    assert point["txs_per_s"] == 5.0 and point["latency_ms"] == 30.0 and point["height"] == 7
    assert point["refused"] == {"bad_signature": 3} and point["view_changes"] == 0
    metrics.view_changes.inc()
    metrics.view.set(1)
    clock.now_s += 1
    quiet = history.sample()  # nothing committed: no latency, no refusals in this interval
    assert quiet["txs_per_s"] == 0 and quiet["latency_ms"] is None and quiet["refused"] == {}
    assert quiet["view_changes"] == 1 and quiet["view"] == 1
    doc = history.to_json()
    assert doc["refused_total"] == {"bad_signature": 3} and doc["view_changes_total"] == 1
    assert [s["time_s"] for s in doc["samples"]] == [1002.0, 1003.0]


def test_the_ring_keeps_the_last_minutes_only() -> None:
    metrics, clock = Metrics(), Clock()
    history = NetworkHistory(metrics, clock)
    for _ in range(HISTORY_SAMPLES + 20):
        clock.now_s += 1
        history.sample()
    times = [s["time_s"] for s in history.to_json()["samples"]]
    assert len(times) == HISTORY_SAMPLES and times[-1] == clock.now_s
