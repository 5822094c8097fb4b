"""Fast stand-ins for signatures, for simulation only.

A member's "signature" is a keyed BLAKE2b MAC under a secret derived from the
run's seed; verifying recomputes it. An adversary in the simulation is only
given its own secrets, so it can forge no one else's signature, which is the
property the protocol relies on. Real suites (`--suite ed25519|sm2`) can be
used instead at a fraction of the speed.
"""

from __future__ import annotations

import hashlib

from consensus.config import ProtocolConfig
from ledger.tx import chain_tag
from ledger.types import Transaction


def member_secret(seed: int, member: int) -> bytes:
    return hashlib.sha256(b"sim-member" + seed.to_bytes(8, "big") + bytes([member])).digest()


class MacSigner:
    """Signs as member `me`; knows every member's secret in order to verify."""

    def __init__(self, secrets: tuple[bytes, ...], me: int):
        self._secrets, self._me = secrets, me

    def sign(self, message: bytes) -> bytes:
        return _mac(self._secrets[self._me], message)

    def verify(self, member: int, message: bytes, signature: bytes) -> bool:
        if not 0 <= member < len(self._secrets):
            return False
        return signature == _mac(self._secrets[member], message)

    def learn_members(self, members: tuple[bytes, ...]) -> None:
        """Every future member's secret is derived from the seed: nothing to learn."""


def _mac(key: bytes, message: bytes) -> bytes:
    return hashlib.blake2b(message, key=key, digest_size=32).digest()


SIM_CHAIN = ProtocolConfig.genesis_hash  # the simulated network's chain hash (its default)


def client_signature(tx: Transaction) -> bytes:
    """The sim's client 'signature': 64 bytes bound to the sender, chain and content."""
    data = tx.signing_bytes(SIM_CHAIN)
    return hashlib.blake2b(data, key=tx.sender[:32], digest_size=64).digest()


class MacTxVerifier:
    def is_valid(self, tx: Transaction) -> bool:
        return tx.signature == client_signature(tx)


def make_client_tx(client: int, seq: int, payload: bytes) -> Transaction:
    sender = hashlib.sha256(b"sim-client" + client.to_bytes(4, "big")).digest()
    tag = chain_tag(SIM_CHAIN)
    unsigned = Transaction(sender, seq, "sim", payload, b"", tag)
    return Transaction(sender, seq, "sim", payload, client_signature(unsigned), tag)
