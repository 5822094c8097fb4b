"""The node's HTTP/1.1 server (llhttp through httptools, our bounds): framing, keep-alive,
refusals, checked on real loopback sockets with raw bytes and with httpx as a client.
The defects a review found in the parser this one replaced each have a test here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio

from node import http_server
from node.http_server import serve_http
from node.web import Request, Response, json_response

LIMIT = 1000
SEEN: list[int] = []  # body sizes the handler was given


async def echo(request: Request) -> Response:
    """Answers with what it got; /stream answers in two parts; /boom raises."""
    SEEN.append(len(request.body))
    if request.path == "/boom":
        raise RuntimeError("boom")
    if request.path == "/stream":

        async def parts() -> AsyncIterator[bytes]:
            yield b"abc"
            yield b"def"

        return Response(200, stream=parts(), content_type="text/plain")
    if request.path == "/noted":  # a header whose value names a framing header
        return Response(200, b"12345", headers=(("x-note", "content-length: 99"),))
    data = {"method": request.method, "path": request.path, "query": request.query,
            "body": request.body.decode("latin-1")}  # fmt: skip
    return json_response(data, 201)


def served(test: Callable[[int], Awaitable[None]]) -> None:
    """Run `test(port)` against a server on a free loopback port, then stop it."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(serve_http, echo, "127.0.0.1", 0, LIMIT)
            with trio.fail_after(20):
                await test(listeners[0].socket.getsockname()[1])
            nursery.cancel_scope.cancel()

    SEEN.clear()
    trio.run(main)


async def exchange(port: int, *requests: bytes, quiet_s: float = 1) -> bytes:
    """Send the raw requests on one connection; everything read until the server closes
    (or `quiet_s` of silence)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    for request in requests:
        await stream.send_all(request)
    received = bytearray()
    with trio.move_on_after(quiet_s):
        await read_until_closed(stream, received)
    await stream.aclose()
    return bytes(received)


async def read_until_closed(stream: trio.abc.ReceiveStream, into: bytearray) -> bytes:
    """Append what arrives to `into` until the server closes; the caller bounds the time
    (what arrived stays in `into` if that time runs out)."""
    while data := await stream.receive_some(65536):
        into += data
    return bytes(into)


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split Content-Length framed responses."""
    out = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, raw[:length]))
        raw = raw[length:]
    return out


