"""Configuration in two tiers: the genesis file every member signs off (protocol
constants, members) and each node's own TOML file (addresses, ports, paths).
Errors name the file and the field."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from analysis.build import build_registry
from analysis.contracts import Registry
from analysis.membership import MembershipContract
from consensus.config import ProtocolConfig
from ledger.crypto import SUITES
from ledger.genesis import GenesisError, check_genesis
from ledger.membership import Membership, genesis_membership

NOT_IN_GENESIS_PROTOCOL = ("members", "suite_name", "suite", "genesis_hash", "active", "epoch",
                           "epoch_start", "epoch_start_hash", "active_set")  # fmt: skip
PROTOCOL_FIELDS = {f.name for f in fields(ProtocolConfig) if f.name not in NOT_IN_GENESIS_PROTOCOL}


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or has a bad field."""

    def __init__(self, path: Path | str, field: str, problem: str):
        super().__init__(f"{path}: {field}: {problem}")


@dataclass(frozen=True)
class Member:
    name: str
    public_key: bytes
    peer_id: str
    address: str  # libp2p multiaddr the member listens on
    role: str = "other"
    api: str = ""  # the member's public API, as its card gave it


def member_card(m: Member, suite: str) -> dict[str, Any]:
    """A member's card fields (ledger.genesis.CARD_FIELDS) as the roster keeps them."""
    return {"name": m.name, "role": m.role, "suite": suite, "public_key": m.public_key.hex(),
            "peer_id": m.peer_id, "address": m.address, "api": m.api}  # fmt: skip


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    suite: str
    members: tuple[Member, ...]
    protocol: dict[str, int]
    contracts: dict[str, Any]
    genesis_hash: bytes

    def protocol_config(self) -> ProtocolConfig:
        return ProtocolConfig(
            members=tuple(m.public_key for m in self.members),
            suite_name=self.suite,
            genesis_hash=self.genesis_hash,
            **self.protocol,  # type: ignore[arg-type]  # integers only (parse_genesis)
        )

    def registry(self) -> Registry:
        protocol = self.protocol_config()
        keys = tuple(m.public_key for m in self.members)
        window = (protocol.checkpoint_interval, protocol.watermark_window)
        registry = build_registry(self.suite, self.contracts, keys, window)
        registry.contracts.append(MembershipContract(
            protocol.suite, self.suite, self.membership(), self.genesis_hash,
            protocol.checkpoint_interval, protocol.watermark_window,
        ))  # fmt: skip
        return registry

    def membership(self) -> Membership:
        """Epoch 0: the genesis members, with their cards."""
        return genesis_membership(member_card(m, self.suite) for m in self.members)


def load_genesis(path: Path) -> Genesis:
    raw = read_json(path)
    return parse_genesis(raw, path)


def parse_genesis(raw: Any, path: Path | str) -> Genesis:
    """A genesis file's content, its member signatures verified."""
    draft = parse_draft(raw, path)  # floats refused there
    try:  # the chain's identity: the hash of everything but the members' signatures
        genesis_hash = check_genesis(raw)
    except GenesisError as exc:
        raise ConfigError(path, "signatures", str(exc)) from None
    return Genesis(draft.chain_id, draft.suite, draft.members, draft.protocol, draft.contracts,
                   genesis_hash)  # fmt: skip


