"""Pluggable signature/hash suites.

`ed25519`: PyNaCl Ed25519 signatures, SHA-256 hashes. Verification calls libsodium's
`crypto_sign_verify_detached` in PyNaCl's own library by ctypes where it is exported
(`VerifyKey.verify` copies signature and message into a new buffer and holds the GIL
for about 8 of its 60 µs; the direct call holds it for about 1), else PyNaCl.
`sm2`: SM2 signatures (default user id "1234567812345678", signature r||s, public
key 04||x||y) and SM3 hashes through gmalglib's C code; interoperable with gmssl.
Verification goes through OpenSSL's libcrypto where it is there (`ledger.sm2_openssl`,
1.7 times as fast), else through gmalglib.

`verify` never raises for bad input from a peer: it returns False.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Protocol

import nacl._sodium
import nacl.exceptions
import nacl.signing
from gmalglib import sm2 as _sm2

from ledger import sm2_openssl

HASH_BYTES = 32


@dataclass(frozen=True)
class KeyPair:
    secret_key: bytes
    public_key: bytes


class SignatureSuite(Protocol):
    name: str
    public_key_bytes: int
    signature_bytes: int

    def hash(self, data: bytes) -> bytes: ...

    def keypair_from_seed(self, seed: bytes) -> KeyPair: ...

    def sign(self, secret_key: bytes, message: bytes) -> bytes: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


class Ed25519Suite:
    name = "ed25519"
    public_key_bytes = 32
    signature_bytes = 64

    def __init__(self, use_sodium_direct: bool = True):
        self.use_sodium_direct = use_sodium_direct

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def keypair_from_seed(self, seed: bytes) -> KeyPair:
        key = nacl.signing.SigningKey(hashlib.sha256(b"ed25519-seed" + seed).digest())
        return KeyPair(bytes(key), bytes(key.verify_key))

    def sign(self, secret_key: bytes, message: bytes) -> bytes:
        return _ed25519_signing_key(secret_key).sign(message).signature

    @cached_property
    def verify_detached(self) -> Callable[[bytes, bytes, int, bytes], int] | None:
        """Loaded at the first verification, not when this module is imported."""
        return load_verify_detached() if self.use_sodium_direct else None

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        if self.verify_detached is not None:
            if type(message) is not bytes:  # c_char_p takes bytes only
                message = bytes(message)
            return (
                self.verify_detached(bytes(signature), message, len(message), bytes(public_key))
                == 0
            )
        try:
            _ed25519_verify_key(public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            return False
        return True


def load_verify_detached() -> Callable[[bytes, bytes, int, bytes], int] | None:
    """libsodium's crypto_sign_verify_detached(sig, m, mlen, pk) from the library PyNaCl
    loaded (and initialised), or None where it is not exported or fails a probe."""
    try:
        function = ctypes.CDLL(nacl._sodium.__file__).crypto_sign_verify_detached
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    key = nacl.signing.SigningKey(bytes(range(32)))
    public_key, signature = bytes(key.verify_key), key.sign(b"probe").signature
    good = function(signature, b"probe", 5, public_key) == 0
    bad = function(signature, b"probf", 5, public_key) == 0
    return function if good and not bad else None


@lru_cache(maxsize=4096)
def _ed25519_verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(public_key)


# A gateway or a simulator signs for thousands of devices: deriving a key from its seed
# costs as much as a signature (a sixth of `oracle simulate`'s CPU with 64 entries)
@lru_cache(maxsize=65_536)
def _ed25519_signing_key(secret_key: bytes) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(secret_key)


class Sm2Suite:
    name = "sm2"
    public_key_bytes = 65
    signature_bytes = 64

    def __init__(self, use_openssl: bool = True):
        self.use_openssl = use_openssl

    @cached_property
    def openssl(self) -> sm2_openssl.OpenSslSm2 | None:
        """Loaded (and probed) at the first verification, not when this module is
        imported: ed25519 processes never need libcrypto."""
        return sm2_openssl.load() if self.use_openssl else None

    def hash(self, data: bytes) -> bytes:
        return sm2_openssl.sm3(data)

    def keypair_from_seed(self, seed: bytes) -> KeyPair:
        counter = 0
        while True:  # rejection sampling: almost every 32-byte value is a valid key
            candidate = self.hash(b"sm2-seed" + seed + counter.to_bytes(4, "big"))
            if _sm2.SM2.is_sk_valid(candidate):
                return KeyPair(candidate, bytes(_sm2.SM2.get_pk(candidate, _sm2.SM2_PCMODE_RAW)))
            counter += 1

    def sign(self, secret_key: bytes, message: bytes) -> bytes:
        return bytes(_sm2_signer(secret_key).sign(message))

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 65 or len(signature) != 64:
            return False
        if self.openssl is not None:
            return self.openssl.verify(public_key, message, signature)
        try:
            return bool(_sm2_verifier(public_key).verify(message, signature))
        except (ValueError, TypeError):
            return False


@lru_cache(maxsize=4096)
def _sm2_verifier(public_key: bytes) -> _sm2.SM2:
    return _sm2.SM2(pk=public_key)


@lru_cache(maxsize=64)
def _sm2_signer(secret_key: bytes) -> _sm2.SM2:
    return _sm2.SM2(sk=secret_key)


SUITES: dict[str, SignatureSuite] = {"ed25519": Ed25519Suite(), "sm2": Sm2Suite()}


def get_suite(name: str) -> SignatureSuite:
    """The suite called `name`; ValueError names the known ones otherwise."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown signature suite {name!r}; known: {sorted(SUITES)}") from None
