"""`metroledger meter submit KIND --json FILE --home H --api URL`: sign one meter-verification
transaction with a node home's key (a regulator, a utility) or an institution's key file,
and submit it; the answer is the node's (committed, or refused with the rule and field).

KIND and the JSON document:
  institution  {"action": "register"|"revoke", "id", "name", "public_key": HEX}
  asset        {"barCode", "asset_no", "batch", "manufacturer", "meter_type",
                "wireModel": "01"|"03", "accuracy_class", "owner_unit"}
  status       {"barCode", "status": "in_stock"|"running"|"removed", "detail"}
  area         {"area_id", "summary_meter", "meters": [[device id, accuracy class]],
                "period_s": 3600|86400}
  record       {"veriTaskNo", "barCode", "veriDate", "institution_id", "kind",
                "items": [[tableCode, conclusion, value]], "veriResult",
                optional: "certificate_no", "verifier", "standard_id", "temperature_dc",
                "humidity_pct", "points": [[loadPoint, error ppm]]}
  digest       the same as record: only its digest and index fields are submitted
  task         {"veriTaskNo", "batch", "level", "aql", "severity", "mode"}
  recheck      {"veriTaskNo", "batch", "results": [[barCode, veriResult, [[tableCode, conc]]]]}
  calibration  {"request_id", "asset_no", "channel": "app"|"web"|"hotline"|"counter",
                "applicant"}  (a user's active-calibration request, §6.1)
  order        {"order_id", "action": "accept"|"process"|"visit"|"evaluate", "staff",
                process: "task_no"; evaluate: "satisfaction", "opinion"}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ledger.areas import AreaRegistration, parse_area
from ledger.crypto import get_suite
from ledger.readings import Payload, sign_payload
from ledger.service import CalibrationRequest, WorkOrderStep, parse_service
from ledger.types import compute_tx_hash
from ledger.verification import (
    AssetStatus,
    InstitutionChange,
    MeterAsset,
    RecheckImport,
    RecordDigest,
    SamplingTask,
    VerificationRecord,
    parse_verification,
)
from node.config import ConfigError, load_genesis, load_node_config
from node.load import post_tx
from oracle.keys import load_signing_key

KINDS = ("institution", "asset", "status", "area", "record", "digest", "task", "recheck",
         "calibration", "order")  # fmt: skip


def add_submit_parser(sub: Any) -> None:
    p = sub.add_parser("submit", help="sign and submit one verification transaction")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--json", type=Path, required=True, help="the document (see --help)")
    p.add_argument("--config", type=Path, required=True,
                   help="a node.toml: its genesis names the chain")  # fmt: skip
    p.add_argument("--key", type=Path, required=True, help="the signer's key file")
    p.add_argument("--api", required=True, help="a node's API URL")
    p.set_defaults(run=run_submit)


def payload_of(kind: str, doc: dict[str, Any]) -> Payload:
    """The typed payload of a JSON document (KeyError / InvalidRecord if malformed)."""
    if kind == "institution":
        return InstitutionChange(doc["action"], doc["id"], doc["name"],
                                 bytes.fromhex(doc["public_key"]))  # fmt: skip
    if kind == "asset":
        return MeterAsset(doc["barCode"], doc["asset_no"], doc["batch"], doc["manufacturer"],
                          doc["meter_type"], doc["wireModel"], doc["accuracy_class"],
                          doc["owner_unit"])  # fmt: skip
    if kind == "area":
        meters = tuple(tuple(m) for m in doc["meters"])
        return AreaRegistration(doc["area_id"], doc["summary_meter"], meters, doc["period_s"])
    if kind == "status":
        return AssetStatus(doc["barCode"], doc["status"], doc.get("detail", ""))
    if kind in ("record", "digest"):
        items = tuple(tuple(i) for i in doc["items"])
        extra = {k: doc[k] for k in ("certificate_no", "verifier", "standard_id",
                                     "temperature_dc", "humidity_pct") if k in doc}  # fmt: skip
        points = tuple(tuple(x) for x in doc.get("points", ()))
        record = VerificationRecord(doc["veriTaskNo"], doc["barCode"], doc["veriDate"],
                                    doc["institution_id"], doc["kind"], items,
                                    doc["veriResult"], **extra, points=points)  # fmt: skip
        return record if kind == "record" else RecordDigest.of(record)
    if kind == "calibration":
        return CalibrationRequest(doc["request_id"], doc["asset_no"], doc["channel"],
                                  doc.get("applicant", ""))  # fmt: skip
    if kind == "order":
        return WorkOrderStep(doc["order_id"], doc["action"], doc.get("staff", ""),
                             doc.get("task_no", ""), doc.get("satisfaction", ""),
                             doc.get("opinion", ""))  # fmt: skip
    if kind == "task":
        return SamplingTask(doc["veriTaskNo"], doc["batch"], doc["level"], doc["aql"],
                            doc["severity"], doc["mode"])  # fmt: skip
    rows = tuple((b, r, tuple(tuple(i) for i in items)) for b, r, items in doc["results"])
    return RecheckImport(doc["veriTaskNo"], doc["batch"], rows)


def check(payload: Payload) -> Any:
    """The payload as the node parses it (InvalidRecord if it would be refused)."""
    if isinstance(payload, AreaRegistration):
        return parse_area(payload.encode())
    if isinstance(payload, CalibrationRequest | WorkOrderStep):
        return parse_service(payload.KIND, payload.encode())
    return parse_verification(payload.KIND, payload.encode())


def run_submit(args: argparse.Namespace) -> int:
    try:
        genesis = load_genesis(load_node_config(args.config).genesis_file)
        payload = payload_of(args.kind, json.loads(args.json.read_text(encoding="utf-8")))
        payload = check(payload)  # the node's own checks
        _, key = load_signing_key(args.key)
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        print(f"metroledger meter submit: {exc}", file=sys.stderr)
        return 2
    suite = get_suite(genesis.suite)
    seq = time.time_ns() // 1_000_000  # fresh for this signer
    tx = sign_payload(suite, key, seq, payload, genesis.genesis_hash)
    try:
        submitted = post_tx(args.api, tx, timeout_s=40, wait_s=30)
    except OSError as exc:
        print(f"metroledger meter submit: {exc}", file=sys.stderr)
        return 2
    if submitted.status not in (200, 202):
        print(f"refused ({submitted.status}): {json.dumps(submitted.body)}", file=sys.stderr)
        return 1
    answer = submitted.body
    print(json.dumps({"tx_hash": compute_tx_hash(suite, tx).hex(), **answer}))
    return 0 if answer.get("status") == "committed" and not answer.get("reason") else 1
