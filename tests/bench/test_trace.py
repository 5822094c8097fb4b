"""The trace report joins each sampled transaction's stages across nodes."""

from __future__ import annotations

import json
from pathlib import Path

from bench.trace import trace_report
from node.trace import Tracer


def write_logs(tmp_path: Path, lines: dict[int, list[tuple[str, str, int]]]) -> list[Path]:
    paths = []
    for node in range(4):
        path = tmp_path / f"node{node}.log"
        path.write_text("".join(json.dumps({"event": "trace", "stage": stage, "tx": tx,
                                            "t_ns": t_ms * 1_000_000}) + "\n"
                                for stage, tx, t_ms in lines.get(node, [])))  # fmt: skip
        paths.append(path)
    return paths


def test_gaps_follow_the_transaction_from_its_node_to_the_primary_and_back(
    tmp_path: Path,
) -> None:
    # tx "aa" enters at node 2 (a backup) and is proposed by node 0 (the primary)
    lines = {
        2: [("http_received", "aa", 100), ("admitted", "aa", 101), ("forward_written", "aa", 103),
            ("delivered", "aa", 130), ("stored", "aa", 134), ("answered", "aa", 135)],
        0: [("forward_received", "aa", 104), ("proposed", "aa", 110), ("delivered", "aa", 128)],
    }  # fmt: skip
    report = trace_report(write_logs(tmp_path, lines))
    gaps = {name: g["p50"] for name, g in report["gaps_ms"].items()}
    assert report["transactions"] == 1
    assert gaps == {"admit": 1, "forward_write": 2, "forward_arrive": 1, "wait_for_proposal": 6,
                    "consensus": 20, "store": 4, "answer": 1, "total": 35}  # fmt: skip


def test_the_sample_is_the_same_on_every_node() -> None:
    tracer = Tracer(8)
    hashes = [bytes([i, j]) * 16 for i in range(16) for j in range(16)]
    chosen = [h for h in hashes if tracer.sampled(h)]
    assert chosen == [h for h in hashes if Tracer(8).sampled(h)]
    assert 0 < len(chosen) < len(hashes) and not any(Tracer(0).sampled(h) for h in hashes)
