"""SM2 verification through OpenSSL accepts exactly what gmalglib accepts."""

from __future__ import annotations

import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import sm2_openssl
from ledger.crypto import Sm2Suite, get_suite
from tests.factories import agreed_verdict, check_valid_and_flipped

# the order of the SM2 group (GB/T 32918.5)
ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
SUITE = get_suite("sm2")
GMALGLIB = Sm2Suite(use_openssl=False)
KEYS = SUITE.keypair_from_seed(b"meter-7")


def both(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return agreed_verdict(SUITE, GMALGLIB, public_key, message, signature)


def test_openssl_is_what_verifies_here() -> None:
    assert isinstance(SUITE, Sm2Suite) and SUITE.openssl is not None


@settings(max_examples=50, deadline=None)
@given(message=st.binary(max_size=600), flip=st.integers(min_value=0, max_value=511))
def test_both_accept_valid_and_refuse_flipped_signatures(message: bytes, flip: int) -> None:
    check_valid_and_flipped(SUITE, GMALGLIB, KEYS, message, flip)


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, 1), (1, 0), (ORDER, 1), (1, ORDER), (ORDER + 1, 5), (2**256 - 1, 2**256 - 1)],
)
def test_both_refuse_out_of_range_r_and_s(r: int, s: int) -> None:
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not both(KEYS.public_key, b"reading", signature)


def test_both_refuse_keys_off_the_curve_or_compressed() -> None:
    signature = SUITE.sign(KEYS.secret_key, b"reading")
    x, y = KEYS.public_key[1:33], KEYS.public_key[33:]
    off_curve = b"\x04" + x + bytes([y[0] ^ 1]) + y[1:]
    compressed_prefix = b"\x02" + x + y
    for key in (off_curve, compressed_prefix, b"\x04" + b"\x00" * 64):
        assert not both(key, b"reading", signature)


def test_der_signature_is_minimal() -> None:
    high = b"\x80" + b"\x00" * 31  # a high bit needs a leading zero byte
    small = b"\x00" * 31 + b"\x07"  # leading zero bytes are dropped
    der = sm2_openssl.der_signature(high + small)
    assert der == b"\x30\x26" + b"\x02\x21\x00" + high + b"\x02\x01\x07"


def test_keys_evicted_from_the_cache_still_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = sm2_openssl.load()
    assert verifier is not None
    monkeypatch.setattr(sm2_openssl, "KEYS_KEPT", 2)
    pairs = [SUITE.keypair_from_seed(bytes([i])) for i in range(5)]
    signatures = [SUITE.sign(k.secret_key, b"m") for k in pairs]
    for _ in range(2):
        for keys, signature in zip(pairs, signatures, strict=True):
            assert verifier.verify(keys.public_key, b"m", signature)
            assert not verifier.verify(keys.public_key, b"n", signature)
    assert len(verifier.keys) == 2


def test_threads_verifying_while_keys_are_evicted_get_right_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = sm2_openssl.load()
    assert verifier is not None
    monkeypatch.setattr(sm2_openssl, "KEYS_KEPT", 3)
    pairs = [SUITE.keypair_from_seed(bytes([i])) for i in range(8)]
    signed = [(k.public_key, SUITE.sign(k.secret_key, b"m")) for k in pairs]
    wrong: list[int] = []

    def work(offset: int) -> None:
        for i in range(200):
            public_key, signature = signed[(i + offset) % len(signed)]
            if not verifier.verify(public_key, b"m", signature):
                wrong.append(i)
            if verifier.verify(public_key, b"n", signature):
                wrong.append(-i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: evict mid-verify
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == [] and len(verifier.keys) <= 3
