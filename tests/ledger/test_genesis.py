"""The genesis ceremony's documents: cards, drafts, signatures, and what each refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.crypto import get_suite
from ledger.genesis import (
    GenesisError,
    assemble,
    check_card,
    check_genesis,
    compute_chain_hash,
    finalize,
    make_card,
    sign_draft,
)
from tests.factories import ceremony_genesis, member_keys

KEYS = member_keys(4)


def cards() -> list[dict[str, Any]]:
    return [
        make_card(
            "ed25519", k, f"org{i}", "nmi", f"peer{i}", f"/ip4/10.0.0.{i}/tcp/1", "http://h:1"
        )
        for i, k in enumerate(KEYS)
    ]


def draft() -> dict[str, Any]:
    return assemble(cards(), "chain-a", {"batch_max_txs": 100}, {})


def test_the_ceremony_makes_a_genesis_every_member_signed() -> None:
    d = draft()
    genesis = finalize(d, [sign_draft(d, k) for k in reversed(KEYS)])  # any order
    assert check_genesis(genesis) == compute_chain_hash(d)
    assert [s["public_key"] for s in genesis["signatures"]] == [k.public_key.hex() for k in KEYS]


def test_a_card_whose_signature_or_fields_are_wrong_is_refused() -> None:
    good = cards()[0]
    forged = copy.deepcopy(good)
    forged["card"]["address"] = "/ip4/6.6.6.6/tcp/1"  # redirected after signing
    with pytest.raises(GenesisError, match="signature of 'org0' over its card is invalid"):
        check_card(forged)
    for field, value, expected in [
        ("role", "king", "role"),
        ("api", "ftp://x", "api"),
        ("address", "10.0.0.1:1", "multiaddr"),
        ("public_key", "zz", "not hex"),
    ]:
        bad = copy.deepcopy(good)
        bad["card"][field] = value
        with pytest.raises(GenesisError, match=expected):
            check_card(bad)
    with pytest.raises(GenesisError, match="exactly the fields"):
        check_card({"card": {**good["card"], "extra": "x"}, "signature": good["signature"]})


def test_assembly_refuses_duplicates_and_mixed_suites() -> None:
    twice = [*cards(), cards()[0]]
    with pytest.raises(GenesisError, match="cards 0 and 4 have the same name"):
        assemble(twice, "c", {}, {})
    sm2_key = get_suite("sm2").keypair_from_seed(b"sm2 member")
    other = make_card("sm2", sm2_key, "sm", "other", "p", "/ip4/1.1.1.1/tcp/1", "http://h:1")
    with pytest.raises(GenesisError, match="different suites"):
        assemble([*cards(), other], "c", {}, {})


def test_only_a_member_can_sign_and_only_this_draft_counts() -> None:
    d = draft()
    with pytest.raises(GenesisError, match="not among the draft's members"):
        sign_draft(d, member_keys(5)[4])
    other = assemble(cards(), "chain-b", {}, {})  # the same members, another network
    signatures = [sign_draft(d, k) for k in KEYS[:3]] + [sign_draft(other, KEYS[3])]
    with pytest.raises(GenesisError, match="signature 3: signs chain"):
        finalize(d, signatures)


def test_a_missing_or_invalid_signature_names_the_member() -> None:
    d = draft()
    with pytest.raises(GenesisError, match=r"member 2 \('org2'\) has not signed"):
        finalize(d, [sign_draft(d, k) for k in (KEYS[0], KEYS[1], KEYS[3])])
    genesis = ceremony_genesis(KEYS)
    swapped = copy.deepcopy(genesis)
    swapped["signatures"][1]["signature"] = genesis["signatures"][0]["signature"]  # type: ignore[index]
    with pytest.raises(GenesisError, match=r"signature of member 1 \('org1'\) is invalid"):
        check_genesis(swapped)
    unsigned = {k: v for k, v in genesis.items() if k != "signatures"}
    with pytest.raises(GenesisError, match="no member signatures"):
        check_genesis(unsigned)


def test_any_change_to_a_signed_genesis_breaks_every_signature() -> None:
    genesis = ceremony_genesis(KEYS)
    for change in (
        lambda g: g["protocol"].update(batch_max_txs=7),
        lambda g: g["members"][3].update(address="/ip4/6.6.6.6/tcp/1"),
        lambda g: g.update(chain_id="other"),
        lambda g: g["contracts"].update(surveillance={}),
    ):
        changed = copy.deepcopy(genesis)
        change(changed)
        assert compute_chain_hash(changed) != compute_chain_hash(genesis)
        with pytest.raises(GenesisError, match="signature of member 0"):
            check_genesis(changed)
