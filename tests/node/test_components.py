"""The daemon's shape: only node/core.py touches the replica and the executor; files
stay small; long-polls wait each for their own wake-up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import trio
import trio.testing

from node.commits import Commits
from node.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
OWNED = {"replica", "executor"}  # the core's state
# the core itself (its loop and its delivery task, which runs inside it), the executor's
# own class, and the restore that builds the executor the core will own (before the core
# exists); sim/ and bench.micro_consensus are other shells of the pure replica and are not
# part of the daemon
ALLOWED = {ROOT / "node" / name for name in ("core.py", "delivery.py", "executor.py", "restore.py")}
DAEMON = sorted([*(ROOT / "node").glob("*.py"), *(ROOT / "metroledger").glob("*.py")])


def reads_of_owned_state(source: str) -> list[str]:
    """`replica.x`, `executor.x`, `a.replica.x`, `a.executor.x`, as written in the code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        name = (
            owner.id
            if isinstance(owner, ast.Name)
            else owner.attr
            if isinstance(owner, ast.Attribute)
            else None
        )
        if name in OWNED:
            found.append(f"line {node.lineno}: {name}.{node.attr}")
    return found


@pytest.mark.parametrize("path", [p for p in DAEMON if p not in ALLOWED], ids=lambda p: p.name)
def test_no_module_but_the_core_reads_the_replica_or_the_executor(path: Path) -> None:
    assert reads_of_owned_state(path.read_text()) == []


def test_the_check_itself_sees_such_reads() -> None:
    assert reads_of_owned_state("node.core.replica.view\nexecutor.state[1]\nx.replicas.y") == [
        "line 1: replica.view",
        "line 2: executor.state",
    ]


def test_the_daemon_is_small_and_no_node_file_is_large() -> None:
    assert len((ROOT / "node" / "daemon.py").read_text().splitlines()) < 200
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "node").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_node_imports_no_command_line_benchmark_or_simulator() -> None:
    for path in (ROOT / "node").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
        } | {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        assert not modules & {"bench", "sim", "metroledger"}, path.name


def test_two_long_polls_for_one_tx_the_shorter_times_out_the_longer_still_wakes() -> None:
    """Defect 6: pollers shared one event, and one whose wait expired removed it, so the
    commit never woke the others."""
    commits = Commits(Metrics())
    tx_hash = b"\x01" * 32
    results: dict[str, tuple[bool, float]] = {}

    async def poll(name: str, timeout_s: float) -> None:
        started = trio.current_time()
        woken = await commits.wait(tx_hash, timeout_s)
        results[name] = (woken, trio.current_time() - started)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll, "short", 1.0)
            nursery.start_soon(poll, "long", 30.0)
            await trio.sleep(2.0)  # the short one has given up by now
            assert "short" in results and "long" not in results
            commits.stored([tx_hash])

    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(main, clock=clock)
    assert results["short"] == (False, 1.0)
    assert results["long"] == (True, 2.0)  # woken at the commit, not at its timeout
    assert commits.waiters == {}  # nothing left behind


def test_a_commit_ends_the_admission_and_old_admissions_are_forgotten() -> None:
    commits = Commits(Metrics())
    commits.admitted([b"a", b"b"])
    commits.stored([b"a"])
    assert not commits.is_pending(b"a") and commits.is_pending(b"b")
    commits.forget_older_than(-1.0)
    assert commits.pending_count() == 0
