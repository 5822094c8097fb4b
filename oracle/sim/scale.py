"""`metroledger oracle simulate` at fleet scale: vehicles and smart meters, in several
processes, through the SDK's gateways (oracle.gateway).

The parent enrols every device (the manufacturer registers, the authorities endorse:
batches of signed transactions, each waited for), then starts `processes` workers. Each
worker takes every P-th vehicle and meter and offers their readings open loop at its
share of the rates: vehicles send their own readings, meters report through data
concentrators (`concentrators`, each batching its meters' readings into one request).
All of a worker's gateways share one keep-alive connection pool and one journal. The
workers report progress twice a second; at the end each reports its outcomes, its
commit latencies and its CPU time, which over the readings it submitted is the SDK's
CPU per reading (signing, journaling, sending, reading the answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import queue
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.crypto import KeyPair, get_suite
from ledger.readings import EndorseDevice, RegisterDevice, SequencedSigner
from ledger.types import Transaction, join_encoded
from oracle.client import run
from oracle.gateway import Gateway
from oracle.http_pool import HttpError, HttpPool
from oracle.journal import Journal
from oracle.sim.fleet import Fleet, FleetConfig, MeterFleet, tank_model
from oracle.sim.run import ACCEPTABLE_AGAIN, sim_device_key

ENROL_BATCH = 500
TICK_S = 0.01


@dataclass(frozen=True)
class ScaleConfig:
    fleet: FleetConfig
    meters: int = 0
    vehicle_rate: float = 200.0  # refuel readings offered per second, all processes
    meter_rate: float = 0.0  # meter readings offered per second
    duration_s: float = 10.0
    processes: int = 1
    concentrators: int = 0  # 0: one per 2,000 meters
    journal_dir: Path = Path("oracle-journal")
    drain_s: float = 60.0  # how long the workers wait for the last outcomes

    def __post_init__(self) -> None:
        if self.processes < 1 or self.meters < 0 or self.duration_s <= 0:
            raise ValueError("processes >= 1, meters >= 0, duration > 0")
        if self.vehicle_rate < 0 or self.meter_rate < 0 or self.vehicle_rate + self.meter_rate == 0:
            raise ValueError("offer some readings: --rate or --meter-rate above 0")
        if self.meter_rate and not self.meters:
            raise ValueError("--meter-rate needs --meters")

    @property
    def concentrator_count(self) -> int:
        return self.concentrators or max(1, -(-self.meters // 2000))


def device_ids(cfg: ScaleConfig) -> list[tuple[str, str, str]]:
    """(device id, kind, tank model) of every simulated device."""
    vehicles = [(v.vehicle_id, "vehicle", tank_model(v.tank_ml)) for v in Fleet(cfg.fleet).vehicles]
    meters = [(m.meter_id, "meter", "") for m in MeterFleet(cfg.meters, cfg.fleet.seed).meters]
    return vehicles + meters


@dataclass
class ScaleReport:
    submitted: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    offer_s: float = 0.0  # the offering phase, in the slowest worker
    elapsed_s: float = 0.0  # until the last outcome
    requests: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        committed = self.outcomes.get("committed", 0)

        def pct(q: float) -> float | None:
            return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        return {"submitted": self.submitted, "outcomes": dict(self.outcomes),
                "reasons": dict(self.reasons), "requests": self.requests,
                "offer_s": round(self.offer_s, 2), "elapsed_s": round(self.elapsed_s, 2),
                "committed_per_s": round(committed / self.elapsed_s, 1) if self.elapsed_s else 0,
                "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
                "sdk_cpu_us_per_reading": round(1e6 * self.cpu_s / max(1, self.submitted), 1),
                }  # fmt: skip


async def enrol(urls: list[str], suite: str, cfg: ScaleConfig, maker: KeyPair,
                authorities: list[KeyPair], say: Callable[[str], None]) -> bytes:  # fmt: skip
    """Register and endorse every device; the chain hash."""
    pool = HttpPool(per_host=8)
    try:
        status = json.loads((await pool.get(urls[0], "/v1/status"))[1])
        chain = bytes.fromhex(status["chain_hash"])
        signer = SequencedSigner(get_suite(suite), chain)
        for key in (maker, *authorities):
            raw = (await pool.get(urls[0], f"/v1/clients/{key.public_key.hex()}"))[1]
            signer.resume(key.public_key, int(json.loads(raw)["committed_high_seq"]))
        if cfg.fleet.calibrated_tanks:
            calibrations = [signer.sign(authorities[0], c)
                            for c in Fleet(cfg.fleet).tank_calibrations()]  # fmt: skip
            await submit_waiting(pool, urls, calibrations, "tanks", say)
        devices = device_ids(cfg)
        keys = {d: sim_device_key(suite, cfg.fleet.seed, d).public_key for d, _, _ in devices}
        registrations = [signer.sign(maker, RegisterDevice(d, kind, keys[d], "sim", "2", tank))
                         for d, kind, tank in devices]  # fmt: skip
        await submit_waiting(pool, urls, registrations, "register", say)
        endorsements = [signer.sign(a, EndorseDevice(d, keys[d]))
                        for d, _, _ in devices for a in authorities]  # fmt: skip
        await submit_waiting(pool, urls, endorsements, "endorse", say)
        return chain
    finally:
        await pool.aclose()


async def submit_waiting(pool: HttpPool, urls: list[str], txs: list[Transaction], phase: str,
                         say: Callable[[str], None]) -> None:  # fmt: skip
    """In batches, each waited for; RuntimeError on a refusal that is not a rerun's."""
    for start in range(0, len(txs), ENROL_BATCH):
        batch = txs[start : start + ENROL_BATCH]
        for attempt in range(20):
            try:
                code, raw = await pool.post(urls[attempt % len(urls)], "/v1/txs?wait_s=20",
                                            join_encoded([t.encoded() for t in batch]))  # fmt: skip
            except HttpError:
                await asyncio.sleep(0.5)
                continue
            if code in (200, 202):
                results = json.loads(raw)["results"]
                bad = [r for r in results if r["status"] in ("refused", "rejected")
                       and (r.get("error") or r.get("reason")) not in ACCEPTABLE_AGAIN
                       and r.get("error") != "replay"]  # fmt: skip
                if bad:
                    raise RuntimeError(f"{phase}: {len(bad)} refused, first: {bad[0]}")
                if all(r["status"] != "pending" for r in results):
                    break
            await asyncio.sleep(0.5)  # pending or busy: the same batch again
        else:
            raise RuntimeError(f"{phase}: batch at {start} did not commit")
        say(f"\r{phase:8} {min(start + ENROL_BATCH, len(txs))}/{len(txs)}   ")


