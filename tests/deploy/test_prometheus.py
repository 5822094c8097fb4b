"""Debian's real Prometheus against a network on separate hosts (network namespaces,
APIs over TLS): it scrapes every node, loads our alert rules, and every node's
committed height reads back through Prometheus's own HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from node.load import sample_txs, submit_all
from node.netns import unavailable
from node.testnet import daemons, free_port, init_netns_testnet, start_hosts, wait_ready
from node.tls import client_context
from tests.e2e.test_network import settled, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = shutil.which("prometheus")


def query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success"
    return list(body["data"]["result"])


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (apt install prometheus)")
@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_prometheus_reads_every_nodes_height_through_its_api(tmp_path: Path) -> None:
    net = tmp_path / "net"
    init_netns_testnet(net, 4, "ed25519")
    nodes = daemons(net)
    targets = [d.api.removeprefix("https://") for d in nodes]
    config = tmp_path / "prometheus.yml"
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        "  - job_name: metroledger\n    scheme: https\n"
        f"    tls_config: {{ca_file: {net / 'tls' / 'ca.crt'}}}\n"
        f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    port = free_port()
    hosts = start_hosts(net, nodes)
    assert hosts is not None
    prometheus = None
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        txs = sample_txs("ed25519", 50, chain=nodes[0].chain())
        hashes = submit_all([d.api for d in nodes], txs, "ed25519", client_context(nodes[0].ca))
        wait_until("committed", lambda: settled(nodes, hashes))
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (the child keeps it)
        prometheus = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log,
        )  # fmt: skip
        heights = {d.api.removeprefix("https://"): d.get("/v1/status")["height"] for d in nodes}

        def scraped() -> bool:
            result = query(port, "metroledger_committed_height")
            seen = {r["metric"]["instance"]: int(r["value"][1]) for r in result}  # type: ignore[index]
            return seen.keys() == heights.keys() and all(seen[k] >= heights[k] > 0 for k in heights)

        wait_until("Prometheus scraped every node's height", scraped, 60)
        assert {r["value"][1] for r in query(port, 'up{job="metroledger"}')} == {"1"}  # type: ignore[index]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as r:
            groups = json.loads(r.read())["data"]["groups"]
        names = {rule["name"] for g in groups for rule in g["rules"]}
        assert {"MetroledgerNodeDown", "MetroledgerPeersBelowQuorum"} <= names
    finally:
        if prometheus is not None:
            prometheus.kill()
            prometheus.wait()
        for d in nodes:
            d.kill()
        hosts.destroy()
