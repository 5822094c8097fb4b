"""Who may do what on the public API.

Signed readings authenticate themselves and public reads are open. Operator actions
need a credential bound to an on-ledger identity: a bearer token signed by the node's
own member key (the consensus key the genesis lists), for this chain, until an expiry.
The token names the member; a node takes only its own member's tokens, so the operator
of one organisation cannot act on another's node. Every client address also has a
request rate (token bucket); over it the answer is 429.
"""

from __future__ import annotations

import base64
import functools
import time
from collections import OrderedDict
from collections.abc import Callable

from ledger.crypto import KeyPair, SignatureSuite
from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from node.web import Handler, Request, Response, error

TOKEN_DOMAIN = "metroledger/operator-token/v1"
MAX_TOKEN_TTL_S = 30 * 24 * 3600
TRACKED_CLIENTS = 10_000  # client addresses whose request rate is tracked (LRU)


def make_token(
    suite: SignatureSuite, key: KeyPair, chain_hash: bytes, member: int, expires_s: int
) -> str:
    """An operator token for `member`'s node, valid until `expires_s` (Unix time)."""
    signature = suite.sign(key.secret_key, _signed_bytes(chain_hash, member, expires_s))
    raw = encode([TOKEN_DOMAIN, member, expires_s, signature])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_token(
    suite: SignatureSuite, member_key: bytes, chain_hash: bytes, me: int, token: str,
    now_s: float,
) -> str | None:  # fmt: skip
    """None if `token` lets its bearer act on node `me`, else why not."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        domain, member, expires_s, signature = decode(raw)
    except (ValueError, InvalidEncoding, TypeError):
        return "not an operator token"
    if domain != TOKEN_DOMAIN or not isinstance(member, int) or not isinstance(expires_s, int):
        return "not an operator token"
    if member != me:
        return f"a token of member {member}; this node is member {me}"
    if expires_s < now_s:
        return "the token has expired"
    if expires_s > now_s + MAX_TOKEN_TTL_S:
        return f"the token lives longer than {MAX_TOKEN_TTL_S} s"
    if not isinstance(signature, bytes):
        return "not an operator token"
    if not suite.verify(member_key, _signed_bytes(chain_hash, member, expires_s), signature):
        return "the token's signature does not verify for this chain and member"
    return None


def _signed_bytes(chain_hash: bytes, member: int, expires_s: int) -> bytes:
    return chain_hash + encode([TOKEN_DOMAIN, member, expires_s])


def require_operator(handler: Handler, check: Callable[[str], str | None]) -> Handler:
    """`handler` for requests bearing a valid operator token: 401 without one, 403 with
    one that does not authorise this node."""

    @functools.wraps(handler)  # its name is the route's OpenAPI operationId
    async def guarded(request: Request) -> Response:
        header = request.header(b"authorization")
        scheme, _, token = (header or b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, "unauthorized", "operator endpoint: send Authorization: "
                         "Bearer <token> (metroledger operator token)",
                         (("www-authenticate", 'Bearer realm="metroledger"'),))  # fmt: skip
        problem = check(token.strip())
        if problem is not None:
            return error(403, "forbidden", problem)
        return await handler(request)

    return guarded


class RateLimiter:
    """A token bucket per client address: `rate_per_s` requests a second, bursts of as
    many; the addresses seen last are tracked (an LRU of TRACKED_CLIENTS)."""

    def __init__(self, rate_per_s: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.clock = float(rate_per_s), clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def allow(self, client: str) -> bool:
        now = self.clock()
        tokens, at = self.buckets.pop(client, (self.rate, now))
        tokens = min(self.rate, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > TRACKED_CLIENTS:
            self.buckets.popitem(last=False)
        return allowed


def rate_limited(handler: Handler, limiter: RateLimiter, refused: Callable[[], None]) -> Handler:
    async def limited(request: Request) -> Response:
        if not limiter.allow(request.peer):
            refused()
            return error(429, "rate_limited", "too many requests from this address",
                         (("retry-after", "1"),))  # fmt: skip
        return await handler(request)

    return limited
