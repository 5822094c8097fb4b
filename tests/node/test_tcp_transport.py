"""The plain-TCP transport on loopback: frames reach the right member, impostors do not."""

from __future__ import annotations

import contextlib
import struct

import pytest
import trio

from node import tcp_transport
from node.tcp_transport import HELLO, NONCE_BYTES, TcpTransport, parse_tcp_address
from node.testnet import free_port
from tests.factories import signers

GENESIS_HASH = b"\x07" * 32


def _network(n: int) -> tuple[list[TcpTransport], list[tuple[int, int, int, bytes]], list[str]]:
    """n transports; frames land in `received` as (to, from, channel, payload)."""
    taken: set[int] = set()
    ports = []
    for _ in range(n):
        ports.append(free_port(taken))
        taken.add(ports[-1])
    addresses = [f"/ip4/127.0.0.1/tcp/{p}" for p in ports]
    received: list[tuple[int, int, int, bytes]] = []
    rejected: list[str] = []
    keys = signers(n)

    def transport(i: int) -> TcpTransport:
        def on_frame(member: int, channel: int, payload: bytes) -> None:
            received.append((i, member, channel, payload))

        def on_reject(reason: str, member: int | None) -> None:
            rejected.append(reason)

        return TcpTransport(i, keys[i], GENESIS_HASH, addresses[i], addresses, on_frame, on_reject)

    return [transport(i) for i in range(n)], received, rejected


async def _until(condition: object, timeout_s: float = 10.0) -> None:
    with trio.fail_after(timeout_s):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)


def test_frames_reach_the_member_they_are_sent_to_in_order() -> None:
    async def main() -> None:
        nodes, received, rejected = _network(3)
        async with trio.open_nursery() as nursery:
            for node in nodes:
                await nursery.start(node.run)
            for seq in range(50):
                nodes[0].send(1, 0, b"a%d" % seq)
            nodes[2].send(1, 1, b"x" * 300_000)  # larger than one read
            nodes[1].send(0, 0, b"back")
            await _until(lambda: len(received) == 52)
            await _until(lambda: all(n.connected() == 2 for n in nodes))
            nursery.cancel_scope.cancel()
        from_0 = [p for to, member, _, p in received if (to, member) == (1, 0)]
        assert from_0 == [b"a%d" % seq for seq in range(50)]
        assert (1, 2, 1, b"x" * 300_000) in received
        assert (0, 1, 0, b"back") in received
        assert rejected == []

    trio.run(main)


def test_a_dialer_without_the_member_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_transport, "HANDSHAKE_TIMEOUT_S", 0.5)

    async def impostor(port: int, claim: int, signature: bytes) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        hello = await tcp_transport._read_exactly(stream, len(HELLO) + NONCE_BYTES)
        assert hello.startswith(HELLO)
        await stream.send_all(struct.pack(">HH", claim, len(signature)) + signature + b"\x00" * 9)

    async def main() -> None:
        nodes, received, rejected = _network(2)
        port = nodes[0].listen[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(nodes[0].run)
            await impostor(port, 1, b"\x01" * 64)  # claims member 1, signature not its own
            await impostor(port, 0, b"\x01" * 64)  # claims to be the listener itself
            await impostor(port, 1, b"\x01" * 500)  # oversized signature
            silent = await trio.open_tcp_stream("127.0.0.1", port)  # never answers
            await _until(lambda: len(rejected) == 4)
            await silent.aclose()
            nursery.cancel_scope.cancel()
        assert rejected == ["unknown_peer"] * 4
        assert received == []

    trio.run(main)


@pytest.mark.parametrize(
    "address",
    ["/ip4/127.0.0.1/udp/4000", "/dns/example.org/tcp/4000", "/ip4/127.0.0.1/tcp/0", "nonsense"],
)
def test_addresses_other_than_ip_and_tcp_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        parse_tcp_address(address)


def test_a_flood_of_silent_dialers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_transport, "MAX_HANDSHAKES", 3)
    monkeypatch.setattr(tcp_transport, "HANDSHAKE_TIMEOUT_S", 1.0)

    async def main() -> None:
        nodes, received, rejected = _network(2)
        port = nodes[0].listen[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(nodes[0].run)
            silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
            await _until(lambda: nodes[0].handshaking == 3)
            extra = await trio.open_tcp_stream("127.0.0.1", port)
            await _until(lambda: rejected == ["too_many_handshakes"])
            with contextlib.suppress(trio.BrokenResourceError):  # a reset is a close too
                assert await extra.receive_some(100) == b""  # closed, no challenge sent
            await _until(lambda: nodes[0].handshaking == 0)  # the silent ones time out
            await nursery.start(nodes[1].run)  # a member still gets in afterwards
            nodes[1].send(0, 0, b"hello")
            await _until(lambda: received == [(0, 1, 0, b"hello")])
            for stream in [*silent, extra]:
                await stream.aclose()
            nursery.cancel_scope.cancel()
        assert rejected.count("unknown_peer") == 3

    trio.run(main)
