"""`metroledger bench run SCENARIO`: real daemons, a load that can outrun them, faults.

The runner starts a fresh local network (separate daemon processes on loopback, or with
`hosts = "netns"` one network namespace per node; SQLite on disk), measures this
machine's signature verification rate, pre-signs the load, offers it while applying the
fault schedule and printing progress, drains, then joins every submitted transaction
with the commit time of its block (from node logs) and checks that all running nodes
hold the same chain.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import (
    LoadLog,
    closed_loop,
    closed_loop_commit,
    open_loop,
    presign,
    tx_hashes,
)
from bench.scenario import Fault, Scenario
from ledger.crypto import get_suite
from node.load import chain_of
from node.netns import API_PORT, P2P_PORT, NetnsHosts, unavailable
from node.testnet import UNREACHABLE, Daemon, daemons, init_testnet, stop_all, wait_ready
from node.tls import CA_CERT, client_context

DRAIN_S = 30.0


@dataclass
class Run:
    scenario: Scenario
    out: Path
    nodes: list[Daemon] = field(default_factory=list)
    down: set[int] = field(default_factory=set)
    crashed: set[int] = field(default_factory=set)  # ever: not a reference for timelines
    # restarted, not yet answering: the load skips them until they do (a client sending
    # there would only meet a refused connection while the daemon starts up)
    starting: dict[int, float] = field(default_factory=dict)  # node -> when last checked
    fault_marks: list[tuple[float, str]] = field(default_factory=list)
    started_wall: float = 0.0
    cpu_start: dict[int, float] = field(default_factory=dict)
    hosts: NetnsHosts | None = None  # hosts = "netns": the namespaces the nodes run in

    def tls_context(self) -> ssl.SSLContext | None:
        """The client context for the network's APIs, when they serve TLS."""
        ca = self.out / "net" / "tls" / CA_CERT
        return client_context(ca) if ca.exists() else None

    def live_urls(self) -> list[str]:
        now = time.monotonic()
        for i, checked in list(self.starting.items()):
            if now - checked >= 0.1:  # at most ten readiness checks a second per node
                self.starting[i] = now
                if self.nodes[i].is_ready():
                    del self.starting[i]
        skip = self.down | set(self.starting)
        return [d.api for i, d in enumerate(self.nodes) if i not in skip]

    def status(self) -> dict[str, Any] | None:
        for i, d in enumerate(self.nodes):
            if i not in self.down:
                try:
                    return dict(d.get("/v1/status", timeout_s=2))
                except UNREACHABLE:
                    continue
        return None


def verify_rate(suite_name: str, seconds: float = 1.0) -> float:
    """Signature verifications per second on one core of this machine."""
    suite = get_suite(suite_name)
    key = suite.keypair_from_seed(b"bench")
    message = b"x" * 250
    signature = suite.sign(key.secret_key, message)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            suite.verify(key.public_key, message, signature)
        count += 50
    return count / (time.perf_counter() - started)


def start_network(run: Run) -> None:
    sc = run.scenario
    directory = run.out / "net"
    if (directory / "genesis.json").exists():  # a previous run's network: ours to replace
        shutil.rmtree(directory)
    hosts = run.hosts
    init_testnet(
        directory, sc.nodes, sc.suite,
        p2p_port=P2P_PORT if hosts else 0, api_port=API_PORT if hosts else 0,
        protocol=sc.protocol,
        hosts=[hosts.ip(i) for i in range(sc.nodes)] if hosts else None, tls=sc.tls,
    )  # fmt: skip
    if sc.trace_every:  # every node traces the same sample of transactions
        for config in directory.glob("node*/node.toml"):
            text = config.read_text()
            config.write_text(
                text.replace("[node]\n", f"[node]\ntrace_every = {sc.trace_every}\n", 1)
            )
    run.nodes = daemons(directory)
    for i, d in enumerate(run.nodes):
        d.prefix = tuple(run.hosts.prefix(i)) if run.hosts else ()
        d.start()
    wait_ready(run.nodes)


