"""Operator tokens and the per-address request rate, without a network."""

from __future__ import annotations

from node.auth import MAX_TOKEN_TTL_S, RateLimiter, check_token, make_token
from tests.factories import CHAIN, SUITE, member_keys

KEYS = member_keys(4)
NOW = 1_800_000_000


def check(token: str, me: int = 1, key_of: int = 1, chain: bytes = CHAIN) -> str | None:
    return check_token(SUITE, KEYS[key_of].public_key, chain, me, token, NOW)


def test_a_token_works_only_for_its_member_chain_and_time() -> None:
    token = make_token(SUITE, KEYS[1], CHAIN, 1, NOW + 60)
    assert check(token) is None
    assert "member 1; this node is member 2" in (check(token, me=2, key_of=2) or "")
    assert "does not verify" in (check(token, chain=b"\x01" * 32) or "")
    assert "expired" in (check(make_token(SUITE, KEYS[1], CHAIN, 1, NOW - 1)) or "")
    too_long = make_token(SUITE, KEYS[1], CHAIN, 1, NOW + MAX_TOKEN_TTL_S + 60)
    assert "longer" in (check(too_long) or "")
    forged = make_token(SUITE, KEYS[2], CHAIN, 1, NOW + 60)  # member 2's key claims member 1
    assert "does not verify" in (check(forged) or "")
    for junk in ("", "!!!", "AAAA", token[:-4]):
        assert check(junk) is not None


def test_the_rate_limit_allows_a_burst_then_the_rate_per_address() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(12)] == [True] * 10 + [False] * 2
    assert limiter.allow("b")  # another address has its own bucket
    now[0] += 0.5  # half a second: five more
    assert [limiter.allow("a") for _ in range(6)] == [True] * 5 + [False]
