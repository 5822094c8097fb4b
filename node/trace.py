"""Where a transaction's time goes: a sampled trace of its stages through the nodes.

With `[node] trace_every = N` (0, the default, is off), a node logs one `trace` line
for each stage a sampled transaction passes on it: 1 in N by its hash, so every node
samples the same transactions. The times are CLOCK_MONOTONIC in nanoseconds, one clock
for every process of a machine, so the gaps between stages on different nodes of a
local network are real (`bench.trace` turns the lines into a table). Stages:

- `http_received`, `admitted`, `forward_written`, `answered`: on the node a client
  sent it to (the HTTP request parsed; the core admitted it; its forward is in a
  peer's kernel buffer; the commit answer is sent);
- `forward_received`: on a node a peer forwarded it to, once decoded and verified;
- `proposed`: on the primary, when its pre-prepare holds it;
- `delivered` and `stored`: on every node, when its block commits there and once that
  block is on disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from node.logs import event

log = logging.getLogger("metroledger.trace")
STAGES = ("http_received", "admitted", "forward_written", "forward_received", "proposed",
          "delivered", "stored", "answered")  # fmt: skip


class Tracer:
    def __init__(self, every: int):
        self.every = every

    def sampled(self, tx_hash: bytes) -> bool:
        return self.every > 0 and int.from_bytes(tx_hash[:4], "big") % self.every == 0

    def mark(self, stage: str, hashes: Iterable[bytes]) -> None:
        """Log `stage` for the sampled ones among `hashes` (nothing when off)."""
        if not self.every:
            return
        now_ns = time.monotonic_ns()
        for tx_hash in hashes:
            if self.sampled(tx_hash):
                event(log, "trace", stage=stage, tx=tx_hash.hex(), t_ns=now_ns)
