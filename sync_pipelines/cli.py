"""`sync-pipelines`: start everything locally, manage connected accounts and the embedded database.

    sync-pipelines dev                  embedded PostgreSQL + sandboxes + receiver + Dagster UI/daemon
    sync-pipelines receiver             the webhook receiver alone (production)
    sync-pipelines accounts add PROVIDER ACCOUNT --credentials-env VAR [--name ...] [--cadence ...]
    sync-pipelines accounts list | deactivate | activate
                                        (PROVIDER: a folder of sync_pipelines/defs declaring
                                        provider.py, e.g. shipstation, shopify)
    sync-pipelines status [--days 7] [--provider P] [--json]
    sync-pipelines db start | stop | url | env
"""

from __future__ import annotations

import argparse
import sys

import sync_pipelines.defs
from sync_pipelines.core.connection import DatabaseConnectionError
from sync_pipelines.core.database import connect_app_database, redact_url, resolve_database_url
from sync_pipelines.core.embedded import EmbeddedPostgres
from sync_pipelines.core.providers import ProviderDeclaration, discover_providers, unknown_provider_message
from sync_pipelines.core.registry import CADENCES, list_accounts, set_active, upsert_account
from sync_pipelines.receiver.limits import add_arguments as add_receiver_arguments


def cmd_dev(args: argparse.Namespace) -> int:
    from sync_pipelines import dev

    return dev.run(args)


def cmd_receiver(args: argparse.Namespace) -> int:
    from sync_pipelines.receiver.__main__ import serve

    return serve(args) or 0


def cmd_status(args: argparse.Namespace) -> int:
    import json
    import os
    from datetime import UTC, datetime

    import dagster as dg

    from sync_pipelines.core.dg.status import render_table, status_report
    from sync_pipelines.dev import local_environment

    # Keeps configured DAGSTER_HOME/DAGSTER_PG_*; the embedded server only when they are unset.
    server = local_environment(os.environ, app_database=False)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    try:
        check_dagster_storage(os.environ)
        with dg.DagsterInstance.get() as instance:
            rows = status_report(instance, days=args.days, provider=args.provider)
    finally:
        if server is not None and server.started:  # leave nothing running that was not before
            server.stop()
    if args.json:
        print(json.dumps([r.as_dict(now) for r in rows], indent=2))
    else:
        print(render_table(rows, now) if rows else f"no sync runs in the last {args.days} days")
    return 0


def check_dagster_storage(environ) -> None:
    """Open Dagster's storage database (`DAGSTER_PG_*`) once, so a dead or wrong one is the one
    line of `core.connection` rather than SQLAlchemy's traceback from inside Dagster."""
    from psycopg.conninfo import make_conninfo

    from sync_pipelines.core.connection import connect

    if not environ.get("DAGSTER_PG_HOST"):
        return
    url = make_conninfo(host=environ["DAGSTER_PG_HOST"], port=environ.get("DAGSTER_PG_PORT") or "5432",
                        dbname=environ.get("DAGSTER_PG_DB") or "", user=environ.get("DAGSTER_PG_USERNAME") or "",
                        password=environ.get("DAGSTER_PG_PASSWORD") or "")
    connect(url, source="DAGSTER_PG_*", what="Dagster's storage").close()


# -- accounts ----------------------------------------------------------------------------------
def cmd_accounts(args: argparse.Namespace) -> int:
    provider: ProviderDeclaration | None = args.declaration  # set by main(): a known provider
    with connect_app_database(autocommit=True) as conn:
        if args.action == "add":
            account = upsert_account(
                conn, provider, args.account, credentials_env=args.credentials_env,
                display_name=args.name, cadence=args.cadence, lookback_days=args.lookback_days,
                sync_enabled=not args.disabled,
            )
            print(f"registered {account.provider}/{account.account} ({provider.drives(account.cadence)});"
                  " the accounts sensor adds its partition within a minute")
        elif args.action in ("activate", "deactivate"):
            if not set_active(conn, provider, args.account, args.action == "activate"):
                print(f"no such account: {args.provider}/{args.account}")
                return 1
            print(f"{args.action}d {args.provider}/{args.account}")
        else:
            for a in list_accounts(conn, provider.name if provider else None):
                state = "active" if a.active else "inactive"
                # What launches its syncs: its cadence, or its provider's fixed schedules.
                declared = args.known.get(a.provider)
                auto = (declared.drives(a.cadence) if declared else a.cadence) if a.sync_enabled else "manual only"
                print(f"{a.provider:12} {a.account:20} {state:8} {'$' + a.credentials_env:28} {auto}")
    return 0


