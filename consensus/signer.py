"""The injected signing interface: the core never touches key material directly."""

from __future__ import annotations

from typing import Protocol

from ledger.crypto import SignatureSuite
from ledger.types import Transaction, is_valid_tx_signature


class Signer(Protocol):
    """Signs for this replica and verifies any member's signature."""

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, member: int, message: bytes, signature: bytes) -> bool: ...

    def learn_members(self, members: tuple[bytes, ...]) -> None:
        """The roster grew (ledger.membership): `members[i]` is index i's key."""


class TxVerifier(Protocol):
    """Checks a client transaction (signature, and in the node a cache by hash)."""

    def is_valid(self, tx: Transaction) -> bool: ...


class SuiteSigner:
    """Signatures bound to one chain: the chain hash (the genesis draft's hash) is
    prefixed to every signed message, so a vote or certificate of one network never
    verifies on another, even where the same key is a member of both."""

    def __init__(
        self,
        suite: SignatureSuite,
        members: tuple[bytes, ...],
        secret_key: bytes,
        chain_hash: bytes,
    ):
        self._suite, self._members, self._secret_key = suite, members, secret_key
        self._chain = chain_hash

    def sign(self, message: bytes) -> bytes:
        return self._suite.sign(self._secret_key, self._chain + message)

    def verify(self, member: int, message: bytes, signature: bytes) -> bool:
        if not 0 <= member < len(self._members):
            return False
        return self._suite.verify(self._members[member], self._chain + message, signature)

    def learn_members(self, members: tuple[bytes, ...]) -> None:
        if members[: len(self._members)] != self._members:
            raise ValueError("the roster only grows: known indices keep their keys")
        self._members = members


class SuiteTxVerifier:
    def __init__(self, suite: SignatureSuite, chain_hash: bytes):
        self._suite, self._chain = suite, chain_hash

    def is_valid(self, tx: Transaction) -> bool:
        return is_valid_tx_signature(self._suite, tx, self._chain)
