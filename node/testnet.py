"""`metroledger testnet init|up`: a local network of daemons in separate processes."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from http.client import HTTPException
from pathlib import Path
from typing import Any

from node.ceremony import (
    assemble_draft,
    finalize_genesis,
    member_card,
    new_home_key,
    sign_with_home,
    write_json,
)
from node.config import MAX_UNIX_PATH, load_node_config, render_node_config
from node.load import chain_of
from node.netns import API_PORT, P2P_PORT, NetnsHosts
from node.netns import unavailable as netns_unavailable
from node.tls import CA_CERT, CA_KEY, client_context, make_ca, make_server_cert

ADMIN_SOCKET = "admin.sock"  # in each node's home
LOCAL_ROLES = ("nmi", "verification_authority", "utility", "volunteer")
# What asking a busy, starting, dying or restarting daemon over HTTP may raise (an answer
# cut short is an HTTPException, not an OSError).
UNREACHABLE = (OSError, HTTPException, ValueError)

DEFAULT_PROTOCOL = {
    "batch_max_txs": 500,
    # While blocks are in flight, a proposal waits up to this long for a fuller batch
    # (with nothing in flight it goes at once). 20 ms made many small blocks under load,
    # and each block costs every node its votes, signatures, frames and an fsync: at
    # 3,000 tx/s offered, 100 ms held 2,976 tx/s against 2,630 (163 against 192 us of
    # CPU per tx and node), and latency at half of saturation fell too (p50 67 ms).
    "batch_timeout_ms": 100,
    "checkpoint_interval": 16,
    "watermark_window": 64,
    "request_timeout_ms": 2000,
    "view_change_timeout_ms": 2000,
    "censorship_timeout_ms": 20_000,
    # back-pressure (HTTP 429) beyond about a second of backlog: a longer queue only adds
    # latency, and a request waiting censorship_timeout_ms makes backups suspect a busy
    # primary (the request timer does not: it counts time without any commit)
    "max_pending_requests": 3_000,
}
# Per suite, over DEFAULT_PROTOCOL. An SM2 consensus signature takes about 300 us to
# verify (ed25519: 55), so fewer, larger blocks pay off more: at 1,100 tx/s offered,
# 200 ms held 1,099 and 1,088 tx/s against 972 and 1,025 with 100 ms (alternating
# runs of n4_sm2_steady_1100). For ed25519, 200 ms gave no gain (2,980 and 2,982 tx/s
# against 2,986 at 3,000 offered) and adds latency.
SUITE_PROTOCOL: dict[str, dict[str, int]] = {"sm2": {"batch_timeout_ms": 200}}


def free_port(taken: set[int] | None = None) -> int:
    """A port free now and outside the kernel's ephemeral range: a port the kernel hands
    out (bind to 0) can be taken by any outgoing connection before our daemon binds it."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10_000, max(10_001, low))
        if taken is not None and port in taken:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            if taken is not None:
                taken.add(port)
            return port
    raise OSError("no free port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def init_testnet(
    directory: Path,
    nodes: int,
    suite: str,
    p2p_port: int = 0,
    api_port: int = 0,
    contracts: dict[str, Any] | None = None,
    protocol: dict[str, int] | None = None,
    hosts: list[str] | None = None,
    tls: bool = False,
) -> list[Path]:
    """Write DIR/genesis.json and DIR/nodeI/{node.toml,keys/node_key.json}; ports 0 = free ones.
    `protocol` overrides genesis protocol fields; each node gets an admin listener on the
    Unix socket nodeI/admin.sock;
    `hosts` puts node i on its own address hosts[i], where every node uses p2p_port and
    api_port (both then required); its API then leaves the host, so it serves TLS.
    With `tls` (or `hosts`), DIR/tls/ca.crt is a local CA that signed each node's API
    certificate (nodeI/tls/api.crt); else the APIs serve plain HTTP on loopback."""
    tls = tls or hosts is not None
    if nodes < 1:
        raise ValueError(f"--nodes must be at least 1, got {nodes}")
    if hosts is not None and (len(hosts) != nodes or not p2p_port or not api_port):
        raise ValueError("hosts: one address per node, with p2p_port and api_port given")
    longest = (directory / f"node{nodes - 1}" / ADMIN_SOCKET).resolve()
    if len(str(longest).encode()) > MAX_UNIX_PATH:
        raise ValueError(
            f"{longest}: too long for a Unix socket path ({MAX_UNIX_PATH} "
            "bytes), where each node's admin listener is; choose a shorter --dir"
        )
    if (directory / "genesis.json").exists():
        raise FileExistsError(f"{directory / 'genesis.json'} exists; choose an empty --dir")
    directory.mkdir(parents=True, exist_ok=True)
    cards, configs, homes = [], [], []
    taken: set[int] = set()
    for i in range(nodes):
        home = directory / f"node{i}"
        new_home_key(home, suite)
        host = hosts[i] if hosts else "127.0.0.1"
        if hosts:
            p2p, api = p2p_port, api_port
        else:
            p2p = p2p_port + i if p2p_port else free_port(taken)
            api = api_port + i if api_port else free_port(taken)
        listen = f"/ip4/{host}/tcp/{p2p}"
        configs.append(_write_config(directory, home, i, listen, host, api, tls))
        role = LOCAL_ROLES[i % len(LOCAL_ROLES)]
        scheme = "https" if tls else "http"
        cards.append(member_card(home, f"node{i}", role, listen, f"{scheme}://{host}:{api}"))
        homes.append(home)
    # the ceremony, run locally: every member signs the draft with its own key
    settings = {**DEFAULT_PROTOCOL, **SUITE_PROTOCOL.get(suite, {}), **(protocol or {})}
    draft = assemble_draft(cards, f"metroledger-local-{int(time.time())}", settings,
                           contracts or {})  # fmt: skip
    genesis = finalize_genesis(draft, [sign_with_home(draft, home) for home in homes])
    write_json(directory / "genesis.json", genesis)
    return configs


