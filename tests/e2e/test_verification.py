"""Meter verification supervision on four real daemons in the sm2 suite: registries,
first verification by two institutions (one passes failing meters), supervision
sampling, the batch rule and its warning, and the Appendix B query over HTTP."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import get_suite
from ledger.readings import SequencedSigner
from ledger.verification import (
    ITEMS,
    NOT_QUALIFIED,
    QUALIFIED,
    InstitutionChange,
    MeterAsset,
    VerificationRecord,
)
from node.keys import load_keys
from node.load import submit_all
from node.testnet import running
from oracle.records import bench_record
from tests.e2e.test_network import settled, wait_until

SUITE = "sm2"


def barcode(i: int) -> str:
    return f"12300010081000{i:08d}"


def record(i: int, kind: str, result: str, institution: str) -> VerificationRecord:
    task = "1201202412300002" if kind == "first" else "5001202501150001"
    return bench_record(task, barcode(i), "2024-12-31 13:57:19", institution, kind, result)


def post(api: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(api + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_batch_rule_catches_the_institution_that_passes_failing_meters(tmp_path: Path) -> None:
    with running(tmp_path, 4, SUITE) as nodes:
        suite, chain = get_suite(SUITE), nodes[0].chain()
        regulator = load_keys(tmp_path / "node0" / "keys" / "node_key.json").signing
        utility = load_keys(tmp_path / "node1" / "keys" / "node_key.json").signing
        honest, lax, lab = (suite.keypair_from_seed(s) for s in (b"inst-a", b"inst-b", b"lab"))
        s = SequencedSigner(get_suite(SUITE), chain)
        txs = [s.sign(regulator, InstitutionChange("register", iid, iid, key.public_key))
               for iid, key in (("INST-A", honest), ("INST-B", lax), ("REG-LAB", lab))]  # fmt: skip
        assets = [MeterAsset(barcode(i), f"A{i}", "B1" if i < 10 else "B2", "Maker", "DDZY", "01",
                             "2", "Tianjin") for i in range(20)]  # fmt: skip
        txs += [s.sign(utility, asset) for asset in assets]
        hashes = submit_all([d.api for d in nodes], txs, SUITE)
        wait_until("registries committed", lambda: settled(nodes, hashes))
        txs = [s.sign(lax, record(i, "first", QUALIFIED, "INST-B")) for i in range(10)]
        txs += [s.sign(honest, record(i, "first", QUALIFIED, "INST-A")) for i in range(10, 20)]
        txs += [s.sign(lab, record(i, "sampling", NOT_QUALIFIED, "REG-LAB")) for i in (1, 4, 7)]
        txs += [s.sign(lab, record(i, "sampling", QUALIFIED, "REG-LAB")) for i in (11, 14, 17)]
        hashes = submit_all([d.api for d in nodes], txs, SUITE)
        wait_until("records committed", lambda: settled(nodes, hashes))
        for d in nodes:
            failed = d.get("/v1/meter/batches/B1")
            assert failed["status"] == "first_verification_failed"
            assert {x["institution"] for x in failed["disagreements"]} == {"INST-B"}
            assert d.get("/v1/meter/batches/B2")["status"] == "open"
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
        (warning,) = nodes[2].get("/v1/events?name=warning")["events"]
        assert warning["data"]["to"] == "INST-B"
        status, answer = post(nodes[3].api, "/v1/meter/query", {
            "barCode": barcode(12), "tableCode": "", "veriTaskNo": "1201202412300002"})  # fmt: skip
        assert status == 200 and answer["code"] == 200 and answer["msg"] == "成功!"
        assert answer["data"]["barCode"] == barcode(12) and len(answer["data"]["tableNames"]) == 9
        status, answer = post(nodes[3].api, "/v1/meter/query", {"barCode": "1", "veriTaskNo": "x"})
        assert status == 404 and answer["code"] == 404 and answer["data"] is None
        meter = nodes[1].get(f"/v1/meter/assets/{barcode(4)}")
        assert [(r["kind"], r["result"]) for r in meter["records"]] == [
            ("first", QUALIFIED), ("sampling", NOT_QUALIFIED)]  # fmt: skip
        first, sampling = meter["records"]
        assert first["institution"] == "INST-B" and first["certificate_no"]
        assert sampling["points"][3] == ["0.1Ib/1.0", -25_000] and not sampling["certificate_no"]
        assert sorted(first["validity"]) == ["point_consistency", "range", "required_item",
                                             "result_consistency"]  # fmt: skip
        assert len(first["validity"]["point_consistency"]) == 10  # single phase: 10 points
        assert sampling["validity"]["date_order"] == ["veriDate"]
        lax_stats = nodes[0].get("/v1/meter/institutions/INST-B")
        assert lax_stats["key"] == lax.public_key.hex() and lax_stats["revoked_at"] is None
        assert lax_stats["records"]["full"] == {"records": 10, "passed": 10}


def test_a_non_public_record_enters_the_ledger_as_its_digest_only(tmp_path: Path) -> None:
    import sqlite3
    import subprocess
    import sys

    import httpx

    from ledger.verification import RecordDigest

    contracts = {"verification": {"public_kinds": ["first", "sampling", "physical_recheck"]}}
    with running(tmp_path, 4, SUITE, contracts=contracts) as nodes:
        suite, chain = get_suite(SUITE), nodes[0].chain()
        regulator = load_keys(tmp_path / "node0" / "keys" / "node_key.json").signing
        utility = load_keys(tmp_path / "node1" / "keys" / "node_key.json").signing
        owner = suite.keypair_from_seed(b"inst-private")
        s = SequencedSigner(get_suite(SUITE), chain)
        meter = MeterAsset(barcode(1), "A1", "B1", "M", "T", "01", "2", "U")
        setup = [s.sign(regulator, InstitutionChange("register", "INST-P", "P", owner.public_key)),
                 s.sign(utility, meter)]  # fmt: skip
        hashes = submit_all([d.api for d in nodes], setup, SUITE)
        wait_until("set up", lambda: settled(nodes, hashes))
        full = record(1, "user_calibration", NOT_QUALIFIED, "INST-P")
        whole = s.sign(owner, full)  # sent whole by mistake: refused before any block
        status, answer = post(nodes[2].api, "/v1/tx", {"tx": whole.encoded().hex()})
        assert status == 400 and answer["error"] == "invalid:not_public:kind", answer
        token = subprocess.run([sys.executable, "-m", "metroledger", "operator", "token",
                                "--config", str(nodes[2].config)], capture_output=True,
                               text=True, check=True, timeout=60).stdout.strip()  # fmt: skip
        auth = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=nodes[2].api, timeout=10) as http:
            kept = http.post("/v1/operator/meter/private", json={"record": full.encode().hex()},
                             headers=auth)  # fmt: skip
            assert kept.status_code == 200
            assert http.post("/v1/operator/meter/private", json={"record": "00"}).status_code == 401
        hashes = submit_all([nodes[2].api], [s.sign(owner, RecordDigest.of(full))], SUITE)
        wait_until("digest committed", lambda: settled(nodes, hashes))
        for i in range(4):  # every block on every node: the digest, never the items
            db = sqlite3.connect(tmp_path / f"node{i}" / "data" / "ledger.sqlite3")
            blobs = b"".join(bytes(b) for (b,) in db.execute("SELECT block FROM blocks"))
            assert RecordDigest.of(full).digest in blobs
            assert b"BASICERR_Meter_CONC" not in blobs and full.encode() not in blobs
        path = f"/v1/operator/meter/private/{barcode(1)}/{full.task_no}?kind=user_calibration"
        with httpx.Client(base_url=nodes[2].api, timeout=10) as http:
            shown = http.get(path, headers=auth).json()
            assert shown["check"] == "digest matches" and shown["record"]["veriResult"] == "不合格"
            store = sqlite3.connect(tmp_path / "node2" / "data" / "private.sqlite3")
            changed = full.encode().replace("不合格".encode(), "合格合".encode(), 1)
            store.execute("UPDATE private_records SET record = ?", (changed,))
            store.commit()
            tampered = http.get(path, headers=auth).json()
            assert tampered["check"] == "digest does not match" and tampered["record"] is None


def test_the_meter_submit_command_signs_and_submits_each_kind(tmp_path: Path) -> None:
    import subprocess
    import sys

    from oracle.keys import write_device_key

    def cli(kind: str, doc: dict[str, Any], key: Path) -> subprocess.CompletedProcess[str]:
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False))
        return subprocess.run([sys.executable, "-m", "metroledger", "meter", "submit", kind,
                               "--json", str(path), "--config", str(nodes[0].config),
                               "--key", str(key), "--api", nodes[0].api],
                              capture_output=True, text=True, timeout=90)  # fmt: skip

    with running(tmp_path, 4, "ed25519") as nodes:
        regulator = tmp_path / "node0" / "keys" / "node_key.json"
        utility = tmp_path / "node1" / "keys" / "node_key.json"
        institute = write_device_key(tmp_path / "inst.json", "ed25519")
        register = {"action": "register", "id": "INST-C", "name": "C",
                    "public_key": institute.public_key.hex()}  # fmt: skip
        done = cli("institution", register, regulator)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "committed"
        asset = {"barCode": barcode(5), "asset_no": "A5", "batch": "B5", "manufacturer": "M",
                 "meter_type": "DDZY", "wireModel": "01", "accuracy_class": "2",
                 "owner_unit": "U"}  # fmt: skip
        assert cli("asset", asset, utility).returncode == 0
        doc = {"veriTaskNo": "T9", "barCode": barcode(5), "veriDate": "2024-12-31 13:57:19",
               "institution_id": "INST-C", "kind": "first", "veriResult": "合格",
               "items": [[code, "合格", 0] for code in ITEMS], "certificate_no": "JD-9",
               "points": [["Ib/1.0", -800], ["0.1Ib/1.0", 1_900]]}  # fmt: skip
        assert cli("record", doc, tmp_path / "inst.json").returncode == 0
        moved = cli("status", {"barCode": barcode(5), "status": "running"}, utility)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        wrong = cli("status", {"barCode": barcode(5), "status": "running"}, utility)
        assert wrong.returncode == 1 and "status_move:running->running" in wrong.stdout
        again = cli("record", doc, tmp_path / "inst.json")  # the same record twice
        assert again.returncode == 1 and "duplicate_record" in again.stdout
        bad = cli("record", {**doc, "veriDate": "yesterday"}, tmp_path / "inst.json")
        assert bad.returncode == 2 and "veriDate" in bad.stderr
        query = {"barCode": barcode(5), "veriTaskNo": "T9", "tableCode": ""}
        status, answer = post(nodes[1].api, "/v1/meter/query", query)
        assert status == 200 and answer["data"]["veriResult"] == "合格"
        # a running meter in no area: the model cannot compute, so a work order opens
        ask = {"request_id": "Q1", "asset_no": "A5", "channel": "hotline", "applicant": "Li"}
        assert cli("calibration", ask, utility).returncode == 0
        assert nodes[2].get("/v1/meter/calibrations/Q1")["answer"] == "further_verification"
        step = cli("order", {"order_id": "C-Q1", "action": "accept", "staff": "Wang"}, utility)
        assert step.returncode == 0, step.stdout + step.stderr
        early = cli("order", {"order_id": "C-Q1", "action": "visit"}, utility)
        assert early.returncode == 1 and "order_step:accepted->visit" in early.stdout
        bad = cli("order", {"order_id": "C-Q1", "action": "evaluate", "satisfaction": "meh"},
                  utility)  # fmt: skip
        assert bad.returncode == 2 and "satisfaction" in bad.stderr
        shown = nodes[1].get(f"/v1/registry?serial={barcode(5)[:18]}&type=DDZY")
        (entry,) = shown["entries"]  # the public registry: valid for the default 8 years
        assert entry["valid_until"] == "2032-12-31" and entry["certificate_no"] == "JD-9"
        assert nodes[1].get("/v1/registry?valid_until_to=2030-01-01")["total"] == 0
        with urllib.request.urlopen(nodes[2].api + f"/v1/registry.csv?serial={barcode(5)}") as f:
            lines = f.read().decode().splitlines()
        assert lines[0].startswith("barcode,") and lines[1].startswith(barcode(5))
        assert nodes[0].get("/v1/registry/reminders?owner=U")["reminders"] == []  # not yet due
        order = nodes[3].get("/v1/meter/work_orders/C-Q1")
        assert order["status"] == "accepted" and order["staff"] == [
            {"step": "accept", "staff": "Wang"}
        ]
