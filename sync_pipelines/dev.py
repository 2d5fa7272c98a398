"""`sync-pipelines dev`: the whole system on one machine, in one terminal.

Embedded PostgreSQL (app + Dagster databases), the provider sandboxes with a few demo accounts
registered, the webhook receiver (with the sandbox shops subscribed to it), and `dagster dev`
(webserver + daemon) using the top-level `dagster.yaml`. Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from sync_pipelines.core.database import redact_url
from sync_pipelines.core.embedded import EmbeddedPostgres, local_dir
from sync_pipelines.core.registry import get_account, upsert_account
from sync_pipelines.core.resources import AppDatabase

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_DATABASE = "dagster"
SHIPSTATION_STORES = {"store-a": 2_000, "store-b": 500}
SHOPIFY_SHOPS = {"acme.myshopify.com": 1_500, "globex.myshopify.com": 400}
WEBHOOK_SECRET = "sandbox-shopify-app-secret"
DEV_TRIGGER_TOKEN = "local-dev-trigger-token"  # only when SYNC_AUTH_TOKEN is not set


def credentials_env(provider: str, account: str) -> str:
    name = account.split(".")[0]
    return f"{provider}_TOKEN_{name}".upper().replace("-", "_")


def sandbox_secret(provider: str, account: str) -> str:
    return f"sandbox-{provider}-{account.split('.')[0]}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def local_environment(env: dict[str, str]) -> EmbeddedPostgres | None:
    """Fill `env` for local use: the embedded server's `app` and `dagster` databases unless
    `DATABASE_URL` is set, and a DAGSTER_HOME whose dagster.yaml is the project's. Returns the
    embedded server it started (None when using the configured databases)."""
    server = None
    if env.get("DATABASE_URL"):
        missing = [v for v in ("DAGSTER_PG_HOST", "DAGSTER_PG_DB") if not env.get(v)]
        if missing:
            raise SystemExit(f"DATABASE_URL is set, so set {', '.join(missing)} (and the other DAGSTER_PG_*) too.")
    else:
        server = EmbeddedPostgres()
        server.ensure_running()
        env["DATABASE_URL"] = server.ensure_database("app")
        server.ensure_database(DAGSTER_DATABASE)
        # The replication demo's source ("slave") database, on the same local server.
        env.setdefault("SOURCE_DATABASE_URL", server.ensure_database("source"))
        env.update(
            DAGSTER_PG_USERNAME="postgres",
            DAGSTER_PG_PASSWORD="trust-auth-ignores-this",
            DAGSTER_PG_HOST="127.0.0.1",
            DAGSTER_PG_PORT=str(server.port),
            DAGSTER_PG_DB=DAGSTER_DATABASE,
        )
    if not env.get("DAGSTER_HOME"):
        home = local_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        link = home / "dagster.yaml"
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(PROJECT_ROOT / "dagster.yaml")
        env["DAGSTER_HOME"] = str(home)
    return server


def _register(env: dict[str, str], provider: str, accounts) -> None:
    with AppDatabase(url=env["DATABASE_URL"]).connect() as conn:
        for account in accounts:
            var = credentials_env(provider, account)
            env[var] = sandbox_secret(provider, account)
            found = get_account(conn, provider, account)
            if found is None:
                upsert_account(conn, provider, account, credentials_env=var,
                               display_name=f"Sandbox {account.split('.')[0]}")
            elif found.credentials_env != var:  # keep preferences edited in earlier sessions
                upsert_account(conn, provider, account, credentials_env=var, display_name=found.display_name,
                               active=found.active, sync_enabled=found.sync_enabled, cadence=found.cadence,
                               lookback_days=found.lookback_days)


def _sandboxes(env: dict[str, str], stack: ExitStack, args: argparse.Namespace) -> dict[str, str]:
    from sync_pipelines.sandbox.server import serve_in_thread
    from sync_pipelines.sandbox.shipstation import ShipStationSandbox
    from sync_pipelines.sandbox.shopify import ShopifySandbox

    shipstation = ShipStationSandbox(seed=7)
    for store, products in SHIPSTATION_STORES.items():
        shipstation.add_store(sandbox_secret("shipstation", store), products=products)
    shipstation.start_drift(args.drift_seconds)
    stack.callback(shipstation.stop_drift)
    shipstation_url = stack.enter_context(serve_in_thread(shipstation.app, port=args.sandbox_port)).url
    env["SHIPSTATION_BASE_URL"] = shipstation_url
    _register(env, "shipstation", SHIPSTATION_STORES)

    shopify = ShopifySandbox(seed=7, app_secret=WEBHOOK_SECRET)
    for shop, orders in SHOPIFY_SHOPS.items():
        shopify.add_shop(shop, sandbox_secret("shopify", shop), orders=orders, customers=orders // 3)
    shopify_url = stack.enter_context(serve_in_thread(shopify.app, port=args.shopify_sandbox_port)).url
    stack.callback(shopify.close)
    env["SHOPIFY_BASE_URL_TEMPLATE"] = f"{shopify_url}/shops/{{shop}}"
    _register(env, "shopify", SHOPIFY_SHOPS)
    shopify.start_drift(args.drift_seconds)
    return {"ShipStation v2": shipstation_url, "Shopify Admin": shopify_url}


def _receiver(env: dict[str, str], stack: ExitStack, port: int) -> str:
    from sync_pipelines.receiver.app import create_app
    from sync_pipelines.sandbox.server import base_url, serve_in_thread

    env.setdefault("SHOPIFY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    env.setdefault("SYNC_AUTH_TOKEN", DEV_TRIGGER_TOKEN)
    # QStash tokens are checked against the public URL: a tunnel's if one was set, else this address.
    public_url = env.get("SYNC_RECEIVER_PUBLIC_URL") or base_url("127.0.0.1", port)
    environ = dict(env, SYNC_RECEIVER_PUBLIC_URL=public_url)
    url = stack.enter_context(serve_in_thread(create_app(env["DATABASE_URL"], environ=environ), port=port)).url
    env["SYNC_RECEIVER_PUBLIC_URL"] = url
    return url


def _subscribe_sandbox_shops(env: dict[str, str]) -> None:
    """Register the demo shops' webhooks the way the management job does (same code path)."""
    from sync_pipelines.defs.shopify.client import ShopifyClient
    from sync_pipelines.defs.shopify.management import default_address, manage

    os.environ.update({k: v for k, v in env.items() if k.startswith("SHOPIFY_TOKEN_")})
    os.environ["SYNC_RECEIVER_PUBLIC_URL"] = env["SYNC_RECEIVER_PUBLIC_URL"]
    client = ShopifyClient(base_url_template=env["SHOPIFY_BASE_URL_TEMPLATE"])
    with AppDatabase(url=env["DATABASE_URL"]).connect() as conn:
        for shop in SHOPIFY_SHOPS:
            manage(client, get_account(conn, "shopify", shop), "update", default_address())


