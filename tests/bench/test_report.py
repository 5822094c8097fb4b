"""`bench compare` and the CPU-per-transaction figures, from stored results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import closed_loop_stats, compare, cpu_per_tx


def result(tps: float, cpu_s: float, committed: int, verify: int) -> dict[str, Any]:
    return {
        "throughput_tps": tps,
        "latency_ms": {"p50": 50.0, "p90": 80.0, "p99": 120.0},
        "crypto_limit_tps": verify * 2 / 4,
        "cpu_seconds_per_node": {"0": cpu_s, "1": cpu_s + 2, "2": cpu_s - 2, "3": cpu_s},
        "committed_of_offered": committed,
        "verify_per_s_per_core": verify,
    }


def test_cpu_per_tx_in_microseconds_and_in_verification_times() -> None:
    figures = cpu_per_tx(result(3000, 20.0, 100_000, 15_000))
    assert figures["cpu_us_per_tx_per_node"] == 200.0  # 20 s / 100,000 tx
    assert figures["cpu_per_tx_per_node_in_verifications"] == 3.0  # 200 us x 15,000/s
    missing = cpu_per_tx({"cpu_seconds_per_node": {}, "committed_of_offered": 0})
    assert missing["cpu_us_per_tx_per_node"] is None


def test_compare_prints_ratios_including_cpu_per_tx(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "result.json").write_text(json.dumps(result(2000, 20.0, 100_000, 15_000)))
    (tmp_path / "b.json").write_text(json.dumps(result(3000, 15.0, 100_000, 15_000)))
    lines = {
        line.split()[0]: line.split()
        for line in compare(tmp_path / "a", tmp_path / "b.json").splitlines()
    }
    assert lines["throughput_tps"][-1] == "1.50"
    assert lines["cpu_us/tx/node"][1:] == ["200.0", "150.0", "0.75"]
    assert lines["cpu/tx/node"][-3:] == ["3.0", "2.25", "0.75"]


def test_closed_loop_stats_count_only_the_window_and_give_the_clients_spread() -> None:
    commits = {
        0: [(10.5, 20.0), (11.0, 30.0), (19.0, 40.0), (25.0, 999.0)],  # the last is outside
        1: [(12.0, 10.0), (13.0, 10.0)],
    }
    stats = closed_loop_stats(commits, (10.0, 20.0))
    assert stats["clients"] == 2 and stats["samples"] == 5
    assert stats["ops_per_s"] == 0.5  # 5 commits in 10 s
    assert stats["latency_ms"]["max"] == 40.0 and stats["latency_ms"]["p50"] == 20.0
    assert stats["per_client_ops_per_s"] == {"min": 0.2, "median": 0.3, "max": 0.3}
    assert stats["per_client_p50_ms"] == {"min": 10.0, "median": 30.0, "max": 30.0}
