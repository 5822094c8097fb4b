"""A seeded simulator of meter-verification supervision on a running network (issue 17).

Arrival batches of meters come from manufacturers whose meters fail at their own rates;
verification institutions verify each batch first, and one of them (`lax`) passes every
meter, failing ones included. A regulator then samples every batch by GB/T 2828.1 (the
draw comes from the chain), its laboratory re-checks the drawn meters physically (it sees
the truth), and the re-checks are imported. The simulator only signs and submits; the
verdicts are the contracts' and are read back over HTTP.

Keys: the regulator and the utility are two members' keys (the default authorities); the
institutions and the laboratory get keys derived from the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.crypto import KeyPair, get_suite
from ledger.readings import SequencedSigner
from ledger.types import Transaction
from ledger.verification import (
    NOT_QUALIFIED,
    QUALIFIED,
    InstitutionChange,
    MeterAsset,
    RecheckImport,
    SamplingTask,
    VerificationRecord,
)
from oracle.records import bench_record, items_for

DATE = "2024-12-31 13:57:19"
Submit = Callable[[list[Transaction]], list[str]]  # submits, waits for the commits
Get = Callable[[str], Any]  # GET a path of one node's API


@dataclass(frozen=True)
class SupervisionConfig:
    batches: int = 3
    meters: int = 500
    seed: int = 17
    failure_rate_pct: tuple[int, ...] = (0, 0, 30)  # of each batch's manufacturer
    lax_batches: tuple[int, ...] = (2,)  # first-verified by the lax institution (0-based)
    level: str = "II"
    aql: str = "1.0"


@dataclass
class Outcome:
    batch: str
    institution: str
    first_verification: str  # the batch rule's status
    plan: dict[str, Any]
    nonconforming: int
    lot: str  # accepted / not_accepted by the plan
    warnings: list[str] = field(default_factory=list)


class Supervision:
    def __init__(self, cfg: SupervisionConfig, suite: str, chain: bytes,
                 regulator: KeyPair, utility: KeyPair):  # fmt: skip
        self.cfg, self.suite, self.chain = cfg, get_suite(suite), chain
        self.regulator, self.utility = regulator, utility
        derive = self.suite.keypair_from_seed
        names = ("INST-A", "INST-B", "REG-LAB")
        self.keys = {name: derive(f"{cfg.seed}-{name}".encode()) for name in names}
        self.signer = SequencedSigner(self.suite, chain)
        self.sign = self.signer.sign
        rng = random.Random(cfg.seed)
        self.failing = {
            self.barcode(b, i)
            for b in range(cfg.batches)
            for i in range(cfg.meters)
            if rng.randrange(100) < cfg.failure_rate_pct[b % len(cfg.failure_rate_pct)]
        }

    def barcode(self, batch: int, meter: int) -> str:
        return f"12300010{batch:02d}{meter:012d}"

    def batch_id(self, batch: int) -> str:
        return f"B{self.cfg.seed}-{batch + 1}"

    def institution(self, batch: int) -> str:
        return "INST-B" if batch in self.cfg.lax_batches else "INST-A"

    def run(self, submit: Submit, get: Get) -> list[Outcome]:
        for key in (self.regulator, self.utility, *self.keys.values()):  # they may have signed
            high = get(f"/v1/clients/{key.public_key.hex()}")["committed_high_seq"]
            self.signer.resume(key.public_key, high)
        submit(self.registries())
        submit(self.first_verification())
        submit(self.tasks())
        submit([tx for b in range(self.cfg.batches) for tx in self.recheck(b, get)])
        return [self.outcome(b, get) for b in range(self.cfg.batches)]

    # ---- the phases -------------------------------------------------------------------

    def registries(self) -> list[Transaction]:
        txs = [
            self.sign(self.regulator, InstitutionChange("register", name, name, key.public_key))
            for name, key in self.keys.items()
        ]
        for b in range(self.cfg.batches):
            txs += [self.sign(self.utility, MeterAsset(self.barcode(b, i), f"{b}-{i}",
                                                      self.batch_id(b), f"Maker-{b}", "DDZY",
                                                      "01", "2", "Tianjin"))
                    for i in range(self.cfg.meters)]  # fmt: skip
        return txs

    def first_verification(self) -> list[Transaction]:
        """The honest institution records the truth; the lax one passes every meter."""
        txs = []
        for b in range(self.cfg.batches):
            name = self.institution(b)
            for i in range(self.cfg.meters):
                code = self.barcode(b, i)
                result = QUALIFIED if name == "INST-B" else self.truth(code)
                record = self._record(f"F{b}", code, name, "first", result)
                txs.append(self.sign(self.keys[name], record))
        return txs

    def tasks(self) -> list[Transaction]:
        return [self.sign(self.regulator, SamplingTask(f"R{self.cfg.seed}x{b}", self.batch_id(b),
                                                      self.cfg.level, self.cfg.aql, "normal",
                                                      "physical"))
                for b in range(self.cfg.batches)]  # fmt: skip

    def recheck(self, b: int, get: Get) -> list[Transaction]:
        """The laboratory's sampling records of the drawn meters, and the re-check import."""
        drawn = get(f"/v1/meter/tasks/R{self.cfg.seed}x{b}")["barcodes"]
        lab = self.keys["REG-LAB"]
        txs = [self.sign(lab, self._record(f"S{b}", c, "REG-LAB", "sampling", self.truth(c)))
               for c in drawn]  # fmt: skip
        rows = tuple((c, self.truth(c), self._conclusions(self.truth(c))) for c in drawn)
        txs.append(self.sign(self.regulator, RecheckImport(f"R{self.cfg.seed}x{b}",
                                                          self.batch_id(b), rows)))  # fmt: skip
        return txs

    def outcome(self, b: int, get: Get) -> Outcome:
        task = get(f"/v1/meter/tasks/R{self.cfg.seed}x{b}")
        batch = get(f"/v1/meter/batches/{self.batch_id(b)}")
        warnings = [e["data"]["to"] for e in get("/v1/events?name=warning&limit=1000")["events"]
                    if e["data"]["batch"] == self.batch_id(b)]  # fmt: skip
        return Outcome(self.batch_id(b), self.institution(b), batch["status"], task["plan"],
                       task.get("nonconforming", 0), task["result"], warnings)  # fmt: skip

    # ---- helpers ----------------------------------------------------------------------

    def truth(self, code: str) -> str:
        return NOT_QUALIFIED if code in self.failing else QUALIFIED

    def _conclusions(self, result: str) -> tuple[tuple[str, str], ...]:
        return tuple((item, conclusion) for item, conclusion, _ in items_for(result, ()))

    def _record(
        self, task: str, code: str, name: str, kind: str, result: str
    ) -> VerificationRecord:
        return bench_record(task, code, DATE, name, kind, result)
