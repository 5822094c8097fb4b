"""Separate hosts on one machine: each node in its own network namespace.

A scenario with `hosts = "netns"` runs node i in namespace `ml<tag>n<i>`, with address
10.77.<x>.<i+1>, joined to the runner's namespace by a veth pair on one bridge
(10.77.<x>.254 is the runner's side). Partitions and random loss are nftables rules in
the sending node's namespace (an output chain that drops packets to the other side or
a share of them); this kernel has no netem, so delay and jitter still come from the
transport's fault layer. Needs root, iproute2 and nftables; `unavailable()` says which
is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

P2P_PORT = 7000
API_PORT = 8000
TABLE = "mlfault"


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "hosts = netns needs root (network namespaces, veth, nftables)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"hosts = netns needs `{tool}` (Debian package {package})"
    return None


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip() or result.returncode}")


class NetnsHosts:
    made = 0  # networks made by this process: each gets its own names

    def __init__(self, nodes: int, tag: int | None = None):
        NetnsHosts.made += 1
        self.tag = (os.getpid() + 997 * NetnsHosts.made if tag is None else tag) % 10_000
        self.octet = self.tag % 250  # 10.77.<octet>.0/24
        self.nodes = nodes
        self.bridge = f"mlb{self.tag}"
        self.names = [f"ml{self.tag}n{i}" for i in range(nodes)]

    def ip(self, member: int) -> str:
        return f"10.77.{self.octet}.{member + 1}"

    @property
    def gateway(self) -> str:
        return f"10.77.{self.octet}.254"

    def prefix(self, member: int) -> list[str]:
        """The command prefix that runs a process on member's host."""
        return ["ip", "netns", "exec", self.names[member]]

    def create(self) -> None:
        """The bridge, and per node a namespace with its veth, address and an empty
        fault chain. Undone by destroy(), also after a partial failure."""
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for i, name in enumerate(self.names):
                self._create_host(i, name)
        except Exception:
            self.destroy()
            raise

    def _veth(self, member: int) -> str:
        """The root-namespace end of member's veth pair."""
        return f"ml{self.tag}v{member}"

    def _create_host(self, member: int, name: str) -> None:
        veth = self._veth(member)
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _run("ip", "link", "set", veth, "master", self.bridge, "up")
        _run("ip", "-n", name, "addr", "add", f"{self.ip(member)}/24", "dev", "eth0")
        _run("ip", "-n", name, "link", "set", "eth0", "up")
        _run("ip", "-n", name, "link", "set", "lo", "up")
        self._nft(member, "add", "table", "inet", TABLE)
        self._nft(
            member, "add", "chain", "inet", TABLE, "out",
            "{ type filter hook output priority 0 ; }",
        )  # fmt: skip

    def destroy(self) -> None:
        for member, name in enumerate(self.names):
            # the veth first: deleting a namespace deletes its pair only later, in the
            # kernel's own time, and a next network with these names would meet it
            subprocess.run(["ip", "link", "del", self._veth(member)], capture_output=True,
                           check=False)  # fmt: skip
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)

    # ---- faults -----------------------------------------------------------------------

    def set_faults(self, member: int, drop_to: list[int], loss_pct: int) -> None:
        """Replace member's outgoing rules: drop everything to `drop_to`, and `loss_pct`
        percent of what goes to the other members (the runner's own traffic passes)."""
        self._nft(member, "flush", "chain", "inet", TABLE, "out")
        if drop_to:
            targets = ", ".join(self.ip(m) for m in drop_to)
            self._nft(member, "add", "rule", "inet", TABLE, "out", "ip", "daddr",
                      f"{{ {targets} }}", "drop")  # fmt: skip
        if loss_pct:
            others = ", ".join(self.ip(m) for m in range(self.nodes) if m != member)
            self._nft(member, "add", "rule", "inet", TABLE, "out", "ip", "daddr",
                      f"{{ {others} }}", "numgen", "random", "mod", "100", "<",
                      str(loss_pct), "drop")  # fmt: skip

    def _nft(self, member: int, *args: str) -> None:
        _run(*self.prefix(member), "nft", *args)
