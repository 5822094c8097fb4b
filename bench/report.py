"""Benchmark reports: result.json, summary.md and plots; `bench compare A B`."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.loadgen import LoadLog
from bench.micro_consensus import machine

if TYPE_CHECKING:
    from bench.runner import Run


def read_log(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def commit_times(
    run: Run, ref: int
) -> tuple[dict[bytes, float], list[dict[str, Any]], dict[str, int]]:
    """tx hash -> wall time its block committed at node `ref` (a transaction its block
    holds but refused, as a replay say, is not committed: it changed nothing), that
    node's log lines, and the refusals in blocks by reason."""
    lines = read_log(run.nodes[ref].config.parent / "node.log")
    committed = {e["height"]: e["ts"] for e in lines if e.get("event") == "block_committed"}
    node = run.nodes[ref]
    height = int(node.get("/v1/blocks/latest")["height"])  # stored, not just delivered

    def fetch(h: int) -> tuple[int, list[str], list[list[Any]]]:
        block = node.get(f"/v1/blocks/{h}", timeout_s=10)
        return h, block["txs"], block["refused"]

    at: dict[bytes, float] = {}
    refused: Counter[str] = Counter()
    with ThreadPoolExecutor(8) as pool:
        for h, txs, refusals in pool.map(fetch, range(1, height + 1)):
            skipped = {index for index, _ in refusals}
            refused.update(reason.split(":")[0] for _, reason in refusals)
            for index, tx_hash in enumerate(txs):
                if h in committed and index not in skipped:
                    at[bytes.fromhex(tx_hash)] = committed[h]
    return at, lines, dict(refused)


def safety_check(run: Run) -> tuple[bool, int]:
    """Blocks are hash-chained: equal hashes at the lowest common height mean equal chains."""
    live = [d for i, d in enumerate(run.nodes) if i not in run.down]
    height = min(int(d.get("/v1/status")["height"]) for d in live)
    hashes = {d.get(f"/v1/blocks/{height}")["hash"] for d in live} if height else {""}
    return len(hashes) == 1, height