def run_scale(urls: list[str], suite: str, cfg: ScaleConfig, maker: KeyPair,
              authorities: list[KeyPair], say: Callable[[str], None]) -> ScaleReport:  # fmt: skip
    """Enrol, then offer the readings from `processes` workers; their merged report."""
    chain = run(enrol(urls, suite, cfg, maker, authorities, say))
    context = multiprocessing.get_context("fork")
    messages = context.Queue()
    workers = [context.Process(target=worker, args=(i, urls, suite, chain, cfg, messages))
               for i in range(cfg.processes)]  # fmt: skip
    for w in workers:
        w.start()
    report, progress, finished = ScaleReport(), {}, 0
    started = time.monotonic()
    while finished < len(workers):
        try:
            kind, i, data = messages.get(timeout=1.0)
        except queue.Empty:
            if not any(w.is_alive() for w in workers):
                raise RuntimeError("a simulator worker died (see its error above)") from None
            continue
        if kind == "progress":
            progress[i] = data
            say(render(progress, time.monotonic() - started))
        else:
            finished += 1
            merge(report, data)
    for w in workers:
        w.join()
    return report


def merge(report: ScaleReport, data: dict[str, Any]) -> None:
    report.submitted += data["submitted"]
    report.outcomes.update(data["outcomes"])
    report.reasons.update(data["reasons"])
    report.latencies_s += data["latencies_s"]
    report.cpu_s += data["cpu_s"]
    report.requests += data["requests"]
    report.offer_s = max(report.offer_s, data["offer_s"])
    report.elapsed_s = max(report.elapsed_s, data["elapsed_s"])


def render(progress: dict[int, dict[str, int]], elapsed_s: float) -> str:
    total = Counter[str]()
    for p in progress.values():
        total.update(p)
    rate = total["committed"] / elapsed_s if elapsed_s else 0.0
    return (f"\rreadings {total['submitted']} submitted  {total['committed']} committed  "
            f"{total['rejected']} refused  {total['pending']} waiting  {rate:.0f}/s ")  # fmt: skip


def turned(urls: list[str], k: int) -> list[str]:
    """The nodes starting from the k-th (gateways spread over them)."""
    k %= len(urls)
    return urls[k:] + urls[:k]


def worker(index: int, urls: list[str], suite: str, chain: bytes, cfg: ScaleConfig,
           messages: Any) -> None:  # fmt: skip
    data = run(Shard(index, urls, suite, chain, cfg, messages).offer())
    messages.put(("done", index, data))


