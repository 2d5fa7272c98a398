"""`sync-pipelines`: start everything locally, manage connected accounts and the embedded database.

    sync-pipelines dev                  embedded PostgreSQL + sandboxes + receiver + Dagster UI/daemon
    sync-pipelines receiver             the webhook receiver alone (production)
    sync-pipelines accounts add PROVIDER ACCOUNT --credentials-env VAR [--name ...] [--cadence ...]
    sync-pipelines accounts connect PROVIDER ACCOUNT [--owner USER] [--name N] [--setting KEY=VALUE ...]
                                        (--tokens-stdin | --tokens-env VAR)   OAuth tokens as JSON, stored
                                        encrypted (SYNC_CREDENTIALS_KEYS); never on the command line
    sync-pipelines accounts set PROVIDER ACCOUNT [--enable | --disable] [--cadence C] [--lookback-days N]
    sync-pipelines accounts list [PROVIDER] [--json] | activate | deactivate PROVIDER ACCOUNT
    sync-pipelines accounts days PROVIDER ACCOUNT [--days 30] [--json]   which days synced, when; gaps
                                        (PROVIDER: a folder of sync_pipelines/defs declaring
                                        provider.py, e.g. shipstation, shopify, google_ads)
    sync-pipelines credentials rotate [--provider P]   re-encrypt tokens with the first key
    sync-pipelines status [--days 7] [--provider P] [--json]   runs, plus accounts needing
                                        re-authorisation and failed batch-run accounts
    sync-pipelines agents add|set|list|deactivate|unassign|queue|assign|assign-from   EcoManager agents
    sync-pipelines db start | stop | url | env
    sync-pipelines maystro statuses list [--json] | set CODE LABEL STATUS   Maystro's status mapping
"""

from __future__ import annotations

import argparse
import sys

from sync_pipelines.cli_accounts import add_parsers as add_account_parsers
from sync_pipelines.cli_accounts import prepare as prepare_accounts
from sync_pipelines.cli_agents import add_parsers as add_agent_parsers
from sync_pipelines.cli_maystro import add_parsers as add_maystro_parsers
from sync_pipelines.core.connection import DatabaseConnectionError
from sync_pipelines.core.database import redact_url, resolve_database_url
from sync_pipelines.core.embedded import EmbeddedPostgres
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
        attention = accounts_attention(server, args.provider)
    finally:
        if server is not None and server.started:  # leave nothing running that was not before
            server.stop()
    if args.json:
        print(json.dumps({"runs": [r.as_dict(now) for r in rows],
                          **(attention.as_dict() if attention else dict.fromkeys(UNREAD))},
                         indent=2))
        return 0
    print(render_table(rows, now) if rows else f"no sync runs in the last {args.days} days")
    if attention is None:
        print("\naccounts needing attention: not read (DATABASE_URL is not set)")
    elif attention.needs_reauthorisation or attention.failed or attention.expiring:
        from sync_pipelines.core.dg.status import render_attention

        print("\n" + render_attention(attention))
    return 0


UNREAD = ("needs_reauthorisation", "failed_accounts", "authorisation_expiring")  # null in --json when the app database is not read


def accounts_attention(server, provider: str | None):
    """Accounts needing re-authorisation or whose latest batch run failed, from the app database:
    `DATABASE_URL`, else the embedded server status already uses; None when Dagster's storage is
    configured but the app database is not (starting a local server would show nothing real)."""
    import os

    from sync_pipelines.core.connection import connect
    from sync_pipelines.core.database import normalize_url
    from sync_pipelines.core.dg.status import accounts_attention as read

    url = os.environ.get("DATABASE_URL")
    if not url and server is None:
        return None
    source = "DATABASE_URL" if url else "the embedded PostgreSQL"
    with connect(normalize_url(url) if url else server.ensure_database("app"), source=source, autocommit=True) as conn:
        return read(conn, provider)


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
    dev.add_argument("--google-ads-sandbox-port", type=int, default=8768)
    dev.add_argument("--meta-sandbox-port", type=int, default=8769)
    dev.add_argument("--linkedin-sandbox-port", type=int, default=8770)
    dev.add_argument("--tiktok-sandbox-port", type=int, default=8771)
    dev.add_argument("--ecomanager-sandbox-port", type=int, default=8772)
    dev.add_argument("--maystro-sandbox-port", type=int, default=8773)
    dev.add_argument("--drift-seconds", type=float, default=60.0,
                     help="how often the sandbox changes some records")
    dev.add_argument("--keep-db", action="store_true", help="leave the embedded database running")
    dev.set_defaults(func=cmd_dev)

    receiver = sub.add_parser("receiver", help="run the webhook receiver (production entry point)")
    add_receiver_arguments(receiver)
    receiver.set_defaults(func=cmd_receiver)

    add_account_parsers(sub)
    add_agent_parsers(sub)
    add_maystro_parsers(sub)

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
    args, extra = parser.parse_known_args(argv)
    if args.command in ("accounts", "credentials"):
        prepare_accounts(parser, args, extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except DatabaseConnectionError as error:
        # One line saying what to check, not a traceback; it never contains the password.
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
