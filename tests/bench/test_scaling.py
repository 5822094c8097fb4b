"""The scaling projection's parts: the simulator's counts and the least-squares fit."""

from __future__ import annotations

from typing import Any

from bench.scaling import count_messages, fit_costs, project


def test_the_simulator_counts_two_votes_per_member_and_three_link_delays() -> None:
    four, seven = count_messages(4), count_messages(7)
    # each node sends a prepare and a commit to n - 1 others, plus the primary's share
    # of pre-prepares and a checkpoint every 16 blocks
    assert 2 * 3 <= four["frames_per_block_node"] < 2 * 3 + 1
    assert 2 * 6 <= seven["frames_per_block_node"] < 2 * 6 + 1
    assert 2.9 <= four["delays_to_commit"] <= 3.2  # pre-prepare, prepare, commit


def run(n: int, blocks: int, per_block_tx: float, cpu_per_block_us: float) -> dict[str, Any]:
    return {"cpu_seconds_per_node": {str(i): cpu_per_block_us * blocks / 1e6 for i in range(n)},
            "blocks_committed": blocks, "throughput_tps": per_block_tx * blocks / 10,
            "scenario": {"duration_s": 10}}  # fmt: skip


def test_the_fit_recovers_known_costs_and_the_projection_follows_them() -> None:
    frames = {4: 6.0, 7: 12.0, 10: 18.0}
    truth = (5000.0, 200.0, 500.0)  # fixed, per tx, per frame (us)

    def cpu(n: int, b: float) -> float:
        return truth[0] + b * truth[1] + frames[n] * truth[2]

    runs = [run(4, 100, 24, cpu(4, 24)), run(4, 50, 130, cpu(4, 130)),
            run(7, 80, 24, cpu(7, 24)), run(10, 60, 20, cpu(10, 20))]  # fmt: skip
    costs = fit_costs(runs, frames)
    assert (costs["fixed_us"], costs["per_tx_us"], costs["per_frame_us"]) == truth
    counts = {n: {"frames_per_block_node": f, "delays_to_commit": 3.0} for n, f in frames.items()}
    rows = project(costs, counts, batch=24, clients=50, delay_ms=50)
    assert [r["n"] for r in rows] == [4, 7, 10]
    assert rows[0]["cpu_bound_tps"] == round(24 / (cpu(4, 24) / 1e6))
    assert rows[0]["closed_loop_latency_ms"] == round(1.5 * (150 + cpu(4, 24) / 1000) + 50, 1)