def _write_config(
    directory: Path, home: Path, i: int, listen: str, host: str, api: int, tls: bool
) -> Path:
    """nodeI/node.toml, and with `tls` its API certificate from the network's local CA."""
    config = home / "node.toml"
    admin = f"unix:{(home / ADMIN_SOCKET).resolve()}"
    config.write_text(
        render_node_config(f"node{i}", listen, api, "../genesis.json", host, admin, tls)
    )
    if tls:
        ca = directory / "tls"
        if not (ca / CA_CERT).exists():
            make_ca(ca, f"metroledger local CA {directory.name}")
        make_server_cert(home / "tls", ca / CA_CERT, ca / CA_KEY, host)
    return config


@dataclass
class Daemon:
    config: Path
    api: str
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None  # extra environment
    prefix: tuple[str, ...] = ()  # e.g. `ip netns exec NS`: run the node on another host
    ca: Path | None = None  # the CA that signed an https API's certificate

    def start(self) -> None:
        command = [sys.executable, "-m", "metroledger", "node", "run", "--config", str(self.config)]
        with open(self.config.parent / "node.log", "ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [*self.prefix, *command],
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, **(self.env or {})},
            )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 10) -> None:
        stop_all([self], timeout_s)

    def get(self, path: str, timeout_s: float = 2) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=timeout_s,
                                    context=self._tls) as response:  # fmt: skip
            return json.loads(response.read())

    @cached_property
    def _tls(self) -> ssl.SSLContext | None:
        """Built once: the nodes are polled many times a second in tests and runs."""
        return client_context(self.ca) if self.api.startswith("https:") else None

    def admin_post(self, path: str, body: Any, timeout_s: float = 5) -> tuple[int, Any]:
        """POST JSON to this node's admin listener (its Unix socket)."""
        connection = _UnixConnection(str(self.config.parent / ADMIN_SOCKET), timeout_s)
        try:
            connection.request("POST", path, json.dumps(body).encode(),
                               {"content-type": "application/json"})  # fmt: skip
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def chain(self) -> bytes:
        """The chain hash of this node's network (what its transactions must be signed for)."""
        return chain_of(load_node_config(self.config).genesis_file)

    def is_ready(self) -> bool:
        try:
            return bool(self.get("/healthz").get("ok"))
        except UNREACHABLE:  # not up yet, or cut short while starting
            return False


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float):
        super().__init__("localhost", timeout=timeout_s)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def daemons(directory: Path) -> list[Daemon]:
    configs = sorted(directory.glob("node*/node.toml"), key=lambda p: int(p.parent.name[4:]))
    out = []
    ca = directory / "tls" / CA_CERT
    for path in configs:
        cfg = load_node_config(path)
        scheme = "https" if cfg.api_tls else "http"
        url = f"{scheme}://{cfg.api_host}:{cfg.api_port}"
        out.append(Daemon(path, url, ca=ca if ca.exists() else None))
    return out


