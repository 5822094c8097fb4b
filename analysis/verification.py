"""The verification-supervision contract (Tianjin specification §4.2.1, §5, Appendix A.2).

It keeps the registries of verification institutions (registered and revoked by a
regulator) and of meter assets (registered by a utility), validates each verification
record (Appendix A.2's Validity contract: every rule that fails is named with its field,
and a refused record changes nothing), stores the valid ones, and applies the batch rule
of §5.2: first verification and supervision sampling are compared per barcode, and more
than `batch_disagreements_allowed` (2) disagreements in one arrival batch fail that
batch's first verification, with a warning to each institution that first-verified a
disagreeing meter (§5.1 anomaly handling).

State (keys and values; integers, text and bytes):
  institution/<id> = {name, key, registered_at, revoked_at}
  ikey/<hex>       = institution id of a signing key
  assetno/<no>     = the barcode of the meter with that asset number
  asset/<barcode>  = {asset_no, batch, manufacturer, meter_type, wiring, accuracy_class,
                      owner_unit, status, registered_at, history[[height, event, detail]],
                      first: [result, institution], sampling: result,
                      records: [[task, kind]]}  status: in_stock | running | removed
  batch/<batch>    = {meters, disagreeing[[barcode, institution that first-verified]], status}
  record/<barcode>/<task>/<kind> = {certificate_no, date, height, institution,
                                    record: the payload's bytes, result,
                                    validity: encode({rule: [field]})}
                                   (stored_record, stored_validity read them)
  stats/institution/<id>, stats/batch/<id> = {full: [records, passed], sampling: [...]}
  stats/items = {tableCode: records that failed it}
  stats/index = {institution: [id], batch: [id]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.contracts import TxResult
from analysis.rechecks import create_task, import_recheck
from analysis.state import ContractState
from analysis.validity import Result, check, current_rules, held_by_rule, observe_change
from ledger.encoding import decode, encode
from ledger.membership import KIND_MEMBERSHIP
from ledger.types import Transaction
from ledger.verification import (
    ASSET_MOVES,
    KIND_ASSET,
    KIND_ASSET_STATUS,
    KIND_INSTITUTION,
    KIND_RECHECK,
    KIND_RECORD,
    KIND_RECORD_DIGEST,
    KIND_SAMPLING_TASK,
    NOT_QUALIFIED,
    RECORD_KINDS,
    AssetStatus,
    InstitutionChange,
    InvalidRecord,
    MeterAsset,
    RecordDigest,
    SamplingTask,
    VerificationRecord,
    parse_rules,
    parse_verification,
)


@dataclass(frozen=True)
class VerificationRules:
    regulators: frozenset[bytes]
    utilities: frozenset[bytes]
    batch_disagreements_allowed: int = 2  # §5.2: more than this fails the batch
    validity: dict[str, Any] = field(default_factory=lambda: parse_rules({}))  # at genesis
    public_kinds: tuple[str, ...] = RECORD_KINDS  # others enter only as digests (§4.3.3)
    checkpoint_interval: int = 16  # K and L: when quorum-approved rules apply
    watermark_window: int = 64

    @classmethod
    def from_config(cls, raw: dict[str, Any], members: tuple[bytes, ...]) -> VerificationRules:
        def keys(name: str) -> frozenset[bytes]:
            listed = raw.get(name)
            if listed is None:
                return frozenset(members)
            if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
                raise ValueError(f"{name} must be a list of hex public keys")
            return frozenset(bytes.fromhex(k) for k in listed)

        allowed = raw.get("batch_disagreements_allowed", 2)
        if type(allowed) is not int or allowed < 0:
            raise ValueError("batch_disagreements_allowed must be a non-negative integer")
        validity = parse_rules({k: raw[k] for k in ("required_items", "ranges") if k in raw})
        public = tuple(raw.get("public_kinds", list(RECORD_KINDS)))
        if not set(public) <= set(RECORD_KINDS):
            raise ValueError(f"public_kinds: expected some of {list(RECORD_KINDS)}")
        return cls(keys("regulators"), keys("utilities"), allowed, validity, public)


@dataclass
class VerificationContract:
    rules: VerificationRules
    name: str = "verification"
    kinds: tuple[str, ...] = field(
        default=(
            KIND_INSTITUTION,
            KIND_ASSET,
            KIND_ASSET_STATUS,
            KIND_RECORD,
            KIND_RECORD_DIGEST,
            KIND_SAMPLING_TASK,
            KIND_RECHECK,
        )
    )
    observes: tuple[str, ...] = (KIND_MEMBERSHIP,)  # quorum-approved validity rules

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        if tx.kind == KIND_MEMBERSHIP:
            r = self.rules
            return TxResult(True, events=observe_change(
                state, tx.payload, height, r.validity, r.checkpoint_interval, r.watermark_window
            ))  # fmt: skip
        try:
            payload = parse_verification(tx.kind, tx.payload)
            if isinstance(payload, InstitutionChange):
                return self._institution(state, tx, payload, height)
            if isinstance(payload, MeterAsset):
                return self._asset(state, tx, payload, height)
            if isinstance(payload, AssetStatus):
                return self._move(state, tx, payload, height)
            if isinstance(payload, VerificationRecord | RecordDigest):
                return self._record(state, tx, payload, height)
            if tx.sender not in self.rules.regulators:
                return TxResult(False, "not_regulator")
            if isinstance(payload, SamplingTask):
                return create_task(state, payload, height)
            return import_recheck(state, payload, height)
        except InvalidRecord as exc:
            return TxResult(False, f"invalid:{exc.rule}:{exc.field}")

    # ---- registries -------------------------------------------------------------------

    def _institution(
        self, state: ContractState, tx: Transaction, p: InstitutionChange, h: int
    ) -> TxResult:
        if tx.sender not in self.rules.regulators:
            return TxResult(False, "not_regulator")
        key = f"institution/{p.institution_id}"
        current = state.get(key)
        if p.action == "register":
            if current is not None or f"ikey/{p.public_key.hex()}" in state:
                return TxResult(False, "institution_exists")
            state.put(key, {"name": p.name, "key": p.public_key, "registered_at": h,
                            "revoked_at": 0})  # fmt: skip
            state.put(f"ikey/{p.public_key.hex()}", p.institution_id)
            return TxResult(True, events=(("institution_registered", {"id": p.institution_id}),))
        if current is None or current["revoked_at"]:
            return TxResult(False, "unknown_institution" if current is None else "revoked")
        state.edit(key)["revoked_at"] = h
        return TxResult(True, events=(("institution_revoked", {"id": p.institution_id}),))

    def _asset(self, state: ContractState, tx: Transaction, p: MeterAsset, h: int) -> TxResult:
        if tx.sender not in self.rules.utilities:
            return TxResult(False, "not_utility")
        key = f"asset/{p.barcode}"
        if key in state:
            return TxResult(False, "asset_exists")
        if f"assetno/{p.asset_no}" in state:
            return TxResult(False, "asset_no_exists")
        state.put(f"assetno/{p.asset_no}", p.barcode)
        # every key from the start, in sorted order, so that the canonical encoding of a
        # block's writes finds its maps sorted and copies none (ledger.encoding)
        state.put(key, {"accuracy_class": p.accuracy_class, "asset_no": p.asset_no,
                        "batch": p.batch, "first": None, "first_task": None,
                        "history": [[h, "registered", p.batch]],
                        "manufacturer": p.manufacturer, "meter_type": p.meter_type,
                        "owner_unit": p.owner_unit, "records": [], "registered_at": h,
                        "sampling": None, "status": "in_stock", "wiring": p.wiring})  # fmt: skip
        batch = state.edit(f"batch/{p.batch}") or _new_batch(state, p.batch)
        batch["meters"] += 1
        return TxResult(True)

    def _move(self, state: ContractState, tx: Transaction, p: AssetStatus, h: int) -> TxResult:
        if tx.sender not in self.rules.utilities:
            return TxResult(False, "not_utility")
        asset = state.get(f"asset/{p.barcode}")
        if asset is None:
            return TxResult(False, "unknown_asset")
        if p.status not in ASSET_MOVES[asset["status"]]:
            return TxResult(False, f"invalid:status_move:{asset['status']}->{p.status}")
        asset = state.edit(f"asset/{p.barcode}")
        asset["status"] = p.status
        asset["history"].append([h, p.status, p.detail])
        return TxResult(True, events=(("asset_status", {"barcode": p.barcode,
                                                        "status": p.status}),))  # fmt: skip

    # ---- records ----------------------------------------------------------------------

    def _record(
        self, state: ContractState, tx: Transaction, p: VerificationRecord | RecordDigest, h: int
    ) -> TxResult:
        institution = state.get(f"ikey/{tx.sender.hex()}")
        if institution is None:
            return TxResult(False, "not_institution")
        if state.get(f"institution/{institution}")["revoked_at"]:
            return TxResult(False, "institution_revoked")
        if p.institution_id != institution:
            return TxResult(False, "invalid:signer:institution_id")
        asset = state.get(f"asset/{p.barcode}")
        if asset is None:
            return TxResult(False, "unknown_asset")
        public = p.record_kind in self.rules.public_kinds
        if isinstance(p, RecordDigest) == public:
            rule = "public_kind" if public else "not_public"  # whole if public, else digest
            return TxResult(False, f"invalid:{rule}:kind")
        results = self._validity(state, p, asset, h) if isinstance(p, VerificationRecord) else []
        failed = next(((rule, name) for rule, name, holds in results if not holds), None)
        if failed:
            return TxResult(False, f"invalid:{failed[0]}:{failed[1]}")
        key = f"record/{p.barcode}/{p.task_no}/{p.record_kind}"
        if key in state:
            return TxResult(False, "duplicate_record")
        if isinstance(p, VerificationRecord):
            # the record and its result set kept as their canonical bytes: a block's
            # writes are walked to be encoded, and bytes cost nothing to walk
            state.put(key, {"certificate_no": p.certificate_no, "date": p.date,  # sorted:
                            "height": h, "institution": institution, "record": tx.payload,
                            "result": p.result,
                            "validity": encode(held_by_rule(results))})  # fmt: skip
        else:
            state.put(key, {"date": p.date, "digest": p.digest, "height": h,
                            "institution": institution, "result": p.result})  # fmt: skip
        state.edit(f"asset/{p.barcode}")["records"].append([p.task_no, p.record_kind])
        _count(state, institution, asset["batch"], p)
        events: list[tuple[str, Any]] = []
        if p.record_kind in ("first", "sampling"):
            events += self._compare(state, asset["batch"], p, institution)
        return TxResult(True, events=tuple(events))

    def _validity(
        self, state: ContractState, p: VerificationRecord, asset: dict[str, Any], h: int
    ) -> list[Result]:
        """Appendix A.2: every rule's result for the record, under the rules in force."""
        rules = current_rules(state, self.rules.validity, h)
        first = asset.get("first_task")
        found = state.get(f"record/{p.barcode}/{first}/first") if first else None
        return check(rules, p, asset, found["date"] if found else None)

    def _compare(
        self, state: ContractState, batch_id: str, p: VerificationRecord | RecordDigest,
        institution: str,
    ) -> list[tuple[str, Any]]:  # fmt: skip
        """§5.2: first verification against supervision sampling, per barcode (each
        meter's results live on its asset, so a record copies no batch-sized value)."""
        asset = state.edit(f"asset/{p.barcode}")
        if p.record_kind == "first":
            asset["first"], asset["first_task"] = [p.result, institution], p.task_no
            verified = state.edit(f"batch/{batch_id}")["verified"]
            if p.barcode not in verified:  # a meter verified again, in another task
                verified.append(p.barcode)
        else:
            asset["sampling"] = p.result
        first, sampled = asset.get("first"), asset.get("sampling")
        if first is None or sampled is None or first[0] == sampled:
            return []
        batch = state.edit(f"batch/{batch_id}")
        if p.barcode not in [b for b, _ in batch["disagreeing"]]:
            batch["disagreeing"].append([p.barcode, first[1]])
        events: list[tuple[str, Any]] = [("verification_disagreement", {
            "batch": batch_id, "barcode": p.barcode, "first": first[0], "sampling": sampled,
            "institution": first[1]})]  # fmt: skip
        allowed = self.rules.batch_disagreements_allowed
        if batch["status"] == "open" and len(batch["disagreeing"]) > allowed:
            batch["status"] = "first_verification_failed"
            blamed = sorted({i for _, i in batch["disagreeing"]})
            events.append(("batch_first_verification_failed", {
                "batch": batch_id, "disagreements": len(batch["disagreeing"]),
                "institutions": blamed}))  # fmt: skip
            events += [("warning", {"to": i, "batch": batch_id, "reason": "first verification "
                                    "disagrees with supervision sampling (§5.2)"})
                       for i in blamed]  # fmt: skip
        return events