# -- db ----------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    server = EmbeddedPostgres()
    if args.action == "stop":
        server.stop()
        print("embedded PostgreSQL stopped")
    elif args.action == "start":
        server.ensure_running()
        print(server.ensure_database("app"))
    elif args.action == "env":
        print(embedded_env_exports())
    else:
        print(redact_url(resolve_database_url()))
    return 0


# What `dagster` and `psql` need to reach the embedded databases by hand, as `make dev` sets them.
EMBEDDED_ENV = ("DAGSTER_HOME", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT",
                "DAGSTER_PG_DB", "DATABASE_URL", "SOURCE_DATABASE_URL")


def embedded_env_exports() -> str:
    """`export NAME=value` lines for the embedded server (started if needed), e.g. for
    `eval "$(sync-pipelines db env)"` before `dagster schedule stop …` from the project root."""
    import shlex

    from sync_pipelines.dev import local_environment

    env: dict[str, str] = {}
    local_environment(env)  # from nothing: the embedded values, whatever this shell has set
    return "\n".join(f"export {name}={shlex.quote(env[name])}" for name in EMBEDDED_ENV)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sync-pipelines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="start the whole system locally")
    dev.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    dev.add_argument("--sandbox-port", type=int, default=8765, help="ShipStation sandbox")
    dev.add_argument("--shopify-sandbox-port", type=int, default=8767)
    dev.add_argument("--receiver-port", type=int, default=8766)
    dev.add_argument("--drift-seconds", type=float, default=60.0,
                     help="how often the sandbox changes some records")
    dev.add_argument("--keep-db", action="store_true", help="leave the embedded database running")
    dev.set_defaults(func=cmd_dev)

    receiver = sub.add_parser("receiver", help="run the webhook receiver (production entry point)")
    add_receiver_arguments(receiver)
    receiver.set_defaults(func=cmd_receiver)

    accounts = sub.add_parser("accounts", help="connected accounts (the registry)")
    accounts.add_argument("action", choices=["add", "list", "activate", "deactivate"])
    accounts.add_argument("provider", nargs="?")
    accounts.add_argument("account", nargs="?")
    accounts.add_argument("--credentials-env", help="env var that holds this account's secret")
    accounts.add_argument("--name", help="display name")
    accounts.add_argument("--cadence", choices=CADENCES,
                          help="which schedule syncs it (default 30min); only for providers without fixed"
                               " schedules (shipstation)")
    accounts.add_argument("--lookback-days", type=int, default=1)
    accounts.add_argument("--disabled", action="store_true", help="no automatic syncs")
    accounts.set_defaults(func=cmd_accounts)

    status = sub.add_parser("status", help="per provider and account: last sync, failures, durations, records")
    status.add_argument("--days", type=int, default=7)
    status.add_argument("--provider")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    db = sub.add_parser("db", help="the embedded PostgreSQL")
    db.add_argument("action", choices=["start", "stop", "url", "env"],
                    help="env: export lines of DAGSTER_HOME, DAGSTER_PG_* and the database URLs (starts it)")
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "accounts" and args.action != "list":
        if not (args.provider and args.account):
            parser.error("accounts add/activate/deactivate need PROVIDER and ACCOUNT")
        if args.action == "add" and not args.credentials_env:
            parser.error("accounts add needs --credentials-env (the env var holding the secret)")
    if args.command == "accounts":
        # Only a provider whose folder declares one (provider.py) has accounts a sensor will pick up.
        known = discover_providers(sync_pipelines.defs)
        if args.provider and args.provider not in known:
            parser.error(unknown_provider_message(args.provider, known))
        args.known = known
        args.declaration = known.get(args.provider) if args.provider else None
        if args.cadence and args.declaration and not args.declaration.takes_cadence:
            parser.error(f"{args.provider} accounts follow fixed schedules, not --cadence"
                         f" ({args.declaration.drives(args.cadence)})")
        args.cadence = args.cadence or "30min"
    try:
        return args.func(args)
    except DatabaseConnectionError as error:
        # One line saying what to check, not a traceback; it never contains the password.
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
