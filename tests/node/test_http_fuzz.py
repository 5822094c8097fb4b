"""Arbitrary bytes, split at arbitrary points, against the HTTP server: it never answers
5xx, never crashes, never hands a handler a body over the limit, and what it parses
does not depend on how the bytes were split into reads."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import http_server
from node.http_server import HttpError, _Messages, serve_http
from node.web import Request, Response, json_response

LIMIT = 64
LINES = [
    b"GET / HTTP/1.1",
    b"POST /a?x=1&x=2 HTTP/1.1",
    b"GET /b HTTP/1.0",
    b"GET * HTTP/1.1",
    b"PUT /c%20d HTTP/1.1",
    b"GET /e HTTP/2.0",
    b"GET http://h/f HTTP/1.1",
    b"BREW / HTTP/1.1",
]
HEADERS = [
    b"Host: h",
    b"Host: h",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Expect: 100-continue",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Content-Length: 5",
    b"Content-Length: -1",
    b"X: a\nB: c",
    b"X: \x00",
    b" folded",
    b"Upgrade: h2c",
    b"Connection: upgrade",
    b"X-Long: " + b"v" * 40,
    b"Bad Name: x",
]
BODIES = [b"", b"hello", b"x" * 70, b"-FFFF\r\n", b"+1\r\nx\r\n", b"0x1\r\n", b"1_0\r\n"]


def build(line: bytes, headers: list[bytes], framing: str, body: bytes) -> bytes:
    """One request; `framing` makes its body framed right, chunked, or left as it is."""
    if framing == "length":
        headers = [*headers, b"Content-Length: %d" % len(body)]
    elif framing == "chunked":
        headers = [*headers, b"Transfer-Encoding: chunked"]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:]) if p)
        body += b"0\r\n\r\n"
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


REQUESTS = st.builds(
    build,
    st.sampled_from(LINES),
    st.lists(st.sampled_from(HEADERS), max_size=4).map(lambda hs: [b"Host: h", *hs]),
    st.sampled_from(["length", "length", "chunked", "raw"]),
    st.one_of(st.sampled_from(BODIES), st.binary(max_size=80)),
)


def corrupt(data: bytes, at: int, junk: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + junk + data[at:]


STREAMS = st.builds(
    corrupt,
    st.lists(REQUESTS, min_size=1, max_size=3).map(b"".join),
    st.integers(min_value=0),
    st.one_of(
        st.just(b""), st.just(b""), st.binary(max_size=4), st.sampled_from([b"\n", b"\r", b"\0"])
    ),
)


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return (data[a:b] for a, b in itertools.pairwise(points))


def parse(parts: Iterator[bytes]) -> tuple[list[tuple[str, str, bytes, bool]], int | None]:
    """What the server's parser makes of the parts: requests, then the refusal (if any)."""
    messages = _Messages(LIMIT)
    for part in parts:
        messages.feed(part)
        if messages.failure is not None:
            break
    found = [(r.method, r.path, r.body, r.keep_alive) for r in messages.ready]
    failure: HttpError | None = messages.failure
    return found, None if failure is None else failure.status


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(min_value=0), max_size=8))
def test_parsing_does_not_depend_on_the_split_and_stays_in_bounds(
    data: bytes, cuts: list[int]
) -> None:
    whole = parse(iter([data]))
    pieces = parse(split(data, cuts))
    assert pieces == whole
    requests, failure = whole
    assert all(len(body) <= LIMIT for _, _, body, _ in requests)
    assert failure is None or 400 <= failure < 500


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """A real server in a thread of its own, for the whole module."""
    seen: list[int] = []
    ready = threading.Event()
    port: list[int] = []
    stop: list[trio.CancelScope] = []
    token: list[trio.lowlevel.TrioToken] = []

    async def handler(request: Request) -> Response:
        seen.append(len(request.body))
        assert len(request.body) <= LIMIT
        return json_response({"n": len(request.body)})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            stop.append(nursery.cancel_scope)
            token.append(trio.lowlevel.current_trio_token())
            listeners = await nursery.start(serve_http, handler, "127.0.0.1", 0, LIMIT)
            port.append(listeners[0].socket.getsockname()[1])
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    old = http_server.REQUEST_TIMEOUT_S, http_server.LINGER_S
    http_server.REQUEST_TIMEOUT_S, http_server.LINGER_S = 2.0, 0.2
    thread.start()
    assert ready.wait(10)
    yield port[0]
    http_server.REQUEST_TIMEOUT_S, http_server.LINGER_S = old
    trio.from_thread.run_sync(stop[0].cancel, trio_token=token[0])
    thread.join(10)
    assert max(seen, default=0) <= LIMIT


def exchange(port: int, parts: Iterator[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for part in parts:
                sock.sendall(part)
            sock.shutdown(socket.SHUT_WR)  # the server sees the end: it answers and closes
        except OSError:
            pass  # it closed first, after refusing
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except OSError:
            pass
        return received


def statuses(raw: bytes) -> list[int]:
    return [
        int(line.split(b" ")[1]) for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")
    ]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(STREAMS, st.lists(st.integers(min_value=0), max_size=6))
def test_a_live_server_never_answers_5xx_and_keeps_serving(
    server_port: int, data: bytes, cuts: list[int]
) -> None:
    raw = exchange(server_port, split(data, cuts))
    assert all(status < 500 for status in statuses(raw)), raw[:300]
    after = exchange(
        server_port, iter([b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"])
    )
    assert statuses(after) == [200]
