"""Peer-to-peer transport: the shared link layer and py-libp2p (trio, Noise, Yamux).

Each node dials every other member listed in genesis and keeps one long-lived
outbound stream per peer; a writer task per peer coalesces queued frames into
one write (py-libp2p sends ~160k small frames/s coalesced, ~1.6k/s one by one).
Inbound streams are accepted only from peer ids that genesis assigns to a
member. Frames are [u32 length][u8 channel][payload]. Nothing a peer sends can
raise out of a stream handler: py-libp2p would shut the host down.

py-libp2p is the default; `node.tcp_transport` is the second transport measured
against it behind the same interface (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import random
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.keys import KeyPair as P2PKeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

PROTOCOL = TProtocol("/metroledger/frames/1.0.0")
MAX_FRAME_BYTES = 32 * 1024 * 1024
COALESCE_BYTES = 1 << 20
QUEUE_FRAMES = 20_000
CHANNEL_CONSENSUS, CHANNEL_TX = 0, 1
FrameHandler = Callable[[int, int, bytes], None]  # (member, channel, payload)
RejectHandler = Callable[[str, int | None], None]  # (reason, member or None)
Write = Callable[[bytes], Awaitable[Any]]  # one outbound connection's write

log = logging.getLogger("metroledger.transport")
YAMUX_RELEASE_ON_READ = "PY_YAMUX_RELEASE_ON_READ"


class Transport(Protocol):
    """What the node needs from a transport, so another can be measured against it."""

    faults: FaultRules

    def send(
        self, member: int, channel: int, payload: bytes, written: trio.Event | None = None
    ) -> None: ...

    def connected(self) -> int: ...

    def is_up(self, member: int) -> bool: ...

    def add_members(self, members: list[tuple[str, str]]) -> None:
        """The roster grew: (peer id, address) by roster index, known ones unchanged."""

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None: ...


def new_libp2p_host(identity: P2PKeyPair) -> Any:
    """A py-libp2p host that speaks Noise only (no plaintext fallback) over Yamux."""
    noise = NoiseTransport(identity, noise_privkey=new_x25519_key_pair().private_key)
    return new_host(key_pair=identity, sec_opt={NOISE_PROTOCOL_ID: noise}, muxer_preference="YAMUX")


def encode_frame(channel: int, payload: bytes) -> bytes:
    return struct.pack(">IB", len(payload) + 1, channel) + payload


class FrameReader:
    """Split a byte stream into frames; refuses frames above the size limit."""

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES):
        self.buffer = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 4:
            (length,) = struct.unpack_from(">I", self.buffer)
            if length == 0 or length > self.max_bytes:
                raise ValueError(f"frame of {length} bytes")
            if len(self.buffer) < 4 + length:
                break
            frames.append((self.buffer[4], bytes(self.buffer[5 : 4 + length])))
            del self.buffer[: 4 + length]
        return frames


class HandlerBug(Exception):
    """Our own frame handler raised: a bug, never the peer's fault."""

    def __init__(self, member: int):
        super().__init__(f"frame handler raised on member {member}'s frame")
        self.member = member


@dataclass
class FaultRules:
    """Link faults this node imposes on what it sends (benchmarks and tests only): drop
    everything to some members (a partition), lose a share at random, delay with jitter."""

    drop_to: set[int] = field(default_factory=set)
    loss_pct: int = 0
    delay_ms: int = 0
    jitter_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def release_at(self, now: float) -> float:
        if not self.delay_ms:
            return now
        jitter = self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return now + max(0.0, self.delay_ms + jitter) / 1000

    def drops(self, member: int) -> bool:
        return member in self.drop_to or (
            self.loss_pct > 0 and self.rng.random() * 100 < self.loss_pct
        )


