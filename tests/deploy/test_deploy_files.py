"""deploy/: the Prometheus config and alert rules pass promtool, every metric the alert
rules and the Grafana dashboard use is one the node exports, the systemd unit passes
systemd-analyze, and the container entrypoint runs the ceremony among four members
through a shared folder (as four local processes here: no Docker daemon is assumed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node.load import sample_txs, submit_all
from node.metrics import Metrics
from node.testnet import Daemon, free_port, wait_ready
from node.tls import client_context
from tests.e2e.test_network import settled, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMQL_WORDS = {"up", "time", "rate", "increase", "sum", "by", "and", "le", "instance",
                "histogram_quantile", "reason", "job"}  # fmt: skip


def exported_names() -> set[str]:
    """Every sample name a node's /metrics can carry (histograms' _bucket/_sum/_count)."""
    metrics = Metrics()
    metrics.rejected.labels("x").inc()
    text = metrics.render().decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", re.sub(r'"[^"]*"|\[[^\]]*\]', "", expr)))
    return {w for w in words if w not in PROMQL_WORDS}


def alert_expressions() -> list[str]:
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    return re.findall(r"expr: (?:>-\n)?((?:.+\n)(?:\s{10,}.+\n)*)", text)


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_names() | {"up"}
    expressions = alert_expressions()
    assert len(expressions) >= 4  # node down, no commit, view changes, peers below quorum
    dashboard = json.loads((DEPLOY / "grafana" / "metroledger.json").read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for expr in expressions:
        unknown = metric_names(expr) - exported
        assert not unknown, (expr, unknown)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian prometheus)")
def test_promtool_accepts_the_config_and_the_rules(tmp_path: Path) -> None:
    alerts = str(DEPLOY / "prometheus" / "alerts.yml")
    rules = subprocess.run(["promtool", "check", "rules", alerts], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # the config names the CA bundle the compose network writes: give it one
    config = (DEPLOY / "prometheus" / "prometheus.compose.yml").read_text()
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("")
    (tmp_path / "alerts.yml").write_text((DEPLOY / "prometheus" / "alerts.yml").read_text())
    local = tmp_path / "prometheus.yml"
    local.write_text(config.replace("/exchange/certs/bundle.crt", str(bundle)))
    checked = subprocess.run(["promtool", "check", "config", str(local)], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def unit_problems(unit: str, directory: Path) -> list[str]:
    """What systemd-analyze says is wrong with a unit (it exits 0 on unknown keys)."""
    local = directory / "metroledger.service"  # the paths of an install that is not here
    local.write_text(unit.replace("/opt/metroledger/.venv/bin/metroledger", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                            text=True, check=False)  # fmt: skip
    words = ("Unknown", "Invalid", "Failed", "bad-setting")
    return [line for line in result.stderr.splitlines() if any(w in line for w in words)]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "metroledger.service").read_text()
    assert unit_problems(unit, tmp_path) == []
    misspelled = unit.replace("ProtectSystem=strict", "ProtectSystm=strict")
    assert unit_problems(misspelled, tmp_path)  # the check can fail


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_the_entrypoint_forms_a_network_through_a_shared_folder(tmp_path: Path) -> None:
    exchange = tmp_path / "exchange"
    ports = [(free_port(), free_port()) for _ in range(4)]
    roles = ("nmi", "verification_authority", "utility", "volunteer")
    processes = []
    for i, (p2p, api) in enumerate(ports):
        env = {**os.environ, "ORG_NAME": f"org{i}", "ORG_ROLE": roles[i], "ORG_IP": "127.0.0.1",
               "MEMBERS": "4", "COORDINATOR": "1" if i == 0 else "0", "CHAIN_ID": "compose-test",
               "HOME_DIR": str(tmp_path / f"org{i}"), "EXCHANGE": str(exchange),
               "P2P_PORT": str(p2p), "API_PORT": str(api),
               "METROLEDGER": f"{sys.executable} -m metroledger"}  # fmt: skip
        log = open(tmp_path / f"org{i}.log", "wb")  # noqa: SIM115 (the child keeps it)
        processes.append(subprocess.Popen(["sh", str(DEPLOY / "docker" / "entrypoint.sh")],
                                          env=env, stdout=log, stderr=log,
                                          start_new_session=True))  # fmt: skip
    try:
        wait_until("the genesis", (exchange / "genesis.json").exists, 120)
        bundle = exchange / "certs" / "bundle.crt"
        nodes = [Daemon(tmp_path / f"org{i}" / "node.toml", f"https://127.0.0.1:{api}", ca=bundle)
                 for i, (_, api) in enumerate(ports)]  # fmt: skip
        wait_ready(nodes, 120)
        txs = sample_txs("ed25519", 20, chain=nodes[0].chain())
        hashes = submit_all([n.api for n in nodes], txs, "ed25519", client_context(bundle))
        wait_until("committed by the four organisations", lambda: settled(nodes, hashes))
        keys = [json.loads((tmp_path / f"org{i}/keys/node_key.json").read_text()) for i in range(4)]
        shared = "".join(p.read_text() for p in exchange.rglob("*") if p.is_file())
        assert not any(k["signing_seed"] in shared for k in keys)  # no key left its home
    finally:
        for process in processes:
            process.kill()
            process.wait()
