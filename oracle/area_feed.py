"""A simulated transformer area as signed transactions for a running network: its meters
registered and endorsed in the device registry, the area registered by a utility, then
each period's cumulative readings (one reading per meter in flight, as the SDK keeps it:
a meter's readings must commit in order). Used by `metroledger demo` and the e2e test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ledger.areas import AreaRegistration
from ledger.crypto import KeyPair, get_suite
from ledger.readings import EndorseDevice, MeterReading, RegisterDevice, SequencedSigner
from ledger.types import Transaction
from oracle.areas import Area, AreaConfig

START_MS, PERIOD_MS = 1_800_000_000_000, 3_600_000  # the readings' clock: hourly, from 2027


class AreaFeed:
    def __init__(self, cfg: AreaConfig, suite: str, chain: bytes, manufacturer: KeyPair,
                 authorities: tuple[KeyPair, KeyPair], utility: KeyPair,
                 area_id: str = "TA-1"):  # fmt: skip
        self.area, self.area_id = Area(cfg), area_id
        self.signer = SequencedSigner(get_suite(suite), chain)
        self.sign = self.signer.sign
        self.manufacturer, self.authorities, self.utility = manufacturer, authorities, utility
        self.meters = [f"{area_id}-m{i}" for i in range(cfg.meters)]
        self.ids = [*self.meters, f"{area_id}-summary"]
        derive = get_suite(suite).keypair_from_seed
        self.keys = {d: derive(f"{cfg.seed}-{d}".encode()) for d in self.ids}

    def resume(self, get: Callable[[str], Any]) -> None:
        """Continue the sequence numbers of the member keys, which may have signed before
        (`get`: a node's API, GET of a path)."""
        keys = {k.public_key for k in (self.manufacturer, *self.authorities, self.utility)}
        for public_key in sorted(keys):
            high = get(f"/v1/clients/{public_key.hex()}")["committed_high_seq"]
            self.signer.resume(public_key, high)

    def registrations(self) -> list[Transaction]:
        return [self.sign(self.manufacturer,
                          RegisterDevice(d, "meter", self.keys[d].public_key, "DDZY", "2"))
                for d in self.ids]  # fmt: skip

    def endorsements_and_area(self) -> list[Transaction]:
        txs = [self.sign(a, EndorseDevice(d, self.keys[d].public_key))
               for d in self.ids for a in self.authorities]  # fmt: skip
        users = tuple((m, "2") for m in self.meters)
        area = AreaRegistration(self.area_id, self.ids[-1], users, PERIOD_MS // 1000)
        return [*txs, self.sign(self.utility, area)]

    def readings(self) -> Iterator[list[Transaction]]:
        """The readings at the start, then those at the end of each period."""
        cumulative = [0] * len(self.ids)
        yield [self.sign(self.keys[d], MeterReading(d, 0, 3600, START_MS)) for d in self.ids]
        for p, (user_wh, summary_wh) in enumerate(self.area.periods(), start=1):
            for i, wh in enumerate([*user_wh, summary_wh]):
                cumulative[i] += wh
            yield [self.sign(self.keys[d], MeterReading(d, cumulative[i], 3600,
                                                        START_MS + p * PERIOD_MS))
                   for i, d in enumerate(self.ids)]  # fmt: skip

    def truth_ppm(self, meter: int) -> int:
        """Meter i's error at the end of the window."""
        return round(self.area.error_at(meter, self.area.cfg.days) * 1_000_000)
