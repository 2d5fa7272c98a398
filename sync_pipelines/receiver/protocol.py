"""uvicorn's httptools protocol with the limits it lacks (`limits.ServerLimits`).

uvicorn (0.55) bounds neither the header bytes its httptools parser buffers, nor the time a
client takes to send a request (its keep-alive timer only runs between requests, and not before
the first), nor the connections it holds; its `limit_concurrency` answers 503 only once a request
has fully arrived, so slow clients still pin a descriptor each. Its h11 protocol caps header bytes
(`h11_max_incomplete_event_size`) but parses in pure Python and lacks the rest all the same. So
this subclass keeps the C parser and adds, per connection:

* a header budget: bytes are fed to the parser only while the request line and headers fit in
  `max_header_bytes`; past it the answer is 431 and the connection closes (memory stays flat
  whatever a client sends);
* deadlines: headers within `header_timeout` of the connection (or of the next request's first
  byte) — else 408 and close — and the body within `body_timeout` of the headers — else close;
* `max_requests_per_connection`: that response says `Connection: close`;
* `max_connections`: a connection over the cap is answered 503 and closed before it is read.

The limits travel on uvicorn's `Config` (`config.receiver_limits`), which worker processes
receive pickled, so `--workers N` needs no other channel.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sync_pipelines.receiver.limits import ServerLimits


def _plain_response(status: int, message: str) -> bytes:
    body = message.encode("ascii")
    return (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode("ascii") + body


WARN_EVERY_SECONDS = 10.0  # an attack repeats: say so, not once per connection
_last_warned: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def _warn(logger: logging.Logger, kind: str, message: str, *args: Any) -> None:
    """Log `message` at most once per WARN_EVERY_SECONDS per `kind`, with how many were skipped."""
    now = time.monotonic()
    if now - _last_warned.get(kind, -WARN_EVERY_SECONDS) < WARN_EVERY_SECONDS:
        _suppressed[kind] = _suppressed.get(kind, 0) + 1
        return
    skipped = _suppressed.pop(kind, 0)
    _last_warned[kind] = now
    logger.warning(message + (f" (and {skipped} more since the last warning)" if skipped else ""), *args)


REFUSED = {status: _plain_response(status, message) for status, message in (
    (408, "Request headers not received in time."),
    (431, "Request headers too large."),
    (503, "Too many connections."),
)}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ServerLimits = getattr(config, "receiver_limits", None) or ServerLimits()
        self._reading_headers = True
        self._header_bytes = 0
        self._requests = 0
        self._deadline: asyncio.TimerHandle | None = None

    # -- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            _warn(self.logger, "connections", "connection refused: %d open, the limit", self.limits.max_connections)
            self._refuse(503)
            return
        self._arm(self.limits.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while data and not self.transport.is_closing():
            if self._reading_headers:
                room = self.limits.max_header_bytes - self._header_bytes
                if room <= 0:
                    _warn(self.logger, "headers", "request refused: headers over %d bytes",
                          self.limits.max_header_bytes)
                    self._refuse(431)
                    return
                piece, data = data[:room], data[room:]
                self._header_bytes += len(piece)
            else:
                piece, data = data, b""
            super().data_received(piece)

    # -- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()  # the header budget was reset when the previous message completed
        if self._deadline is None:  # the first request's deadline runs from the connection's start
            self._arm(self.limits.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._requests += 1
        self._arm(self.limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()
        if self._requests >= self.limits.max_requests_per_connection and self.cycle is not None:
            self.cycle.keep_alive = False  # this response says `connection: close`, then closes

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        self._reading_headers, self._header_bytes = True, 0

    # -- helpers
    def _arm(self, seconds: float, handler) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, status: int) -> None:
        self._disarm()
        self._reading_headers = False
        if not self.transport.is_closing():
            self.transport.write(REFUSED[status])
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408)
        elif not self.transport.is_closing():
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():  # the app's receive() sees the disconnect
            _warn(self.logger, "body", "connection dropped: request body not received within %.0f s",
                  self.limits.body_timeout)
            self.transport.close()