def apply_fault(run: Run, fault: Fault) -> str:
    """Carry out one scheduled fault; returns a label for the plots."""
    status = run.status() or {"primary": 0}
    if fault.node == "primary":
        target = int(status["primary"])
    else:
        target = -1 if fault.node == "all" else int(fault.node)
    if fault.action == "crash":
        run.nodes[target].kill()
        run.down.add(target)
        run.crashed.add(target)
        return f"crash node{target}"
    if fault.action == "restart":
        crashed = sorted(run.down) if fault.node == "primary" else [target]
        for i in crashed:
            run.nodes[i].start()
            run.down.discard(i)
            run.starting[i] = 0.0
        return "restart " + ",".join(f"node{i}" for i in crashed)
    rules: dict[int, dict[str, Any]] = {i: {} for i in range(len(run.nodes))}
    if fault.action == "partition":
        for group in fault.groups:
            others = [m for g in fault.groups if g is not group for m in g]
            for member in group:
                rules[member] = {"drop_to": others}
    elif fault.action in ("delay", "loss"):
        links = {
            "delay_ms": fault.delay_ms,
            "jitter_ms": fault.jitter_ms,
            "loss_pct": fault.loss_pct,
        }
        targets = range(len(run.nodes)) if fault.node == "all" else [target]
        for i in targets:
            rules[i] = dict(links, seed=i)
    for i, body in rules.items():  # heal and clear send empty rules
        if run.hosts is not None:  # drops and loss in the kernel; delay stays in the transport
            run.hosts.set_faults(i, body.pop("drop_to", []), body.pop("loss_pct", 0))
        if i not in run.down:
            post_faults(run.nodes[i], body)
    return f"{fault.action} {fault.node}" if fault.action in ("delay", "loss") else fault.action


def post_faults(node: Daemon, body: dict[str, Any], attempts: int = 3) -> None:
    """POST the rules to the node's admin socket, retried: a node at saturation may answer
    late; a fault it never takes fails the run."""
    for attempt in range(attempts):
        try:
            status, answer = node.admin_post("/v1/admin/faults", body)
        except UNREACHABLE:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
            continue
        if status != 200:
            raise RuntimeError(f"{node.config.parent.name} refused the faults {body}: {answer}")
        return


async def schedule_faults(run: Run) -> None:
    started = time.monotonic()
    for fault in sorted(run.scenario.faults, key=lambda f: f.at_s):
        await asyncio.sleep(max(0.0, started + fault.at_s - time.monotonic()))
        label = await asyncio.to_thread(apply_fault, run, fault)
        run.fault_marks.append((time.time() - run.started_wall, label))
        print(f"\n[{fault.at_s:5.1f}s] fault: {label}", file=sys.stderr)


async def show_progress(run: Run, log: LoadLog) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(2.0)
        status = await asyncio.to_thread(run.status)
        if status:
            print(
                f"\r{time.monotonic() - started:5.1f}s  offered {log.offered:>7}  height "
                f"{status['height']:>6}  view {status['view']}  "
                f"mempool {status['mempool_size']:>6}",
                end="",
                file=sys.stderr,
            )


async def drive(run: Run, txs: list[bytes], hashes: list[bytes], log: LoadLog) -> None:
    sc = run.scenario
    tasks = [
        asyncio.create_task(schedule_faults(run)),
        asyncio.create_task(show_progress(run, log)),
    ]
    try:
        tls = run.tls_context()
        if sc.load.mode == "open":
            await open_loop(run.live_urls, txs, hashes, sc.load.rate_at, sc.duration_s, log,
                            tls=tls)  # fmt: skip
        elif sc.load.mode == "closed_commit":
            await closed_loop_commit(
                run.live_urls, txs, hashes, sc.load.clients, sc.duration_s, log, tls
            )
        else:
            await closed_loop(run.live_urls, txs, hashes, sc.load.clients, sc.load.batch,
                              sc.duration_s, log, tls)  # fmt: skip
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    print(file=sys.stderr)
    for outcome in outcomes:  # a fault that could not be applied must not pass unseen
        if isinstance(outcome, Exception):
            raise RuntimeError(f"the fault schedule failed: {outcome!r}") from outcome


