"""`sync-pipelines`: start everything locally, manage connected accounts and the embedded database.

    sync-pipelines dev                  embedded PostgreSQL + sandbox providers + Dagster UI/daemon
    sync-pipelines accounts add PROVIDER ACCOUNT --credentials-env VAR [--name ...] [--cadence ...]
    sync-pipelines accounts list | deactivate | activate
    sync-pipelines db start | stop | url
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from sync_pipelines.core.database import redact_url, resolve_database_url
from sync_pipelines.core.resources import AppDatabase
from sync_pipelines.core.embedded import EmbeddedPostgres, local_dir
from sync_pipelines.core.registry import CADENCES, list_accounts, set_active, upsert_account

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_DATABASE = "dagster"
# Demo stores the sandbox serves and `dev` registers, with their (sandbox-only) keys.
SANDBOX_STORES = {"store-a": 2_000, "store-b": 500}


def sandbox_key(provider: str, account: str) -> str:
    return f"sandbox-{provider}-{account}"


def credentials_env(provider: str, account: str) -> str:
    return f"{provider}_API_KEY_{account}".upper().replace("-", "_")


# -- dev ---------------------------------------------------------------------------------------
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
def cmd_dev(args: argparse.Namespace) -> int:
    from sync_pipelines.sandbox.server import serve_in_thread
    from sync_pipelines.sandbox.shipstation import ShipStationSandbox

    env = dict(os.environ)
    server = None
    if not env.get("DATABASE_URL"):
        server = EmbeddedPostgres()
        server.ensure_running()
        env["DATABASE_URL"] = server.ensure_database("app")
        server.ensure_database(DAGSTER_DATABASE)
        env.update(
            DAGSTER_PG_USERNAME="postgres",
            DAGSTER_PG_PASSWORD="trust-auth-ignores-this",
            DAGSTER_PG_HOST="127.0.0.1",
            DAGSTER_PG_PORT=str(server.port),
            DAGSTER_PG_DB=DAGSTER_DATABASE,
        )
    missing = [v for v in ("DAGSTER_PG_HOST", "DAGSTER_PG_DB") if not env.get(v)]
    if missing:
        print(f"DATABASE_URL is set, so set {', '.join(missing)} (and the other DAGSTER_PG_*) too.")
        return 2

    sandbox = ShipStationSandbox(seed=7)
    for store, products in SANDBOX_STORES.items():
        sandbox.add_store(sandbox_key("shipstation", store), products=products)
    sandbox.start_drift(args.drift_seconds)
    running = serve_in_thread(sandbox.app, port=args.sandbox_port)
    env["SHIPSTATION_BASE_URL"] = running.url

    db = AppDatabase(url=env["DATABASE_URL"])
    with db.connect() as conn:
        for store in SANDBOX_STORES:
            var = credentials_env("shipstation", store)
            env[var] = sandbox_key("shipstation", store)
            upsert_account(conn, "shipstation", store, credentials_env=var,
                           display_name=f"Sandbox {store}")

    dagster_home = local_dir() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    link = dagster_home / "dagster.yaml"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    env["DAGSTER_HOME"] = str(dagster_home)

    print(f"app database      {redact_url(env['DATABASE_URL'])}")
    print(f"sandbox           {running.url} (ShipStation v2: {', '.join(SANDBOX_STORES)})")
    print(f"Dagster UI        http://127.0.0.1:{args.port}")
    sys.stdout.flush()
    # SIGTERM (e.g. from a process manager) shuts down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    dagster = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(args.port),
         "-w", str(PROJECT_ROOT / "workspace.yaml")],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        return dagster.wait()
    except KeyboardInterrupt:
        print("\nstopping …")
        return 0
    finally:
        if dagster.poll() is None:
            os.killpg(dagster.pid, signal.SIGINT)
            try:
                dagster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(dagster.pid, signal.SIGKILL)
        sandbox.stop_drift()
        running.stop()
        if server is not None and not args.keep_db:
            server.stop()


# -- accounts ----------------------------------------------------------------------------------
def cmd_accounts(args: argparse.Namespace) -> int:
    db = AppDatabase()
    with db.connect() as conn:
        if args.action == "add":
            account = upsert_account(
                conn, args.provider, args.account, credentials_env=args.credentials_env,
                display_name=args.name, cadence=args.cadence, lookback_days=args.lookback_days,
                sync_enabled=not args.disabled,
            )
            print(f"registered {account.provider}/{account.account} (cadence {account.cadence});"
                  " the accounts sensor adds its partition within a minute")
        elif args.action in ("activate", "deactivate"):
            if not set_active(conn, args.provider, args.account, args.action == "activate"):
                print(f"no such account: {args.provider}/{args.account}")
                return 1
            print(f"{args.action}d {args.provider}/{args.account}")
        else:
            for a in list_accounts(conn, args.provider):
                state = "active" if a.active else "inactive"
                auto = a.cadence if a.sync_enabled else "manual only"
                print(f"{a.provider:12} {a.account:20} {state:8} {auto:12} creds=${a.credentials_env}")
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
    else:
        print(redact_url(resolve_database_url()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sync-pipelines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="start the whole system locally")
    dev.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    dev.add_argument("--sandbox-port", type=int, default=8765)
    dev.add_argument("--drift-seconds", type=float, default=60.0,
                     help="how often the sandbox changes some records")
    dev.add_argument("--keep-db", action="store_true", help="leave the embedded database running")
    dev.set_defaults(func=cmd_dev)

    accounts = sub.add_parser("accounts", help="connected accounts (the registry)")
    accounts.add_argument("action", choices=["add", "list", "activate", "deactivate"])
    accounts.add_argument("provider", nargs="?")
    accounts.add_argument("account", nargs="?")
    accounts.add_argument("--credentials-env", help="env var that holds this account's secret")
    accounts.add_argument("--name", help="display name")
    accounts.add_argument("--cadence", choices=CADENCES, default="30min")
    accounts.add_argument("--lookback-days", type=int, default=1)
    accounts.add_argument("--disabled", action="store_true", help="no automatic syncs")
    accounts.set_defaults(func=cmd_accounts)

    db = sub.add_parser("db", help="the embedded PostgreSQL")
    db.add_argument("action", choices=["start", "stop", "url"])
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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
