"""Sampling tasks and physical re-check imports (Tianjin specification §6.3.2, §6.3.3).

A regulator creates a task for an arrival batch. The lot is the batch's verified meters
(never more are drawn); the plan follows by GB/T 2828.1 (`analysis.sampling`) from the
lot size, level, AQL and severity; the barcodes are drawn with the hash of the block
before the task's (`ContractState.prev_hash`), so anyone can re-derive them from the
chain. In "data re-check" mode the draw is from the meters no earlier task of the batch
drew. The import of a physical re-check must name the task's batch and bring exactly the
drawn meters; each is compared with its first verification, item by item, and marked
consistent or inconsistent; the lot is accepted or not by the plan's Ac and Re.

State: task/<task>       = {batch, plan{...}, barcodes[], mode, status, result}
       batch/<batch>     gains verified[] (first-verified barcodes) and drawn[]
       recheck/<task>/<barcode> = {result, consistent, differing[tableField]}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from analysis.contracts import TxResult
from analysis.sampling import SamplingError, draw, plan
from analysis.state import ContractState
from ledger.verification import ITEMS, NOT_QUALIFIED, RecheckImport, SamplingTask


def create_task(state: ContractState, p: SamplingTask, h: int) -> TxResult:
    batch = state.get(f"batch/{p.batch}")
    if batch is None:
        return TxResult(False, "unknown_batch")
    if f"task/{p.task_no}" in state:
        return TxResult(False, "task_exists")
    verified = sorted(batch.get("verified", []))
    drawn = set(batch["drawn"])
    pool = verified if p.mode == "physical" else sorted(set(verified) - drawn)
    if len(verified) < 2 or not pool:
        return TxResult(False, "nothing_to_sample")
    try:
        chosen = plan(len(verified), p.level, p.aql, p.severity)
    except SamplingError as exc:
        return TxResult(False, f"invalid:sampling:{exc}")
    barcodes = draw(pool, chosen.sample_size, state.prev_hash)
    state.put(f"task/{p.task_no}", {"batch": p.batch, "plan": asdict(chosen), "mode": p.mode,
                                    "barcodes": barcodes, "status": "open", "created_at": h,
                                    "seed": state.prev_hash, "result": ""})  # fmt: skip
    edited = state.edit(f"batch/{p.batch}")
    edited["drawn"] = sorted(set(edited["drawn"]) | set(barcodes))
    created = {
        "task": p.task_no,
        "batch": p.batch,
        "lot": len(verified),
        "n": len(barcodes),
        "ac": chosen.accept,
        "re": chosen.reject,
        "code_letter": chosen.code_letter,
    }
    return TxResult(True, events=(("sampling_task_created", created),))


def import_recheck(state: ContractState, p: RecheckImport, h: int) -> TxResult:
    task = state.get(f"task/{p.task_no}")
    if task is None:
        return TxResult(False, "unknown_task")
    if task["status"] != "open":
        return TxResult(False, "task_closed")
    if p.batch != task["batch"]:
        return TxResult(False, f"invalid:batch_mismatch:batch ({task['batch']} expected)")
    got = [barcode for barcode, _, _ in p.results]
    if len(got) != len(task["barcodes"]) or set(got) != set(task["barcodes"]):
        return TxResult(False, f"invalid:count_mismatch:results ({len(task['barcodes'])} drawn)")
    inconsistent, nonconforming = 0, 0
    for barcode, result, items in p.results:
        original = _first_record(state, barcode)
        differing = _compare_items(original, dict(items)) if original else ["(no first)"]
        consistent = not differing and original is not None and original["result"] == result
        inconsistent += not consistent
        nonconforming += result == NOT_QUALIFIED
        row = {"result": result, "consistent": consistent, "differing": differing, "height": h}
        state.put(f"recheck/{p.task_no}/{barcode}", row)
    accept, reject = task["plan"]["accept"], task["plan"]["reject"]
    verdict = "accepted" if nonconforming <= accept else "not_accepted"
    if accept < nonconforming < reject:
        verdict = "accepted_revert"  # reduced inspection's gap
    edited = state.edit(f"task/{p.task_no}")
    edited.update({"status": "imported", "result": verdict, "nonconforming": nonconforming,
                   "inconsistent": inconsistent})  # fmt: skip
    imported = {
        "task": p.task_no,
        "batch": p.batch,
        "nonconforming": nonconforming,
        "inconsistent": inconsistent,
        "lot": verdict,
    }
    return TxResult(True, events=(("recheck_imported", imported),))


def _first_record(state: ContractState, barcode: str) -> dict[str, Any] | None:
    first = state.get(f"asset/{barcode}", {}).get("first_task")
    return None if first is None else state.get(f"record/{barcode}/{first}/first")


def _compare_items(original: dict[str, Any], rechecked: dict[str, str]) -> list[str]:
    """The items (tableField) whose conclusion differs from the first verification."""
    from analysis.verification import stored_record  # it imports this module

    if "record" not in original:  # a non-public first record: only its overall result
        return []
    before = {code: conclusion for code, conclusion, _ in stored_record(original).items}
    return sorted(ITEMS[code][0] for code in set(before) | set(rechecked)
                  if before.get(code) != rechecked.get(code))  # fmt: skip
