"""Run sandbox apps over real HTTP (real sockets exercise the client's real transport).

``serve_in_thread`` is for tests and the ``dev`` command; ``cli_main`` is every sandbox's
command line, serving it in the foreground. ``main`` serves a ShipStation sandbox::

    python -m sync_pipelines.sandbox.server --port 8765 --stores store-a,store-b --products 500

(the same as ``python -m sync_pipelines.sandbox.shipstation``; the Shopify sandbox's is
``python -m sync_pipelines.sandbox.shopify``).

Only loopback addresses are accepted: the control endpoints have no auth.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterable

import uvicorn


def loopback_host(host: str) -> str:
    """`host` if it is a loopback address (``localhost`` → 127.0.0.1); anything else is refused,
    because the control endpoints have no auth."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"sandbox servers only bind loopback addresses, not {host!r}")


def bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn so port=0 yields a known port with no startup race."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)  # queue early connections: callers may connect before uvicorn accepts
    return sock


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """Quiet, no lifespan, 5 s graceful shutdown: the same server settings for every sandbox."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          lifespan="off", timeout_graceful_shutdown=5)


class RunningServer:
    """Handle on a background uvicorn; ``stop()`` or use as a context manager."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.url = base_url(host, port)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # stuck connection: stop waiting for it
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.url!r}, running={self.running})"


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0,
                    startup_timeout: float = 10.0) -> RunningServer:
    """Serve ``app`` on a daemon thread; returns once the port accepts connections."""
    host = loopback_host(host)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, host, port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"sandbox-uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"sandbox server on {host}:{port} exited during startup")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox server on {host}:{port} did not start in {startup_timeout}s")
        time.sleep(0.01)
    with socket.create_connection((host, port), timeout=startup_timeout):
        pass
    return RunningServer(server, thread, host, port)


def serve_foreground(app: Any, host: str, port: int, *, announce: Callable[[str], None],
                     on_exit: Callable[[], None]) -> None:
    """The CLIs' server: bind `host`:`port` (loopback only; 0 picks a free port), call
    ``announce(url)`` once the port is bound (benchmarks read the URL from that output), then serve
    in the foreground until Ctrl-C / SIGTERM, which uvicorn handles itself in the main thread.
    ``on_exit()`` runs after the server stops, whatever the reason."""
    host = loopback_host(host)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    announce(base_url(host, port))
    try:
        uvicorn.Server(uvicorn_config(app, host, port)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        on_exit()
        sock.close()


def listed_names(listed: str) -> list[str]:
    """The names of a comma-separated command-line option (``--stores a,b``), stripped, each once, in order."""
    return list(dict.fromkeys(x.strip() for x in listed.split(",") if x.strip()))


def add_rate_limit_arguments(parser: argparse.ArgumentParser, requests_per_minute: int, *, per: str = "") -> None:
    """The options of a sandbox's fixed-window `RateLimiter`: ``--requests-per-minute`` (``per``
    says per what, e.g. "per store; "; 0 disables it) and ``--window-seconds``."""
    parser.add_argument("--requests-per-minute", type=int, default=requests_per_minute,
                        help=f"{per}0 disables rate limiting")
    parser.add_argument("--window-seconds", type=float, default=60.0)


def rate_limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sandbox's ``requests_per_minute`` (None: off) and ``window_seconds`` from those options."""
    return {"requests_per_minute": args.requests_per_minute or None, "window_seconds": args.window_seconds}


def add_served_arguments(parser: argparse.ArgumentParser, *, option: str, noun: str, default: list[str],
                         first_id: str, id_note: str = "") -> None:
    """The options every ad sandbox serves its accounts with: ``--<option>s`` (a list),
    ``--<option>-count`` consecutive ids from ``--first-<option>-id`` (what `served_ids` reads),
    ``--campaigns`` per account and ``--currency``. `noun` names an account in the help."""
    parser.add_argument(f"--{option}s", default=None,
                        help=f"comma-separated {noun} ids{id_note}; default {','.join(default)} unless"
                             f" --{option}-count is given")
    parser.add_argument(f"--{option}-count", type=int, default=0,
                        help=f"also serve this many {noun}s with consecutive ids from --first-{option}-id"
                             f" (benchmarks: 1,000 {noun}s without a long list)")
    parser.add_argument(f"--first-{option}-id", default=first_id, help=f"first id of --{option}-count")
    parser.add_argument("--campaigns", type=int, default=5, help=f"campaigns per {noun}")
    parser.add_argument("--currency", default="USD")


def served_ids(listed: str | None, count: int, first: int, *, option: str, default: list[str],
               normalise: Callable[[str], str] = str.strip, digits: int | None = None) -> list[str]:
    """The account ids a sandbox's command line serves: the comma-separated `listed` ones, then
    `count` consecutive ids from `first` (zero-padded to `digits`), each once, in that order;
    `default` when neither is given. `option` names the flags in errors (``--<option>-count``)."""
    if count < 0:
        raise SystemExit(f"--{option}-count must be >= 0")
    if digits is not None and first + count > 10**digits:
        raise SystemExit(f"--first-{option}-id + --{option}-count runs past {digits} digits")
    ids = listed_names(listed or "")
    ids += [f"{first + i:0{digits or 0}d}" for i in range(count)]
    return list(dict.fromkeys(normalise(x) for x in ids or default))


def cli_main(argv: list[str] | None, *, prog: str, description: str, port: int, accounts: str,
             add_arguments: Callable[[argparse.ArgumentParser], None],
             build: Callable[[argparse.Namespace], tuple[Any, Callable[[str], Iterable[str]]]]) -> int:
    """A sandbox's command line: ``--host``/``--port``, the provider's own options
    (``add_arguments``), ``--seed`` and ``--drift-seconds``. ``build(args)`` returns the sandbox
    and its banner (``url -> lines``), printed once the port is bound; drift starts then too."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=port)
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drift-seconds", type=float, default=0.0,
                        help=f"mutate every {accounts} this often (0 = static data)")
    args = parser.parse_args(argv)

    loopback_host(args.host)  # refuse a non-loopback host before generating any data
    sandbox, banner = build(args)

    def announce(url: str) -> None:
        if args.drift_seconds > 0:
            sandbox.start_drift(args.drift_seconds)
        for line in banner(url):
            print(line, flush=True)

    serve_foreground(sandbox.app, args.host, args.port, announce=announce, on_exit=sandbox.close)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ShipStation sandbox's command line (kept here: ``python -m sync_pipelines.sandbox.server``)."""
    from sync_pipelines.sandbox.shipstation.app import main as shipstation_main

    return shipstation_main(argv)


if __name__ == "__main__":
    sys.exit(main())
