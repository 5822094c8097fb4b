"""Four organisations form a network with only cards and signatures passing between
them, then run it on four separate hosts (network namespaces, each with its own
address): the nodes find each other from the genesis alone and commit, their APIs
serving TLS with certificates from the organisations' PKI (one test CA here)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node.load import sample_txs, submit_all
from node.netns import API_PORT, P2P_PORT, NetnsHosts, unavailable
from node.testnet import Daemon, daemons, wait_ready
from node.tls import client_context, make_ca, make_server_cert
from tests.e2e.test_network import settled, wait_until
from tests.node.test_ceremony import ceremony

SUITE = "ed25519"


@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_four_homes_form_a_network_and_commit_on_separate_hosts(tmp_path: Path) -> None:
    hosts = NetnsHosts(4)
    homes, _ = ceremony(tmp_path, 4, lambda i: (hosts.ip(i), P2P_PORT, API_PORT))
    ca_cert, ca_key = make_ca(tmp_path / "pki", "test PKI")
    for i, home in enumerate(homes):
        make_server_cert(home / "tls", ca_cert, ca_key, hosts.ip(i))
    nodes = [
        Daemon(
            home / "node.toml",
            f"https://{hosts.ip(i)}:{API_PORT}",
            prefix=tuple(hosts.prefix(i)),
            ca=ca_cert,
        )
        for i, home in enumerate(homes)
    ]
    hosts.create()
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        wait_until(
            "every host connected to the three others",
            lambda: all(d.get("/v1/status")["peers_connected"] == 3 for d in nodes),
        )
        chain = nodes[0].chain()
        assert chain.hex() == nodes[3].get("/v1/status")["chain_hash"]
        txs = sample_txs(SUITE, 200, chain=chain)
        hashes = submit_all([d.api for d in nodes], txs, SUITE, client_context(ca_cert))
        wait_until("200 txs committed on every host", lambda: settled(nodes, hashes))
        tops = {d.get(f"/v1/blocks/{d.get('/v1/status')['height']}")["encoded"] for d in nodes}
        assert len(tops) == 1  # one chain, byte for byte
    finally:
        for d in nodes:
            d.kill()
        hosts.destroy()


@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_testnet_up_on_separate_hosts_runs_and_cleans_up(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    command = [sys.executable, "-m", "metroledger", "testnet", "up", "--dir", str(directory),
               "--hosts", "netns"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "network up" in line or len(lines) > 50:
                break
        assert any("network up" in line for line in lines), "".join(lines)
        nodes = daemons(directory)
        assert all(d.api.startswith("https://10.77.") for d in nodes)
        wait_until("peers connected", lambda: nodes[0].get("/v1/status")["peers_connected"] == 3)
        names = json.loads((directory / "netns.json").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"ml{names['tag']}n" not in listed  # the namespaces are gone