class Shard:
    """One worker's devices: every P-th vehicle and meter, from the fleet's seed."""

    def __init__(self, index: int, urls: list[str], suite: str, chain: bytes,
                 cfg: ScaleConfig, messages: Any):  # fmt: skip
        self.index, self.cfg, self.messages = index, cfg, messages
        step, seed = cfg.processes, cfg.fleet.seed
        self.fleet, self.meter_fleet = Fleet(cfg.fleet), MeterFleet(cfg.meters, seed)
        self.fleet.rng = self.meter_fleet.rng = random.Random(f"{seed}/{index}")
        self.vehicles = list(range(index, len(self.fleet.vehicles), step))
        self.meters = list(range(index, cfg.meters, step))
        ids = [self.fleet.vehicles[v].vehicle_id for v in self.vehicles]
        ids += [self.meter_fleet.meters[m].meter_id for m in self.meters]
        self.keys = {d: sim_device_key(suite, seed, d) for d in ids}
        self.pool = HttpPool(per_host=256)
        # a journal per network and worker: the devices' sequence numbers continue in it
        self.journal = Journal(cfg.journal_dir / chain.hex()[:16] / f"worker-{index}.sqlite3")
        self.journal.set_chain(chain)
        rotated = turned(urls, index)  # spread the nodes
        self.cars = Gateway(rotated, suite, chain, self.journal, self.pool, batch=False)
        count = max(1, -(-cfg.concentrator_count // cfg.processes)) if self.meters else 0
        self.hubs = [Gateway(turned(rotated, k), suite, chain, self.journal, self.pool,
                             batch=True) for k in range(count)]  # fmt: skip

    @property
    def gateways(self) -> list[Gateway]:
        return [self.cars, *self.hubs]

    async def offer(self) -> dict[str, Any]:
        cfg, p = self.cfg, self.cfg.processes
        done = asyncio.Event()
        tasks = [asyncio.ensure_future(g.run(done)) for g in self.gateways]
        cpu0, started = time.process_time(), time.monotonic()
        submitted = self._submit_until(started, cfg.vehicle_rate / p, cfg.meter_rate / p)
        offered = await submitted
        offer_s = time.monotonic() - started
        done.set()
        with contextlib.suppress(TimeoutError):  # what is still pending is reported as such
            await asyncio.wait_for(asyncio.gather(*tasks), cfg.drain_s)
        self._report(offered)
        data = self._totals(offered)
        data.update(cpu_s=time.process_time() - cpu0, offer_s=offer_s,
                    elapsed_s=time.monotonic() - started)  # fmt: skip
        self.journal.close()
        await self.pool.aclose()
        return data

    async def _submit_until(self, started: float, vehicle_rate: float, meter_rate: float) -> int:
        sent_v = sent_m = 0
        next_report = started
        while (elapsed := time.monotonic() - started) < self.cfg.duration_s:
            for _ in range(int(elapsed * vehicle_rate) - sent_v if self.vehicles else 0):
                v = self.vehicles[self.fleet.rng.randrange(len(self.vehicles))]
                _, refuel = self.fleet.refuel(v)
                self.cars.submit(self.keys[refuel.vehicle_id], refuel)
                sent_v += 1
            for _ in range(int(elapsed * meter_rate) - sent_m if self.meters else 0):
                k = sent_m % len(self.meters)
                reading = self.meter_fleet.reading(self.meters[k])
                self.hubs[k % len(self.hubs)].submit(self.keys[reading.meter_id], reading)
                sent_m += 1
            if time.monotonic() >= next_report:
                self._report(sent_v + sent_m)
                next_report += 0.5
            await asyncio.sleep(TICK_S)
        return sent_v + sent_m

    def _totals(self, submitted: int) -> dict[str, Any]:
        outcomes, reasons, latencies, requests = Counter[str](), Counter[str](), [], 0
        for g in self.gateways:
            outcomes.update(g.stats.outcomes)
            reasons.update(g.stats.reasons)
            latencies += g.stats.latencies_s
            requests += g.stats.requests
        pending = submitted - sum(outcomes.values())
        if pending:
            outcomes["pending"] = pending
        return {"submitted": submitted, "outcomes": dict(outcomes), "reasons": dict(reasons),
                "latencies_s": latencies, "requests": requests}  # fmt: skip

    def _report(self, submitted: int) -> None:
        outcomes = Counter[str]()
        for g in self.gateways:
            outcomes.update(g.stats.outcomes)
        self.messages.put(("progress", self.index, {
            "submitted": submitted, "committed": outcomes["committed"],
            "rejected": outcomes["rejected"],
            "pending": submitted - sum(outcomes.values())}))  # fmt: skip
