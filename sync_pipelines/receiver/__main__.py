"""`python -m sync_pipelines.receiver [--host 127.0.0.1] [--port 8766] [--workers N] [limits]`.

Serves the webhook receiver until Ctrl-C. The database is `DATABASE_URL` (else the embedded
PostgreSQL); webhook secrets come from the environment, under the names each provider's
`webhooks.py` declares. Connection limits (`limits.py`) are flags or `SYNC_RECEIVER_*` variables,
with production defaults; `--workers N` (`SYNC_RECEIVER_WORKERS`) runs N processes on one socket,
each with its own pool and connection cap.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from sync_pipelines.receiver.limits import ServerLimits, add_arguments, fit_descriptors, limits_from_args
from sync_pipelines.receiver.protocol import GuardedHttpToolsProtocol

APP_FACTORY = "sync_pipelines.receiver.app:create_app"


def server_config(app, host: str, port: int, limits: ServerLimits, *, workers: int = 1,
                  log_level: str = "info", lifespan: str = "on") -> uvicorn.Config:
    """uvicorn settings with our protocol and limits (tests serve the app with the same ones)."""
    config = uvicorn.Config(
        app, host=host, port=port, http=GuardedHttpToolsProtocol, lifespan=lifespan, access_log=False,
        log_level=log_level, timeout_keep_alive=limits.keep_alive_timeout, backlog=limits.backlog,
        workers=workers, factory=isinstance(app, str), timeout_graceful_shutdown=10,
        server_header=False,
    )
    config.receiver_limits = limits  # read by GuardedHttpToolsProtocol, pickled to worker processes
    return config


def serve(args: argparse.Namespace) -> int:
    """Serve with the parsed command line (see `limits.add_arguments`) until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = fit_descriptors(limits_from_args(args))
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.workers > 1:  # each worker builds the app from the environment
        config = server_config(APP_FACTORY, args.host, args.port, limits, workers=args.workers)
        sock = config.bind_socket()
        print(f"webhook receiver on http://{host}:{args.port} ({args.workers} workers)", flush=True)
        try:
            Multiprocess(config, sockets=[sock]).run()
        except KeyboardInterrupt:  # the supervisor stopped its workers already
            pass
        finally:
            sock.close()
        return 0
    from sync_pipelines.receiver.app import create_app

    config = server_config(create_app(), args.host, args.port, limits)
    print(f"webhook receiver on http://{host}:{args.port}", flush=True)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sync_pipelines.receiver",
                                     description="Serve the webhook receiver until Ctrl-C.")
    add_arguments(parser)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
