"""How much of the receiver one client may hold, and for how long: the server's limits.

The receiver faces the internet, so every resource a connection can pin is bounded: the bytes of
its request line and headers, the time it takes to send them and its body, its idle time between
requests, the requests it may send on one connection, and the connections open at once (per
worker process). Defaults are production values; each is a `--flag` of `python -m
sync_pipelines.receiver` and an environment variable (`SYNC_RECEIVER_<NAME>`), the flag winning.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger("sync_pipelines.receiver")

RESERVED_DESCRIPTORS = 64  # the pool's connections, logs, the listening socket, imports


def _limit(default, help_text: str):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = _limit(16_384, "bytes of request line + headers; more is answered 431 and the"
                                   " connection closed (webhook headers are 1-2 KB)")
    header_timeout: float = _limit(10.0, "seconds from a connection's start (or its next request's first"
                                   " byte) to the end of the headers; slower is answered 408 and dropped")
    body_timeout: float = _limit(20.0, "seconds from the end of the headers to the end of the body;"
                                 " slower is dropped")
    keep_alive_timeout: int = _limit(5, "seconds an idle keep-alive connection is kept between requests")
    max_requests_per_connection: int = _limit(1_000, "requests on one connection; the last response says"
                                              " 'Connection: close'")
    max_connections: int = _limit(1_000, "open connections per worker process; one more is answered 503"
                                  " and closed at once")
    backlog: int = _limit(1_024, "connections the kernel queues before the process accepts them")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerLimits:
        values = {}
        for field in dataclasses.fields(cls):
            text = environ.get(env_name(field.name))
            if text:
                values[field.name] = float(text) if field.type == "float" else int(text)
        return cls(**values)


def env_name(field_name: str) -> str:
    return f"SYNC_RECEIVER_{field_name.upper()}"


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] = os.environ) -> None:
    """The receiver's command line (shared by `python -m sync_pipelines.receiver` and
    `sync-pipelines receiver`): address, workers, and one flag per limit."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--workers", type=int, default=int(environ.get("SYNC_RECEIVER_WORKERS", "1")),
                        help="processes sharing the port, each with its own pool and connection cap"
                             " (env SYNC_RECEIVER_WORKERS; default %(default)s)")
    defaults = ServerLimits.from_env(environ)
    for field in dataclasses.fields(ServerLimits):
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name,
                            type=float if field.type == "float" else int, default=getattr(defaults, field.name),
                            help=f"{field.metadata['help']} (env {env_name(field.name)}; default %(default)s)")


def limits_from_args(args: argparse.Namespace) -> ServerLimits:
    return ServerLimits(**{field.name: getattr(args, field.name) for field in dataclasses.fields(ServerLimits)})


def fit_descriptors(limits: ServerLimits) -> ServerLimits:
    """Raise the open-file soft limit as far as needed (and allowed); if the connection cap still
    does not fit under it, lower the cap: running out of descriptors refuses every connection."""
    needed = limits.max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(1, soft - RESERVED_DESCRIPTORS)
        log.warning("open-file limit %d is below --max-connections %d + %d: capping connections at %d",
                    soft, limits.max_connections, RESERVED_DESCRIPTORS, fitted)
        return dataclasses.replace(limits, max_connections=fitted)
    return limits
