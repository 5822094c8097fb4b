"""Simulation parameters and the seeded fault plan of one run."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from consensus.config import ProtocolConfig
from ledger.quorum import max_faulty

NETWORK_FAULTS = ("delay", "reorder", "loss", "duplicate", "partition", "crash")
BYZANTINE_FAULTS = ("equivocate", "silent", "forge", "replay", "mutate", "unknown_digest",
                    "lie_time")  # fmt: skip
FAULT_KINDS = NETWORK_FAULTS + BYZANTINE_FAULTS
MAX_CLOCK_SKEW_MS = 500  # the sim's bound; honest clocks are within ±CLOCK_OFFSET_MS
CLOCK_OFFSET_MS = 100


@dataclass(frozen=True)
class SimParams:
    n: int = 4
    byzantine: int = 1
    seed: int = 0
    faults: frozenset[str] = frozenset(FAULT_KINDS)
    requests: int = 24
    clients: int = 4
    fault_phase_ms: int = 3_000
    max_time_ms: int = 90_000
    tick_ms: int = 10
    reconfig: bool = False  # membership changes during the run (sim.reconfig)

    def __post_init__(self) -> None:
        unknown = self.faults - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if not 0 <= self.byzantine <= max_faulty(self.n):
            raise ValueError(f"byzantine must be in 0..f={max_faulty(self.n)} for n={self.n}")

    def protocol_config(self, members: tuple[bytes, ...]) -> ProtocolConfig:
        return ProtocolConfig(
            members=members,
            batch_max_txs=6,
            batch_timeout_ms=20,
            checkpoint_interval=4,
            watermark_window=12,
            request_timeout_ms=400,
            censorship_timeout_ms=3_000,
            view_change_timeout_ms=400,
            max_backoff_exponent=4,
            fetch_max_blocks=8,
            max_clock_skew_ms=MAX_CLOCK_SKEW_MS,
            max_proposal_lag_ms=4 * MAX_CLOCK_SKEW_MS,
        )


@dataclass(frozen=True)
class FaultPlan:
    kinds: frozenset[str]
    byzantine: dict[int, frozenset[str]] = field(default_factory=dict)
    delay_ms: tuple[int, int] = (1, 8)
    spike_chance: float = 0.0  # reordering: a message is sometimes much later
    loss: float = 0.0
    duplicate: float = 0.0
    partition: tuple[frozenset[int], int, int] | None = None  # (side A, from, to)
    crash: tuple[int, int, int] | None = None  # (replica, down at, up at)

    def is_cut(self, src: int, dst: int, now_ms: int) -> bool:
        if self.partition is None:
            return False
        side, start, end = self.partition
        return start <= now_ms < end and ((src in side) != (dst in side))

    def sample_delay_ms(self, rng: random.Random) -> int:
        delay = rng.randint(*self.delay_ms)
        if self.spike_chance and rng.random() < self.spike_chance:
            delay += rng.randint(50, 400)
        return delay

    def healed(self) -> FaultPlan:
        """Network faults end; Byzantine replicas stay as they are."""
        return replace(self, delay_ms=(1, 8), spike_chance=0.0, loss=0.0, duplicate=0.0)


def make_plan(params: SimParams, rng: random.Random) -> FaultPlan:
    """Draw this run's faults; each enabled network fault is on with probability 1/2."""
    n, phase = params.n, params.fault_phase_ms
    on = {kind for kind in NETWORK_FAULTS if kind in params.faults and rng.random() < 0.5}
    byz_kinds = [k for k in BYZANTINE_FAULTS if k in params.faults]
    byzantine: dict[int, frozenset[str]] = {}
    if byz_kinds and params.byzantine:
        # Half the runs make the first primary Byzantine: the interesting case.
        pool = list(range(n))
        first = [0] if rng.random() < 0.5 else []
        rest = rng.sample([i for i in pool if i not in first], params.byzantine - len(first))
        for member in first + rest:
            chosen = frozenset(rng.sample(byz_kinds, rng.randint(1, min(3, len(byz_kinds)))))
            # A silent replica sends nothing, so it can do nothing else.
            byzantine[member] = frozenset({"silent"}) if "silent" in chosen else chosen
    plan = FaultPlan(kinds=frozenset(on).union(*byzantine.values()), byzantine=byzantine)
    if "delay" in on:
        plan = replace(plan, delay_ms=(1, rng.choice((50, 150, 300))))
    if "reorder" in on:
        plan = replace(plan, spike_chance=rng.choice((0.05, 0.2)))
    if "loss" in on:
        plan = replace(plan, loss=rng.choice((0.02, 0.1, 0.25)))
    if "duplicate" in on:
        plan = replace(plan, duplicate=rng.choice((0.05, 0.3)))
    if "partition" in on and n >= 2:  # one replica has no other side
        side = frozenset(rng.sample(range(n), rng.randint(1, n // 2)))
        start = rng.randrange(0, phase // 2)
        plan = replace(plan, partition=(side, start, rng.randrange(start + 100, phase)))
    honest = [i for i in range(n) if i not in byzantine]
    if "crash" in on and honest:
        down = rng.randrange(0, phase // 2)
        plan = replace(plan, crash=(rng.choice(honest), down, rng.randrange(down + 50, phase)))
    return plan
