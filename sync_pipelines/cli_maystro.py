"""`sync-pipelines maystro statuses list | set CODE LABEL STATUS`: Maystro's status mapping;
`sync-pipelines maystro webhook-url STORE [--base URL]`: the URL to paste in Maystro's webhook
settings for a store (its token is derived from `MAYSTRO_WEBHOOK_SECRET`, read from the environment).

Maystro adds status codes now and then; a code missing from `maystro.status_map` is kept raw on
the shipment (`status_known = false`) until someone maps it, here or with plain SQL
(`INSERT INTO maystro.status_map (code, label, status) VALUES (…)`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sync_pipelines.core.database import connect_app_database


def add_parsers(sub: argparse._SubParsersAction) -> None:
    maystro = sub.add_parser("maystro", help="Maystro's status mapping (code → our status)")
    actions = maystro.add_subparsers(dest="maystro_command", required=True)
    statuses = actions.add_parser("statuses", help="list or set status codes")
    which = statuses.add_subparsers(dest="action", required=True)
    listing = which.add_parser("list", help="every mapped code")
    listing.add_argument("--json", action="store_true")
    setting = which.add_parser("set", help="add or change a code: CODE LABEL STATUS (e.g. 41 LIVRÉ DELIVERED)")
    setting.add_argument("code", type=int)
    setting.add_argument("label", help="Maystro's French name, as it sends it")
    setting.add_argument("status", help="our status")
    url = actions.add_parser("webhook-url", help="the webhook URL of a store (token from MAYSTRO_WEBHOOK_SECRET)")
    url.add_argument("store")
    url.add_argument("--base", default=os.environ.get("SYNC_RECEIVER_PUBLIC_URL", "http://127.0.0.1:8766"),
                     help="the receiver's public URL (default: SYNC_RECEIVER_PUBLIC_URL)")
    maystro.set_defaults(func=run)


def webhook_url(args: argparse.Namespace) -> int:
    from sync_pipelines.defs.maystro.webhooks import SECRET_ENV, webhook_path

    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        print(f"sync-pipelines: set {SECRET_ENV} (the receiver's) first", file=sys.stderr)
        return 2
    try:
        path = webhook_path(secret, args.store)
    except ValueError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 2
    print(args.base.rstrip("/") + path)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.maystro_command == "webhook-url":
        return webhook_url(args)
    from sync_pipelines.defs.maystro.statuses import list_statuses, set_status

    with connect_app_database(autocommit=True) as conn:
        if args.action == "set":
            if not args.label.strip() or not args.status.strip():
                print("sync-pipelines: LABEL and STATUS must not be empty")
                return 2
            set_status(conn, args.code, args.label.strip(), args.status.strip())
            print(f"{args.code} {args.label.strip()} → {args.status.strip()}")
            return 0
        rows = list_statuses(conn)
    if args.json:
        print(json.dumps([{"code": c, "label": label, "status": s} for c, label, s in rows], ensure_ascii=False))
    else:
        width = max((len(label) for _, label, _ in rows), default=5)
        for code, label, status in rows:
            print(f"{code:>4}  {label:<{width}}  {status}")
    return 0
