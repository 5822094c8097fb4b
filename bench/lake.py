"""`metroledger export --format parquet DIR [--api URL]`: the ledger as a research data
lake (without --api, from the first node of the `testnet init` folder it runs in).

What a node has committed, read through its API (`GET /v1/blocks/{h}`: the encoded block
and the transactions it refused), written as a Hive-partitioned Parquet dataset:

    DIR/kind=<kind>/date=<YYYY-MM-DD>/part-<first>-<last>.parquet

one file per kind, block-time date and export run, with heights first..last. Kinds:
`block`, `refuel`, `meter` (readings), `record` (public verification records) and
`event` (contract events). Only transactions their block accepted are exported. The
schema of each kind is `SCHEMAS` below (docs/lake.md).

Incremental: `DIR/_export.json` names the chain and the last height exported; a second
run exports the blocks after it and adds new part files only. Parts are written under a
temporary name and renamed, and the manifest last, so a run that stops half-way is
redone by the next (a part of the same heights is replaced whole).
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger.readings import KIND_METER, KIND_REFUEL, MeterReading, RefuelReading, parse_payload
from ledger.types import Block
from ledger.verification import KIND_RECORD, VerificationRecord, parse_verification
from oracle.testnet_keys import find_testnet, load_testnet_roles

MANIFEST = "_export.json"
TX = [("height", pa.int64()), ("tx_index", pa.int32()), ("tx_hash", pa.string()),
      ("sender", pa.string()), ("seq", pa.int64()), ("block_time_ms", pa.int64())]  # fmt: skip
SCHEMAS = {
    "block": pa.schema([("height", pa.int64()), ("block_time_ms", pa.int64()),
                        ("hash", pa.string()), ("proposer", pa.int32()),
                        ("view", pa.int64()), ("tx_count", pa.int32()),
                        ("refused", pa.int32()), ("state_root", pa.string())]),
    "refuel": pa.schema([*TX, ("vehicle_id", pa.string()), ("dispenser_id", pa.string()),
                         ("station_id", pa.string()), ("dispensed_volume_ml", pa.int64()),
                         ("measured_volume_ml", pa.int64()),
                         ("tank_level_before_obd", pa.int32()),
                         ("tank_level_after_obd", pa.int32()), ("odometer_m", pa.int64()),
                         ("time_ms", pa.int64()), ("software_hash", pa.string())]),
    "meter": pa.schema([*TX, ("meter_id", pa.string()), ("energy_wh", pa.int64()),
                        ("interval_s", pa.int64()), ("time_ms", pa.int64()),
                        ("software_hash", pa.string())]),
    "record": pa.schema([*TX, ("task_no", pa.string()), ("barcode", pa.string()),
                         ("date", pa.string()), ("institution_id", pa.string()),
                         ("record_kind", pa.string()), ("result", pa.string()),
                         ("certificate_no", pa.string()), ("items", pa.string()),
                         ("points", pa.string())]),
    "event": pa.schema([("height", pa.int64()), ("tx_index", pa.int32()),
                        ("block_time_ms", pa.int64()), ("name", pa.string()),
                        ("data", pa.string())]),
}  # fmt: skip
BLOCKS_PER_RUN = 100_000


class ExportError(RuntimeError):
    pass


def get_json(api: str, path: str) -> Any:
    with urllib.request.urlopen(api.rstrip("/") + path, timeout=30) as answer:
        return json.loads(answer.read())


def export(api: str, out: Path, say: Callable[[str], None] = lambda s: None) -> dict[str, int]:
    """Export the blocks after the manifest's height; rows written per kind."""
    status = get_json(api, "/v1/status")
    manifest = read_manifest(out, status["chain_hash"])
    first, last = manifest["height"] + 1, min(status["height"], manifest["height"] + BLOCKS_PER_RUN)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in SCHEMAS}
    time_ms = manifest["block_time_ms"]
    for height in range(first, last + 1):
        block_doc = get_json(api, f"/v1/blocks/{height}")
        time_ms = max(time_ms, block_doc["timestamp_ms"])  # a null proposal keeps the time
        day = datetime.datetime.fromtimestamp(time_ms / 1000, datetime.UTC).date().isoformat()
        for kind, row in block_rows(block_doc, time_ms):
            rows[kind].setdefault(day, []).append(row)
        if height % 200 == 0 or height == last:
            say(f"\rexport: block {height}/{last}   ")
    for event in events(api, first, last):
        event["block_time_ms"] = 0  # filled below from the block rows
        rows["event"].setdefault("", []).append(event)
    _date_events(rows)
    written = {kind: write_parts(out, kind, by_day, first, last) for kind, by_day in rows.items()}
    write_manifest(out, status["chain_hash"], max(last, manifest["height"]), time_ms)
    return written


