"""What scales: message counts from the simulator, CPU costs fitted to measured runs,
and the projection for n = 4..31 with one core per node, on a LAN and on 50 ms links.

The simulator runs the real replica with no faults and counts, per committed block and
node, the consensus frames received and sent (a broadcast is n - 1 frames) and the
message delays from a request's arrival at the primary to its commit everywhere. The
measured runs (`bench run`, each with `blocks_committed` and CPU seconds per node) give
the CPU of a node per block as

    cpu(n, b) = fixed + b * per_tx + frames(n) * per_frame

fitted by least squares. One core per node then commits at most b / cpu(n, b) blocks'
worth of transactions a second; with one-way link delay d, a block takes
delays(n) * d + cpu(n, b) from proposal to commit, and a closed loop of C clients with
one block in flight waits about 1.5 such rounds per request (the block in flight, then
its own), so it commits about C / (1.5 round + d) a second.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from consensus.events import Deliver
from sim.plan import FaultPlan, SimParams
from sim.world import World

SIZES = (4, 7, 10, 13, 16, 19, 22, 25, 28, 31)


class _SteadyDelay(FaultPlan):
    """Every link delays by the same d for the whole run (no healing to 1-8 ms)."""

    def healed(self) -> FaultPlan:
        return self


def count_messages(n: int, batch: int = 24, blocks: int = 40, delay_ms: int = 50) -> dict[str, Any]:
    """Frames per block and node, and message delays from a request to its commit at every
    replica (the fastest request: no queueing), for n replicas."""
    params = SimParams(n=n, byzantine=0, faults=frozenset(), requests=batch * blocks,
                       clients=batch, fault_phase_ms=2, max_time_ms=600_000)  # fmt: skip
    world = World(params)
    world.cfg = replace(world.cfg, batch_max_txs=batch, checkpoint_interval=16,
                        watermark_window=64)  # fmt: skip
    world.replicas = [world._boot(i) for i in range(n)]
    world.plan = _SteadyDelay(kinds=frozenset(), delay_ms=(delay_ms, delay_ms))
    frames = [0]
    transmit = world._transmit

    def counted(src: int, dst: int, data: bytes) -> None:
        frames[0] += 1
        transmit(src, dst, data)

    arrivals: dict[tuple[bytes, int], int] = {}
    done: dict[tuple[bytes, int], int] = {}
    perform, send = world._perform, world._client_send

    def observed(i: int, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Deliver):
                for tx in action.block.txs:
                    done[tx.key] = max(done.get(tx.key, 0), world.now_ms)
        perform(i, actions)

    def timed(client: int, tx: Any) -> None:
        arrivals.setdefault(tx.key, world.now_ms)
        send(client, tx)

    world._transmit, world._perform, world._client_send = counted, observed, timed  # type: ignore[method-assign]
    result = world.run()
    assert result.safety_ok and result.liveness_ok, result.detail
    fastest = min(done[k] - arrivals[k] for k in done if k in arrivals)
    height = result.committed_blocks
    return {"n": n, "blocks": height,
            "frames_per_block_node": round(frames[0] / max(1, height) / n, 2),
            "delays_to_commit": round(fastest / delay_ms, 2)}  # fmt: skip


def fit_costs(runs: list[dict[str, Any]], frames: dict[int, float]) -> dict[str, float]:
    """Least squares of CPU per block and node = fixed + b * per_tx + frames * per_frame."""
    rows, cpu = [], []
    for r in runs:
        n, blocks = len(r["cpu_seconds_per_node"]), r["blocks_committed"]
        txs = r["throughput_tps"] * r["scenario"]["duration_s"]
        per_node = sum(r["cpu_seconds_per_node"].values()) / n
        rows.append([1.0, txs / blocks, frames[n]])
        cpu.append(per_node / blocks * 1e6)
    fixed, per_tx, per_frame = _least_squares(rows, cpu)
    return {"fixed_us": round(fixed, 1), "per_tx_us": round(per_tx, 1),
            "per_frame_us": round(per_frame, 1)}  # fmt: skip


def _least_squares(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Solve the normal equations (A^T A) x = A^T y by Gaussian elimination."""
    k = len(rows[0])
    m = [[sum(r[i] * r[j] for r in rows) for j in range(k)]
         + [sum(r[i] * y for r, y in zip(rows, ys, strict=True))] for i in range(k)]  # fmt: skip
    for col in range(k):
        pivot = max(range(col, k), key=lambda i: abs(m[i][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for i in range(k):
            if i != col:
                factor = m[i][col] / m[col][col]
                m[i] = [a - factor * b for a, b in zip(m[i], m[col], strict=True)]
    return [m[i][k] / m[i][i] for i in range(k)]


def project(costs: dict[str, float], counts: dict[int, dict[str, float]],
            batch: int, clients: int, delay_ms: float) -> list[dict[str, Any]]:  # fmt: skip
    """Per n: CPU-bound throughput with one core per node, and the closed loop's."""
    out = []
    for n, c in sorted(counts.items()):
        cpu_us = (
            costs["fixed_us"]
            + batch * costs["per_tx_us"]
            + c["frames_per_block_node"] * costs["per_frame_us"]
        )
        round_ms = c["delays_to_commit"] * delay_ms + cpu_us / 1000
        latency_ms = 1.5 * round_ms + delay_ms
        bound = batch / (cpu_us / 1e6)
        messages_us = c["frames_per_block_node"] * costs["per_frame_us"]
        tps = min(clients / (latency_ms / 1000), bound)  # CPU-bound: requests queue
        out.append({"n": n, "cpu_ms_per_block": round(cpu_us / 1000, 2),
                    "cpu_bound_tps": round(bound), "closed_loop_tps": round(tps),
                    "closed_loop_latency_ms": round(max(latency_ms, 1000 * clients / tps), 1),
                    "message_share": round(messages_us / cpu_us, 2)})  # fmt: skip
    return out


def project_from(results: list[Path], batch: int, clients: int) -> dict[str, Any]:
    """The fit and the projection (LAN: 0.3 ms links; WAN: 50 ms) from result folders."""
    runs = [json.loads((p / "result.json" if p.is_dir() else p).read_text()) for p in results]
    for p, r in zip(results, runs, strict=True):
        if not r.get("blocks_committed"):
            raise ValueError(f"{p}: no blocks_committed (recorded by bench run since issue 21)")
    counts = {n: count_messages(n, batch) for n in SIZES}
    costs = fit_costs(runs, {n: c["frames_per_block_node"] for n, c in counts.items()})
    return {
        "method": __doc__,
        "inputs": [{"path": str(p), "n": len(r["cpu_seconds_per_node"]),
                    "blocks": r["blocks_committed"], "tps": r["throughput_tps"],
                    "machine": r.get("machine")} for p, r in zip(results, runs, strict=True)],
        "simulator": list(counts.values()),
        "costs": costs,
        "projection": {link: project(costs, counts, batch, clients, d)
                       for link, d in (("lan_0.3ms", 0.3), ("wan_50ms", 50.0))},
    }  # fmt: skip
