"""The genesis ceremony through the command line, each member in its own home, and what
a node refuses at start: a genesis a member has not signed, a key that is not a member,
a data folder of another chain; and a transaction of another network, by name."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from metroledger.cli import main
from node.config import ConfigError, load_genesis, load_node_config
from node.daemon import build_node
from node.load import sample_txs
from node.submit import refusal
from node.testnet import init_testnet
from tests.node.test_forwarding import Recorder

ROLES = ("nmi", "verification_authority", "utility", "volunteer")


def metroledger(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command line's own entry point, in this process (a process per command cost
    a second each); `node run` is also tried in its own process below."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def ok(*args: str | Path) -> str:
    result = metroledger(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def loopback(member: int) -> tuple[str, int, int]:
    return "127.0.0.1", 17000 + member, 18000 + member


def ceremony(
    tmp_path: Path, members: int = 4, address: Callable[[int], tuple[str, int, int]] = loopback
) -> tuple[list[Path], Path]:
    """Each organisation in its own home; only the files under `exchange/` travel.
    `address(i)` is member i's (host, p2p port, API port)."""
    homes = [tmp_path / f"org{i}" for i in range(members)]
    exchange = tmp_path / "exchange"
    for i, home in enumerate(homes):
        host, p2p, api = address(i)
        scheme = "http" if host == "127.0.0.1" else "https"  # TLS for what leaves the host
        ok("keys", "new", "--home", home)
        ok("genesis", "member", "--home", home, "--name", f"org{i}", "--role", ROLES[i % 4],
           "--p2p", f"/ip4/{host}/tcp/{p2p}", "--api", f"{scheme}://{host}:{api}",
           "--out", exchange / f"card{i}.json")  # fmt: skip
    cards = [exchange / f"card{i}.json" for i in range(members)]
    ok("genesis", "assemble", *cards, "--chain-id", "province-a", "--out", exchange / "draft.json")
    for i, home in enumerate(homes):
        ok("genesis", "sign", exchange / "draft.json", "--home", home,
           "--out", exchange / f"sig{i}.json")  # fmt: skip
    sigs = [exchange / f"sig{i}.json" for i in range(members)]
    ok("genesis", "finalize", exchange / "draft.json", *sigs, "--out", exchange / "genesis.json")
    for home in homes:
        (home / "genesis.json").write_bytes((exchange / "genesis.json").read_bytes())
    return homes, exchange


def test_the_ceremony_passes_only_public_documents_and_every_member_can_start(
    tmp_path: Path,
) -> None:
    homes, exchange = ceremony(tmp_path)
    secrets = [json.loads((h / "keys" / "node_key.json").read_text()) for h in homes]
    travelled = "".join(p.read_text() for p in exchange.iterdir())
    for secret in secrets:
        assert secret["signing_seed"] not in travelled
        assert secret["identity_seed"] not in travelled
    genesis = load_genesis(exchange / "genesis.json")
    assert [m.role for m in genesis.members] == list(ROLES)
    shown = ok("genesis", "show", exchange / "genesis.json")
    assert genesis.genesis_hash.hex() in shown and "org3 (volunteer)" in shown
    for i, home in enumerate(homes):
        node = build_node(load_node_config(home / "node.toml"), Recorder())
        assert node.me == i and node.genesis.genesis_hash == genesis.genesis_hash


def test_a_genesis_one_member_did_not_sign_is_refused_with_its_name(tmp_path: Path) -> None:
    homes, exchange = ceremony(tmp_path)
    sigs = [exchange / f"sig{i}.json" for i in (0, 1, 3)]
    result = metroledger("genesis", "finalize", exchange / "draft.json", *sigs)
    assert result.returncode == 2 and "member 2 ('org2') has not signed" in result.stderr
    doc = json.loads((homes[0] / "genesis.json").read_text())
    doc["signatures"][2]["signature"] = doc["signatures"][1]["signature"]
    (homes[0] / "genesis.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"signature of member 2 \('org2'\) is invalid"):
        build_node(load_node_config(homes[0] / "node.toml"), Recorder())
    command = [sys.executable, "-m", "metroledger", "node", "run", "--config"]
    result = subprocess.run([*command, str(homes[0] / "node.toml")], capture_output=True,
                            text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "signature of member 2" in result.stderr


def test_a_key_that_is_no_member_and_another_chains_data_are_refused(tmp_path: Path) -> None:
    homes, _ = ceremony(tmp_path)
    stranger = tmp_path / "stranger"
    ok("keys", "new", "--home", stranger)
    (homes[0] / "keys" / "node_key.json").unlink()
    (homes[0] / "keys" / "node_key.json").write_bytes(
        (stranger / "keys" / "node_key.json").read_bytes()
    )
    with pytest.raises(ConfigError, match=r"is not a member \(members: org0"):
        build_node(load_node_config(homes[0] / "node.toml"), Recorder())
    # org1's data folder, started once on this chain, then given another network's genesis
    build_node(load_node_config(homes[1] / "node.toml"), Recorder()).core.storage.close()
    other, _ = ceremony(tmp_path / "b")
    (homes[1] / "keys" / "node_key.json").unlink()
    (homes[1] / "keys" / "node_key.json").write_bytes(
        (other[1] / "keys" / "node_key.json").read_bytes()
    )
    (homes[1] / "genesis.json").write_bytes((other[1] / "genesis.json").read_bytes())
    with pytest.raises(ConfigError, match="this data folder holds chain"):
        build_node(load_node_config(homes[1] / "node.toml"), Recorder())


def test_the_cli_refuses_bad_documents_with_one_line(tmp_path: Path) -> None:
    ok("keys", "new", "--home", tmp_path / "h")
    result = metroledger("keys", "new", "--home", tmp_path / "h")
    assert result.returncode == 2 and "refusing to overwrite" in result.stderr
    card = tmp_path / "card.json"
    ok("genesis", "member", "--home", tmp_path / "h", "--name", "a", "--role", "nmi",
       "--p2p", "/ip4/127.0.0.1/tcp/1", "--api", "http://127.0.0.1:2", "--out", card)  # fmt: skip
    doc = json.loads(card.read_text())
    doc["card"]["name"] = "b"
    card.write_text(json.dumps(doc))
    result = metroledger("genesis", "assemble", card, "--chain-id", "x")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("the signature of 'b' over its card is invalid")
    (tmp_path / "junk.json").write_text("{")
    result = metroledger("genesis", "sign", tmp_path / "junk.json", "--home", tmp_path / "h")
    assert result.returncode == 2 and "(syntax)" in result.stderr


def test_a_transaction_signed_for_another_network_is_refused_by_name(tmp_path: Path) -> None:
    config_a = init_testnet(tmp_path / "a", 4, "ed25519")[0]
    config_b = init_testnet(tmp_path / "b", 4, "ed25519")[0]
    node_b = build_node(load_node_config(config_b), Recorder())
    chain_a = load_genesis(tmp_path / "a" / "genesis.json").genesis_hash
    assert chain_a != node_b.genesis.genesis_hash and config_a != config_b
    (from_a,) = sample_txs("ed25519", 1, chain=chain_a)
    status, reason, detail = refusal(node_b, from_a, b"h", None) or (0, "", "")
    assert (status, reason) == (400, "wrong_chain") and chain_a[:8].hex() in detail
    (from_b,) = sample_txs("ed25519", 1, chain=node_b.genesis.genesis_hash)
    assert refusal(node_b, from_b, b"h", None) is None
