"""Push a simulated fleet's readings through the SDK to real nodes.

Phases: the manufacturer registers every vehicle, the authorities endorse them
(so they become active), then the fleet refuels at the offered rate (open loop)
and every reading is delivered by its vehicle's OracleClient. The report counts
each reading's final outcome; a reading is never counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ledger.crypto import KeyPair, get_suite
from ledger.readings import EndorseDevice, RegisterDevice
from oracle.client import OracleClient, Outcome
from oracle.journal import Journal
from oracle.sim.fleet import Fleet, FleetConfig, tank_model

ACCEPTABLE_AGAIN = {"device_exists", "already_endorsed"}  # a rerun of the same fleet


def sim_device_key(suite: str, seed: int, device_id: str) -> KeyPair:
    """A simulated device's key, derived from the fleet's seed (reruns sign alike)."""
    digest = hashlib.sha256(f"metroledger-sim/{seed}/{device_id}".encode()).digest()
    return get_suite(suite).keypair_from_seed(digest)


@dataclass
class Progress:
    phase: str
    done: int
    total: int
    outcomes: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0


@dataclass
class SimulationReport:
    submitted: int
    outcomes: dict[str, int]
    reasons: dict[str, int]
    elapsed_s: float
    tx_hashes: list[str]

    @property
    def committed(self) -> int:
        return self.outcomes.get("committed", 0)


@dataclass
class Simulation:
    node_urls: list[str]
    suite: str
    fleet: FleetConfig
    manufacturer: KeyPair
    authorities: list[KeyPair]
    journal_path: Path | str = ":memory:"
    readings: int = 1000
    rate_per_s: float = 200.0
    wait_timeout_s: float = 120.0

    def vehicle_key(self, vehicle_id: str) -> KeyPair:
        return sim_device_key(self.suite, self.fleet.seed, vehicle_id)

    async def run(
        self, on_progress: Callable[[Progress], None] = lambda p: None
    ) -> SimulationReport:
        fleet = Fleet(self.fleet)
        journal = Journal(self.journal_path)
        # every device long-polls for its commit: one connection each, as real devices have
        limits = httpx.Limits(max_connections=self.fleet.vehicles + 100)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
            try:
                await self._enrol(fleet, journal, http, on_progress)
                return await self._refuel(fleet, journal, http, on_progress)
            finally:
                journal.close()

    def _client(
        self, key: KeyPair, journal: Journal, http: httpx.AsyncClient, in_flight: int
    ) -> OracleClient:
        return OracleClient(
            self.node_urls,
            key,
            suite=self.suite,
            journal=journal,
            http=http,
            max_in_flight=in_flight,
        )

    async def _enrol(
        self,
        fleet: Fleet,
        journal: Journal,
        http: httpx.AsyncClient,
        on_progress: Callable[[Progress], None],
    ) -> None:
        """Publish the tank calibrations (if the fleet's are), register every vehicle,
        then endorse it by each authority; waits for each phase."""
        if self.fleet.calibrated_tanks:
            async with self._client(self.authorities[0], journal, http, 8) as authority:
                calibrations = [(authority, authority.submit(c))
                                for c in fleet.tank_calibrations()]  # fmt: skip
                await self._await_all("tanks", calibrations, on_progress)
        maker = self._client(self.manufacturer, journal, http, 32)
        async with maker:
            registrations = []
            for v in fleet.vehicles:
                key = self.vehicle_key(v.vehicle_id).public_key
                payload = RegisterDevice(v.vehicle_id, "vehicle", key, "sim-OBD", "2",
                                         tank_model(v.tank_ml))  # fmt: skip
                registrations.append((maker, maker.submit(payload)))
            await self._await_all("register", registrations, on_progress)
        endorsers = [self._client(a, journal, http, 32) for a in self.authorities]
        await asyncio.gather(*(e.start() for e in endorsers))
        try:
            endorsements = []
            for v in fleet.vehicles:
                key = self.vehicle_key(v.vehicle_id).public_key
                for e in endorsers:
                    endorsements.append((e, e.submit(EndorseDevice(v.vehicle_id, key))))
            await self._await_all("endorse", endorsements, on_progress)
        finally:
            await asyncio.gather(*(e.close() for e in endorsers))

    async def _await_all(
        self,
        phase: str,
        pending: list[tuple[OracleClient, str]],
        on_progress: Callable[[Progress], None],
    ) -> None:
        outcomes = await self._gather(phase, pending, on_progress, time.monotonic())
        failed = [
            o for o in outcomes if o.status != "committed" and o.reason not in ACCEPTABLE_AGAIN
        ]
        if failed:
            raise RuntimeError(f"{phase}: {len(failed)} refused, first: {failed[0]}")

    async def _refuel(
        self,
        fleet: Fleet,
        journal: Journal,
        http: httpx.AsyncClient,
        on_progress: Callable[[Progress], None],
    ) -> SimulationReport:
        clients = [
            self._client(self.vehicle_key(v.vehicle_id), journal, http, 1) for v in fleet.vehicles
        ]
        await asyncio.gather(*(c.start() for c in clients))
        started = time.monotonic()
        pending: list[tuple[OracleClient, str]] = []
        try:
            for k in range(self.readings):
                delay_s = started + k / self.rate_per_s - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                index, reading = fleet.refuel()
                pending.append((clients[index], clients[index].submit(reading)))
                if k % 50 == 0:
                    on_progress(
                        Progress("submit", k, self.readings, elapsed_s=time.monotonic() - started)
                    )
            outcomes = await self._gather("commit", pending, on_progress, started)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        return SimulationReport(
            len(pending),
            dict(Counter(o.status for o in outcomes)),
            dict(Counter(o.reason for o in outcomes if o.reason)),
            time.monotonic() - started,
            [h for _, h in pending],
        )

    async def _gather(
        self,
        phase: str,
        pending: list[tuple[OracleClient, str]],
        on_progress: Callable[[Progress], None],
        started: float,
    ) -> list[Outcome]:
        deadline = time.monotonic() + self.wait_timeout_s
        tasks = [asyncio.create_task(c.wait(h, self.wait_timeout_s)) for c, h in pending]
        while True:
            done = [t for t in tasks if t.done()]
            counts = Counter(t.result().status for t in done)
            on_progress(Progress(phase, len(done), len(tasks), counts, time.monotonic() - started))
            if len(done) == len(tasks) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        return [t.result() if t.done() else await t for t in tasks]


def render_progress(p: Progress, width: int = 30) -> str:
    filled = width * p.done // max(1, p.total)
    rate = p.outcomes.get("committed", 0) / p.elapsed_s if p.elapsed_s else 0.0
    counts = "  ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items()))
    return (
        f"\r{p.phase:8} [{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total}"
        f"  {counts}  {rate:.0f}/s   "
    )