def _count(
    state: ContractState, institution: str, batch: str, p: VerificationRecord | RecordDigest
) -> None:
    """§6.3.1's overview: pass counts per institution and per batch, apart for full
    inspection (first verification) and sampling, and failures per item."""
    column = "full" if p.record_kind == "first" else "sampling"
    passed = p.result != NOT_QUALIFIED
    for group, name in (("institution", institution), ("batch", batch)):
        key = f"stats/{group}/{name}"
        stats = state.edit(key)
        if stats is None:
            state.put(key, {"full": [0, 0], "sampling": [0, 0]})
            stats = state.edit(key)
            index = state.edit("stats/index") or {"batch": [], "institution": []}
            index[group].append(name)
            state.put("stats/index", index)
        stats[column][0] += 1
        stats[column][1] += passed
    items = p.items if isinstance(p, VerificationRecord) else ()  # a digest shows none
    failed = [code for code, conclusion, _ in items if conclusion == NOT_QUALIFIED]
    if failed:
        items = state.edit("stats/items")
        if items is None:
            state.put("stats/items", {})
            items = state.edit("stats/items")
        for code in failed:
            items[code] = items.get(code, 0) + 1
        if list(items) != sorted(items):  # a new code: keep the map sorted
            state.put("stats/items", dict(sorted(items.items())))


def _new_batch(state: ContractState, batch_id: str) -> dict[str, Any]:
    state.put(f"batch/{batch_id}", {"disagreeing": [], "drawn": [], "meters": 0,
                                    "status": "open", "verified": []})  # fmt: skip
    batch: dict[str, Any] = state.edit(f"batch/{batch_id}")
    return batch


def stored_record(stored: dict[str, Any]) -> VerificationRecord:
    """The whole record of a stored `record/...` value (not of a digest's)."""
    record: VerificationRecord = parse_verification(KIND_RECORD, stored["record"])
    return record


def stored_validity(stored: dict[str, Any]) -> dict[str, list[str]]:
    """A stored record's result set: the fields each rule checked (all held)."""
    held: dict[str, list[str]] = decode(stored["validity"])
    return held
