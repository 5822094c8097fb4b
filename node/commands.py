"""Sub-commands `keys`, `testnet` and `node` of the metroledger CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from node.config import ConfigError


def add_node_parsers(commands: Any) -> None:
    keys = commands.add_parser("keys", help="node keys").add_subparsers(
        dest="keys_cmd", required=True
    )
    new = keys.add_parser("new", help="write a new node key file (mode 0600)")
    new.add_argument(
        "--out",
        type=Path,
        default=Path("node_key.json"),
        help="key file to create (default: node_key.json)",
    )
    new.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    new.set_defaults(run=run_keys_new)

    testnet = commands.add_parser("testnet", help="a local network").add_subparsers(
        dest="testnet_cmd", required=True
    )
    init = testnet.add_parser("init", help="write genesis, keys and configs for N nodes")
    init.add_argument("--nodes", type=int, default=4)
    init.add_argument("--dir", type=Path, required=True)
    init.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    init.add_argument(
        "--p2p-port", type=int, default=0, help="first p2p port (default: free ports)"
    )
    init.add_argument(
        "--api-port", type=int, default=0, help="first API port (default: free ports)"
    )
    init.set_defaults(run=run_testnet_init)
    up = testnet.add_parser("up", help="start every node of DIR; Ctrl-C stops them")
    up.add_argument("--dir", type=Path, required=True)
    up.set_defaults(run=run_testnet_up)

    node = commands.add_parser("node", help="the daemon").add_subparsers(
        dest="node_cmd", required=True
    )
    run = node.add_parser("run", help="run one daemon")
    run.add_argument("--config", type=Path, required=True)
    run.set_defaults(run=run_node)


def run_keys_new(args: argparse.Namespace) -> int:
    from node.keys import generate_keys, write_keys

    if args.out.exists():
        print(f"metroledger keys new: {args.out} exists; refusing to overwrite", file=sys.stderr)
        return 2
    keys = generate_keys(args.suite)
    write_keys(keys, args.out)
    print(f"wrote {args.out}")
    print(f"suite {keys.suite}")
    print(f"public_key {keys.signing.public_key.hex()}")
    print(f"peer_id {keys.peer_id}")
    return 0


def run_testnet_init(args: argparse.Namespace) -> int:
    from node.testnet import init_testnet

    try:
        configs = init_testnet(args.dir, args.nodes, args.suite, args.p2p_port, args.api_port)
    except (ValueError, FileExistsError) as exc:
        print(f"metroledger testnet init: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.dir / 'genesis.json'} and {len(configs)} node homes")
    return 0


def run_testnet_up(args: argparse.Namespace) -> int:
    from node.testnet import up

    try:
        return up(args.dir)
    except ConfigError as exc:
        print(f"metroledger testnet up: {exc}", file=sys.stderr)
        return 2


def run_node(args: argparse.Namespace) -> int:
    import trio

    from node.config import load_node_config
    from node.logs import configure

    try:
        cfg = load_node_config(args.config)
        configure(cfg.name, cfg.log_level)
        from node.daemon import build_node

        node = build_node(cfg)
    except ConfigError as exc:
        print(f"metroledger node run: {exc}", file=sys.stderr)
        return 2
    trio.run(node.run)
    return 0