def set_up_records(run: Run, count: int, chain: bytes) -> list[bytes]:
    """Verification records as the load, once their institution and meters are committed."""
    from bench.records import verification_load
    from node.load import submit_all

    setup, records = verification_load(run.scenario.suite, run.out / "net", count, chain)
    hashes = submit_all(run.live_urls(), setup, run.scenario.suite, run.tls_context())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            node = run.nodes[0]
            if all(node.get(f"/v1/tx/{h}")["status"] == "committed" for h in hashes):
                return records
        except UNREACHABLE:  # not seen by that node yet (404), or busy
            pass
        time.sleep(0.5)
    raise RuntimeError("the set-up transactions of the verification load did not commit")


def load_size(sc: Scenario) -> int:
    if sc.load.mode in ("closed", "closed_commit"):
        return int(sc.duration_s * 6_000)  # more than 4 daemons on 2 cores commit
    peak = max(sc.load.ramp_tps or (sc.load.rate_tps,))
    return int(peak * sc.duration_s * 1.05) + 1000


def drain(run: Run) -> None:
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        try:
            statuses = [d.get("/v1/status") for i, d in enumerate(run.nodes) if i not in run.down]
        except UNREACHABLE:  # a node too busy to answer in time: keep waiting
            time.sleep(0.5)
            continue
        if all(s["mempool_size"] == 0 for s in statuses):
            return
        time.sleep(0.25)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def execute(sc: Scenario, out: Path) -> dict[str, Any]:
    """Run the scenario; returns the raw material of the report."""
    from bench.report import analyse

    out.mkdir(parents=True, exist_ok=True)
    run = Run(sc, out)
    if sc.hosts == "netns":
        if (reason := unavailable()) is not None:
            raise RuntimeError(reason)
        run.hosts = NetnsHosts(sc.nodes)
    print(f"scenario {sc.name}: {sc.nodes} nodes, {sc.suite}, {sc.duration_s:g}s", file=sys.stderr)
    rates = [verify_rate(sc.suite)]
    try:
        if run.hosts is not None:
            run.hosts.create()
        start_network(run)
        count = load_size(sc)
        print(f"pre-signing {count} transactions", file=sys.stderr)
        chain = chain_of(run.out / "net" / "genesis.json")
        if sc.load.tx_kind == "verification":
            txs = set_up_records(run, count, chain)
        else:
            txs = presign(sc.suite, count, chain, sc.load.payload_bytes, jobs=os.cpu_count() or 1)
        hashes = tx_hashes(sc.suite, txs)
        pids = {i: d.process.pid for i, d in enumerate(run.nodes) if d.process}
        cpu_start = {i: cpu_seconds(pid) for i, pid in pids.items()}
        height_start = (run.status() or {}).get("height", 0)
        log = LoadLog()
        run.started_wall = time.time()
        cpu_before = time.process_time()
        asyncio.run(drive(run, txs, hashes, log))
        log.cpu_seconds = time.process_time() - cpu_before
        load_end = time.time()
        drain(run)
        cpu = {
            i: round(cpu_seconds(d.process.pid) - cpu_start.get(i, 0.0), 2)
            for i, d in enumerate(run.nodes)
            if d.process and d.process.poll() is None and i not in run.down
        }
        memory = {
            i: round(peak_rss_mib(d.process.pid), 1)
            for i, d in enumerate(run.nodes)
            if d.process and d.process.poll() is None
        }
        blocks = (run.status() or {}).get("height", 0) - height_start  # while CPU was counted
        rates.append(verify_rate(sc.suite))  # the nodes are idle now
        return analyse(run, log, rates, cpu, memory, load_end, blocks)
    finally:
        stop_all(run.nodes)
        if run.hosts is not None:
            run.hosts.destroy()
