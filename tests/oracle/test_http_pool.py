"""The load generator's HTTP client against a real socket server on loopback."""

from __future__ import annotations

import asyncio

import pytest

from oracle.http_pool import HttpError, HttpPool

ANSWERS = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"/close": b"HTTP/1.1 429 Too Many\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
    b"/eof": b"HTTP/1.1 200 OK\r\n\r\nto the end",
    b"/cut": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
    b"/then-hang-up": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye",
}


async def serve(connections: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        hang_up = False
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            if hang_up:  # a kept connection the server ends when the next request comes
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            path = head.split(b" ")[1]
            hang_up = path == b"/then-hang-up"
            writer.write(ANSWERS[path])
            await writer.drain()
            if path in (b"/close", b"/eof", b"/cut"):
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def exchange_all() -> tuple[list[tuple[int, bytes]], int, list[str]]:
    connections: list[int] = []
    server = await serve(connections)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    pool = HttpPool(timeout_s=5)
    answers, errors = [], []
    for path in ["/length", "/chunked", "/length", "/close", "/eof", "/length", "/cut"]:
        try:
            answers.append(await pool.post(url, path, b"body"))
        except HttpError as exc:
            errors.append(str(exc))
    await pool.aclose()
    server.close()
    return answers, len(connections), errors


def test_keeps_the_connection_and_reads_each_body_form() -> None:
    answers, connections, errors = asyncio.run(exchange_all())
    assert answers == [
        (200, b"hello"), (202, b"abcde"), (200, b"hello"), (429, b"no"),
        (200, b"to the end"), (200, b"hello"),
    ]  # fmt: skip
    # the first four share a connection; "close" and a body to the end of it each end one
    assert connections == 3
    assert len(errors) == 1 and "/cut" in errors[0] and "IncompleteReadError" in errors[0]


def test_refused_connection_is_an_http_error() -> None:
    async def post_to_closed_port() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await HttpPool(timeout_s=2).post(f"http://127.0.0.1:{port}", "/", b"")

    with pytest.raises(HttpError, match="connect"):
        asyncio.run(post_to_closed_port())


def test_a_request_on_a_connection_the_server_ended_goes_again_on_a_new_one() -> None:
    async def exchange() -> tuple[list[tuple[int, bytes]], int]:
        connections: list[int] = []
        server = await serve(connections)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        pool = HttpPool(timeout_s=5)
        answers = [await pool.post(url, path, b"x") for path in ["/then-hang-up", "/length"]]
        await pool.aclose()
        server.close()
        return answers, len(connections)

    answers, connections = asyncio.run(exchange())
    assert answers == [(200, b"bye"), (200, b"hello")]
    assert connections == 2
