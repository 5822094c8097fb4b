"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for the load generator and
the SDK's gateways (oracle.gateway), which must cost a small device little.

The generator must outrun the daemons it measures. httpx cost it about 50 us of CPU per
offered transaction (2.5 ms per 50-transaction request), an eighth of a core at 2,500
tx/s taken from the daemons on a 2-core machine. This client writes one request and
reads one response per call and keeps the connection for the next: it needs no more.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024


class HttpError(ConnectionError):
    """The request did not get a complete HTTP response (refused, reset, timed out, bad);
    `kind` names the cause in a word, for counting."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Stale(HttpError):
    """The connection ended before any byte of the answer: the request may be sent again."""


class HttpPool:
    """Keep-alive connections per base URL (`http://host:port`, or `https://` with a TLS
    client context), at most `per_host` each."""

    def __init__(
        self, timeout_s: float = 30.0, per_host: int = 64, tls: ssl.SSLContext | None = None
    ):
        self.timeout_s, self.tls = timeout_s, tls
        self.idle: dict[str, list[Connection]] = {}
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.per_host = per_host

    async def post(self, base_url: str, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", base_url, path, body)

    async def get(self, base_url: str, path: str) -> tuple[int, bytes]:
        return await self.request("GET", base_url, path, b"")

    async def request(
        self, method: str, base_url: str, path: str, body: bytes
    ) -> tuple[int, bytes]:
        """(status, body) of METHOD base_url+path; HttpError if no complete answer came.

        A kept connection the server has closed meanwhile (it may, for instance after
        answering before reading a body) fails before any answer arrives; the request is
        then sent once more on a new connection, as HTTP clients do."""
        slots = self.slots.setdefault(base_url, asyncio.Semaphore(self.per_host))
        async with slots:
            kept = self._kept(base_url)
            if kept is not None:
                try:
                    return await self._send_on(kept, method, base_url, path, body)
                except _Stale:
                    pass
            connection = await self._connect(base_url)
            return await self._send_on(connection, method, base_url, path, body)

    async def _send_on(
        self, connection: Connection, method: str, base_url: str, path: str, body: bytes
    ) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self.timeout_s):
                status, answer, keep = await _exchange(connection, method, base_url, path, body)
        except _Stale:
            connection[1].close()
            raise
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            connection[1].close()
            kind = type(exc).__name__
            raise HttpError(f"{method} {base_url}{path}: {kind} {exc}", kind) from None
        if keep:
            self.idle.setdefault(base_url, []).append(connection)
        else:
            connection[1].close()
        return status, answer

    def _kept(self, base_url: str) -> Connection | None:
        idle = self.idle.get(base_url, [])
        while idle:
            reader, writer = connection = idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return connection
            writer.close()
        return None

    async def _connect(self, base_url: str) -> Connection:
        parts = urlsplit(base_url)
        secure = parts.scheme == "https" and self.tls is not None
        if not (parts.scheme == "http" or secure) or not parts.hostname or not parts.port:
            raise ValueError(f"expected http://host:port (https:// with tls), got {base_url!r}")
        try:
            async with asyncio.timeout(self.timeout_s):
                if secure:
                    return await asyncio.open_connection(parts.hostname, parts.port, ssl=self.tls)
                return await asyncio.open_connection(parts.hostname, parts.port)
        except (OSError, TimeoutError) as exc:
            kind = type(exc).__name__
            raise HttpError(f"connect {base_url}: {kind} {exc}", f"connect_{kind}") from None

    async def aclose(self) -> None:
        for connections in self.idle.values():
            for _, writer in connections:
                writer.close()
        self.idle.clear()


async def _exchange(
    connection: Connection, method: str, base_url: str, path: str, body: bytes
) -> tuple[int, bytes, bool]:
    reader, writer = connection
    host = urlsplit(base_url).netloc
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/msgpack\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    try:
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
            raise
        kind = type(exc).__name__
        raise _Stale(f"{method} {base_url}{path}: {kind} before any answer", kind) from None
    if len(raw) > MAX_HEAD_BYTES:
        raise ValueError("response head too large")
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        answer = await _read_chunked(reader)
    elif "content-length" in headers:
        answer = await reader.readexactly(int(headers["content-length"]))
    else:  # the body runs to the end of the connection
        return status, await reader.read(), False
    return status, answer, headers.get("connection", "").lower() != "close"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # no trailers are sent to us; the final CRLF
    return b"".join(parts)
