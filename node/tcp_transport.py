"""A second transport: plain TCP on trio with a signed handshake (no py-libp2p).

It exists to measure what py-libp2p costs (docs/performance.md) behind the same
interface, and it is chosen with `[p2p] transport = "tcp"`. It keeps the frames, the
per-peer writer with coalescing, the fault rules and the inbound loop of
`node.transport.PeerLinks`, and replaces Noise and Yamux with:

- one TCP connection per direction and peer (the dialer writes, the listener reads);
- a handshake in which the listener sends a fresh 32-byte nonce and the dialer answers
  with its member index and its consensus-key signature over
  (domain, genesis hash, nonce, dialer, listener). Only a member holding its key gets
  its frames attributed to it.

The trade-off, against libp2p's Noise: nothing is encrypted and frames after the
handshake carry no per-frame MAC. Confidentiality does not matter here (members
replicate a public ledger), and every consensus message is signed by its sender, so
an on-path attacker can delay, drop or replay frames (which PBFT tolerates and the
replica refuses as duplicates) but cannot forge a vote. Run it inside a VPN or a
trusted network if that is not enough.
"""

from __future__ import annotations

import logging
import secrets
import struct
from typing import Any

import trio

from consensus.signer import Signer
from ledger.encoding import encode
from node.transport import FrameHandler, PeerLinks, RejectHandler, Write

log = logging.getLogger("metroledger.transport")
HELLO = b"MLTCP/1\n"
NONCE_BYTES = 32
MAX_SIGNATURE_BYTES = 128
HANDSHAKE_TIMEOUT_S = 5.0
MAX_HANDSHAKES = 64  # unauthenticated connections at once; members need n - 1
READ_BYTES = 1 << 16


def parse_tcp_address(address: str) -> tuple[str, int]:
    """(host, port) of a multiaddr /ip4/H/tcp/P or /ip6/H/tcp/P; ValueError otherwise."""
    parts = address.split("/")
    if len(parts) != 5 or parts[0] or parts[1] not in ("ip4", "ip6") or parts[3] != "tcp":
        raise ValueError(f"expected /ip4/HOST/tcp/PORT or /ip6/HOST/tcp/PORT, got {address!r}")
    port = int(parts[4])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range in {address!r}")
    return parts[2], port


def handshake_bytes(genesis_hash: bytes, nonce: bytes, dialer: int, listener: int) -> bytes:
    return encode(["metroledger/tcp-handshake/v1", genesis_hash, nonce, dialer, listener])


class TcpTransport(PeerLinks):
    def __init__(
        self,
        me: int,
        signer: Signer,
        genesis_hash: bytes,
        listen: str,
        addresses: list[str],  # multiaddr by member index
        on_frame: FrameHandler,
        on_reject: RejectHandler,
    ):
        super().__init__(me, len(addresses), on_frame, on_reject)
        self.signer, self.genesis_hash = signer, genesis_hash
        self.listen = parse_tcp_address(listen)
        self.addresses = [parse_tcp_address(a) for a in addresses]
        self.handshaking = 0  # connections not yet authenticated

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        host, port = self.listen
        listeners = await trio.open_tcp_listeners(port, host=host)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle_connection, listeners)
            await self._serve_writers(task_status)

    async def _dial(self, member: int) -> Write:
        host, port = self.addresses[member]
        stream = await trio.open_tcp_stream(host, port)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                hello = await _read_exactly(stream, len(HELLO) + NONCE_BYTES)
                if hello[: len(HELLO)] != HELLO:
                    raise ConnectionError("not a metroledger tcp listener")
                nonce = hello[len(HELLO) :]
                signature = self.signer.sign(
                    handshake_bytes(self.genesis_hash, nonce, self.me, member)
                )
                await stream.send_all(struct.pack(">HH", self.me, len(signature)) + signature)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream.send_all

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        """Authenticate the dialer, then read its frames; never let an exception escape."""
        if self.handshaking >= MAX_HANDSHAKES:  # a flood of silent dialers holds nothing
            self.on_reject("too_many_handshakes", None)
            await trio.aclose_forcefully(stream)
            return
        try:
            self.handshaking += 1
            try:
                member = await self._authenticate(stream)
            finally:
                self.handshaking -= 1
            if member is None:  # closed in `finally`
                self.on_reject("unknown_peer", None)
                return
            await self._read_frames(member, lambda: stream.receive_some(READ_BYTES), stream.aclose)
        except trio.Cancelled:
            raise
        except Exception as exc:
            log.debug("inbound connection ended: %r", exc)
        finally:
            await trio.aclose_forcefully(stream)

    async def _authenticate(self, stream: trio.SocketStream) -> int | None:
        """The dialer's member index if it signed our fresh nonce with its key, else None."""
        member: int | None = None
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):  # a silent dialer holds nothing long
            member = await self._challenge(stream)
        return member

    async def _challenge(self, stream: trio.SocketStream) -> int | None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        await stream.send_all(HELLO + nonce)
        member, length = struct.unpack(">HH", await _read_exactly(stream, 4))
        if length > MAX_SIGNATURE_BYTES or member == self.me:
            return None
        signature = await _read_exactly(stream, length)
        message = handshake_bytes(self.genesis_hash, nonce, member, self.me)
        return int(member) if self.signer.verify(member, message, signature) else None


async def _read_exactly(stream: trio.SocketStream, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await stream.receive_some(count - len(data))
        if not chunk:
            raise ConnectionError("peer closed during the handshake")
        data += chunk
    return data
