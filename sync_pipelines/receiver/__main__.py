"""`python -m sync_pipelines.receiver [--host 127.0.0.1] [--port 8766]`: serve the webhook receiver.

The database is `DATABASE_URL` (else the embedded PostgreSQL); webhook secrets come from the
environment, under the names each provider's `webhooks.py` declares.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from sync_pipelines.receiver.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sync_pipelines.receiver",
                                     description="Serve the webhook receiver until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"webhook receiver on http://{host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