def block_rows(doc: dict[str, Any], time_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """The rows one block gives: itself, then each accepted reading and public record."""
    refused = {index for index, _ in doc["refused"]}
    block = Block.decode(bytes.fromhex(doc["encoded"]))
    out: list[tuple[str, dict[str, Any]]] = [("block", {
        "height": doc["height"], "block_time_ms": time_ms, "hash": doc["hash"],
        "proposer": doc["proposer"], "view": doc["certificate"]["view"],
        "tx_count": doc["tx_count"], "refused": len(refused),
        "state_root": doc["state_root"]})]  # fmt: skip
    for index, (tx, tx_hash) in enumerate(zip(block.txs, doc["txs"], strict=True)):
        if index in refused:
            continue
        base = {"height": doc["height"], "tx_index": index, "tx_hash": tx_hash,
                "sender": tx.sender.hex(), "seq": tx.seq, "block_time_ms": time_ms}  # fmt: skip
        if tx.kind in (KIND_REFUEL, KIND_METER):
            reading = parse_payload(tx.kind, tx.payload)
            assert isinstance(reading, RefuelReading | MeterReading)
            fields = {**vars(reading), "software_hash": reading.software_hash.hex()}
            out.append((tx.kind if tx.kind == KIND_METER else "refuel", {**base, **fields}))
        elif tx.kind == KIND_RECORD:
            r = parse_verification(tx.kind, tx.payload)
            assert isinstance(r, VerificationRecord)
            out.append(("record", {**base, "task_no": r.task_no, "barcode": r.barcode,
                                   "date": r.date, "institution_id": r.institution_id,
                                   "record_kind": r.record_kind, "result": r.result,
                                   "certificate_no": r.certificate_no,
                                   "items": json.dumps(r.items, ensure_ascii=False),
                                   "points": json.dumps(r.points)}))  # fmt: skip
    return out


def events(api: str, first: int, last: int) -> list[dict[str, Any]]:
    """Every contract event of blocks first..last, paged by event id (`GET /v1/events`)."""
    found: list[dict[str, Any]] = []
    page = get_json(api, f"/v1/events?from_height={first}&limit=1000")["events"]
    while page:
        for e in page:
            if e["height"] > last:
                return found
            data = json.dumps(e["data"], ensure_ascii=False, sort_keys=True)
            found.append({"height": e["height"], "tx_index": e["tx_index"], "name": e["name"],
                          "data": data})  # fmt: skip
        if len(page) < 1000:
            break
        page = get_json(api, f"/v1/events?after={page[-1]['id']}&limit=1000")["events"]
    return found


def _date_events(rows: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Events take their block's time and date."""
    when = {r["height"]: (day, r["block_time_ms"]) for day, rs in rows["block"].items() for r in rs}
    by_day: dict[str, list[dict[str, Any]]] = {}
    for event in rows["event"].pop("", []):
        day, time_ms = when[event["height"]]
        event["block_time_ms"] = time_ms
        by_day.setdefault(day, []).append(event)
    rows["event"] = by_day


def write_parts(out: Path, kind: str, by_day: dict[str, list[dict[str, Any]]], first: int,
                last: int) -> int:  # fmt: skip
    schema = SCHEMAS[kind]
    for day, items in sorted(by_day.items()):
        folder = out / f"kind={kind}" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([{f: r[f] for f in schema.names} for r in items], schema)
        final = folder / f"part-{first:012d}-{last:012d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, final)
    return sum(len(items) for items in by_day.values())


def read_manifest(out: Path, chain_hash: str) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.exists():
        return {"chain_hash": chain_hash, "height": 0, "block_time_ms": 0}
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest["chain_hash"] != chain_hash:
        held = manifest["chain_hash"][:16]
        raise ExportError(f"{out} holds chain {held}..., this node serves "
                          f"{chain_hash[:16]}...: export each chain to its own folder")  # fmt: skip
    return manifest


def write_manifest(out: Path, chain_hash: str, height: int, time_ms: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps({"chain_hash": chain_hash, "height": height,
                                     "block_time_ms": time_ms}), encoding="utf-8")  # fmt: skip
    os.replace(temporary, out / MANIFEST)


def add_export_parser(commands: Any) -> None:
    p = commands.add_parser("export", help="committed data as a Parquet data lake (incremental)")
    p.add_argument("dir", type=Path, help="the lake's folder (created; a second run adds to it)")
    p.add_argument("--format", choices=["parquet"], default="parquet")
    p.add_argument("--api", help="a node's API URL (default: the first node of the "
                                 "`testnet init` folder this runs in)")  # fmt: skip
    p.set_defaults(run=run_export)


def node_api(given: str | None) -> str:
    """--api, else the first node of the testnet in the current folder; ValueError if neither."""
    if given:
        return given
    folder = find_testnet(Path.cwd())
    if folder is None:
        raise ValueError("give --api URL, or run inside a `testnet init` folder")
    return load_testnet_roles(folder).node_urls[0]


def run_export(args: Any) -> int:
    import sys

    try:
        api = node_api(args.api)
        written = export(api, args.dir, lambda s: print(s, end="", file=sys.stderr))
    except (OSError, ValueError, ExportError) as exc:
        print(f"\nmetroledger export: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(json.dumps({"dir": str(args.dir), "rows": written}))
    return 0


def replay_surveillance(lake: Path, contracts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The surveillance contract run again over the lake's refuel readings, in ledger
    order, with the chain's rules (the genesis `contracts` section): each dispenser's
    record, as the nodes hold it. DuckDB reads the files; the contract is the nodes' own
    code, so a researcher reproduces the verdicts exactly, or tries other rules."""
    import duckdb

    from analysis.state import DirectState
    from analysis.surveillance import DispenserSurveillance, SurveillanceRules

    columns = ("vehicle_id, dispenser_id, station_id, dispensed_volume_ml, measured_volume_ml, "
               "tank_level_before_obd, tank_level_after_obd, odometer_m, time_ms")  # fmt: skip
    files = f"read_parquet('{lake}/kind=refuel/*/*.parquet', hive_partitioning = true)"
    relation = duckdb.sql(f"SELECT {columns} FROM {files} ORDER BY height, tx_index")
    assert relation is not None  # a SELECT always has a result
    rows = relation.fetchall()
    contract = DispenserSurveillance(
        SurveillanceRules.from_config(contracts.get("surveillance", {}))
    )
    state = DirectState({})
    for row in rows:
        contract.observe(state, RefuelReading(*row))
    return {k[len("disp/") :]: v for k, v in state.committed.items() if k.startswith("disp/")}