def test_keep_alive_carries_several_requests_and_bodies_arrive_whole() -> None:
    async def check(port: int) -> None:
        raw = await exchange(
            port,
            b"POST /v1/txs?x=1&x=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /v1/status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        (s1, h1, b1), (s2, h2, b2) = responses(raw)
        assert s2 == 201
        assert (s1, json.loads(b1)) == (
            201,
            {"method": "POST", "path": "/v1/txs", "query": {"x": "1"}, "body": "hello"},
        )
        assert "connection" not in h1 and h2["connection"] == "close"
        # a kept connection says when it will be closed if idle (clients that honour it
        # close first instead of racing the server's close with their next request)
        assert h1["keep-alive"] == f"timeout={int(http_server.IDLE_TIMEOUT_S)}"
        assert "keep-alive" not in h2
        assert json.loads(b2)["path"] == "/v1/status"

    served(check)


def test_chunked_bodies_and_expect_continue() -> None:
    async def check(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert await stream.receive_some(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send_all(b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: y\r\n\r\n")
        ((status, _, body),) = responses(await stream.receive_some(65536))
        assert status == 201 and json.loads(body)["body"] == "hello"
        await stream.aclose()
        # the body already sent with the head: no 100 Continue is owed (RFC 9110 10.1.1)
        raw = await exchange(port, b"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                             b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")  # fmt: skip
        assert responses(raw)[0][0] == 201

    served(check)


def test_a_streamed_answer_is_chunked_and_head_has_no_body() -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
        raw = await exchange(port, b"HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"content-length: " in head and body == b""

    served(check)


BAD_REQUESTS = [
    (b"NONSENSE\r\n\r\n", 400, "malformed_http"),
    (b"GET /a HTTP/2.0\r\nHost: a\r\n\r\n", 400, "http_version"),
    (b"GET /a HTTP/0.9\r\n\r\n", 400, "http_version"),
    (b"GET http://x/a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed_http"),
    (b"GET /a HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400,
     "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "transfer_coding"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
     "transfer_coding"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1), 413, "too_large"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + b"x" * 1001,
     413, "too_large"),  # refused as the bytes arrive: never more than the limit in memory
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "malformed_http"),
    (b"GET /a HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 20_000 + b"\r\n\r\n", 431,
     "headers_too_large"),
    (b"GET /a HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "headers_too_large"),
    (b"CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed_http"),
    # defect 1: chunk sizes int(text, 16) accepted; a negative one bypassed the body limit
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-FFFFFF\r\n"
     + b"1388\r\n" + b"x" * 5000 + b"\r\n0\r\n\r\n", 400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n",
     400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n",
     400, "malformed_http"),
    (b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"x" * 16
     + b"\r\n0\r\n\r\n", 400, "malformed_http"),
    # defect 2: a bare LF hid Transfer-Encoding from us but not from h11 (smuggling); NUL
    (b"POST /a HTTP/1.1\r\nHost: a\r\nX: a\nTransfer-Encoding: chunked\r\nContent-Length: 3"
     b"\r\n\r\nabc", 400, "malformed_http"),
    (b"GET /a HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "malformed_http"),
    # defect 3: HTTP/1.1 needs Host (exactly one)
    (b"GET /a HTTP/1.1\r\n\r\n", 400, "malformed_http"),
    (b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "malformed_http"),
]  # fmt: skip


@pytest.mark.parametrize(("request_bytes", "status", "reason"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx_and_the_connection_closes(
    request_bytes: bytes, status: int, reason: str
) -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, request_bytes, b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        ((got, headers, body),) = responses(raw)  # nothing after: closed
        assert got == status and headers["connection"] == "close"
        assert json.loads(body)["error"] == reason
        assert SEEN == []  # the handler never saw any of it

    served(check)


def test_an_upgrade_request_is_answered_then_the_connection_closes() -> None:
    async def check(port: int) -> None:
        raw = await exchange(
            port,
            b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        ((status, headers, _),) = responses(raw)
        assert status == 201 and headers["connection"] == "close"

    served(check)


def test_the_answer_is_framed_by_the_server_not_by_a_substring_of_its_headers() -> None:
    """Defect 5: `b"content-length:" in headers` decided the framing."""

    async def check(port: int) -> None:
        raw = await exchange(port, b"GET /noted HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        ((status, headers, body),) = responses(raw)
        assert status == 200 and headers["content-length"] == "5" and body == b"12345"
        assert headers["x-note"] == "content-length: 99"

    served(check)
    with pytest.raises(ValueError, match="set by the server"):
        Response(200, b"x", headers=(("Content-Length", "1"),))
    with pytest.raises(ValueError, match="line break"):
        Response(200, b"x", headers=(("x-a", "b\r\nx-evil: 1"),))


def test_a_request_that_does_not_complete_in_time_gets_408(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_server, "REQUEST_TIMEOUT_S", 0.2)

    async def check(port: int) -> None:
        raw = await exchange(port, b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        assert responses(raw)[0][0] == 408

    served(check)


def test_a_handler_that_raises_gives_500_and_the_server_goes_on() -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
        assert responses(raw)[0][0] == 500
        raw = await exchange(port, b"GET /fine HTTP/1.0\r\n\r\n")  # 1.0: closes after
        ((status, headers, _),) = responses(raw)
        assert status == 201 and headers["connection"] == "close"

    served(check)


def test_httpx_as_a_real_client() -> None:
    async def check(port: int) -> None:
        def use_httpx() -> list[Any]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                posted = client.post("/v1/txs", content=b"x" * 900).json()
                got = client.get("/v1/tx/ab%20cd", params={"wait_s": "1"}).json()
                too_big = client.post("/v1/txs", content=b"x" * (LIMIT + 1))
                streamed = client.post("/v1/txs", content=iter([b"ab", b"cd"])).json()
                return [posted, got, too_big.status_code, streamed]

        posted, got, too_big, streamed = await trio.to_thread.run_sync(use_httpx)
        assert posted["body"] == "x" * 900
        assert got["path"] == "/v1/tx/ab cd" and got["query"] == {"wait_s": "1"}
        assert too_big == 413
        assert streamed["body"] == "abcd"  # httpx sends an iterator chunked

    served(check)


def test_connections_beyond_the_limit_are_refused_and_refusals_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defect 4: each connection over the limit got a 503 and was then held up to 2 s,
    with no cap on how many were held."""
    monkeypatch.setattr(http_server, "MAX_CONNECTIONS", 1)
    monkeypatch.setattr(http_server, "MAX_REFUSING", 1)
    monkeypatch.setattr(http_server, "LINGER_S", 5.0)

    async def check(port: int) -> None:
        holder = await trio.open_tcp_stream("127.0.0.1", port)  # idle: holds the one slot
        await trio.sleep(0.1)
        lingering = await trio.open_tcp_stream("127.0.0.1", port)  # answered 503, held open
        first = await lingering.receive_some(65536)
        assert responses(first)[0][0] == 503 and json.loads(responses(first)[0][2])["error"] == (
            "busy"
        )
        with trio.fail_after(2):  # a third is closed at once, unanswered, not held
            assert await exchange(port, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", quiet_s=3) == b""
        await holder.aclose()
        await lingering.aclose()
        await trio.sleep(0.1)
        assert responses(await exchange(port, b"GET /a HTTP/1.0\r\n\r\n"))[0][0] == 201

    served(check)


def test_an_idle_keep_alive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT_S", 0.2)

    async def check(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        with trio.fail_after(5):  # answered, then closed by the server once idle
            received = await read_until_closed(stream, bytearray())
        assert responses(received)[0][0] == 201
        await stream.aclose()

    served(check)


def test_a_head_that_never_ends_is_refused_across_many_reads() -> None:
    """A header line sent a piece at a time: llhttp holds the unfinished line itself, so
    the bound must count the bytes fed, not only the headers it has completed."""

    async def check(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Long: ")
        with trio.fail_after(5):  # long before the 10 s request timeout
            try:
                for _ in range(40):
                    await stream.send_all(b"v" * 1024)
                    await trio.sleep(0.01)
            except trio.BrokenResourceError:
                pass  # refused, then closed while we were still sending
            received = await read_until_closed(stream, bytearray())
        assert responses(received)[0][0] == 431
        await stream.aclose()

    served(check)


def test_a_pipelined_head_after_a_large_body_in_one_read_is_not_refused() -> None:
    """Bytes of a body before it in the same read are not the next request's head."""

    async def check(port: int) -> None:
        body = b"x" * 900
        first = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(first + b"GET /b HTTP/1.1\r\nHo")
        await trio.sleep(0.1)
        await stream.send_all(b"st: a\r\nConnection: close\r\n\r\n")
        with trio.fail_after(5):
            received = await read_until_closed(stream, bytearray())
        assert [status for status, _, _ in responses(received)] == [201, 201]
        await stream.aclose()

    served(check)
