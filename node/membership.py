"""The node's side of membership epochs: which roster index this node is, the
membership a restarted node resumes with, and the peers each epoch adds.

The replica decides epochs from the blocks it delivers (`consensus.epochs`); the
membership contract keeps the same outcome as ledger state, which a restarted node reads
back here. A joining member is not in the genesis: its operator saves a member's
`GET /v1/members` as the file `[node] roster` names, and the node takes its index from
there. That file is not trusted for anything else: the node starts from the genesis and
checks every block's certificate against the members of the block's epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.membership import load_membership
from analysis.state import ContractState
from ledger.genesis import CARD_FIELDS
from ledger.membership import Membership
from node.config import ConfigError, Genesis, NodeConfig
from node.keys import NodeKeys
from node.storage import Storage


def resume(
    cfg: NodeConfig, genesis: Genesis, keys: NodeKeys, state: ContractState, storage: Storage
) -> tuple[int, Membership, bytes]:
    """This node's roster index, the membership it resumes with and its epoch's start
    hash (ConfigError if the key is not a member, or the suite differs)."""
    if keys.suite != genesis.suite:
        raise ConfigError(cfg.key_file, "suite", f"keys are {keys.suite}, genesis {genesis.suite}")
    m, start_hash = resumed_membership(genesis, state, storage)
    return find_member(keys, m, cfg.roster_file, cfg.key_file), m, start_hash


def membership_after(genesis: Genesis, state: ContractState, height: int) -> Membership:
    """The membership after block `height`, from the membership contract's state (the
    epoch of a passed boundary entered, as the replica enters it on delivery)."""
    return load_membership(state.get("membership"), genesis.membership()).at_height(height + 1)


def resumed_membership(
    genesis: Genesis, state: ContractState, storage: Storage
) -> tuple[Membership, bytes]:
    """The membership after the stored chain, and the hash of the block its epoch
    starts after (the epoch's stable checkpoint)."""
    m = membership_after(genesis, state, storage.height())
    start = m.epoch.start_height
    if start == 0:
        return m, genesis.genesis_hash
    blocks = storage.blocks(start, start)
    if not blocks:
        raise ConfigError(storage.path, "blocks", f"block {start}, where epoch "
                          f"{m.epoch.number} starts, is missing")  # fmt: skip
    return m, blocks[0][0].header.hash(storage.suite)


def find_member(keys: NodeKeys, m: Membership, roster_file: Path | None, key_file: Path) -> int:
    """This node's roster index: in the membership it resumes with, else in the roster
    file of a joining member; ConfigError saying which key is missing where."""
    public = keys.signing.public_key
    if public in m.keys:
        me = m.keys.index(public)
        if m.cards[me].get("peer_id", keys.peer_id) != keys.peer_id:
            raise ConfigError(key_file, "identity key", "peer id differs from the member's card")
        return me
    names = ", ".join(
        f"{c.get('name', '?')} {k.hex()[:16]}..." for k, c in zip(m.keys, m.cards, strict=True)
    )
    if roster_file is None:
        raise ConfigError(key_file, "signing key", f"{public.hex()[:16]}... is not a member "
                          f"(members: {names}); a joining member sets [node] roster to a "
                          "member's GET /v1/members")  # fmt: skip
    return _index_in_roster_file(roster_file, public)


def _index_in_roster_file(path: Path, public: bytes) -> int:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        roster = [bytes.fromhex(entry["public_key"]) for entry in doc["roster"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(path, "roster", f"not a GET /v1/members answer: {exc!r}") from None
    if public not in roster:
        raise ConfigError(path, "roster", f"{public.hex()[:16]}... is not admitted there: "
                          "has the membership change that adds it committed?")  # fmt: skip
    return roster.index(public)


def peers_of(m: Membership) -> list[tuple[str, str]]:
    """(peer id, address) by roster index, as the transport dials them."""
    return [(c.get("peer_id", ""), c.get("address", "")) for c in m.cards]


def members_json(genesis: Genesis, view: ContractState, height: int) -> dict[str, Any]:
    """`GET /v1/members`: the epoch at the stored height, a scheduled one, the roster
    with every card, and where each accepted change is (its receipt verifies offline)."""
    m = membership_after(genesis, view, height)
    upcoming = None
    if m.next is not None:
        upcoming = {"epoch": m.next.number, "start_after": m.next.start_height,
                    "members": list(m.next.active)}  # fmt: skip
    roster = [{"index": i, **{k: card.get(k, "") for k in CARD_FIELDS}, "public_key": key.hex()}
              for i, (key, card) in enumerate(zip(m.keys, m.cards, strict=True))]  # fmt: skip
    return {"epoch": m.epoch.number, "start_after": m.epoch.start_height,
            "members": list(m.epoch.active), "next": upcoming, "roster": roster,
            "history": list(view.get("history", []))}  # fmt: skip
