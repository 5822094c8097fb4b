"""Many seeded runs, a summary, and the exit status the CLI returns."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from sim.plan import FAULT_KINDS, SimParams
from sim.reconfig import RECONFIG_KINDS
from sim.world import RunResult, World


def run_one(params: SimParams) -> RunResult:
    return World(params).run()


def run_many(
    base: SimParams, runs: int, first_seed: int, progress: Callable[[int, RunResult], None]
) -> list[RunResult]:
    results = []
    for k in range(runs):
        result = run_one(replace(base, seed=first_seed + k))
        results.append(result)
        progress(k + 1, result)
    return results


def summarise(base: SimParams, results: list[RunResult]) -> dict[str, Any]:
    exercised: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for r in results:
        exercised.update(r.faults)
        rejected.update(r.rejected)
    failures = [r for r in results if not (r.safety_ok and r.liveness_ok)]
    return {
        "n": base.n,
        "byzantine": base.byzantine,
        "reconfig": base.reconfig,
        "faults_enabled": sorted(base.faults),
        "runs": len(results),
        "safety_violations": sum(not r.safety_ok for r in results),
        "liveness_failures": sum(r.safety_ok and not r.liveness_ok for r in results),
        "committed_blocks": sum(r.committed_blocks for r in results),
        "committed_txs": sum(r.committed_txs for r in results),
        "view_changes": sum(r.view_changes for r in results),
        "evidence": sum(r.evidence for r in results),
        "faults_exercised": {k: exercised[k] for k in FAULT_KINDS if k in base.faults}
        | ({k: exercised[k] for k in RECONFIG_KINDS} if base.reconfig else {}),
        "rejected": dict(sorted(rejected.items())),
        "failures": [r.as_dict() for r in failures[:20]],
    }


def print_summary(summary: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    faults = summary["faults_enabled"]
    narrowed = "" if len(faults) == len(FAULT_KINDS) else f" --faults {','.join(faults)}"
    print("fault kinds exercised (runs):", file=out)
    for kind, count in summary["faults_exercised"].items():
        print(f"  {kind:15} {count}", file=out)
    print("rejected inputs by reason:", file=out)
    for reason, count in summary["rejected"].items():
        print(f"  {reason:20} {count}", file=out)
    for failure in summary["failures"]:
        kind = "SAFETY" if not failure["safety_ok"] else "LIVENESS"
        print(f"{kind} failure seed={failure['seed']}: {failure['detail']}", file=out)
        print(f"  replay: metroledger sim --seed {failure['seed']} --n {summary['n']} "
              f"--byzantine {summary['byzantine']}{narrowed}", file=out)  # fmt: skip
    print(
        f"runs={summary['runs']} safety_violations={summary['safety_violations']} "
        f"liveness_failures={summary['liveness_failures']} "
        f"committed_blocks={summary['committed_blocks']} view_changes={summary['view_changes']}",
        file=out,
    )


def write_json(summary: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
