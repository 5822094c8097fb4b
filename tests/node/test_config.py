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


def test_the_rendered_config_loads_without_an_admin_listener_by_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, GOOD)
    assert cfg.listen == "/ip4/127.0.0.1/tcp/4001" and cfg.api_port == 8080  # type: ignore[attr-defined]
    assert cfg.admin_listen == ""  # type: ignore[attr-defined]


def test_the_plain_tcp_transport_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p2p.transport.*no authentication"):
        _load(tmp_path, GOOD.replace("[p2p]\n", '[p2p]\ntransport = "tcp"\n'))


ADMIN = "\n[admin]\nlisten = "


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD.replace("[p2p]\n", '[p2p]\ntransport = "udp"\n'), "p2p.transport"),
        (GOOD.replace("port = 8080", "port = 70000"), "api.port"),
        (GOOD.replace('log_level = "info"', 'log_level = "loud"'), "node.log_level"),
        (GOOD.replace("[api]", "[apx]"), "api"),
        (GOOD + "[[[", "(syntax)"),
        (GOOD + ADMIN + '"0.0.0.0:9000"\n', "admin.listen"),  # a public address: never
        (GOOD + ADMIN + '"10.0.0.2:9000"\n', "admin.listen"),
        (GOOD + ADMIN + '"127.0.0.1:99999"\n', "admin.listen"),
        (GOOD + ADMIN + '"unix:"\n', "admin.listen"),
        (GOOD + ADMIN + "9000\n", "admin.listen"),
        (GOOD + ADMIN + '"unix:/' + "d" * 120 + '"\n', "admin.listen"),  # over sun_path
        (GOOD.replace("[api]\n", "[api]\nmax_wait_s = 301\n"), "api.max_wait_s"),
        (GOOD.replace("[api]\n", "[api]\nmax_wait_s = true\n"), "api.max_wait_s"),
        (GOOD.replace("[node]\n", "[node]\ntrace_every = -1\n"), "node.trace_every"),
        (GOOD.replace("[api]\n", "[api]\nrate_per_s = -5\n"), "api.rate_per_s"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        _load(tmp_path, text)


@pytest.mark.parametrize("listen", ["127.0.0.1:9000", "[::1]:9000", "unix:/run/ml/admin.sock"])
def test_the_admin_listener_is_loopback_or_a_unix_socket(tmp_path: Path, listen: str) -> None:
    text = render_node_config(
        "n", "/ip4/10.0.0.2/tcp/7000", 8000, "g.json", "10.0.0.2", listen, tls=True
    )
    cfg = _load(tmp_path, text)
    assert cfg.api_host == "10.0.0.2" and cfg.admin_listen == listen  # type: ignore[attr-defined]
    assert cfg.api_tls == (tmp_path / "tls/api.crt", tmp_path / "tls/api.key")  # type: ignore[attr-defined]


def test_plain_http_only_on_loopback_and_only_when_the_config_says_so(tmp_path: Path) -> None:
    assert _load(tmp_path, GOOD).api_tls is None  # type: ignore[attr-defined]
    implicit = GOOD.replace("plaintext = true\n", "")
    with pytest.raises(ConfigError, match=r"api\.tls_cert: missing"):
        _load(tmp_path, implicit)
    public = GOOD.replace('host = "127.0.0.1"', 'host = "0.0.0.0"')
    with pytest.raises(ConfigError, match=r"api\.plaintext: plain HTTP is for loopback only"):
        _load(tmp_path, public)
    both = GOOD.replace("plaintext = true\n", 'plaintext = true\ntls_cert = "c"\ntls_key = "k"\n')
    with pytest.raises(ConfigError, match="either plaintext or"):
        _load(tmp_path, both)
    half = GOOD.replace("plaintext = true\n", 'tls_cert = "c"\n')
    with pytest.raises(ConfigError, match="two paths"):
        _load(tmp_path, half)


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


def test_testnet_init_refuses_a_folder_too_deep_for_the_admin_sockets(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ValueError, match="too long for a Unix socket path"):
        init_testnet(deep, 4, "ed25519")
    assert not deep.exists()  # refused before anything was written
