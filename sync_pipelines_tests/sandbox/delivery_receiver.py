"""A webhook delivery URL on 127.0.0.1 for the sandboxes' sender tests (one for every provider)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest


class DeliveryReceiver:
    """Records POSTs (headers lower-cased, raw body) and GET probes, answering `statuses` in
    turn (then 200); `probe_status` answers the GETs."""

    def __init__(self, path: str, statuses: list[int] | None = None, probe_status: int = 200) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.probes = 0
        self.statuses, self.probe_status = list(statuses or []), probe_status
        lock, outer = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                with lock:
                    outer.probes += 1
                self._answer(outer.probe_status)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    outer.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = outer.statuses.pop(0) if outer.statuses else 200
                self._answer(status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receiver_fixture(path: str) -> Callable[[], Iterator[Callable[..., DeliveryReceiver]]]:
    """A pytest fixture making receivers at `path` (`receiver(statuses, probe_status)`), closed after the test."""

    @pytest.fixture
    def receiver() -> Iterator[Callable[..., DeliveryReceiver]]:
        made: list[DeliveryReceiver] = []

        def _make(statuses: list[int] | None = None, probe_status: int = 200) -> DeliveryReceiver:
            made.append(DeliveryReceiver(path, statuses, probe_status))
            return made[-1]

        yield _make
        for r in made:
            r.close()

    return receiver
