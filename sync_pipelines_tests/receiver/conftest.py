"""Serving the receiver the way production does (our protocol and limits) on a loopback thread,
and a raw HTTP/1.1 client for what `requests` cannot do: hold a connection half-sent, send
oversized or slow headers, and watch when the server closes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn

from sync_pipelines.receiver.__main__ import server_config
from sync_pipelines.receiver.limits import ServerLimits
from sync_pipelines.sandbox.server import RunningServer, bind


@contextlib.contextmanager
def serve_receiver(app, limits: ServerLimits):
    """The app behind `GuardedHttpToolsProtocol` with `limits`, in a thread (lifespan off, as the
    other receiver tests: the pool opens on first use)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, limits, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    running = RunningServer(server, thread, "127.0.0.1", port)
    try:
        yield running
    finally:
        running.stop()


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (status, lower-cased headers, body); raises EOFError if the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"closed after {data[:80]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True once the server closes the connection (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
