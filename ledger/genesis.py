"""The genesis ceremony's documents and the chain identity they define.

No one holds another member's key: each organisation makes its key on its own machine
and publishes a *member card* (its public key, peer id, addresses and role) signed by
that key. A coordinator assembles the cards into a *draft*; the draft's hash is the
chain's identity (`chain hash`), so every member signs that hash, and the genesis file
is the draft plus every member's signature. Nothing here touches files or the network:
the command line and the node read and write the JSON these functions take and give.

The chain hash goes into every signature (transactions, votes, certificates), so
nothing signed for one network counts on another; its first 8 bytes (`ledger.tx.chain_tag`)
travel with transactions and consensus frames, so a node can say "signed for another
chain" instead of only "bad signature".
"""

from __future__ import annotations

from typing import Any

from ledger.crypto import SUITES, KeyPair, SignatureSuite, get_suite
from ledger.encoding import encode
from ledger.errors import InvalidEncoding

CARD_DOMAIN = b"metroledger/member-card/v1"
GENESIS_DOMAIN = b"metroledger/genesis/v1"
# The organisations of the mission; a card names one (it is informative: the ledger's
# rules do not depend on it, the registry and the dashboard show it).
ROLES = ("nmi", "verification_authority", "utility", "volunteer", "regulator", "other")
CARD_FIELDS = ("name", "role", "suite", "public_key", "peer_id", "address", "api")
DRAFT_FIELDS = ("chain_id", "suite", "members", "protocol", "contracts")


class GenesisError(ValueError):
    """A card, draft, signature or genesis file is unusable; the message says why."""


# ---- member cards -----------------------------------------------------------------------


def make_card(
    suite_name: str, key: KeyPair, name: str, role: str, peer_id: str, p2p: str, api: str
) -> dict[str, Any]:
    """A member card signed by the member's own consensus key."""
    card = {"name": name, "role": role, "suite": suite_name, "public_key": key.public_key.hex(),
            "peer_id": peer_id, "address": p2p, "api": api}  # fmt: skip
    _check_card_fields(card)
    signature = get_suite(suite_name).sign(key.secret_key, _card_bytes(card))
    return {"card": card, "signature": signature.hex()}


def check_card(doc: Any, where: str = "card") -> dict[str, Any]:
    """The card inside a signed card document, once its signature verifies."""
    if not isinstance(doc, dict) or not isinstance(doc.get("card"), dict):
        raise GenesisError(f"{where}: expected {{'card': {{...}}, 'signature': HEX}}")
    card = doc["card"]
    _check_card_fields(card, where)
    suite = get_suite(card["suite"])
    signature = _hex(doc.get("signature"), f"{where}.signature")
    if not suite.verify(bytes.fromhex(card["public_key"]), _card_bytes(card), signature):
        raise GenesisError(f"{where}: the signature of {card['name']!r} over its card is invalid")
    return dict(card)


def _check_card_fields(card: dict[str, Any], where: str = "card") -> None:
    if set(card) != set(CARD_FIELDS):
        raise GenesisError(f"{where}: expected exactly the fields {list(CARD_FIELDS)}")
    for field in CARD_FIELDS:
        if not isinstance(card[field], str) or not card[field]:
            raise GenesisError(f"{where}.{field}: expected a non-empty string")
    if card["role"] not in ROLES:
        raise GenesisError(f"{where}.role: {card['role']!r} is not one of {list(ROLES)}")
    if card["suite"] not in SUITES:
        raise GenesisError(f"{where}.suite: unknown suite {card['suite']!r}")
    _hex(card["public_key"], f"{where}.public_key")
    if not card["address"].startswith("/"):
        raise GenesisError(f"{where}.address: expected a libp2p multiaddr (/ip4/HOST/tcp/PORT)")
    if not card["api"].startswith(("http://", "https://")):
        raise GenesisError(f"{where}.api: expected an http:// or https:// URL")


def _card_bytes(card: dict[str, Any]) -> bytes:
    return CARD_DOMAIN + encode([card[f] for f in CARD_FIELDS])


# ---- drafts, signatures, the genesis file ----------------------------------------------


def assemble(
    cards: list[Any], chain_id: str, protocol: dict[str, Any], contracts: dict[str, Any]
) -> dict[str, Any]:
    """A draft genesis from signed cards, members in the order given."""
    if not chain_id:
        raise GenesisError("chain_id: expected a non-empty name")
    if not cards:
        raise GenesisError("no member cards")
    members = [check_card(doc, f"card {i}") for i, doc in enumerate(cards)]
    suites = {m["suite"] for m in members}
    if len(suites) != 1:
        raise GenesisError(f"the cards use different suites {sorted(suites)}; pick one")
    for field in ("name", "public_key", "peer_id", "address"):
        seen: dict[str, int] = {}
        for i, member in enumerate(members):
            if member[field] in seen:
                raise GenesisError(f"cards {seen[member[field]]} and {i} have the same {field}")
            seen[member[field]] = i
    entries = [{k: m[k] for k in CARD_FIELDS if k != "suite"} for m in members]
    return {"chain_id": chain_id, "suite": suites.pop(), "members": entries,
            "protocol": dict(protocol), "contracts": dict(contracts)}  # fmt: skip


