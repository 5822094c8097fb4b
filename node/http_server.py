"""The node's HTTP/1.1 server: llhttp (httptools) parses, this file keeps our bounds.

The grammar is not ours to write: a hand-made parser here once read `-FFFFFF` as a chunk
size (bypassing the body limit) and a bare LF as a header separator (a smuggling
mismatch with proxies). llhttp, the parser of Node.js, runs in its strict mode (no
leniency is enabled). What this adapter adds, as a trio task per connection:

- bounds: head size and header count (431), body size (413, from Content-Length before
  reading, or while a chunked body arrives), a time for a begun request to complete
  (408), an idle time for keep-alive connections, a connection limit (503 at once; a
  bounded number of those answers linger, the rest are closed unanswered);
- what llhttp leaves to the server: HTTP/1.0 and 1.1 only, Host required in 1.1,
  `chunked` as the only transfer coding, origin-form targets, no upgrades;
- keep-alive and pipelining (answers in order), `Expect: 100-continue`, HEAD, answers
  framed by the server alone (Content-Length, or chunked for a streamed answer).

Whatever a client's bytes are, the answer is 4xx (a client's fault; 5xx is ours: 500
when a handler raises, 503 when connections are over the limit). Errors it answers
itself carry the API's shape, {"error": ..., "detail": ...}; after one the connection
closes gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import httptools
import trio

from node.web import Handler, Request, Response, error

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
REQUEST_TIMEOUT_S = 10.0  # a request, once its first byte arrived, must be complete by then
IDLE_TIMEOUT_S = 5.0  # a keep-alive connection with no request is closed after this
MAX_CONNECTIONS = 512
MAX_REFUSING = 32  # connections over the limit that are answered 503; others just closed
LINGER_S, LINGER_BYTES = 1.0, 1 << 20  # input read and dropped after an error answer
READ_BYTES = 64 * 1024
log = logging.getLogger("metroledger.http")
Refused = Callable[[str], None]  # told the reason of every refusal (metrics)


class HttpError(Exception):
    """A request the server refuses itself; the connection closes after the answer."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class _Messages:
    """httptools' callbacks: builds requests, enforcing the bounds as bytes arrive."""

    def __init__(self, max_body_bytes: int):
        self.max_body_bytes = max_body_bytes
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[Request] = deque()
        self.in_message = self.in_head = self.wants_continue = False
        self.failure: HttpError | None = None  # raised by a callback, or the parser's
        self.upgraded = False  # what follows an upgrade request is another protocol
        self.began = False  # a message began in the current feed
        self._reset()

    def _reset(self) -> None:
        self.url, self.headers, self.parts = b"", [], []  # type: ignore[var-annotated]
        self.head_bytes = self.body_bytes = self.fed_in_head = 0
        self.keep_alive = False

    def on_message_begin(self) -> None:
        self._reset()
        self.in_message = self.in_head = self.began = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))
        if len(self.headers) > MAX_HEADERS:
            raise HttpError(431, "headers_too_large", f"more than {MAX_HEADERS} headers")
        self._count_head(len(name) + len(value) + 4)

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEAD_BYTES:
            raise HttpError(431, "headers_too_large", f"head over {MAX_HEAD_BYTES} bytes")

    def on_headers_complete(self) -> None:
        self.in_head = False
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise HttpError(400, "http_version", "HTTP/1.1 or HTTP/1.0 only")
        if not self.url.startswith(b"/"):
            raise HttpError(400, "malformed_http", "the target must be a path")
        names = [name for name, _ in self.headers]
        if version == "1.1" and names.count(b"host") != 1:
            raise HttpError(400, "malformed_http", "HTTP/1.1 needs exactly one Host header")
        for name, value in self.headers:
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                raise HttpError(400, "transfer_coding", "only the chunked transfer coding")
            if name == b"content-length" and int(value) > self.max_body_bytes:
                raise HttpError(413, "too_large", f"body over {self.max_body_bytes} bytes")
            if name == b"expect" and value.strip().lower() == b"100-continue":
                self.wants_continue = version == "1.1"
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.max_body_bytes:
            raise HttpError(413, "too_large", f"body over {self.max_body_bytes} bytes")
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self.in_message = self.wants_continue = False
        path, _, query = self.url.partition(b"?")
        method = self.parser.get_method().decode()
        self.ready.append(
            Request(
                method=method,
                path=unquote(path.decode("latin-1")),
                query=dict(reversed(parse_qsl(query.decode("latin-1")))),  # first value wins
                headers=self.headers,
                body=b"".join(self.parts),
                version=self.parser.get_http_version(),
                keep_alive=self.keep_alive,
            )
        )

    def feed(self, data: bytes) -> None:
        """Parse what arrived; a refusal is kept in `failure` until the requests before
        it have their answers."""
        if self.upgraded:
            return
        self.began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
            if not self.ready or self.in_message:
                self.failure = HttpError(400, "malformed_http", "protocol upgrades unsupported")
            else:  # answer what came, then close: the rest is another protocol
                self.ready[-1].keep_alive = False
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, HttpError):
                raise  # our own bug, not the client's
            self.failure = cause
        except httptools.HttpParserError as exc:
            self.failure = HttpError(400, "malformed_http", str(exc) or "malformed request")
        if self.in_head and not self.began:
            self._count_fed(len(data))

    def _count_fed(self, size: int) -> None:
        """Bytes fed while a head is unfinished: llhttp keeps an unfinished header line
        itself, so the callbacks alone cannot bound it. The read in which the message
        began is not counted (how much of it is this head is unknown), so a head holds
        at most MAX_HEAD_BYTES plus one read."""
        self.fed_in_head += size
        if self.failure is None and self.fed_in_head > MAX_HEAD_BYTES:
            self.failure = HttpError(431, "headers_too_large", f"head over {MAX_HEAD_BYTES}")


