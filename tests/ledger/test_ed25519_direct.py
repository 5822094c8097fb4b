"""ed25519 verification through libsodium's detached call accepts exactly what PyNaCl's
VerifyKey accepts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import Ed25519Suite, get_suite
from tests.factories import agreed_verdict, check_valid_and_flipped

SUITE = get_suite("ed25519")
PYNACL = Ed25519Suite(use_sodium_direct=False)
KEYS = SUITE.keypair_from_seed(b"vehicle-3")
# the order of the ed25519 group: S >= L is not canonical and must be refused
ORDER = 2**252 + 27742317777372353535851937790883648493


def both(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return agreed_verdict(SUITE, PYNACL, public_key, message, signature)


def test_the_direct_call_is_what_verifies_here() -> None:
    assert isinstance(SUITE, Ed25519Suite) and SUITE.verify_detached is not None
    assert PYNACL.verify_detached is None


@settings(max_examples=80, deadline=None)
@given(message=st.binary(max_size=600), flip=st.integers(min_value=0, max_value=511))
def test_both_accept_valid_and_refuse_flipped_signatures(message: bytes, flip: int) -> None:
    check_valid_and_flipped(SUITE, PYNACL, KEYS, message, flip)
    signature = SUITE.sign(KEYS.secret_key, message)
    flipped = bytearray(signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not both(KEYS.public_key, message, flipped)  # not bytes: still no raise


def test_both_refuse_a_non_canonical_s() -> None:
    signature = SUITE.sign(KEYS.secret_key, b"refuel")
    s = int.from_bytes(signature[32:], "little") + ORDER  # the same point, S not reduced
    malleated = signature[:32] + s.to_bytes(32, "little")
    assert not both(KEYS.public_key, b"refuel", malleated)


def test_both_refuse_wrong_lengths_and_small_order_keys() -> None:
    signature = SUITE.sign(KEYS.secret_key, b"refuel")
    assert not both(KEYS.public_key[:31], b"refuel", signature)
    assert not both(KEYS.public_key, b"refuel", signature[:63])
    assert not both(b"\x00" * 32, b"refuel", signature)  # small order (and no such key)
    assert not both(b"\x01" + b"\x00" * 31, b"refuel", signature)  # the identity point


def test_a_memoryview_message_verifies_like_bytes() -> None:
    signature = SUITE.sign(KEYS.secret_key, b"refuel")
    assert both(KEYS.public_key, memoryview(b"refuel"), signature)