def analyse(
    run: Run,
    log: LoadLog,
    verify_samples: list[float],
    cpu: dict[int, float],
    memory: dict[int, float],
    load_end: float,
    blocks: int = 0,
) -> dict[str, Any]:
    sc = run.scenario
    steady = [i for i in range(len(run.nodes)) if i not in run.down | run.crashed]
    ref = min(steady or [i for i in range(len(run.nodes)) if i not in run.down])
    at, lines, refused_in_blocks = commit_times(run, ref)
    t0 = run.started_wall
    window = (t0 + sc.warmup_s, t0 + sc.duration_s)
    latencies = sorted(
        1000 * (at[h] - sent)
        for h, sent in log.submitted_at.items()
        if h in at and window[0] <= sent <= window[1]
    )
    in_window = sum(1 for ts in at.values() if window[0] <= ts <= window[1])
    throughput = in_window / (window[1] - window[0])
    per_second = Counter(int(ts - t0) for ts in at.values() if ts >= t0)
    offered = Counter(int(ts - t0) for ts in log.submitted_at.values())
    horizon = int(max(per_second, default=0)) + 1
    timeline = [
        {"t_s": s, "committed_tps": per_second.get(s, 0), "offered_tps": offered.get(s, 0)}
        for s in range(horizon)
    ]
    views = [e for e in lines if e.get("event") == "view_changed" and e["ts"] >= t0]
    cores = os.cpu_count() or 1
    verify_per_s = statistics.mean(verify_samples)
    crypto_limit = verify_per_s * cores / sc.nodes
    safe, safe_height = safety_check(run)
    lost = [h for h in log.admitted if h not in at]
    result: dict[str, Any] = {
        "scenario": sc.to_json(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "throughput_tps": round(throughput, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p90": round(percentile(latencies, 0.90), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(latencies[-1], 1) if latencies else None,
            "samples": len(latencies),
        },
        "offered": log.offered,
        "committed_of_offered": sum(1 for h in log.submitted_at if h in at),
        # a node said "pending" and no block holds it by the end: lost (should be 0)
        "admitted_not_committed": len(lost),
        "admitted_not_committed_at_s": sorted({round(log.submitted_at[h] - t0, 2) for h in lost})[
            :20
        ],
        "refused": log.refused,
        # in a block but refused by the contracts or as replays: not counted as committed
        "refused_in_blocks": refused_in_blocks,
        "errors": log.errors,
        "error_kinds": log.error_kinds,
        "verify_per_s_per_core": round(verify_per_s),
        # measured before and after the load: this machine's speed drifts by up to 40 %
        "verify_per_s_per_core_samples": [round(v) for v in verify_samples],
        "crypto_limit_tps": round(crypto_limit, 1),
        "crypto_limit_fraction": round(throughput / crypto_limit, 3) if crypto_limit else None,
        "view_changes": len(views),
        "faults": [{"t_s": round(t, 1), "what": label} for t, label in run.fault_marks],
        "cpu_seconds_per_node": cpu,
        "loadgen_cpu_seconds": round(log.cpu_seconds, 2),
        "peak_rss_mib_per_node": memory,
        "blocks_committed": blocks,  # while the CPU seconds were counted: cost per block
        "safety_ok": safe,
        "safety_checked_height": safe_height,
        "timeline": timeline,
        "latency_cdf_ms": [round(x, 1) for x in latencies[:: max(1, len(latencies) // 500)]],
    }
    result.update(cpu_per_tx(result))
    if log.client_commits:
        result["closed_loop"] = closed_loop_stats(log.client_commits, window)
    if sc.trace_every:
        from bench.trace import trace_report

        result["trace"] = trace_report([d.config.parent / "node.log" for d in run.nodes])
    result.update(fault_recovery(timeline, run, views, t0))
    if sc.load.ramp_tps:
        result["saturation"] = saturation(timeline, sc)
    write_reports(result, run.out)
    return result


def closed_loop_stats(
    commits: dict[int, list[tuple[float, float]]], window: tuple[float, float]
) -> dict[str, Any]:
    """What each commit-waiting client saw inside the measured window: ops/s and latency
    overall, and the spread of the clients' own ops/s and medians."""
    span = window[1] - window[0]
    per_client = {c: sorted(ms for at, ms in done if window[0] <= at <= window[1])
                  for c, done in commits.items()}  # fmt: skip
    every = sorted(ms for values in per_client.values() for ms in values)
    rates = sorted(len(v) / span for v in per_client.values())
    medians = sorted(percentile(v, 0.5) for v in per_client.values() if v)

    def spread(values: list[float]) -> dict[str, float]:
        return {"min": round(values[0], 1), "median": round(percentile(values, 0.5), 1),
                "max": round(values[-1], 1)} if values else {}  # fmt: skip

    return {
        "clients": len(commits),
        "ops_per_s": round(len(every) / span, 1),
        "latency_ms": {q: round(percentile(every, x), 1)
                       for q, x in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
        "samples": len(every),
        "per_client_ops_per_s": spread(rates),
        "per_client_p50_ms": spread(medians),
    }  # fmt: skip


def fault_recovery(
    timeline: list[dict[str, Any]], run: Run, views: list[dict[str, Any]], t0: float
) -> dict[str, Any]:
    """Seconds from the first view change after a crash until throughput is back above 70 %
    of its mean before the crash."""
    crashes = [t for t, label in run.fault_marks if label.startswith("crash")]
    if not crashes:
        return {}
    crash = crashes[0]
    before = [p["committed_tps"] for p in timeline if run.scenario.warmup_s <= p["t_s"] < crash]
    baseline = statistics.mean(before) if before else 0.0
    changed = [e["ts"] - t0 for e in views if e["ts"] - t0 >= crash]
    if not changed or not baseline:
        return {"recovery": {"baseline_tps": baseline, "view_change_s": None, "recovered_s": None}}
    vc = changed[0]
    back = next(
        (p["t_s"] for p in timeline if p["t_s"] >= vc and p["committed_tps"] >= 0.7 * baseline),
        None,
    )
    return {
        "recovery": {
            "baseline_tps": round(baseline, 1),
            "view_change_s": round(vc - crash, 2),
            "back_above_70pct_s_after_view_change": None
            if back is None
            else round(max(0.0, back + 1 - vc), 2),
        }
    }


def saturation(timeline: list[dict[str, Any]], sc: Any) -> list[dict[str, Any]]:
    steps = []
    for k, rate in enumerate(sc.load.ramp_tps):
        lo, hi = k * sc.load.ramp_step_s + 2, (k + 1) * sc.load.ramp_step_s
        got = [p["committed_tps"] for p in timeline if lo <= p["t_s"] < hi]
        steps.append(
            {"offered_tps": rate, "committed_tps": round(statistics.mean(got), 1) if got else 0.0}
        )
    return steps


def write_reports(result: dict[str, Any], out: Path) -> None:
    (out / "result.json").write_text(json.dumps(result, indent=2))
    (out / "summary.md").write_text(summary(result))
    plot(result, out)


def summary(r: dict[str, Any]) -> str:
    sc, lat = r["scenario"], r["latency_ms"]
    lines = [
        f"# {sc['name']}",
        "",
        sc.get("description", ""),
        "",
        f"{sc['nodes']} nodes, {sc['suite']}, {sc['duration_s']:g} s "
        f"(warm-up {sc['warmup_s']:g} s), load {sc['load']['mode']} loop; machine "
        f"{r['machine']['cpu']}, {r['machine']['cores']} cores; {r['date']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| committed throughput | {r['throughput_tps']} tx/s |",
        f"| latency p50 / p90 / p99 / max | {lat['p50']} / {lat['p90']} / {lat['p99']} "
        f"/ {lat['max']} ms |",
        f"| crypto limit (verify/s x cores / n) | {r['crypto_limit_tps']} tx/s "
        f"({r['verify_per_s_per_core']}/s per core, the mean of "
        f"{' and '.join(map(str, r.get('verify_per_s_per_core_samples', [])))} measured before "
        f"and after the load); achieved {r['crypto_limit_fraction']} |",
        f"| offered / committed of offered | {r['offered']} / {r['committed_of_offered']} |",
        f"| admitted but never committed (lost) | {r.get('admitted_not_committed')} |",
        f"| in blocks but refused (not counted) | {r.get('refused_in_blocks', {})} |",
        f"| refused / errors | {r['refused']} / {r['errors']} {r.get('error_kinds') or ''}".rstrip()
        + " |",
        f"| view changes | {r['view_changes']} |",
        f"| CPU s per node | {r['cpu_seconds_per_node']} |",
        f"| CPU per committed tx and node | {r.get('cpu_us_per_tx_per_node')} µs = "
        f"{r.get('cpu_per_tx_per_node_in_verifications')} verification times |",
        f"| CPU s of the load generator | {r.get('loadgen_cpu_seconds', 'not recorded')} |",
        f"| peak RSS MiB per node | {r['peak_rss_mib_per_node']} |",
        f"| safety (same chain on all running nodes) | {r['safety_ok']} at height "
        f"{r['safety_checked_height']} |",
    ]
    if r.get("recovery"):
        lines.append(f"| recovery after the crash | {r['recovery']} |")
    if r.get("faults"):
        lines.append(f"| faults | {r['faults']} |")
    for step in r.get("saturation", []):
        lines.append(
            f"| offered {step['offered_tps']:g} tx/s | committed {step['committed_tps']} tx/s |"
        )
    lines += ["", "![throughput](throughput.png) ![latency CDF](latency_cdf.png)", ""]
    return "\n".join(lines)


def plot(r: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    t = [p["t_s"] for p in r["timeline"]]
    ax.plot(t, [p["committed_tps"] for p in r["timeline"]], label="committed tx/s")
    ax.plot(t, [p["offered_tps"] for p in r["timeline"]], label="offered tx/s", alpha=0.6)
    for fault in r["faults"]:
        ax.axvline(fault["t_s"], color="red", linestyle="--", alpha=0.7)
        ax.annotate(fault["what"], (fault["t_s"], ax.get_ylim()[1] * 0.9), fontsize=7, rotation=90)
    ax.set(xlabel="time (s)", ylabel="tx/s", title=r["scenario"]["name"])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    cdf = r["latency_cdf_ms"]
    ax.plot(cdf, [i / max(1, len(cdf) - 1) for i in range(len(cdf))])
    ax.set(
        xlabel="latency submit -> commit (ms)", ylabel="fraction", xscale="log", title="latency CDF"
    )
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=100)
    plt.close(fig)
    if r.get("saturation"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        s = r["saturation"]
        ax.plot([x["offered_tps"] for x in s], [x["committed_tps"] for x in s], marker="o")
        ax.set(xlabel="offered tx/s", ylabel="committed tx/s", title="throughput vs offered load")
        fig.tight_layout()
        fig.savefig(out / "saturation.png", dpi=100)
        plt.close(fig)


CPU_ROWS = [
    ("cpu_us/tx/node", "cpu_us_per_tx_per_node"),
    ("cpu/tx/node (verif. times)", "cpu_per_tx_per_node_in_verifications"),
]


def cpu_per_tx(r: dict[str, Any]) -> dict[str, float | None]:
    """Mean node CPU per committed transaction, in µs and in verification times (that
    CPU over the time of one verification on this machine, measured in the same run).
    The second cancels most of the machine's speed drift; with busy cores the fraction
    of the crypto limit is about its inverse. Computed from the stored fields, so
    results written before these fields existed compare too."""
    cpu, committed = r.get("cpu_seconds_per_node") or {}, r.get("committed_of_offered")
    if not cpu or not committed:
        return {"cpu_us_per_tx_per_node": None, "cpu_per_tx_per_node_in_verifications": None}
    us = statistics.mean(cpu.values()) / committed * 1e6
    return {
        "cpu_us_per_tx_per_node": round(us, 1),
        "cpu_per_tx_per_node_in_verifications": round(us * r["verify_per_s_per_core"] / 1e6, 2),
    }


def compare(a: Path, b: Path) -> str:
    ra, rb = (json.loads((p / "result.json" if p.is_dir() else p).read_text()) for p in (a, b))
    rows = [("throughput_tps", ra["throughput_tps"], rb["throughput_tps"])]
    rows += [
        (f"latency_ms.{k}", ra["latency_ms"][k], rb["latency_ms"][k]) for k in ("p50", "p90", "p99")
    ]
    rows += [("crypto_limit_tps", ra["crypto_limit_tps"], rb["crypto_limit_tps"])]
    ca, cb = cpu_per_tx(ra), cpu_per_tx(rb)
    rows += [(name, ca[key], cb[key]) for name, key in CPU_ROWS]
    out = [f"{'metric':26} {'A':>10} {'B':>10} {'B/A':>7}"]
    for name, x, y in rows:
        ratio = f"{y / x:.2f}" if x and y is not None else "-"
        out.append(f"{name:26} {x!s:>10} {y!s:>10} {ratio:>7}")
    return "\n".join(out)
