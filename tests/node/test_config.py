"""Node configuration files: what the testnet writes loads; each bad field is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, load_genesis, load_node_config, render_node_config
from node.testnet import init_testnet

GOOD = render_node_config("node0", "/ip4/127.0.0.1/tcp/4001", 8080, "../genesis.json")


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return load_node_config(path)


def test_the_rendered_config_loads_with_libp2p_by_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, GOOD)
    assert cfg.listen == "/ip4/127.0.0.1/tcp/4001" and cfg.api_port == 8080  # type: ignore[attr-defined]
    assert cfg.transport == "libp2p"  # type: ignore[attr-defined]
    tcp = _load(tmp_path, GOOD.replace("[p2p]\n", '[p2p]\ntransport = "tcp"\n'))
    assert tcp.transport == "tcp"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD.replace("[p2p]\n", '[p2p]\ntransport = "udp"\n'), "p2p.transport"),
        (GOOD.replace("port = 8080", "port = 70000"), "api.port"),
        (GOOD.replace('log_level = "info"', 'log_level = "loud"'), "node.log_level"),
        (GOOD.replace("[api]", "[apx]"), "api"),
        (GOOD + "[[[", "(syntax)"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        _load(tmp_path, text)


def test_the_renderer_writes_the_api_host_and_a_non_default_transport(tmp_path: Path) -> None:
    text = render_node_config(
        "node1", "/ip4/10.0.0.2/tcp/7000", 8000, "../genesis.json", "10.0.0.2", "tcp"
    )
    cfg = _load(tmp_path, text)
    assert cfg.api_host == "10.0.0.2" and cfg.transport == "tcp"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("suite", "batch_timeout_ms"), [("ed25519", 100), ("sm2", 200)])
def test_the_testnet_genesis_sets_the_batch_timeout_per_suite(
    tmp_path: Path, suite: str, batch_timeout_ms: int
) -> None:
    init_testnet(tmp_path / "a", 4, suite)
    assert load_genesis(tmp_path / "a" / "genesis.json").protocol_config().batch_timeout_ms == (
        batch_timeout_ms
    )
    init_testnet(tmp_path / "b", 4, suite, protocol={"batch_timeout_ms": 50})  # a scenario's
    assert load_genesis(tmp_path / "b" / "genesis.json").protocol_config().batch_timeout_ms == 50
