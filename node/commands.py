"""Sub-commands `keys`, `testnet` and `node` of the metroledger CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from node.config import ConfigError
from node.genesis_cli import add_genesis_parsers
from node.members_cli import add_members_parsers


def add_node_parsers(commands: Any) -> None:
    keys = commands.add_parser("keys", help="node keys").add_subparsers(
        dest="keys_cmd", required=True
    )
    new = keys.add_parser("new", help="write a new node key file (mode 0600)")
    where = new.add_mutually_exclusive_group()
    where.add_argument("--home", type=Path, help="a node home: writes HOME/keys/node_key.json")
    where.add_argument("--out", type=Path, help="key file to create (default: node_key.json)")
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
    init.add_argument(
        "--tls", action="store_true", help="APIs over TLS, certificates from a local CA (DIR/tls)"
    )
    init.set_defaults(run=run_testnet_init)
    init.add_argument("--hosts", choices=["loopback", "netns"], default="loopback",
                      help="netns: each node in its own network namespace (root)")  # fmt: skip
    up = testnet.add_parser("up", help="start every node of DIR; Ctrl-C stops them")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--hosts", choices=["loopback", "netns"], default="loopback",
                    help="netns: an empty DIR becomes 4 nodes on separate hosts first")  # fmt: skip
    up.set_defaults(run=run_testnet_up)

    add_genesis_parsers(commands)
    add_members_parsers(commands)
    operator = commands.add_parser("operator", help="credentials for a node's operator")
    token = operator.add_subparsers(dest="operator_cmd", required=True).add_parser(
        "token", help="print a bearer token for /v1/operator/ on this node's public API"
    )
    token.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    token.add_argument("--ttl-s", type=int, default=3600, help="lifetime (default 1 h)")
    token.set_defaults(run=run_operator_token)

    node = commands.add_parser("node", help="the daemon").add_subparsers(
        dest="node_cmd", required=True
    )
    run = node.add_parser("run", help="run one daemon")
    run.add_argument("--config", type=Path, required=True)
    run.set_defaults(run=run_node)


def run_keys_new(args: argparse.Namespace) -> int:
    from node.ceremony import KEY_FILE
    from node.keys import generate_keys, write_keys

    out = args.home / KEY_FILE if args.home else (args.out or Path("node_key.json"))
    if out.exists():
        print(f"metroledger keys new: {out} exists; refusing to overwrite", file=sys.stderr)
        return 2
    keys = generate_keys(args.suite)
    write_keys(keys, out)
    print(f"wrote {out}")
    print(f"suite {keys.suite}")
    print(f"public_key {keys.signing.public_key.hex()}")
    print(f"peer_id {keys.peer_id}")
    return 0


def run_operator_token(args: argparse.Namespace) -> int:
    """A token signed by the node's own member key (it never leaves the machine)."""
    import time

    from ledger.crypto import get_suite
    from node.auth import MAX_TOKEN_TTL_S, make_token
    from node.config import load_genesis, load_node_config
    from node.keys import load_keys
    from node.membership import find_member

    if not 0 < args.ttl_s <= MAX_TOKEN_TTL_S:
        print(f"metroledger operator token: --ttl-s: 1..{MAX_TOKEN_TTL_S}", file=sys.stderr)
        return 2
    try:
        cfg = load_node_config(args.config)
        genesis, keys = load_genesis(cfg.genesis_file), load_keys(cfg.key_file)
        me = find_member(keys, genesis.membership(), cfg.roster_file, cfg.key_file)
    except ConfigError as exc:
        print(f"metroledger operator token: {exc}", file=sys.stderr)
        return 2
    expires = int(time.time()) + args.ttl_s
    print(make_token(get_suite(genesis.suite), keys.signing, genesis.genesis_hash, me, expires))
    return 0


def run_testnet_init(args: argparse.Namespace) -> int:
    from node.testnet import init_netns_testnet, init_testnet

    try:
        if args.hosts == "netns":
            configs = init_netns_testnet(args.dir, args.nodes, args.suite)
        else:
            configs = init_testnet(
                args.dir, args.nodes, args.suite, args.p2p_port, args.api_port, tls=args.tls
            )
    except (ValueError, FileExistsError) as exc:
        print(f"metroledger testnet init: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.dir / 'genesis.json'} and {len(configs)} node homes")
    return 0


def run_testnet_up(args: argparse.Namespace) -> int:
    from node.testnet import up

    try:
        return up(args.dir, args.hosts)
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