def compute_chain_hash(doc: dict[str, Any]) -> bytes:
    """The hash of a draft's fields (a genesis file's signatures are not part of it)."""
    if not isinstance(doc, dict) or doc.get("suite") not in SUITES:
        raise GenesisError("expected a genesis document with a known suite")
    missing = [f for f in DRAFT_FIELDS if f not in doc]
    if missing:
        raise GenesisError(f"the genesis document lacks {missing}")
    try:
        return get_suite(doc["suite"]).hash(encode({f: doc[f] for f in DRAFT_FIELDS}))
    except (InvalidEncoding, TypeError, ValueError) as exc:
        raise GenesisError(f"the genesis document cannot be encoded canonically: {exc}") from None


def sign_draft(draft: dict[str, Any], key: KeyPair) -> dict[str, Any]:
    """A member's signature over the draft's chain hash (its key must be a member's)."""
    chain_hash = compute_chain_hash(draft)
    if _member_index(draft, key.public_key) is None:
        raise GenesisError("this key is not among the draft's members; check the draft")
    suite = get_suite(draft["suite"])
    signature = suite.sign(key.secret_key, GENESIS_DOMAIN + chain_hash)
    return {"chain_hash": chain_hash.hex(), "public_key": key.public_key.hex(),
            "signature": signature.hex()}  # fmt: skip


def finalize(draft: dict[str, Any], signatures: list[Any]) -> dict[str, Any]:
    """The genesis file: the draft plus one valid signature from every member."""
    chain_hash = compute_chain_hash(draft)
    by_key: dict[str, str] = {}
    for i, sig in enumerate(signatures):
        if not isinstance(sig, dict):
            raise GenesisError(f"signature {i}: expected an object")
        if sig.get("chain_hash") != chain_hash.hex():
            raise GenesisError(f"signature {i}: signs chain {sig.get('chain_hash')!r}, "
                               f"not this draft's {chain_hash.hex()}")  # fmt: skip
        by_key[str(sig.get("public_key"))] = str(sig.get("signature"))
    genesis = {**{f: draft[f] for f in DRAFT_FIELDS}, "signatures": [
        {"public_key": m["public_key"], "signature": by_key.get(m["public_key"], "")}
        for m in draft["members"]
    ]}  # fmt: skip
    check_genesis(genesis)
    return genesis


def check_genesis(doc: Any) -> bytes:
    """The chain hash of a genesis file whose members have all signed it; GenesisError
    naming the first member whose signature is missing or invalid."""
    chain_hash = compute_chain_hash(doc)
    suite, members = get_suite(doc["suite"]), doc["members"]
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise GenesisError("the genesis carries no member signatures: it was not made by "
                           "the ceremony (metroledger genesis assemble/sign/finalize)")  # fmt: skip
    if not isinstance(members, list) or len(signatures) != len(members):
        raise GenesisError(f"{len(signatures)} signatures for {len(members)} members")
    for i, (member, sig) in enumerate(zip(members, signatures, strict=True)):
        name = member.get("name") if isinstance(member, dict) else None
        if not isinstance(sig, dict) or not isinstance(member, dict):
            raise GenesisError(f"signatures[{i}]: expected an object")
        if sig.get("public_key") != member.get("public_key"):
            raise GenesisError(f"signatures[{i}]: not by member {i} ({name!r})")
        if not sig.get("signature"):
            raise GenesisError(f"member {i} ({name!r}) has not signed the genesis")
        if not _verifies(suite, member, sig, chain_hash):
            raise GenesisError(f"the signature of member {i} ({name!r}) is invalid")
    return chain_hash


def _verifies(suite: SignatureSuite, member: dict[str, Any], sig: dict[str, Any],
              chain_hash: bytes) -> bool:  # fmt: skip
    try:
        key = bytes.fromhex(str(member["public_key"]))
        signature = bytes.fromhex(str(sig["signature"]))
    except ValueError:
        return False
    return suite.verify(key, GENESIS_DOMAIN + chain_hash, signature)


def _member_index(draft: dict[str, Any], public_key: bytes) -> int | None:
    for i, member in enumerate(draft.get("members", [])):
        if isinstance(member, dict) and member.get("public_key") == public_key.hex():
            return i
    return None


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{where}: expected hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise GenesisError(f"{where}: not hex") from None