def _replication_demo(env: dict[str, str], stack: ExitStack, every: float) -> None:
    """Seed the demo source tables and keep changing a few rows, as the sandboxes do."""
    import threading

    from sync_pipelines.defs.replication.demo import drift_demo_source, seed_demo_source

    url = env.get("SOURCE_DATABASE_URL")
    if not url or not url.endswith("/source"):
        return  # a real source database is never written to
    seed_demo_source(url)
    stop = threading.Event()

    def drift() -> None:
        while not stop.wait(every):
            drift_demo_source(url)

    threading.Thread(target=drift, name="source-drift", daemon=True).start()
    stack.callback(stop.set)


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    with ExitStack() as stack:
        server = local_environment(env)
        if server is not None and not args.keep_db:
            stack.callback(server.stop)
        sandboxes = _sandboxes(env, stack, args)
        receiver = _receiver(env, stack, args.receiver_port)
        _subscribe_sandbox_shops(env)
        _replication_demo(env, stack, args.drift_seconds)
        print(f"app database      {redact_url(env['DATABASE_URL'])}")
        if env.get("SOURCE_DATABASE_URL"):
            print(f"source database   {redact_url(env['SOURCE_DATABASE_URL'])} (replication demo)")
        for name, url in sandboxes.items():
            print(f"sandbox           {url} ({name})")
        print(f"webhook receiver  {receiver}/webhooks/shopify")
        if env["SYNC_AUTH_TOKEN"] == DEV_TRIGGER_TOKEN:
            print(f"trigger           curl -X POST -H 'Authorization: Bearer {DEV_TRIGGER_TOKEN}'"
                  f" {receiver}/triggers/replication_sync")
        print(f"Dagster UI        http://127.0.0.1:{args.port}")
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, _interrupt)
        dagster = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(args.port),
             "-w", str(PROJECT_ROOT / "workspace.yaml")],
            cwd=PROJECT_ROOT, env=env, start_new_session=True,
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
