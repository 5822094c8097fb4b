"""What the HTTP server and the routes share: one parsed request, one answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
# framing is the server's alone (defect: a handler's Content-Length once decided it)
SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass
class Request:
    """A complete request: header names lowercased, the path percent-decoded, each query
    parameter's first value."""

    method: str
    path: str
    query: dict[str, str]
    headers: list[tuple[bytes, bytes]]
    body: bytes
    version: str
    keep_alive: bool
    path_params: dict[str, str] = field(default_factory=dict)
    peer: str = ""  # the client's address (its IP; "" on a Unix socket)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Response:
    """An answer: a whole body, or a stream of parts (sent chunked)."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    stream: AsyncIterator[bytes] | None = None

    def __post_init__(self) -> None:
        for name, value in self.headers:
            if name.lower() in SERVER_HEADERS:
                raise ValueError(f"header {name} is set by the server")
            if any(c in name + value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} holds a line break or NUL")


Handler = Callable[[Request], Awaitable[Response]]


def json_response(
    data: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


def error(
    status: int, reason: str, detail: str = "", headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """The one shape of every refusal: {"error": reason, "detail": text}."""
    return json_response({"error": reason, "detail": detail}, status, headers)
