"""The public API with TLS on (certificates from the network's local CA) and roles:
`curl --cacert` works, plain HTTP to the TLS port gets no answer, an operator endpoint
answers 401 without a token and 403 with another node's or an expired one, and a client
address over its request rate gets 429."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from ledger.crypto import get_suite
from node.auth import make_token
from node.config import load_genesis
from node.keys import load_keys
from node.load import sample_txs, submit_all
from node.testnet import Daemon, daemons, init_testnet, wait_ready
from node.tls import client_context
from tests.e2e.test_network import settled, wait_until

SUITE = "ed25519"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    home = tmp_path_factory.mktemp("tls")
    configs = init_testnet(home, 4, SUITE, tls=True)
    for config in configs:  # a low request rate for node 3, to see the limit
        text = config.read_text()
        if config.parent.name == "node3":
            config.write_text(text.replace("[api]\n", "[api]\nrate_per_s = 20\n"))
    nodes = daemons(home)
    for d in nodes:
        d.start()
    try:
        wait_ready(nodes)
        yield nodes
    finally:
        for d in nodes:
            d.kill()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (Debian package curl)")
def test_curl_with_the_ca_works_and_plaintext_is_refused(network: list[Daemon]) -> None:
    node = network[0]
    assert node.api.startswith("https://127.0.0.1:") and node.ca is not None
    answer = curl("--cacert", str(node.ca), node.api + "/v1/status")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["chain_hash"] == node.chain().hex()
    untrusted = curl(node.api + "/v1/status")  # the system roots do not know our CA
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr
    plain = curl("http://" + node.api.removeprefix("https://") + "/v1/status")
    assert plain.returncode != 0  # no HTTP answer at all on the TLS port
    assert "HTTP/1.1" not in plain.stdout


def test_txs_commit_over_tls(network: list[Daemon]) -> None:
    context = client_context(network[0].ca)
    txs = sample_txs(SUITE, 30, chain=network[0].chain())
    hashes = submit_all([d.api for d in network[:3]], txs, SUITE, context)
    # node 3 is left out: the polling would pass its low request rate
    wait_until("committed over TLS", lambda: settled(network[:3], hashes))


def token_for(node: Daemon, member: int, ttl_s: int = 600) -> str:
    home = node.config.parent
    genesis = load_genesis(home.parent / "genesis.json")
    keys = load_keys(home.parent / f"node{member}" / "keys" / "node_key.json")
    suite = get_suite(SUITE)
    return make_token(suite, keys.signing, genesis.genesis_hash, member, int(time.time()) + ttl_s)


def test_operator_endpoints_need_this_nodes_token(network: list[Daemon]) -> None:
    node = network[1]
    with httpx.Client(base_url=node.api, verify=client_context(node.ca), timeout=10) as http:
        missing = http.get("/v1/operator/config")
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        other = http.get("/v1/operator/config", headers=bearer(token_for(node, 2)))
        assert other.status_code == 403 and "member 2" in other.json()["detail"]
        expired = http.get("/v1/operator/config", headers=bearer(token_for(node, 1, ttl_s=-5)))
        assert expired.status_code == 403 and "expired" in expired.json()["detail"]
        garbage = http.get("/v1/operator/config", headers=bearer("not-a-token"))
        assert garbage.status_code == 403
        own = http.get("/v1/operator/config", headers=bearer(token_for(node, 1)))
        assert own.status_code == 200 and own.json()["member"] == 1
        faults = http.post("/v1/operator/faults", json={"drop_to": []})
        assert faults.status_code == 401
        done = http.post("/v1/operator/faults", json={}, headers=bearer(token_for(node, 1)))
        assert done.status_code == 200


def test_the_cli_token_is_accepted(network: list[Daemon]) -> None:
    node = network[0]
    made = subprocess.run(
        [sys.executable, "-m", "metroledger", "operator", "token", "--config", str(node.config)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    with httpx.Client(base_url=node.api, verify=client_context(node.ca), timeout=10) as http:
        answer = http.get("/v1/operator/config", headers=bearer(made.stdout.strip()))
    assert answer.status_code == 200 and answer.json()["member"] == 0


def test_a_client_over_its_request_rate_gets_429(network: list[Daemon]) -> None:
    node = network[3]  # rate_per_s = 20
    with httpx.Client(base_url=node.api, verify=client_context(node.ca), timeout=10) as http:
        codes = [http.get("/healthz").status_code for _ in range(60)]
    assert codes[:20] == [200] * 20  # the burst
    refused = [c for c in codes if c == 429]
    assert refused, codes
    time.sleep(1.1)  # the bucket refills at the rate
    with httpx.Client(base_url=node.api, verify=client_context(node.ca), timeout=10) as http:
        again = http.get("/healthz")
    assert again.status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
