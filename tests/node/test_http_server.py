"""The node's own HTTP/1.1 server: framing, keep-alive, bounds and refusals, checked on
real loopback sockets with raw bytes, and with httpx as a real client."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio

from node import http_server
from node.http_server import serve_http

LIMIT = 1000


async def echo(scope: Any, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    """Answers with what it got; /stream answers in two chunks; /boom raises."""
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    message = await receive()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
        return
    body = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "body": message["body"].decode(),
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def served(test: Callable[[int], Awaitable[None]]) -> None:
    """Run `test(port)` against a server on a free loopback port, then stop it."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(serve_http, echo, "127.0.0.1", 0, LIMIT)
            with trio.fail_after(20):
                await test(listeners[0].socket.getsockname()[1])
            nursery.cancel_scope.cancel()

    trio.run(main)


async def exchange(port: int, *requests: bytes) -> bytes:
    """Send the raw requests on one connection; everything read until the server closes
    (or 1 s of silence)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    for request in requests:
        await stream.send_all(request)
    received = b""
    with trio.move_on_after(1):
        while data := await stream.receive_some(65536):
            received += data
    await stream.aclose()
    return received


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
            b"POST /v1/txs?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /v1/status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        (s1, h1, b1), (s2, h2, b2) = responses(raw)
        assert s2 == 201
        assert (s1, json.loads(b1)) == (
            201,
            {"method": "POST", "path": "/v1/txs", "query": "x=1", "body": "hello"},
        )
        assert "connection" not in h1 and h2["connection"] == "close"
        assert json.loads(b2)["path"] == "/v1/status"

    served(check)


def test_chunked_bodies_and_expect_continue() -> None:
    async def check(port: int) -> None:
        raw = await exchange(
            port,
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: y\r\n\r\n",
        )
        assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        ((status, _, body),) = responses(raw[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
        assert status == 201 and json.loads(body)["body"] == "hello"

    served(check)


def test_a_streamed_answer_is_chunked_and_head_has_no_body() -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, b"GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
        raw = await exchange(port, b"HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"content-length: " in head and body == b""

    served(check)


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"NONSENSE\r\n\r\n", 400, "malformed_http"),
        (b"GET /a HTTP/2.0\r\n\r\n", 505, "http_version"),
        (b"GET http://x/a HTTP/1.1\r\n\r\n", 400, "malformed_http"),
        (b"GET /a HTTP/1.1\r\n folded\r\n\r\n", 400, "malformed_http"),
        (b"POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, ""),
        (b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "malformed_http"),
        (
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "malformed_http",
        ),
        (b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"),
        (b"POST /a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1), 413, "too_large"),
        (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413, "too_large"),
        (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "malformed_http"),
        (b"GET /a HTTP/1.1\r\nX: " + b"y" * 20_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /a HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "headers_too_large"),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_connection_closes(
    request_bytes: bytes, status: int, reason: str
) -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, request_bytes, b"GET /after HTTP/1.1\r\n\r\n")
        ((got, headers, body),) = responses(raw)  # nothing after: closed
        assert got == status and headers["connection"] == "close"
        assert json.loads(body)["error"] == (reason or "malformed_http")

    served(check)


def test_a_request_that_does_not_complete_in_time_gets_408(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_server, "REQUEST_TIMEOUT_S", 0.2)

    async def check(port: int) -> None:
        raw = await exchange(port, b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        assert responses(raw)[0][0] == 408

    served(check)


def test_an_app_that_raises_gives_500_and_the_server_goes_on() -> None:
    async def check(port: int) -> None:
        raw = await exchange(port, b"GET /boom HTTP/1.1\r\n\r\n")
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
                return [posted, got, too_big.status_code]

        posted, got, too_big = await trio.to_thread.run_sync(use_httpx)
        assert posted["body"] == "x" * 900
        assert got["path"] == "/v1/tx/ab cd" and got["query"] == "wait_s=1"
        assert too_big == 413

    served(check)


def test_connections_beyond_the_limit_are_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "MAX_CONNECTIONS", 1)

    async def check(port: int) -> None:
        holder = await trio.open_tcp_stream("127.0.0.1", port)  # idle: holds the one slot
        await trio.sleep(0.1)
        raw = await exchange(port, b"GET /a HTTP/1.1\r\n\r\n")
        ((status, _, body),) = responses(raw)
        assert status == 503 and json.loads(body)["error"] == "busy"
        await holder.aclose()
        await trio.sleep(0.1)
        assert responses(await exchange(port, b"GET /a HTTP/1.0\r\n\r\n"))[0][0] == 201

    served(check)


def test_an_idle_keep_alive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT_S", 0.2)

    async def check(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /a HTTP/1.1\r\n\r\n")
        received = b""
        with trio.fail_after(5):  # answered, then closed by the server once idle
            while data := await stream.receive_some(65536):
                received += data
        assert responses(received)[0][0] == 201
        await stream.aclose()

    served(check)
