"""Builders of valid objects for tests."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from consensus.config import ProtocolConfig
from consensus.messages import (
    BlockRequest,
    BlockResponse,
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
)
from consensus.signer import SuiteSigner
from ledger.crypto import KeyPair, SignatureSuite, get_suite
from ledger.types import (
    Block,
    BlockHeader,
    CommitCertificate,
    Proposal,
    Transaction,
    compute_tx_root,
    sign_transaction,
)

SUITE = get_suite("ed25519")
CHAIN = ProtocolConfig.genesis_hash  # the chain hash of protocol_config()'s networks


def member_keys(n: int) -> list[KeyPair]:
    return [SUITE.keypair_from_seed(f"member-{i}".encode()) for i in range(n)]


def protocol_config(n: int = 4, **overrides: object) -> ProtocolConfig:
    members = tuple(k.public_key for k in member_keys(n))
    settings: dict[str, object] = {"checkpoint_interval": 4, "watermark_window": 8}
    settings.update(overrides)
    return ProtocolConfig(members=members, **settings)  # type: ignore[arg-type]


def signers(n: int = 4) -> list[SuiteSigner]:
    keys = member_keys(n)
    members = tuple(k.public_key for k in keys)
    return [SuiteSigner(SUITE, members, k.secret_key, CHAIN) for k in keys]


def client_tx(
    client: int = 0, seq: int = 1, payload: bytes = b"reading", chain: bytes = CHAIN
) -> Transaction:
    keys = SUITE.keypair_from_seed(f"client-{client}".encode())
    return sign_transaction(SUITE, keys.secret_key, keys.public_key, seq, "test", payload, chain)


def proposal_for(height: int, txs: tuple[Transaction, ...], proposer: int = 0) -> Proposal:
    root = compute_tx_root(SUITE, txs)
    return Proposal(height, 1_000 + height, proposer, root, len(txs), 0, b"\x00" * 32)


M = TypeVar("M", bound=Message)


def signed(signer: SuiteSigner, message: M) -> M:
    return dataclasses.replace(message, signature=signer.sign(message.signing_bytes()))


def pre_prepare(
    view: int,
    seq: int,
    txs: tuple[Transaction, ...] = (),
    sender: int | None = None,
    timestamp_delta: int = 0,
) -> PrePrepare:
    n = 4
    sender = view % n if sender is None else sender
    proposal = proposal_for(seq, txs, sender)
    proposal = dataclasses.replace(proposal, timestamp_ms=proposal.timestamp_ms + timestamp_delta)
    pp = PrePrepare(view, seq, proposal.digest(SUITE), proposal, txs, sender)
    return signed(signers(n)[sender], pp)


def prepare(pp: PrePrepare, sender: int) -> Prepare:
    return signed(signers()[sender], Prepare(pp.view, pp.seq, pp.digest, sender))


def commit(pp: PrePrepare, sender: int) -> Commit:
    return signed(signers()[sender], Commit(pp.view, pp.seq, pp.digest, sender))


def checkpoint(seq: int, block_hash: bytes, sender: int) -> Checkpoint:
    return signed(signers()[sender], Checkpoint(seq, block_hash, sender))


def prepared_cert(pp: PrePrepare) -> PreparedCert:
    backups = [i for i in range(4) if i != pp.sender][:2]
    return PreparedCert(pp, tuple(prepare(pp, i) for i in backups))


def view_change(new_view: int, sender: int, prepared: tuple[PreparedCert, ...] = ()) -> ViewChange:
    vc = ViewChange(new_view, 0, b"\x00" * 32, (), prepared, sender)
    return signed(signers()[sender], vc)


def sample_block(height: int = 1, n_txs: int = 3) -> tuple[Block, CommitCertificate]:
    txs = tuple(client_tx(i, 1) for i in range(n_txs))
    proposal = proposal_for(height, txs)
    digest = proposal.digest(SUITE)
    votes = tuple(
        (c.sender, c.signature)
        for c in [signed(signers()[i], Commit(0, height, digest, i)) for i in range(3)]
    )
    return Block(BlockHeader(b"\x00" * 32, proposal), txs), CommitCertificate(
        0, height, digest, votes
    )


def every_message_kind() -> list[Message]:
    """One valid, signed message of every kind."""
    pp = pre_prepare(0, 1, (client_tx(),))
    block, cert = sample_block()
    vc = view_change(1, 2, (prepared_cert(pp),))
    return [
        pp,
        prepare(pp, 1),
        commit(pp, 2),
        checkpoint(4, b"\x11" * 32, 3),
        vc,
        signed(signers()[1], NewView(1, (vc,), (), 1)),
        signed(signers()[1], BlockRequest(1, 4, 1)),
        signed(signers()[2], BlockResponse(((block, cert),), 2)),
    ]


def agreed_verdict(
    ours: SignatureSuite, reference: SignatureSuite, key: bytes, message: bytes, signature: bytes
) -> bool:
    """The one answer two verifiers of a suite give; fails the test if they differ."""
    verdict = ours.verify(key, message, signature)
    assert verdict == reference.verify(key, message, signature), (key, signature)
    return verdict


def check_valid_and_flipped(
    ours: SignatureSuite, reference: SignatureSuite, keys: KeyPair, message: bytes, flip: int
) -> None:
    """Both verifiers accept a valid signature and refuse it with one bit flipped, or
    over another message."""
    signature = ours.sign(keys.secret_key, message)
    assert agreed_verdict(ours, reference, keys.public_key, message, signature)
    flipped = bytearray(signature)
    flipped[flip // 8] ^= 1 << (flip % 8)
    assert not agreed_verdict(ours, reference, keys.public_key, message, bytes(flipped))
    assert not agreed_verdict(ours, reference, keys.public_key, message + b"x", signature)


def ceremony_genesis(
    keys: list[KeyPair], chain_id: str = "test-chain", protocol: dict[str, int] | None = None
) -> dict[str, object]:
    """A genesis document made by the ceremony (cards, draft, every member's signature)."""
    from ledger.genesis import assemble, finalize, make_card, sign_draft

    cards = [
        make_card(
            "ed25519",
            k,
            f"org{i}",
            "nmi",
            f"peer{i}",
            f"/ip4/10.0.0.{i + 1}/tcp/4001",
            f"https://10.0.0.{i + 1}:8443",
        )
        for i, k in enumerate(keys)
    ]
    draft = assemble(cards, chain_id, protocol or {}, {})
    return finalize(draft, [sign_draft(draft, k) for k in keys])