class Connection:
    """One client connection: the requests it carries, answered in turn."""

    def __init__(
        self, stream: trio.abc.Stream, handler: Handler, max_body_bytes: int, refused: Refused
    ):
        self.stream, self.handler, self.refused = stream, handler, refused
        self.messages = _Messages(max_body_bytes)
        self.peer = peer_address(stream)

    async def serve(self) -> None:
        while True:
            try:
                request = await self._next_request()
            except HttpError as exc:
                await self.refuse(exc)
                return
            if request is not None:
                request.peer = self.peer
            if request is None or not await self._respond(request):
                return

    async def _next_request(self) -> Request | None:
        """The next complete request; None once the client closed or stayed idle."""
        messages, deadline = self.messages, None
        while not messages.ready:
            if messages.failure is not None:
                raise messages.failure
            now = trio.current_time()
            if messages.in_message and deadline is None:
                deadline = now + REQUEST_TIMEOUT_S
            with trio.move_on_at(
                deadline if deadline is not None else now + IDLE_TIMEOUT_S
            ) as scope:
                data = await self.stream.receive_some(READ_BYTES)
            if scope.cancelled_caught:
                if deadline is not None:
                    raise HttpError(408, "timeout", "request not complete in time")
                return None  # idle too long
            if not data:
                if messages.in_message:
                    raise HttpError(400, "malformed_http", "connection closed mid-request")
                return None
            messages.feed(data)
            if messages.wants_continue and messages.failure is None:
                messages.wants_continue = False
                await self.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        return messages.ready.popleft()

    async def _respond(self, request: Request) -> bool:
        """Answer one request; True if the connection may carry another."""
        try:
            response = await self.handler(request)
        except Exception:
            log.exception("the API raised for %s %s", request.method, request.path)
            await self.refuse(HttpError(500, "internal_error", "see the node's log"))
            return False
        keep_alive = request.keep_alive and self.messages.failure is None
        head = _head(response, keep_alive, streamed=response.stream is not None)
        if response.stream is None:
            body = b"" if request.method == "HEAD" else response.body
            await self.stream.send_all(head + body)
            return keep_alive
        await self.stream.send_all(head)
        if request.method == "HEAD":
            return keep_alive
        async for part in response.stream:
            if part:
                await self.stream.send_all(b"%x\r\n%s\r\n" % (len(part), part))
        await self.stream.send_all(b"0\r\n\r\n")
        return keep_alive

    async def refuse(self, failure: HttpError) -> None:
        """Answer with the error, then close gracefully: what the client sent after it is
        read and dropped for a while, since closing a socket with unread input resets the
        connection and can destroy the answer before the client reads it."""
        self.refused(failure.reason)
        answer = error(failure.status, failure.reason, failure.detail)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.stream.send_all(_head(answer, False, False) + answer.body)
            if isinstance(self.stream, trio.abc.HalfCloseableStream):  # TLS has no half-close
                await self.stream.send_eof()
            with trio.move_on_after(LINGER_S):
                dropped = 0
                while dropped < LINGER_BYTES and (data := await self.stream.receive_some()):
                    dropped += len(data)


def _head(response: Response, keep_alive: bool, streamed: bool) -> bytes:
    lines = [_status_line(response.status), f"content-type: {response.content_type}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in response.headers]
    framing = "transfer-encoding: chunked" if streamed else f"content-length: {len(response.body)}"
    lines.append(framing + "\r\n")
    if keep_alive:  # the idle close can race a client's next request: say when it comes
        lines.append(f"keep-alive: timeout={int(IDLE_TIMEOUT_S)}\r\n")
    else:
        lines.append("connection: close\r\n")
    return ("".join(lines) + "\r\n").encode("latin-1")


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    max_body_bytes: int,
    refused: Refused = lambda reason: None,
    tls: ssl.SSLContext | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on host:port until cancelled, over TLS with `tls`; reports started,
    with the TCP listeners (so a caller that asked for port 0 learns the port), once
    listening. A client that does not complete the TLS handshake within the request time
    gets no answer (plain HTTP to a TLS port is refused so)."""
    listeners: list[Any] = list(await trio.open_tcp_listeners(port, host=host))
    task_status.started(listeners)
    if tls is not None:
        listeners = [trio.SSLListener(lst, tls, https_compatible=True) for lst in listeners]
    await serve_listeners(handler, listeners, max_body_bytes, refused)


async def serve_listeners(
    handler: Handler, listeners: Sequence[Any], max_body_bytes: int, refused: Refused
) -> None:
    slots, refusing = trio.CapacityLimiter(MAX_CONNECTIONS), trio.CapacityLimiter(MAX_REFUSING)

    async def handle(stream: trio.abc.Stream) -> None:
        connection = Connection(stream, handler, max_body_bytes, refused)
        try:
            if slots.available_tokens:
                async with slots:
                    await connection.serve()
            elif refusing.available_tokens:  # answered at once rather than queued
                async with refusing:
                    await connection.refuse(HttpError(503, "busy", "too many connections"))
            else:
                refused("busy")  # not even an answer: each one would hold a socket
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away
        finally:
            await trio.aclose_forcefully(stream)

    await trio.serve_listeners(handle, list(listeners))


def peer_address(stream: trio.abc.Stream) -> str:
    """The client's IP address, under TLS too; "" where there is none (Unix sockets)."""
    inner: Any = getattr(stream, "transport_stream", stream)
    try:
        name = inner.socket.getpeername()
    except (AttributeError, OSError):
        return ""
    return str(name[0]) if isinstance(name, tuple) else ""


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n"
