"""The benchmark runner end to end on a short scenario with a partition that heals."""

from __future__ import annotations

import json
from pathlib import Path

from bench.runner import execute
from bench.scenario import load_scenario

SCENARIO = """
name = "tiny_partition"
nodes = 4
suite = "ed25519"
duration_s = 8
warmup_s = 1
[load]
mode = "open"
rate_tps = 200
[[faults]]
at_s = 2
action = "partition"
groups = [[0, 1], [2, 3]]
[[faults]]
at_s = 4
action = "heal"
[[faults]]
at_s = 5
action = "delay"
node = "all"
delay_ms = 5
"""


def test_runner_measures_applies_faults_and_checks_safety(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    result = execute(load_scenario(path), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["throughput_tps"] == result["throughput_tps"] > 0
    for key in ("p50", "p99"):
        assert saved["latency_ms"][key] > 0
    assert saved["crypto_limit_tps"] > 0 and saved["safety_ok"] is True
    assert [f["what"] for f in saved["faults"]] == ["partition", "heal", "delay all"]
    assert saved["committed_of_offered"] == saved["offered"]  # nothing lost across the partition
    for name in ("summary.md", "throughput.png", "latency_cdf.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_the_plain_tcp_transport_carries_a_crash_of_the_primary(tmp_path: Path) -> None:
    """The second transport end to end: real daemons, the primary killed and restarted."""
    path = tmp_path / "tcp.toml"
    path.write_text(
        'name = "tiny_tcp"\ntransport = "tcp"\nduration_s = 8\nwarmup_s = 1\n'
        '[load]\nmode = "open"\nrate_tps = 200\n'
        '[[faults]]\nat_s = 2\naction = "crash"\nnode = "primary"\n'
        '[[faults]]\nat_s = 4\naction = "restart"\n'
    )
    execute(load_scenario(path), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["scenario"]["transport"] == "tcp"
    assert saved["safety_ok"] is True and saved["view_changes"] >= 1
    # a tx admitted by the primary an instant before kill -9 may never have been forwarded
    assert saved["committed_of_offered"] >= 0.9 * saved["offered"]
    config = (tmp_path / "out" / "net" / "node1" / "node.toml").read_text()
    assert 'transport = "tcp"' in config
