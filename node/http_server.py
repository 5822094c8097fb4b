"""A small HTTP/1.1 server on trio for the node's ASGI app (Starlette).

hypercorn (with h11) cost 0.5-0.9 ms of CPU per request on this machine when idle, and
about 3 ms on a node busy at 3,000 tx/s: 8 % of a backup's interpreter time went to the
HTTP framework outside our handlers. This server costs about 0.1 ms a request
(docs/performance.md). It speaks what the API needs and refuses the rest clearly:

- HTTP/1.1 and 1.0, keep-alive (1.1 by default, 1.0 on request), one request at a time
  per connection;
- request bodies with Content-Length or chunked (not both: 400, against smuggling),
  `Expect: 100-continue`;
- responses with Content-Length, or chunked when the app streams without one; no body
  for HEAD;
- bounds: head size (431), header count (431), body size (413), a timeout for a request
  to arrive once begun (408) and for an idle keep-alive connection, a connection limit.

Plain HTTP only: put TLS in front (docs/node.md). Errors the server itself answers carry
the API's JSON shape, {"error": ..., "detail": ...}.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import trio

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
REQUEST_TIMEOUT_S = 10.0  # a request, once its first byte arrived, must be complete by then
IDLE_TIMEOUT_S = 5.0  # a keep-alive connection with no request is closed after this (as hypercorn)
MAX_CONNECTIONS = 512
LINGER_S, LINGER_BYTES = 2.0, 1 << 20  # input read and dropped after an error answer
READ_BYTES = 64 * 1024
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
log = logging.getLogger("metroledger.http")


class HttpError(Exception):
    """A request the server refuses itself; the connection closes after the answer."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


HEAD_TOO_LARGE = (431, "headers_too_large", f"head over {MAX_HEAD_BYTES} bytes")
BAD_CHUNK = (400, "malformed_http", "bad chunk size line")


class Request:
    """The parsed head of one request."""

    def __init__(
        self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]]
    ):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        connection = b",".join(self.header(b"connection")).lower()
        # decided once: the answer's head says it, and the connection then acts on it
        self.keep_alive = (
            b"keep-alive" in connection if version == "1.0" else b"close" not in connection
        )

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


def parse_head(raw: bytes) -> Request:
    """Request line and headers (names lowercased); HttpError for anything malformed."""
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN:
        raise HttpError(400, "malformed_http", "bad request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError(505, "http_version", "HTTP/1.1 or HTTP/1.0 only")
    if not target.startswith(b"/"):
        raise HttpError(400, "malformed_http", "the target must be a path")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, "headers_too_large", f"more than {MAX_HEADERS} headers")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or not set(name) <= _TOKEN:  # also refuses obs-fold
            raise HttpError(400, "malformed_http", "bad header line")
        headers.append((name.lower(), value.strip(b" \t")))
    return Request(method.decode(), target, version[5:].decode(), headers)


def body_framing(request: Request, max_body_bytes: int) -> int | None:
    """The body's length, or None for a chunked body; HttpError if it cannot be read."""
    encodings = request.header(b"transfer-encoding")
    lengths = set(request.header(b"content-length"))
    if encodings:
        if lengths:
            raise HttpError(400, "malformed_http", "both Content-Length and Transfer-Encoding")
        if b",".join(encodings).lower().replace(b" ", b"") != b"chunked":
            raise HttpError(501, "not_implemented", "only the chunked transfer coding")
        return None
    if not lengths:
        return 0
    value = lengths.pop()
    if lengths or not value.isdigit() or len(value) > 15:
        raise HttpError(400, "malformed_http", "bad Content-Length")
    if int(value) > max_body_bytes:
        raise HttpError(413, "too_large", f"body over {max_body_bytes} bytes")
    return int(value)


