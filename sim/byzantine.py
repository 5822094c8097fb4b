"""Byzantine behaviours: what a faulty replica does to the messages it sends.

The faulty replica runs the honest core underneath, so it keeps up with the
protocol, and an `Adversary` rewrites its outgoing traffic. It signs only with
its own key: it cannot forge another member's signature, as in the real world.
"""

from __future__ import annotations

import dataclasses
import random

from consensus.config import ProtocolConfig
from consensus.messages import (
    Commit,
    Message,
    Prepare,
    PrePrepare,
    decode_message,
    encode_message,
)
from consensus.signer import Signer
from ledger.errors import InvalidEncoding

MAX_HISTORY = 256
LIE_MS = 3_600_000


class Adversary:
    def __init__(
        self,
        me: int,
        behaviours: frozenset[str],
        cfg: ProtocolConfig,
        signer: Signer,
        rng: random.Random,
    ):
        self.me, self.n, self.behaviours, self.rng = me, cfg.n, behaviours, rng
        self.suite, self.signer = cfg.suite, signer
        self.history: list[bytes] = []

    def observe(self, data: bytes) -> None:
        """Remember traffic addressed to us, to replay later."""
        if "replay" in self.behaviours and len(self.history) < MAX_HISTORY:
            self.history.append(data)

    def transform(self, dst: int, data: bytes) -> list[bytes]:
        if "silent" in self.behaviours:
            return []
        message = _decode(data)
        if "lie_time" in self.behaviours and isinstance(message, PrePrepare):
            message = self._lie_about_time(message)  # the same lie to every peer
            data = encode_message(message)
        out = [data]
        if "equivocate" in self.behaviours and message is not None:
            out = [self._equivocate(dst, message)]
        is_vote = isinstance(message, Prepare | Commit)
        if "unknown_digest" in self.behaviours and is_vote and self.rng.random() < 0.5:
            assert isinstance(message, Prepare | Commit)
            out = [self._resign(dataclasses.replace(message, digest=self.rng.randbytes(32)))]
        if "forge" in self.behaviours and message is not None and self.rng.random() < 0.3:
            out.append(self._forge(message))
        if "mutate" in self.behaviours and self.rng.random() < 0.3:
            out.append(self._mutate(data))
        if "replay" in self.behaviours:
            self.history.append(data)
            if self.rng.random() < 0.3:
                out.append(self.rng.choice(self.history))
            del self.history[:-MAX_HISTORY]
        return out

    def _equivocate(self, dst: int, message: Message) -> bytes:
        """Tell odd-numbered peers something else than even-numbered ones."""
        if dst % 2 == 0:
            return encode_message(message)
        if isinstance(message, PrePrepare):
            proposal = dataclasses.replace(
                message.proposal, timestamp_ms=message.proposal.timestamp_ms + 1
            )
            digest = proposal.digest(self.suite)
            return self._resign(dataclasses.replace(message, proposal=proposal, digest=digest))
        if isinstance(message, Prepare | Commit):
            return self._resign(dataclasses.replace(message, digest=self.rng.randbytes(32)))
        return encode_message(message)

    def _lie_about_time(self, pp: PrePrepare) -> PrePrepare:
        """Stamp its own proposals an hour late or early (alerts, deadlines and
        reminders are decided from block time)."""
        if pp.sender != self.me:
            return pp
        shift = LIE_MS if pp.seq % 2 else -LIE_MS
        proposal = dataclasses.replace(pp.proposal, timestamp_ms=pp.proposal.timestamp_ms + shift)
        lied = dataclasses.replace(pp, proposal=proposal, digest=proposal.digest(self.suite))
        return dataclasses.replace(lied, signature=self.signer.sign(lied.signing_bytes()))

    def _forge(self, message: Message) -> bytes:
        """Claim to be someone else, or sign with garbage."""
        if self.rng.random() < 0.5:
            other = self.rng.choice([i for i in range(self.n) if i != self.me])
            return encode_message(dataclasses.replace(message, sender=other))
        return encode_message(dataclasses.replace(message, signature=self.rng.randbytes(32)))

    def _mutate(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 3)):
            buf[self.rng.randrange(len(buf))] ^= 1 << self.rng.randrange(8)
        return bytes(buf)

    def _resign(self, message: Message) -> bytes:
        signed = dataclasses.replace(message, signature=self.signer.sign(message.signing_bytes()))
        return encode_message(signed)


def _decode(data: bytes) -> Message | None:
    try:
        return decode_message(data)
    except InvalidEncoding:
        return None
