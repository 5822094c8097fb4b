"""Four organisations form a network with only cards and signatures passing between
them, then run it on four separate hosts (network namespaces, each with its own
address): the nodes find each other from the genesis alone and commit, their APIs
serving TLS with certificates from the organisations' PKI (one test CA here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.netns import API_PORT, P2P_PORT, NetnsHosts, unavailable
from node.load import sample_txs, submit_all
from node.testnet import Daemon, wait_ready
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
