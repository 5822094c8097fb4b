"""A simulated transformer area as signed transactions for a running network: its meters
registered and endorsed in the device registry, the area registered by a utility, then
each period's cumulative readings (one reading per meter in flight, as the SDK keeps it:
a meter's readings must commit in order). Each user meter is also a running asset of the
utility, its device id its barcode, so that calibration requests and work orders
(analysis.service) can follow it. Used by `metroledger demo` and the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ledger.areas import AreaRegistration
from ledger.crypto import KeyPair, get_suite
from ledger.readings import (
    EndorseDevice,
    MeterReading,
    Payload,
    RegisterDevice,
    SequencedSigner,
)
from ledger.service import CalibrationRequest, WorkOrderStep
from ledger.types import Transaction
from ledger.verification import AssetStatus, InstitutionChange, MeterAsset
from oracle.areas import Area, AreaConfig
from oracle.records import bench_record

START_MS, PERIOD_MS = 1_800_000_000_000, 3_600_000  # the readings' clock: hourly, from 2027


class AreaFeed:
    def __init__(self, cfg: AreaConfig, suite: str, chain: bytes, manufacturer: KeyPair,
                 authorities: tuple[KeyPair, KeyPair], utility: KeyPair,
                 area_no: int = 1, signer: SequencedSigner | None = None):  # fmt: skip
        """`signer`: shared by the feeds of several areas, whose member keys sign in one
        sequence."""
        self.area, self.area_id = Area(cfg), f"TA-{area_no}"
        self.signer = signer or SequencedSigner(get_suite(suite), chain)
        self.sign = self.signer.sign
        self.manufacturer, self.authorities, self.utility = manufacturer, authorities, utility
        # 22-digit barcodes, as meter assets have them (ledger.verification.BARCODE)
        self.meters = [f"99{area_no:04d}{i:016d}" for i in range(cfg.meters)]
        self.asset_nos = {m: f"{self.area_id}-A{i}" for i, m in enumerate(self.meters)}
        self.ids = [*self.meters, f"{self.area_id}-summary"]
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

    def assets(self) -> list[Transaction]:
        """Each user meter registered as an asset of the utility's arrival batch and put
        into service (two transactions each: the second must follow the first)."""
        return [self.sign(self.utility, MeterAsset(m, self.asset_nos[m], f"{self.area_id}-B1",
                                                   "Maker", "DDZY", "01", "2", "Station-1"))
                for m in self.meters]  # fmt: skip

    def installations(self) -> list[Transaction]:
        return [self.sign(self.utility, AssetStatus(m, "running", self.area_id))
                for m in self.meters]  # fmt: skip

    def by_utility(self, payload: Payload) -> Transaction:
        return self.sign(self.utility, payload)

    def calibration(self, request_id: str, meter: int) -> Transaction:
        """A user's active-calibration request for user meter `meter`, by its asset number."""
        asset_no = self.asset_nos[self.meters[meter]]
        return self.by_utility(CalibrationRequest(request_id, asset_no, "app", "user"))

    def step(self, order_id: str, action: str, task_no: str = "", satisfaction: str = "",
             opinion: str = "") -> Transaction:  # fmt: skip
        staff = "" if action == "evaluate" else "staff-1"
        return self.by_utility(WorkOrderStep(order_id, action, staff, task_no, satisfaction,
                                             opinion))  # fmt: skip

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

    def institution(self, regulator: KeyPair, institution: KeyPair, iid: str) -> Transaction:
        """A verification institution that settles calibration work orders."""
        return self.sign(regulator, InstitutionChange("register", iid, iid, institution.public_key))

    def calibration_record(self, institution: KeyPair, iid: str, task: str, meter: int,
                           result: str) -> Transaction:  # fmt: skip
        """Its verification of user meter `meter` on a work order (kind user_calibration)."""
        record = bench_record(task, self.meters[meter], "2027-01-16 10:00:00", iid,
                              "user_calibration", result)  # fmt: skip
        return self.sign(institution, record)
