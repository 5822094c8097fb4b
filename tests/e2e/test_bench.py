"""The benchmark runner end to end on a short scenario with a partition that heals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.runner import execute
from bench.scenario import load_scenario
from node.netns import unavailable as netns_unavailable

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
    before, after = saved["verify_per_s_per_core_samples"]  # before and after the load
    assert before > 0 and after > 0
    assert abs(saved["verify_per_s_per_core"] - (before + after) / 2) <= 1  # rounded samples
    assert [f["what"] for f in saved["faults"]] == ["partition", "heal", "delay all"]
    assert saved["committed_of_offered"] == saved["offered"]  # nothing lost across the partition
    assert saved["admitted_not_committed"] == 0
    for name in ("summary.md", "throughput.png", "latency_cdf.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_a_crash_of_the_primary_is_carried_end_to_end(tmp_path: Path) -> None:
    """Real daemons, the primary killed and restarted; every node config the runner
    wrote has its admin listener on a Unix socket."""
    path = tmp_path / "crash.toml"
    path.write_text(
        'name = "tiny_crash"\nduration_s = 8\nwarmup_s = 1\n'
        '[load]\nmode = "open"\nrate_tps = 200\n'
        '[[faults]]\nat_s = 2\naction = "crash"\nnode = "primary"\n'
        '[[faults]]\nat_s = 4\naction = "restart"\n'
    )
    execute(load_scenario(path), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["safety_ok"] is True and saved["view_changes"] >= 1
    # a batch admitted by the primary an instant before kill -9 may never have been forwarded
    assert saved["committed_of_offered"] >= 0.9 * saved["offered"]
    assert saved["admitted_not_committed"] <= 10
    config = (tmp_path / "out" / "net" / "node1" / "node.toml").read_text()
    assert '[admin]\nlisten = "unix:' in config


NETNS = """
name = "tiny_netns"
hosts = "netns"
duration_s = 9
warmup_s = 1
[load]
mode = "open"
rate_tps = 200
[[faults]]
at_s = 2
action = "partition"
groups = [[0, 1], [2, 3]]
[[faults]]
at_s = 5
action = "heal"
[[faults]]
at_s = 6
action = "loss"
node = "all"
loss_pct = 5
"""


@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
def test_separate_hosts_in_namespaces_with_nftables_faults(tmp_path: Path) -> None:
    """Each node in its own namespace; the partition and the loss are nftables rules."""
    path = tmp_path / "netns.toml"
    path.write_text(NETNS)
    execute(load_scenario(path), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["scenario"]["hosts"] == "netns" and saved["safety_ok"] is True
    committed = {row["t_s"]: row["committed_tps"] for row in saved["timeline"]}
    assert committed[3] == 0  # no quorum on either side of the partition
    assert committed[7] > 0  # 5 % loss slows nothing down for long
    assert saved["committed_of_offered"] == saved["offered"]  # nothing lost
    node_log = (tmp_path / "out" / "net" / "node0" / "node.log").read_text()
    assert '"api": "http://10.77.' in node_log  # it really ran on its namespace's address
    assert not [ns for ns in os.popen("ip netns list").read().split() if ns.startswith("ml")]


def test_the_commit_waiting_closed_loop_reports_what_each_client_saw(tmp_path: Path) -> None:
    path = tmp_path / "commit.toml"
    path.write_text(
        'name = "tiny_commit"\nduration_s = 6\nwarmup_s = 1\n'
        '[load]\nmode = "closed_commit"\nclients = 8\n'
    )
    execute(load_scenario(path), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    loop = saved["closed_loop"]
    assert loop["clients"] == 8 and loop["samples"] > 50
    assert loop["per_client_ops_per_s"]["min"] > 0  # every client got commits
    assert 0 < loop["latency_ms"]["p50"] <= loop["latency_ms"]["p99"]
    # one transaction at a time per client: no more committed than clients x rounds
    assert saved["admitted_not_committed"] == 0 and saved["errors"] == 0