class PeerLinks:
    """What every transport shares: a bounded queue and a writer task per member that
    dials, coalesces queued frames into single writes and redials with backoff, the
    fault rules, and the inbound frame loop that never lets an exception escape."""

    def __init__(self, me: int, n_members: int, on_frame: FrameHandler, on_reject: RejectHandler):
        self.me, self.on_frame, self.on_reject = me, on_frame, on_reject
        self.queues = {
            i: trio.open_memory_channel[tuple[float, bytes, trio.Event | None]](QUEUE_FRAMES)
            for i in range(n_members)
            if i != me
        }
        self.up: set[int] = set()
        self.faults = FaultRules()
        self._writers: trio.Nursery | None = None

    def add_members(self, members: list[tuple[str, str]]) -> None:
        """Queues (and, once running, writers) for roster indices not seen yet."""
        for member in range(len(members)):
            if member != self.me and member not in self.queues:
                self.queues[member] = trio.open_memory_channel(QUEUE_FRAMES)
                if self._writers is not None:
                    self._writers.start_soon(self._writer, member)

    def send(
        self, member: int, channel: int, payload: bytes, written: trio.Event | None = None
    ) -> None:
        """Queue a frame for `member`; `written` is set once the frame is in the kernel's
        socket buffer (a crash of this process then no longer loses it), or at once if
        the fault layer drops it; never if the send queue is full or the connection
        fails (the waiting sender gives up at its own timeout)."""
        if self.faults.drops(member):
            if written is not None:  # an injected loss happens on the wire, after the
                written.set()  # socket buffer took the frame, as a real one would
            return
        try:
            release = self.faults.release_at(trio.current_time()) if self.faults.delay_ms else 0.0
            self.queues[member][0].send_nowait((release, encode_frame(channel, payload), written))
        except trio.WouldBlock:
            self.on_reject("send_queue_full", member)

    def connected(self) -> int:
        return len(self.up)

    def is_up(self, member: int) -> bool:
        return member in self.up

    async def _dial(self, member: int) -> Write:
        raise NotImplementedError

    async def _serve_writers(self, task_status: Any) -> None:
        """Start a writer per member, report started, then wait to be cancelled."""
        async with trio.open_nursery() as nursery:
            for member in self.queues:
                nursery.start_soon(self._writer, member)
            self._writers = nursery
            task_status.started()
            await trio.sleep_forever()

    async def _writer(self, member: int) -> None:
        """Dial, then coalesce queued frames into single writes; redial with backoff."""
        receive = self.queues[member][1]
        backoff_s = 0.1
        pending = b""
        written: list[trio.Event] = []
        while True:
            try:
                write = await self._dial(member)
                self.up.add(member)
                backoff_s = 0.1
                while True:
                    if not pending:
                        release, pending, done = await receive.receive()
                        written += [] if done is None else [done]
                        if release > trio.current_time():  # an injected link delay
                            await trio.sleep_until(release)
                    while len(pending) < COALESCE_BYTES:
                        try:
                            _, frame, done = receive.receive_nowait()
                        except trio.WouldBlock:
                            break
                        pending += frame
                        written += [] if done is None else [done]
                    await write(pending)
                    pending = b""
                    for done in written:
                        done.set()
                    written = []
            except trio.Cancelled:
                raise
            except Exception as exc:  # the peer is down or went away: retry
                was_up = member in self.up
                self.up.discard(member)
                log.log(  # a link lost is worth a warning; failed redials are not
                    logging.WARNING if was_up else logging.DEBUG,
                    "link to member %d down: %r; retrying in %.1fs", member, exc, backoff_s,
                )  # fmt: skip
                pending = b""  # consensus tolerates loss; stale frames would only be dropped
                written = []  # their senders stop waiting at their own timeout
                await trio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)

    async def _read_frames(
        self, member: int, read: Callable[[], Awaitable[bytes]], reset: Callable[[], Awaitable[Any]]
    ) -> None:
        """Deliver the frames an authenticated member sends until it closes."""
        reader = FrameReader()
        while True:
            data = await read()
            if not data:
                return
            try:
                frames = reader.feed(data)
            except ValueError:
                self.on_reject("oversize", member)
                await reset()
                return
            for channel, payload in frames:
                try:
                    self.on_frame(member, channel, payload)
                except Exception as exc:
                    raise HandlerBug(member) from exc


class Libp2pTransport(PeerLinks):
    def __init__(
        self,
        me: int,
        identity: P2PKeyPair,
        listen: str,
        members: list[tuple[str, str]],  # (peer id, address) by member index
        on_frame: FrameHandler,
        on_reject: RejectHandler,
    ):
        super().__init__(me, len(members), on_frame, on_reject)
        # py-libp2p's Yamux sends a WINDOW_UPDATE for every read by default; without it,
        # one per half window read (go-yamux's behaviour): 3.5 % less CPU per transaction
        # at 4,000 tx/s offered in alternating runs. Read at each use; a set value wins.
        os.environ.setdefault(YAMUX_RELEASE_ON_READ, "0")
        self.listen, self.members = listen, list(members)
        self.member_of = {peer_id: i for i, (peer_id, _) in enumerate(members)}
        self.host = new_libp2p_host(identity)
        self.host.set_stream_handler(PROTOCOL, self._handle_stream)

    def add_members(self, members: list[tuple[str, str]]) -> None:
        """Admitted members: dial them, and take their inbound streams."""
        for i in range(len(self.members), len(members)):
            self.members.append(members[i])
            self.member_of[members[i][0]] = i
        super().add_members(members)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with self.host.run([multiaddr.Multiaddr(self.listen)]):
            await self._serve_writers(task_status)

    async def _dial(self, member: int) -> Write:
        peer_id, address = self.members[member]
        info = PeerInfo(ID.from_base58(peer_id), [multiaddr.Multiaddr(address)])
        await self.host.connect(info)
        stream = await self.host.new_stream(info.peer_id, [PROTOCOL])
        write: Write = stream.write
        return write

    async def _handle_stream(self, stream: Any) -> None:
        """Read frames from one peer; never let an exception escape."""
        try:
            remote = str(stream.muxed_conn.peer_id)
            member = self.member_of.get(remote)
            if member is None or member == self.me:
                self.on_reject("unknown_peer", None)
                await stream.reset()
                return
            await self._read_frames(member, lambda: stream.read(65536), stream.reset)
        except trio.Cancelled:
            raise
        except HandlerBug as bug:  # ours, not the peer's: loud, but the host lives on
            log.error("a frame handler raised on member %d's frame (a bug)", bug.member,
                      exc_info=bug.__cause__)  # fmt: skip
            self.on_reject("internal_error", bug.member)
        except Exception as exc:  # the peer's stream failed or closed
            log.debug("inbound stream ended: %r", exc)
