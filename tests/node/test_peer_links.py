"""The link layer under the transport: coalesced writes, and the `written`
events that let a node answer a client only once its forward left the process."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from node.transport import CHANNEL_TX, FrameReader, HandlerBug, PeerLinks, Write, encode_frame


class FakeLinks(PeerLinks):
    """Links whose connections are lists; the first `failures` dials fail."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(0, 2, lambda *_: None, lambda *_: None)
        self.failures = failures
        self.writes: list[bytes] = []
        self.gate = trio.Event()  # writes block until set

    async def _dial(self, member: int) -> Write:
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        return self._write

    async def _write(self, data: bytes) -> None:
        await self.gate.wait()
        self.writes.append(data)


def frames(links: FakeLinks) -> list[tuple[int, bytes]]:
    return FrameReader().feed(b"".join(links.writes))


def test_written_is_set_once_the_frame_is_written_not_before() -> None:
    links = FakeLinks()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(links._serve_writers)
            first, second = trio.Event(), trio.Event()
            links.send(1, CHANNEL_TX, b"a", first)
            links.send(1, CHANNEL_TX, b"b", second)
            links.send(1, CHANNEL_TX, b"c")  # consensus frames carry no event
            await trio.testing.wait_all_tasks_blocked()
            assert not first.is_set() and links.is_up(1)
            links.gate.set()
            await trio.testing.wait_all_tasks_blocked()
            assert first.is_set() and second.is_set()
            nursery.cancel_scope.cancel()

    trio.run(run)
    assert frames(links) == [(CHANNEL_TX, b"a"), (CHANNEL_TX, b"b"), (CHANNEL_TX, b"c")]


def test_frames_wait_while_the_peer_is_down_and_go_once_it_is_up() -> None:
    links = FakeLinks(failures=2)
    links.gate.set()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(links._serve_writers)
            written = trio.Event()
            links.send(1, CHANNEL_TX, b"x", written)
            with trio.fail_after(5):  # two redials with backoff: 0.1 s, then 0.2 s
                await written.wait()
            nursery.cancel_scope.cancel()

    trio.run(run)
    assert frames(links) == [(CHANNEL_TX, b"x")]


def test_a_frame_lost_to_an_injected_fault_counts_as_written() -> None:
    links = FakeLinks()
    links.faults.drop_to = {1}

    async def run() -> None:
        written = trio.Event()
        links.send(1, CHANNEL_TX, b"x", written)
        assert written.is_set()  # a real partition loses frames after the socket took them

    trio.run(run)
    assert links.writes == []


def test_a_frame_handler_that_raises_is_reported_as_our_bug_not_the_peers() -> None:
    def broken(member: int, channel: int, payload: bytes) -> None:
        raise KeyError("a bug of ours")

    links = PeerLinks(0, 2, broken, lambda *_: None)
    data = [encode_frame(CHANNEL_TX, b"x"), b""]

    async def read() -> bytes:
        return data.pop(0)

    async def reset() -> None:
        raise AssertionError("a well-formed frame must not reset the stream")

    with pytest.raises(HandlerBug) as raised:
        trio.run(links._read_frames, 1, read, reset)
    assert raised.value.member == 1 and isinstance(raised.value.__cause__, KeyError)
