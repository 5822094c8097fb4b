"""The genesis ceremony on disk: what each organisation runs on its own machine.

    metroledger keys new --home HOME           # the key never leaves HOME
    metroledger genesis member --home HOME --name N --role R --p2p ADDR --api URL > card.json
    metroledger genesis assemble card*.json --chain-id ID [--protocol F] > draft.json
    metroledger genesis sign draft.json --home HOME > sig.json      # each member
    metroledger genesis finalize draft.json sig*.json --out HOME/genesis.json

Only cards, the draft and signatures travel between organisations. The documents
themselves are `ledger.genesis`; this module reads and writes them with errors that
name the file, and checks a draft as the node will (`node.config.parse_draft`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.genesis import (
    GenesisError,
    assemble,
    compute_chain_hash,
    finalize,
    make_card,
    sign_draft,
)
from node.config import LOOPBACK, parse_draft, parse_genesis, render_node_config
from node.keys import NodeKeys, generate_keys, load_keys, write_keys

KEY_FILE = Path("keys") / "node_key.json"  # inside a node's home, as node.toml names it


def new_home_key(home: Path, suite: str) -> NodeKeys:
    """A fresh key in HOME/keys/node_key.json (refuses to replace one)."""
    path = home / KEY_FILE
    if path.exists():
        raise FileExistsError(f"{path} exists; a member keeps its key (refusing to overwrite)")
    keys = generate_keys(suite)
    write_keys(keys, path)
    return keys


def member_card(home: Path, name: str, role: str, p2p: str, api: str) -> dict[str, Any]:
    """HOME's signed member card; writes HOME/node.toml for those addresses if absent."""
    keys = load_keys(home / KEY_FILE)
    card = make_card(keys.suite, keys.signing, name, role, keys.peer_id, p2p, api)
    config = home / "node.toml"
    if not config.exists():
        host, port, tls = api_host_port(api)
        config.write_text(render_node_config(name, p2p, port, "genesis.json", host, tls=tls))
    return card


def api_host_port(url: str) -> tuple[str, int, bool]:
    """(host, port, TLS?) of an API URL; http:// only on loopback (development)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise GenesisError(f"--api {url!r}: expected https://HOST:PORT (or http:// on loopback)")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise GenesisError(f"--api {url!r}: an API other hosts reach serves TLS: https://")
    return parts.hostname, parts.port, parts.scheme == "https"


def assemble_draft(
    cards: list[Any], chain_id: str, protocol: dict[str, Any], contracts: dict[str, Any]
) -> dict[str, Any]:
    """A draft the node would accept (protocol and contracts checked too)."""
    draft = assemble(cards, chain_id, protocol, contracts)
    parse_draft(draft, "draft")
    return draft


def sign_with_home(draft: dict[str, Any], home: Path) -> dict[str, Any]:
    parse_draft(draft, "draft")
    return sign_draft(draft, load_keys(home / KEY_FILE).signing)


def finalize_genesis(draft: dict[str, Any], signatures: list[Any]) -> dict[str, Any]:
    genesis = finalize(draft, signatures)
    parse_genesis(genesis, "genesis")
    return genesis


def describe_draft(draft: dict[str, Any]) -> str:
    """What a member should read before signing: the chain and who is in it."""
    lines = [f"chain {draft['chain_id']} ({draft['suite']}), hash "
             f"{compute_chain_hash(draft).hex()}"]  # fmt: skip
    for i, m in enumerate(draft["members"]):
        lines.append(f"  member {i}: {m['name']} ({m['role']}) key {m['public_key'][:16]}... "
                     f"p2p {m['address']} api {m['api']}")  # fmt: skip
    lines.append(f"  protocol {json.dumps(draft['protocol'], sort_keys=True)}")
    lines.append(f"  contracts {json.dumps(draft['contracts'], sort_keys=True)}")
    return "\n".join(lines)


def write_json(path: Path | None, doc: Any) -> str:
    """Write to `path` (refusing to replace a file) or return the text for stdout."""
    text = json.dumps(doc, indent=2) + "\n"
    if path is not None:
        if path.exists():
            raise FileExistsError(f"{path} exists; refusing to overwrite")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text
