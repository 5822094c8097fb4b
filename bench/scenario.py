"""Benchmark scenarios as TOML files (`bench/scenarios/*.toml`); errors name file and field."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRANSPORTS = ("libp2p",)  # the plain tcp transport was removed (no authentication)
ACTIONS = ("crash", "restart", "partition", "heal", "delay", "loss", "clear")


class ScenarioError(ValueError):
    def __init__(self, path: Path, where: str, problem: str):
        super().__init__(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class Fault:
    at_s: float
    action: str
    node: str = "primary"  # "primary" (at that moment), a member index, or "all" (delay, loss)
    groups: tuple[tuple[int, ...], ...] = ()
    delay_ms: int = 0
    jitter_ms: int = 0
    loss_pct: int = 0


@dataclass(frozen=True)
class Load:
    # open loop at a rate; closed loop with `clients` waiting for admission; or
    # closed_commit: one tx per client at a time, each waiting for its commit
    mode: str = "open"
    rate_tps: float = 1000.0
    ramp_tps: tuple[float, ...] = ()  # open loop: step through these rates
    ramp_step_s: float = 10.0
    clients: int = 8
    batch: int = 100  # transactions per request in closed loop
    payload_bytes: int = 120  # ~250-byte transactions
    tx_kind: str = "note"  # or "verification": meter verification records (bench.records)

    def rate_at(self, t_s: float) -> float:
        if not self.ramp_tps:
            return self.rate_tps
        return self.ramp_tps[min(int(t_s // self.ramp_step_s), len(self.ramp_tps) - 1)]


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    nodes: int = 4
    suite: str = "ed25519"
    transport: str = "libp2p"
    hosts: str = "loopback"  # or "netns": each node in its own network namespace
    tls: bool = False  # the APIs over TLS (always with hosts = "netns")
    trace_every: int = 0  # nodes trace 1 in N transactions' stages (node.trace)
    duration_s: float = 30.0
    warmup_s: float = 5.0
    description: str = ""
    protocol: dict[str, int] = field(default_factory=dict)
    load: Load = field(default_factory=Load)
    faults: tuple[Fault, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "nodes": self.nodes, "suite": self.suite,
            "transport": self.transport, "hosts": self.hosts, "tls": self.tls,
            "trace_every": self.trace_every,
            "duration_s": self.duration_s, "warmup_s": self.warmup_s,
            "description": self.description, "protocol": self.protocol,
            "load": vars(self.load), "faults": [vars(f) for f in self.faults],
        }  # fmt: skip


def _typed(
    raw: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, where: str
) -> Any:
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ScenarioError(path, f"{where}{key}", f"expected {kind}, got {value!r}")
    return value


def _known(raw: dict[str, Any], allowed: set[str], path: Path, where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ScenarioError(path, f"{where}{key}", f"unknown setting; known: {sorted(allowed)}")


def load_scenario(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(path, "(file)", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "(toml)", str(exc)) from None
    top = {
        "name",
        "nodes",
        "suite",
        "transport",
        "hosts",
        "tls",
        "trace_every",
        "duration_s",
        "warmup_s",
        "description",
        "protocol",
        "load",
        "faults",
    }
    _known(raw, top, path, "")
    number = (int, float)
    args: dict[str, Any] = {"name": raw.get("name", path.stem), "path": path}
    for key, kind in (("nodes", int), ("suite", str), ("transport", str), ("hosts", str),
                      ("duration_s", number),
                      ("warmup_s", number), ("description", str), ("protocol", dict)):  # fmt: skip
        if key in raw:
            args[key] = _typed(raw, key, kind, path, "")
    if args.get("nodes", 4) < 1 or args.get("suite", "ed25519") not in ("ed25519", "sm2"):
        raise ScenarioError(path, "nodes/suite", "need nodes >= 1 and suite ed25519 or sm2")
    if args.get("hosts", "loopback") not in ("loopback", "netns"):
        raise ScenarioError(path, "hosts", "loopback or netns")
    if args.get("transport", "libp2p") not in TRANSPORTS:
        raise ScenarioError(path, "transport", f"one of {TRANSPORTS}")
    if not 0 <= args.get("warmup_s", 5.0) < args.get("duration_s", 30.0):
        raise ScenarioError(path, "warmup_s", "must be within 0..duration_s")
    if "trace_every" in raw:
        if _typed(raw, "trace_every", int, path, "") < 0:
            raise ScenarioError(path, "trace_every", "expected 0 (off) or N > 0 (1 in N)")
        args["trace_every"] = raw["trace_every"]
    if "tls" in raw:
        if not isinstance(raw["tls"], bool):
            raise ScenarioError(path, "tls", "expected true or false")
        args["tls"] = raw["tls"]
    args["load"] = _load(raw.get("load", {}), path)
    nodes = args.get("nodes", 4)
    args["faults"] = tuple(_fault(f, i, path, nodes) for i, f in enumerate(raw.get("faults", [])))
    return Scenario(**args)


def _load(raw: dict[str, Any], path: Path) -> Load:
    _known(raw, {f for f in Load.__dataclass_fields__}, path, "load.")
    args: dict[str, Any] = dict(raw)
    if "ramp_tps" in args:
        args["ramp_tps"] = tuple(float(x) for x in args["ramp_tps"])
    load = Load(**args)
    if load.mode not in ("open", "closed", "closed_commit"):
        raise ScenarioError(path, "load.mode", "open, closed or closed_commit")
    if load.tx_kind not in ("note", "verification"):
        raise ScenarioError(path, "load.tx_kind", "note or verification")
    if load.rate_tps <= 0 or load.clients < 1 or not 1 <= load.batch <= 5000:
        raise ScenarioError(path, "load", "rate_tps > 0, clients >= 1, 1 <= batch <= 5000")
    return load


def _fault(raw: dict[str, Any], index: int, path: Path, nodes: int) -> Fault:
    where = f"faults[{index}]."
    _known(raw, {f for f in Fault.__dataclass_fields__}, path, where)
    if raw.get("action") not in ACTIONS:
        raise ScenarioError(path, f"{where}action", f"one of {ACTIONS}")
    args = dict(raw)
    args["node"] = node = str(args.get("node", "primary"))
    members = [str(i) for i in range(nodes)]
    allowed = ["primary", *members, *(["all"] if args["action"] in ("delay", "loss") else [])]
    if node not in allowed:
        raise ScenarioError(path, f"{where}node", f"one of {allowed}, got {node!r}")
    args["groups"] = tuple(tuple(int(m) for m in g) for g in args.get("groups", ()))
    if args["action"] == "partition" and len(args["groups"]) < 2:
        raise ScenarioError(path, f"{where}groups", "a partition needs two or more groups")
    return Fault(**args)
