"""`sync-pipelines maystro statuses list | set CODE LABEL STATUS`: Maystro's status mapping.

Maystro adds status codes now and then; a code missing from `maystro.status_map` is kept raw on
the shipment (`status_known = false`) until someone maps it, here or with plain SQL
(`INSERT INTO maystro.status_map (code, label, status) VALUES (…)`).
"""

from __future__ import annotations

import argparse
import json

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
    maystro.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