class Connection:
    """One client connection: a read buffer, and the requests it carries in turn."""

    def __init__(self, stream: trio.SocketStream, app: App, max_body_bytes: int):
        self.stream, self.app, self.max_body_bytes = stream, app, max_body_bytes
        self.buffer = bytearray()
        sock = stream.socket
        self.client, self.server = _address(sock.getpeername()), _address(sock.getsockname())

    async def serve(self) -> None:
        while True:
            with trio.move_on_after(IDLE_TIMEOUT_S):
                if not self.buffer and not await self._fill():
                    return  # the client closed between requests
            if not self.buffer:
                return  # idle too long
            try:
                with trio.fail_after(REQUEST_TIMEOUT_S):
                    request, body = await self._read_request()
            except HttpError as exc:
                await self.refuse(exc)
                return
            except trio.TooSlowError:
                await self.refuse(HttpError(408, "timeout", "request not complete in time"))
                return
            if request is None or not await self._respond(request, body):
                return

    async def _read_request(self) -> tuple[Request | None, bytes]:
        end = await self._find(b"\r\n\r\n", MAX_HEAD_BYTES, HEAD_TOO_LARGE)
        if end is None:
            return None, b""
        request = parse_head(bytes(self.buffer[:end]))
        del self.buffer[: end + 4]
        length = body_framing(request, self.max_body_bytes)
        if length != 0 and b"100-continue" in b",".join(request.header(b"expect")).lower():
            await self.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await (self._read_chunked() if length is None else self._read_exactly(length))
        return request, body

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(READ_BYTES)
        self.buffer += data
        return bool(data)

    async def _find(self, marker: bytes, limit: int, too_long: tuple[int, str, str]) -> int | None:
        """Index of `marker` in the buffer, reading as needed; None at a clean close."""
        while (at := self.buffer.find(marker, 0, limit + len(marker))) < 0:
            if len(self.buffer) > limit:
                raise HttpError(*too_long)
            if not await self._fill():
                if self.buffer:
                    raise HttpError(400, "malformed_http", "connection closed mid-request")
                return None
        return at

    async def _read_exactly(self, length: int) -> bytes:
        while len(self.buffer) < length:
            if not await self._fill():
                raise HttpError(400, "malformed_http", "connection closed mid-body")
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            end = await self._find(b"\r\n", 1024, BAD_CHUNK)
            if end is None:
                raise HttpError(400, "malformed_http", "connection closed mid-body")
            size_text = bytes(self.buffer[:end]).split(b";")[0].strip()
            del self.buffer[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "malformed_http", "bad chunk size") from None
            total += size
            if total > self.max_body_bytes:
                raise HttpError(413, "too_large", f"body over {self.max_body_bytes} bytes")
            if size == 0:
                await self._skip_trailers()
                return b"".join(parts)
            parts.append(await self._read_exactly(size))
            if await self._read_exactly(2) != b"\r\n":
                raise HttpError(400, "malformed_http", "chunk without its CRLF")

    async def _skip_trailers(self) -> None:
        """The trailer lines after the last chunk, up to the empty line: ignored (a close
        before that ends the body too; the connection then ends)."""
        while end := await self._find(b"\r\n", MAX_HEAD_BYTES, HEAD_TOO_LARGE):
            del self.buffer[: end + 2]
        del self.buffer[:2]

    async def _respond(self, request: Request, body: bytes) -> bool:
        """Run the app for one request; True if the connection may carry another."""
        exchange = Exchange(self.stream, request)
        path, _, query = request.target.partition(b"?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version,
            "method": request.method,
            "scheme": "http",
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": request.headers,
            "client": self.client,
            "server": self.server,
        }
        try:
            await self.app(scope, exchange.receiver(body), exchange.send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False  # the client went away while the answer was written
        except Exception:
            log.exception("the API raised for %s %s", request.method, path.decode("latin-1"))
            if not exchange.started:
                await self.refuse(HttpError(500, "internal_error", "see the node's log"))
            return False
        finally:
            exchange.finished.set()
        if not exchange.started:
            await self.refuse(HttpError(500, "internal_error", "no response"))
            return False
        return exchange.complete and request.keep_alive

    async def refuse(self, error: HttpError) -> None:
        """Answer with the error, then close gracefully: what the client sent after it is
        read and dropped for a while, since closing a socket with unread input resets the
        connection and can destroy the answer before the client reads it."""
        body = json.dumps({"error": error.reason, "detail": error.detail}).encode()
        head = _status_line(error.status) + (
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.stream.send_all(head + body)
            await self.stream.send_eof()
            with trio.move_on_after(LINGER_S):
                dropped = 0
                while dropped < LINGER_BYTES and (data := await self.stream.receive_some()):
                    dropped += len(data)


class Exchange:
    """The ASGI side of one request: `receive` hands the body over, then waits until the
    response is done; `send` writes the response, with Content-Length when the app gives
    its whole body in one message, chunked when it streams without one."""

    def __init__(self, stream: trio.SocketStream, request: Request):
        self.stream, self.request = stream, request
        self.started = self.complete = self.chunked = False
        self.status, self.headers = 200, b""
        self.finished = trio.Event()

    def receiver(self, body: bytes) -> Callable[[], Awaitable[Message]]:
        pending = [body]

        async def receive() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            await self.finished.wait()
            return {"type": "http.disconnect"}

        return receive

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = b"".join(
                bytes(k) + b": " + bytes(v) + b"\r\n" for k, v in message.get("headers", [])
            )
            return
        if message["type"] != "http.response.body" or self.complete:
            return
        body, more = bytes(message.get("body", b"")), bool(message.get("more_body", False))
        if self.request.method == "HEAD":
            body = b""
        out = b""
        if not self.started:
            self.started = True
            framing = b""
            if b"content-length:" not in self.headers.lower():
                self.chunked = more
                framing = (
                    b"transfer-encoding: chunked\r\n"
                    if more
                    else b"content-length: %d\r\n" % len(body)
                )
            closing = b"" if self.request.keep_alive else b"connection: close\r\n"
            out = _status_line(self.status) + self.headers + framing + closing + b"\r\n"
        if self.chunked:
            out += (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (
                b"" if more else b"0\r\n\r\n"
            )
        else:
            out += body
        self.complete = not more
        await self.stream.send_all(out)


async def serve_http(
    app: App,
    host: str,
    port: int,
    max_body_bytes: int,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on host:port until cancelled; reports started, with the listeners (so
    a caller that asked for port 0 learns the port), once listening."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    slots = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            connection = Connection(stream, app, max_body_bytes)
            try:
                slots.acquire_nowait()
            except trio.WouldBlock:  # refused at once rather than queued, holding a socket
                await connection.refuse(HttpError(503, "busy", "too many connections"))
                return
            try:
                await connection.serve()
            finally:
                slots.release()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away
        finally:
            await trio.aclose_forcefully(stream)

    task_status.started(listeners)
    await trio.serve_listeners(handle, listeners)


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


def _address(address: Any) -> tuple[str, int] | None:
    return (str(address[0]), int(address[1])) if isinstance(address, tuple) else None
