"""`metroledger genesis member|assemble|sign|finalize|show`: the ceremony's commands
(see `node.ceremony`). Each prints its document to stdout, or writes it with --out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ledger.genesis import ROLES, GenesisError
from node.config import ConfigError, read_json


def add_genesis_parsers(commands: Any) -> None:
    genesis = commands.add_parser(
        "genesis", help="form a network among organisations (the genesis ceremony)"
    ).add_subparsers(dest="genesis_cmd", required=True)

    member = genesis.add_parser("member", help="print this member's signed card")
    member.add_argument("--home", type=Path, required=True, help="the node home (its key)")
    member.add_argument("--name", required=True)
    member.add_argument("--role", required=True, choices=ROLES)
    member.add_argument("--p2p", required=True, help="multiaddr peers dial, /ip4/H/tcp/P")
    member.add_argument("--api", required=True, help="public API URL, http(s)://HOST:PORT")
    member.add_argument("--out", type=Path)
    member.set_defaults(run=run_member)

    draft = genesis.add_parser("assemble", help="make a draft genesis from member cards")
    draft.add_argument("cards", type=Path, nargs="+")
    draft.add_argument("--chain-id", required=True, help="the network's name")
    draft.add_argument("--protocol", type=Path, help="JSON object of protocol settings")
    draft.add_argument("--contracts", type=Path, help="JSON object of contract settings")
    draft.add_argument("--out", type=Path)
    draft.set_defaults(run=run_assemble)

    sign = genesis.add_parser("sign", help="sign a draft with this member's key")
    sign.add_argument("draft", type=Path)
    sign.add_argument("--home", type=Path, required=True)
    sign.add_argument("--out", type=Path)
    sign.set_defaults(run=run_sign)

    final = genesis.add_parser("finalize", help="the genesis file: draft + every signature")
    final.add_argument("draft", type=Path)
    final.add_argument("signatures", type=Path, nargs="+")
    final.add_argument("--out", type=Path)
    final.set_defaults(run=run_finalize)

    show = genesis.add_parser("show", help="a draft's or genesis file's chain and members")
    show.add_argument("file", type=Path)
    show.set_defaults(run=run_show)


def _guarded(name: str, work: Any) -> int:
    """Run one command: a bad file or document is one line on stderr and exit code 2."""
    try:
        text = work()
    except (GenesisError, ConfigError, FileExistsError, OSError) as exc:
        print(f"metroledger genesis {name}: {exc}", file=sys.stderr)
        return 2
    if text:
        sys.stdout.write(text)
    return 0


def run_member(args: argparse.Namespace) -> int:
    from node.ceremony import member_card

    def work() -> str:
        card = member_card(args.home, args.name, args.role, args.p2p, args.api)
        return _emit(args.out, card)

    return _guarded("member", work)


def run_assemble(args: argparse.Namespace) -> int:
    from node.ceremony import assemble_draft, describe_draft

    def work() -> str:
        protocol = _object(args.protocol) if args.protocol else {}
        contracts = _object(args.contracts) if args.contracts else {}
        cards = [read_json(path) for path in args.cards]
        draft = assemble_draft(cards, args.chain_id, protocol, contracts)
        print(describe_draft(draft), file=sys.stderr)
        return _emit(args.out, draft)

    return _guarded("assemble", work)


def run_sign(args: argparse.Namespace) -> int:
    from node.ceremony import describe_draft, sign_with_home

    def work() -> str:
        draft = read_json(args.draft)
        signature = sign_with_home(draft, args.home)
        print(f"signed:\n{describe_draft(draft)}", file=sys.stderr)
        return _emit(args.out, signature)

    return _guarded("sign", work)


def run_finalize(args: argparse.Namespace) -> int:
    from node.ceremony import finalize_genesis

    def work() -> str:
        draft = read_json(args.draft)
        genesis = finalize_genesis(draft, [read_json(p) for p in args.signatures])
        return _emit(args.out, genesis)

    return _guarded("finalize", work)


def run_show(args: argparse.Namespace) -> int:
    from node.ceremony import describe_draft
    from node.config import parse_draft

    def work() -> str:
        doc = read_json(args.file)
        parse_draft(doc, args.file)
        return describe_draft(doc) + "\n"

    return _guarded("show", work)


def _object(path: Path) -> dict[str, Any]:
    value = read_json(path)
    if not isinstance(value, dict):
        raise ConfigError(path, "(top level)", "expected a JSON object")
    return value


def _emit(path: Path | None, doc: Any) -> str:
    """The document's text for stdout, or written to `path` (then "")."""
    from node.ceremony import write_json

    if path is None:
        return write_json(None, doc)
    write_json(path, doc)
    print(f"wrote {path}", file=sys.stderr)
    return ""