def parse_draft(raw: Any, path: Path | str) -> Genesis:
    """A draft's (or genesis file's) fields checked as the node will use them; the
    signatures are not looked at and the hash is left empty."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "(top level)", "expected an object")
    chain_id = _get(raw, "chain_id", str, path)
    suite = _get(raw, "suite", str, path)
    if suite not in SUITES:
        raise ConfigError(path, "suite", f"unknown suite {suite!r}; known: {sorted(SUITES)}")
    members_raw = _get(raw, "members", list, path)
    members = tuple(_parse_member(m, i, path) for i, m in enumerate(members_raw))
    protocol = _get(raw, "protocol", dict, path)
    for key, value in protocol.items():
        if key not in PROTOCOL_FIELDS:
            raise ConfigError(path, f"protocol.{key}", "unknown setting")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(path, f"protocol.{key}", "expected an integer")
    contracts = _get(raw, "contracts", dict, path)
    _without_floats(raw, path)
    genesis = Genesis(chain_id, suite, members, protocol, contracts, b"")
    try:
        genesis.protocol_config()
    except ValueError as exc:
        raise ConfigError(path, "protocol", str(exc)) from None
    try:
        genesis.registry()
    except ValueError as exc:
        raise ConfigError(path, "contracts", str(exc)) from None
    return genesis


def _parse_member(raw: Any, index: int, path: Path | str) -> Member:
    where = f"members[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(path, where, "expected an object")
    try:
        public_key = bytes.fromhex(_get(raw, "public_key", str, path, where))
    except ValueError:
        raise ConfigError(path, f"{where}.public_key", "not hex") from None
    return Member(
        _get(raw, "name", str, path, where),
        public_key,
        _get(raw, "peer_id", str, path, where),
        _get(raw, "address", str, path, where),
        _get(raw, "role", str, path, where, "other"),
        _get(raw, "api", str, path, where, ""),
    )


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    name: str
    data_dir: Path
    genesis_file: Path
    key_file: Path
    log_level: str
    listen: str
    api_host: str
    api_port: int
    admin_listen: str = ""  # "" (no admin listener), "HOST:PORT" on loopback, "unix:PATH"
    api_max_wait_s: int = 30  # the longest long-poll (`GET /v1/tx/{hash}?wait_s=`)
    api_tls: tuple[Path, Path] | None = None  # (certificate chain, key); None: plain HTTP
    api_rate_per_s: int = 5_000  # requests a second from one client address (0: no limit)
    trace_every: int = 0  # trace 1 in N transactions' stages (`node.trace`); 0: off
    # A joining member's copy of a member's `GET /v1/members` (it finds its index there;
    # what it then follows, it checks block by block from the genesis).
    roster_file: Path | None = None

    def describe(self) -> dict[str, Any]:
        """The effective configuration as JSON values (paths as strings)."""

        def plain(value: Any) -> Any:
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return str(value) if isinstance(value, Path) else value

        return {k: plain(v) for k, v in self.__dict__.items()}


LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_UNIX_PATH = 107  # sockaddr_un.sun_path is 108 bytes with its NUL


def load_node_config(path: Path) -> NodeConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "(file)", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", str(exc)) from None
    base = path.parent
    node = _get(raw, "node", dict, path)
    p2p = _get(raw, "p2p", dict, path)
    api = _get(raw, "api", dict, path)
    level = node.get("log_level", "info")
    if level not in LOG_LEVELS:
        raise ConfigError(path, "node.log_level", f"expected one of {LOG_LEVELS}")
    if p2p.get("transport", "libp2p") != "libp2p":
        raise ConfigError(
            path,
            "p2p.transport",
            "only libp2p (Noise, mutual peer ids); "
            "the plain tcp transport was removed: it had no authentication",
        )
    admin = _admin_listen(raw.get("admin", {}), path)
    max_wait_s = _get(api, "max_wait_s", int, path, "api", 30)
    if not 0 <= max_wait_s <= 300:
        raise ConfigError(path, "api.max_wait_s", "expected 0..300 (seconds)")
    port = _get(api, "port", int, path, "api")
    if not 0 < port < 65536:
        raise ConfigError(path, "api.port", "expected 1..65535")
    trace_every = _get(node, "trace_every", int, path, "node", 0)
    if trace_every < 0:
        raise ConfigError(path, "node.trace_every", "expected 0 (off) or N > 0 (1 in N)")
    rate = _get(api, "rate_per_s", int, path, "api", 5_000)
    if not 0 <= rate <= 1_000_000:
        raise ConfigError(path, "api.rate_per_s", "expected 0..1000000 (0: no limit)")
    return NodeConfig(
        path=path,
        name=_get(node, "name", str, path, "node"),
        data_dir=base / _get(node, "data_dir", str, path, "node"),
        genesis_file=base / _get(node, "genesis", str, path, "node"),
        key_file=base / _get(node, "key_file", str, path, "node"),
        log_level=level,
        listen=_get(p2p, "listen", str, path, "p2p"),
        api_host=_get(api, "host", str, path, "api"),
        api_port=port,
        admin_listen=admin,
        api_max_wait_s=max_wait_s,
        api_tls=_api_tls(api, base, path),
        api_rate_per_s=rate,
        trace_every=trace_every,
        roster_file=base / node["roster"] if isinstance(node.get("roster"), str) else None,
    )


def _api_tls(api: dict[str, Any], base: Path, path: Path) -> tuple[Path, Path] | None:
    """TLS on every API that leaves the host; plain HTTP only on loopback, and only when
    the config says so (`plaintext = true`, for development)."""
    cert, key = api.get("tls_cert"), api.get("tls_key")
    plaintext = _get(api, "plaintext", bool, path, "api", False)
    if cert is None and key is None:
        if not plaintext:
            problem = "missing: the API serves TLS (tls_cert and tls_key); plain HTTP needs "
            raise ConfigError(path, "api.tls_cert", problem + "plaintext = true, on loopback")
        if api.get("host") not in LOOPBACK:
            raise ConfigError(path, "api.plaintext", "plain HTTP is for loopback only; "
                              "give this address tls_cert and tls_key")  # fmt: skip
        return None
    if plaintext:
        raise ConfigError(path, "api.plaintext", "set either plaintext or tls_cert/tls_key")
    if not isinstance(cert, str) or not isinstance(key, str):
        raise ConfigError(path, "api.tls_cert", "tls_cert and tls_key: expected two paths")
    return base / cert, base / key


def _admin_listen(admin: Any, path: Path) -> str:
    """The admin listener's address: loopback or a Unix socket, never a public address."""
    if not isinstance(admin, dict):
        raise ConfigError(path, "admin", "expected a table")
    listen: str = _get(admin, "listen", str, path, "admin", "")
    if listen.startswith("unix:") and len(listen[5:].encode()) > MAX_UNIX_PATH:
        raise ConfigError(path, "admin.listen", f"a Unix socket path holds at most "
                          f"{MAX_UNIX_PATH} bytes (sun_path); choose a shorter one")  # fmt: skip
    if not listen or (listen.startswith("unix:") and len(listen) > 5):
        return listen
    host, colon, port = listen.rpartition(":")
    if not colon or host not in LOOPBACK or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            path, "admin.listen", "expected 127.0.0.1:PORT, [::1]:PORT or unix:PATH (loopback only)"
        )
    return listen


