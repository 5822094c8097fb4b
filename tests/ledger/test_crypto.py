"""Signature suites, including interoperability of `sm2` with gmssl."""

import pytest
from gmssl import func, sm3
from gmssl import sm2 as gmssl_sm2

from ledger.crypto import SUITES, get_suite

SUITE_NAMES = sorted(SUITES)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_sign_then_verify(name: str) -> None:
    suite = get_suite(name)
    keys = suite.keypair_from_seed(b"member-1")
    sig = suite.sign(keys.secret_key, b"reading")
    assert len(sig) == suite.signature_bytes and len(keys.public_key) == suite.public_key_bytes
    assert suite.verify(keys.public_key, b"reading", sig)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_verify_rejects_tampering_and_garbage(name: str) -> None:
    suite = get_suite(name)
    keys = suite.keypair_from_seed(b"member-1")
    other = suite.keypair_from_seed(b"member-2")
    sig = suite.sign(keys.secret_key, b"reading")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not suite.verify(keys.public_key, b"readinG", sig)
    assert not suite.verify(keys.public_key, b"reading", flipped)
    assert not suite.verify(other.public_key, b"reading", sig)
    assert not suite.verify(b"short", b"reading", sig)
    assert not suite.verify(keys.public_key, b"reading", b"")
    assert not suite.verify(b"\x04" + b"\xff" * (suite.public_key_bytes - 1), b"reading", sig)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_keys_from_seed_are_deterministic(name: str) -> None:
    suite = get_suite(name)
    assert suite.keypair_from_seed(b"s") == suite.keypair_from_seed(b"s")
    assert suite.keypair_from_seed(b"s") != suite.keypair_from_seed(b"t")


def test_unknown_suite_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="ed25519"):
        get_suite("rsa")


def test_sha256_vector() -> None:
    assert get_suite("ed25519").hash(b"abc").hex().startswith("ba7816bf8f01cfea")


def test_sm3_matches_gmssl_and_the_standard_vector() -> None:
    ours = get_suite("sm2").hash(b"abc").hex()
    # GB/T 32905-2016 example 1
    assert ours == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert ours == sm3.sm3_hash(func.bytes_to_list(b"abc"))


def _gmssl(keys_secret: bytes, keys_public: bytes) -> gmssl_sm2.CryptSM2:
    return gmssl_sm2.CryptSM2(private_key=keys_secret.hex(), public_key=keys_public[1:].hex())


@pytest.mark.parametrize("message", [b"", b"abc", b"meter 42: 123456 Wh" * 10])
def test_sm2_signatures_verify_in_gmssl(message: bytes) -> None:
    suite = get_suite("sm2")
    keys = suite.keypair_from_seed(b"meter")
    sig = suite.sign(keys.secret_key, message)
    assert _gmssl(keys.secret_key, keys.public_key).verify_with_sm3(sig.hex(), message)


@pytest.mark.parametrize("message", [b"abc", b"verification record"])
def test_gmssl_signatures_verify_in_ours(message: bytes) -> None:
    suite = get_suite("sm2")
    keys = suite.keypair_from_seed(b"authority")
    sig_hex = _gmssl(keys.secret_key, keys.public_key).sign_with_sm3(message)
    assert suite.verify(keys.public_key, message, bytes.fromhex(sig_hex))
    assert not suite.verify(keys.public_key, message + b"!", bytes.fromhex(sig_hex))