def wait_ready(nodes: list[Daemon], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    for d in nodes:
        while not d.is_ready():
            if d.process and d.process.poll() is not None:
                raise RuntimeError(
                    f"{d.config.parent.name} exited; see {d.config.parent / 'node.log'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{d.config.parent.name} not ready after {timeout_s}s")
            time.sleep(0.1)


@contextmanager
def running(
    directory: Path, nodes: int, suite: str, contracts: dict[str, Any] | None = None, start: int = 0
) -> Iterator[list[Daemon]]:
    """A fresh local network in `directory` with its first `start` (default: all) daemons
    running and ready; every daemon is killed on exit (tests and tools)."""
    init_testnet(directory, nodes, suite, contracts=contracts)
    started = daemons(directory)[: start or nodes]
    for d in started:
        d.start()
    try:
        wait_ready(started)
        yield started
    finally:
        for d in started:
            d.kill()


NETNS_FILE = "netns.json"  # a testnet on separate hosts: its namespaces' tag


def init_netns_testnet(directory: Path, nodes: int, suite: str) -> list[Path]:
    """A testnet whose node i will run in its own network namespace with its own
    address (`up` creates them): the APIs serve TLS, as anything leaving a host does."""
    if (reason := netns_unavailable()) is not None:
        raise ValueError(reason)
    hosts = NetnsHosts(nodes)
    configs = init_testnet(directory, nodes, suite, P2P_PORT, API_PORT,
                           hosts=[hosts.ip(i) for i in range(nodes)])  # fmt: skip
    write_json(directory / NETNS_FILE, {"tag": hosts.tag, "nodes": nodes})
    return configs


def up(directory: Path, hosts_kind: str = "loopback") -> int:
    """Start every node of DIR, wait until ready, and stop them all on Ctrl-C; with
    `hosts_kind` "netns" an empty DIR is made a 4-node testnet on separate hosts first.
    A testnet made for namespaces runs in them, which are removed at the end."""
    if hosts_kind == "netns" and not (directory / "genesis.json").exists():
        init_netns_testnet(directory, 4, "ed25519")
    nodes = daemons(directory)
    if not nodes:
        print(
            f"no node*/node.toml under {directory}; run `metroledger testnet init` first",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the network as Ctrl-C does
    hosts = start_hosts(directory, nodes)
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        for d in nodes:
            print(f"{d.config.parent.name}: {d.api}  (log: {d.config.parent / 'node.log'})")
        urls = ",".join(d.api for d in nodes)
        if hosts is None:
            print(f"try: metroledger oracle simulate --testnet {directory} --nodes {urls}")
        else:
            print(f"each node on its own host; try: curl --cacert {directory}/tls/ca.crt "
                  f"{nodes[0].api}/v1/status")  # fmt: skip
        print("network up; Ctrl-C stops it", flush=True)
        while all(d.process and d.process.poll() is None for d in nodes):
            time.sleep(0.5)
        print("a node exited; stopping the network", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(nodes)
        if hosts is not None:
            hosts.destroy()
        print("network stopped")


def stop_all(nodes: list[Daemon], timeout_s: float = 10) -> None:
    """SIGTERM every running daemon at once, then wait for them; one still running after
    `timeout_s`, or when a second Ctrl-C or `kill` comes, is killed, so no node is left
    running behind the network (`timeout` delivers its signal twice, for one)."""
    running = [d.process for d in nodes if d.process and d.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    try:
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
    except KeyboardInterrupt:
        pass  # a second Ctrl-C (or `kill`): the rest are killed now
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_hosts(directory: Path, nodes: list[Daemon]) -> NetnsHosts | None:
    """For a testnet made for separate hosts, create its namespaces and run each node
    in its own (None for a loopback testnet). The caller destroys them."""
    path = directory / NETNS_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    hosts = NetnsHosts(int(raw["nodes"]), tag=int(raw["tag"]))
    hosts.create()
    for i, d in enumerate(nodes):
        d.prefix = tuple(hosts.prefix(i))
    return hosts


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
