"""`metroledger demo`: until the daemon lands, a seeded in-process network.

The real multi-process network over py-libp2p is issue 3; this runs the same
consensus core in the simulator so the quick start shows real output.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim.plan import NETWORK_FAULTS, SimParams
from sim.world import World


def add_demo_parser(commands: Any) -> None:
    p = commands.add_parser("demo", help="run a small local network and print what committed")
    p.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    print("metroledger demo: the multi-process daemon network is not yet built (issue 3);")
    print("running the PBFT core in the deterministic simulator instead:")
    params = SimParams(
        n=4,
        byzantine=1,
        seed=args.seed,
        requests=40,
        faults=frozenset({"equivocate", "loss", "reorder", "duplicate"}),
    )
    world = World(params)
    byzantine = ", ".join(
        f"replica {i}: {', '.join(sorted(b))}" for i, b in world.plan.byzantine.items()
    )
    network = sorted(world.plan.kinds & set(NETWORK_FAULTS))
    print(
        f"4 replicas (f = 1); Byzantine: {byzantine or 'none'}; "
        f"network faults: {', '.join(network) or 'none'}\n"
    )
    result = world.run()
    for i, disk in enumerate(world.disks):
        role = "byzantine" if i in world.plan.byzantine else "honest"
        txs = sum(len(block.txs) for block, _ in disk.blocks)
        head = disk.blocks[-1][0].header.hash(world.cfg.suite).hex()[:16] if disk.blocks else "-"
        print(f"replica {i} ({role:9}) height={len(disk.blocks):3} txs={txs:3} head={head}")
    print(
        f"\nview changes={result.view_changes} evidence={result.evidence} "
        f"safety={'ok' if result.safety_ok else 'VIOLATED'} "
        f"liveness={'ok' if result.liveness_ok else 'FAILED'} (seed {args.seed})"
    )
    return 0 if result.safety_ok and result.liveness_ok else 1
