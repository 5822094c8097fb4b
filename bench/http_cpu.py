"""CPU per request of the node's HTTP server alone: a server process answering a small
JSON echo, a client process sending requests one at a time over keep-alive connections;
the server's CPU time over the requests it answered.

    python -m bench.http_cpu [--requests 20000] [--connections 8] [--server PATH --asgi]

`--server` loads another http_server.py by path (the one before the llhttp change took
an ASGI app: `--asgi`), so that both are measured with one client in one sitting.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.runner import cpu_seconds

BODY = b'{"tx":"' + b"ab" * 120 + b'"}'
REQUEST = (
    b"POST /v1/tx HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


def serve(path: str | None, asgi: bool, port_file: str) -> None:
    import trio

    if path:
        spec = importlib.util.spec_from_file_location("measured_http_server", path)
        assert spec and spec.loader
        module: Any = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        from node import http_server as module
    from node.web import Request, Response

    async def handler(request: Request) -> Response:
        return Response(202, b'{"status":"pending","n":%d}' % len(request.body))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        body = b'{"status":"pending","n":%d}' % len(message["body"])
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(module.serve_http, app if asgi else handler,
                                            "127.0.0.1", 0, 1 << 20)  # fmt: skip
            with open(port_file, "w") as out:
                out.write(str(listeners[0].socket.getsockname()[1]))

    trio.run(main)


def drive(port: int, requests: int, connections: int) -> float:
    """Send `requests` over `connections` keep-alive sockets, one at a time each."""
    import selectors

    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(sock, selectors.EVENT_READ)
        sock.sendall(REQUEST)
    sent, answered = connections, 0
    started = time.perf_counter()
    while answered < requests:
        for key, _ in selector.select():
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            data = ready.recv(65536)
            assert data.startswith(b"HTTP/1.1 202"), data[:100]
            answered += 1
            if sent < requests:
                ready.sendall(REQUEST)
                sent += 1
    elapsed = time.perf_counter() - started
    for sock in socks:
        sock.close()
    return elapsed


def measure(path: str | None, asgi: bool, requests: int, connections: int) -> dict[str, Any]:
    port_file = f"/tmp/http_cpu_port_{os.getpid()}"
    if os.path.exists(port_file):
        os.unlink(port_file)
    command = [sys.executable, "-m", "bench.http_cpu", "--serve", "--port-file", port_file]
    command += (["--server", path] if path else []) + (["--asgi"] if asgi else [])
    server = subprocess.Popen(command)  # its CPU is read from /proc (`cpu_seconds`)
    try:
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            time.sleep(0.05)
        port = int(Path(port_file).read_text())
        drive(port, 500, connections)  # warm-up, subtracted below
        warm = cpu_seconds(server.pid)
        elapsed = drive(port, requests, connections)
        cpu_s = cpu_seconds(server.pid) - warm
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        os.unlink(port_file)
    return {"server": path or "node/http_server.py", "requests": requests,
            "connections": connections, "cpu_us_per_request": round(cpu_s / requests * 1e6, 1),
            "requests_per_s": round(requests / elapsed)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server", help="another http_server.py to measure")
    parser.add_argument("--asgi", action="store_true", help="that server takes an ASGI app")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.server, args.asgi, args.port_file)
        return 0
    print(json.dumps(measure(args.server, args.asgi, args.requests, args.connections)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
