"""`metroledger members propose|approve|submit`: a membership change, formed like the
genesis: a draft passes between organisations, each member signs it with its own key,
and one submits the draft with a quorum of approvals as a transaction.

    members propose --epoch E (--add CARD | --remove KEY | --replace KEY --card CARD |
                               --authority-add KEY | --manufacturer-remove KEY | ...)
    members approve DRAFT --home H        (prints this member's approval)
    members submit DRAFT APPROVALS... --home H --api URL [--cacert CA]

The epoch is the current one (`GET /v1/members`); a draft signed for an epoch that has
passed is refused on the ledger, with its reason.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import get_suite
from ledger.genesis import GenesisError, check_card
from ledger.membership import KIND_MEMBERSHIP, LIST_OPS, RULES_OP, change_bytes, make_change
from ledger.types import Transaction, compute_tx_hash, sign_transaction
from ledger.verification import InvalidRecord, parse_rules
from node.ceremony import KEY_FILE
from node.config import ConfigError, load_node_config, read_json
from node.keys import load_keys
from node.load import chain_of, post_tx

Ops = tuple[tuple[Any, ...], ...]


def add_members_parsers(commands: Any) -> None:
    members = commands.add_parser(
        "members", help="change the membership by a quorum-signed transaction"
    ).add_subparsers(dest="members_cmd", required=True)
    propose = members.add_parser("propose", help="draft a change for the members to approve")
    propose.add_argument("--epoch", type=int, required=True, help="the current epoch")
    propose.add_argument("--add", type=Path, metavar="CARD", help="admit the member of CARD")
    propose.add_argument("--remove", metavar="KEY", help="remove the member with this key (hex)")
    propose.add_argument("--replace", metavar="KEY", help="replace this key (hex) by --card's")
    propose.add_argument("--card", type=Path, help="the new card, with --replace")
    for op in LIST_OPS:  # the device registry's lists
        flag = "--" + op.replace("_", "-")  # --authority-add KEY ...
        what = op.replace("_", " ")
        propose.add_argument(flag, dest=op, action="append", default=[], metavar="KEY",
                             help=f"{what} (hex public key; repeatable)")  # fmt: skip
    propose.add_argument("--verification-rules", type=Path, metavar="FILE",
                         help="new Validity rules (JSON: required_items, ranges)")  # fmt: skip
    propose.add_argument("--out", type=Path)
    propose.set_defaults(run=run_propose)
    approve = members.add_parser("approve", help="sign a draft with this member's key")
    approve.add_argument("draft", type=Path)
    approve.add_argument("--home", type=Path, required=True)
    approve.add_argument("--out", type=Path)
    approve.set_defaults(run=run_approve)
    submit = members.add_parser("submit", help="submit a draft with a quorum of approvals")
    submit.add_argument("draft", type=Path)
    submit.add_argument("approvals", type=Path, nargs="+")
    submit.add_argument("--home", type=Path, required=True, help="the submitter's node home")
    submit.add_argument("--api", required=True, help="a member's API, to submit to")
    submit.add_argument("--cacert", type=Path, help="CA of an https API")
    submit.set_defaults(run=run_submit)


def propose(epoch: int, ops: list[list[Any]]) -> dict[str, Any]:
    """The draft; ops in JSON: ["add", CARD], ["remove", KEY], ["replace", KEY, CARD]."""
    _ops_of({"epoch": epoch, "ops": ops})  # check now, not when the members sign
    return {"epoch": epoch, "ops": ops}


def approve(draft: dict[str, Any], home: Path) -> dict[str, str]:
    keys = load_keys(home / KEY_FILE)
    chain = chain_of(load_node_config(home / "node.toml").genesis_file)
    message = chain + change_bytes(int(draft["epoch"]), _ops_of(draft))
    signature = get_suite(keys.suite).sign(keys.signing.secret_key, message)
    return {"public_key": keys.signing.public_key.hex(), "signature": signature.hex()}


def change_transaction(
    draft: dict[str, Any], approvals: list[dict[str, str]], roster: list[str], home: Path
) -> Transaction:
    """The membership transaction, signed by HOME's key; `roster` is GET /v1/members's
    keys in index order (an approval by a key not there is refused here)."""
    indexed = []
    for approval in approvals:
        if approval["public_key"] not in roster:
            raise GenesisError(f"approval by {approval['public_key'][:16]}...: not on the roster")
        indexed.append((roster.index(approval["public_key"]), bytes.fromhex(approval["signature"])))
    payload = make_change(int(draft["epoch"]), _ops_of(draft), tuple(sorted(indexed)))
    keys = load_keys(home / KEY_FILE)
    chain = chain_of(load_node_config(home / "node.toml").genesis_file)
    seq = time.time_ns() // 1_000_000  # a fresh sequence number for this signer
    signing = keys.signing
    suite = get_suite(keys.suite)
    return sign_transaction(suite, signing.secret_key, signing.public_key, seq,
                            KIND_MEMBERSHIP, payload, chain)  # fmt: skip


def _ops_of(draft: dict[str, Any]) -> Ops:
    if not isinstance(draft.get("epoch"), int) or not isinstance(draft.get("ops"), list):
        raise GenesisError('a draft is {"epoch": N, "ops": [...]}')
    ops: list[tuple[Any, ...]] = []
    for op in draft["ops"]:
        if isinstance(op, list) and len(op) == 2 and op[0] == "add":
            ops.append(("add", _card(op[1])))
        elif isinstance(op, list) and len(op) == 2 and op[0] == "remove":
            ops.append(("remove", _key(op[1])))
        elif isinstance(op, list) and len(op) == 3 and op[0] == "replace":
            ops.append(("replace", _key(op[1]), _card(op[2])))
        elif isinstance(op, list) and len(op) == 2 and op[0] in LIST_OPS:
            ops.append((op[0], _key(op[1])))
        elif isinstance(op, list) and len(op) == 2 and op[0] == RULES_OP:
            try:
                ops.append((RULES_OP, parse_rules(op[1])))
            except InvalidRecord as exc:
                raise GenesisError(f"{RULES_OP}: {exc}") from None
        else:
            raise GenesisError(f"ops: {op!r}: expected [add, CARD], [remove, KEY], "
                               "[replace, KEY, CARD]")  # fmt: skip
    return tuple(ops)


def _card(doc: Any) -> dict[str, Any]:
    check_card(doc, "card")
    return {"card": dict(doc["card"]), "signature": doc["signature"]}


def _key(raw: Any) -> bytes:
    try:
        return bytes.fromhex(raw)
    except (TypeError, ValueError):
        raise GenesisError(f"key {raw!r}: expected hex") from None


def _get_json(url: str, cacert: Path | None) -> Any:
    context = ssl.create_default_context(cafile=str(cacert)) if cacert else None
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return json.loads(response.read())


def _emit(doc: Any, out: Path | None) -> str:
    text = json.dumps(doc, indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        return f"wrote {out}"
    return text.rstrip()


def _guarded(name: str, work: Any) -> int:
    try:
        print(work())
    except (GenesisError, ConfigError, OSError, KeyError, ValueError) as exc:
        print(f"metroledger members {name}: {exc}", file=sys.stderr)
        return 2
    return 0


def run_propose(args: argparse.Namespace) -> int:
    def work() -> str:
        ops: list[list[Any]] = []
        if args.add:
            ops.append(["add", read_json(args.add)])
        if args.remove:
            ops.append(["remove", args.remove])
        if args.replace:
            if not args.card:
                raise GenesisError("--replace needs --card (the new key's card)")
            ops.append(["replace", args.replace, read_json(args.card)])
        ops += [[op, key] for op in LIST_OPS for key in getattr(args, op)]
        if args.verification_rules:
            ops.append([RULES_OP, read_json(args.verification_rules)])
        if not ops:
            raise GenesisError("nothing to change: give --add, --remove or --replace")
        return _emit(propose(args.epoch, ops), args.out)

    return _guarded("propose", work)


def run_approve(args: argparse.Namespace) -> int:
    return _guarded("approve", lambda: _emit(approve(read_json(args.draft), args.home), args.out))


def run_submit(args: argparse.Namespace) -> int:
    def work() -> str:
        draft = read_json(args.draft)
        approvals = [read_json(path) for path in args.approvals]
        members = _get_json(f"{args.api}/v1/members", args.cacert)
        roster = [entry["public_key"] for entry in members["roster"]]
        tx = change_transaction(draft, approvals, roster, args.home)
        context = ssl.create_default_context(cafile=str(args.cacert)) if args.cacert else None
        answer = post_tx(args.api, tx, timeout_s=40, context=context, wait_s=30)
        if answer.status not in (200, 202):
            raise GenesisError(f"the node refused the change: {json.dumps(answer.body)}")
        suite = get_suite(load_keys(args.home / KEY_FILE).suite)
        tx_hash = compute_tx_hash(suite, tx).hex()
        return json.dumps({"tx_hash": tx_hash, **answer.body})

    return _guarded("submit", work)
