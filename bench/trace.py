"""Where a transaction's time goes, from the nodes' `trace` lines (`node.trace`).

For each sampled transaction the stages are joined across nodes (one monotonic clock
on a machine): the node its client used (origin) and the primary that proposed it.
The gaps, in ms, are reported by their median and 90th percentile."""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

from bench.report import percentile, read_log

# (gap name, from stage, where, to stage, where): where is "origin" or "primary"
GAPS = (
    ("admit", "http_received", "origin", "admitted", "origin"),
    ("forward_write", "admitted", "origin", "forward_written", "origin"),
    ("forward_arrive", "forward_written", "origin", "forward_received", "primary"),
    ("wait_for_proposal", "ready", "primary", "proposed", "primary"),
    ("consensus", "proposed", "primary", "delivered", "origin"),
    ("store", "delivered", "origin", "stored", "origin"),
    ("answer", "stored", "origin", "answered", "origin"),
    ("total", "http_received", "origin", "answered", "origin"),
)


def collect(logs: list[Path]) -> dict[str, dict[str, dict[int, int]]]:
    """tx -> stage -> node -> t_ns."""
    stages: dict[str, dict[str, dict[int, int]]] = {}
    for node, path in enumerate(logs):
        for line in read_log(path):
            if line.get("event") == "trace":
                times = stages.setdefault(line["tx"], {}).setdefault(line["stage"], {})
                times.setdefault(node, int(line["t_ns"]))  # the first pass counts
    return stages


def gaps_of(stages: dict[str, dict[int, int]]) -> dict[str, float]:
    """The gaps of one transaction that its stages allow (ms)."""
    received, proposed = stages.get("http_received", {}), stages.get("proposed", {})
    if len(received) != 1 or len(proposed) != 1:
        return {}
    where = {"origin": next(iter(received)), "primary": next(iter(proposed))}
    if where["origin"] == where["primary"]:  # proposed from its own admission
        stages = {**stages, "ready": stages.get("admitted", {})}
    else:
        stages = {**stages, "ready": stages.get("forward_received", {})}
    out = {}
    for name, first, at_first, last, at_last in GAPS:
        start = stages.get(first, {}).get(where[at_first])
        end = stages.get(last, {}).get(where[at_last])
        if start is not None and end is not None:
            out[name] = (end - start) / 1e6
    return out


def trace_report(logs: list[Path]) -> dict[str, Any]:
    per_tx = [gaps_of(s) for s in collect(logs).values()]
    per_tx = [g for g in per_tx if g]
    report: dict[str, Any] = {"transactions": len(per_tx), "gaps_ms": {}}
    for name, *_ in GAPS:
        values = sorted(g[name] for g in per_tx if name in g)
        if values:
            report["gaps_ms"][name] = {"n": len(values), "p50": round(median(values), 2),
                                       "p90": round(percentile(values, 0.9), 2)}  # fmt: skip
    return report