def render_node_config(
    name: str,
    listen: str,
    api_port: int,
    genesis: str,
    api_host: str = "127.0.0.1",
    admin_listen: str = "",
    tls: bool = False,
) -> str:
    """A node.toml; with `tls`, the API's certificate and key at tls/api.crt and
    tls/api.key in the node's home, else plain HTTP (loopback only)."""
    admin = f'\n[admin]\nlisten = "{admin_listen}"\n' if admin_listen else ""
    security = (
        'tls_cert = "tls/api.crt"\ntls_key = "tls/api.key"\n' if tls else "plaintext = true\n"
    )
    return (
        f'[node]\nname = "{name}"\ndata_dir = "data"\ngenesis = "{genesis}"\n'
        f'key_file = "keys/node_key.json"\nlog_level = "info"\n\n'
        f'[p2p]\nlisten = "{listen}"\n\n[api]\nhost = "{api_host}"\nport = {api_port}\n'
        + security
        + admin
    )


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "(file)", exc.strerror or str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(path, "(syntax)", str(exc)) from None


_REQUIRED = object()


def _get(
    raw: dict[str, Any],
    key: str,
    kind: type,
    path: Path | str,
    where: str = "",
    default: Any = _REQUIRED,
) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in raw:
        if default is not _REQUIRED:
            return default
        raise ConfigError(path, name, "missing")
    value = raw[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(path, name, f"expected {kind.__name__}")
    return value


def _without_floats(value: Any, path: Path | str) -> Any:
    if isinstance(value, float):
        raise ConfigError(path, "(value)", "floats are not allowed in genesis")
    if isinstance(value, dict):
        return {k: _without_floats(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_floats(v, path) for v in value]
    return value
