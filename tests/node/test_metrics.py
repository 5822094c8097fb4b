"""Node metrics that are not driven by consensus events."""

from __future__ import annotations

import gc

from node.metrics import Metrics


def test_time_in_the_garbage_collector_is_counted() -> None:
    metrics = Metrics()
    before = list(gc.callbacks)
    metrics.track_gc()
    try:
        gc.collect()
        gc.collect()
    finally:
        gc.callbacks[:] = before  # the callback is process-global
    seconds = metrics.registry.get_sample_value("metroledger_gc_seconds_total")
    assert seconds is not None and seconds > 0
    assert b"metroledger_gc_seconds_total" in metrics.render()
