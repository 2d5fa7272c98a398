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
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from sync_pipelines.core.connection import connect
from sync_pipelines.core.database import redact_url
from sync_pipelines.core.embedded import EmbeddedPostgres, _port_free, local_dir
from sync_pipelines.core.registry import get_account, upsert_account

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


def local_environment(env: dict[str, str], *, app_database: bool = True) -> EmbeddedPostgres | None:
    """Fill in what `env` lacks for local use, keeping whatever is already configured.

    - `DATABASE_URL` (and the demo's `SOURCE_DATABASE_URL`): the embedded server's `app` and
      `source` databases when unset (skipped with `app_database=False`, e.g. for `status`).
    - `DAGSTER_PG_*`: the embedded server's `dagster` database when neither DAGSTER_PG_HOST nor
      DAGSTER_PG_DB is set; otherwise left as they are (both must then be set).
    - `DAGSTER_HOME`: a project-local home linking the project's dagster.yaml when unset. An
      inherited DAGSTER_HOME without a dagster.yaml is refused rather than used: Dagster would
      silently fall back to SQLite there while everything else reads the PostgreSQL storage.

    Returns the embedded server when one is used (check its `started` to see whether this call
    started it), None when only configured databases are used."""
    home = env.get("DAGSTER_HOME")
    if home and not (Path(home) / "dagster.yaml").is_file():
        raise SystemExit(
            f"DAGSTER_HOME={home} has no dagster.yaml, so Dagster would use SQLite there instead of the"
            f" PostgreSQL storage. Unset DAGSTER_HOME to use the project's ({local_dir() / 'dagster_home'}),"
            f" or link {PROJECT_ROOT / 'dagster.yaml'} into it."
        )
    dagster_configured = bool(env.get("DAGSTER_PG_HOST") or env.get("DAGSTER_PG_DB"))
    missing = [v for v in ("DAGSTER_PG_HOST", "DAGSTER_PG_DB") if not env.get(v)]
    if dagster_configured and missing:
        raise SystemExit(f"DAGSTER_PG_* are partly set: set {', '.join(missing)} too.")
    if env.get("DATABASE_URL") and not dagster_configured:
        raise SystemExit(f"DATABASE_URL is set, so set {', '.join(missing)} (and the other DAGSTER_PG_*) too.")
    server = None
    needs_app = app_database and not env.get("DATABASE_URL")
    if needs_app or not dagster_configured:
        server = EmbeddedPostgres()
        server.ensure_running()
        if needs_app:
            env["DATABASE_URL"] = server.ensure_database("app")
            # The replication demo's source ("slave") database, on the same local server.
            env.setdefault("SOURCE_DATABASE_URL", server.ensure_database("source"))
        if not dagster_configured:
            server.ensure_database(DAGSTER_DATABASE)
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


def app_connection(env: Mapping[str, str]):
    """A connection to `env`'s app database; failing, a `DatabaseConnectionError` (one line)."""
    source = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "the embedded PostgreSQL"
    return connect(env["DATABASE_URL"], source=source, autocommit=True)


def check_app_database(env: Mapping[str, str]) -> None:
    """Open the app database once, so a wrong DATABASE_URL stops `dev` before anything starts."""
    with app_connection(env):
        pass


def dev_ports(args: argparse.Namespace) -> dict[str, int]:
    """The ports `dev` listens on, by the option that sets them."""
    return {"--port (Dagster UI)": args.port, "--sandbox-port": args.sandbox_port,
            "--shopify-sandbox-port": args.shopify_sandbox_port, "--receiver-port": args.receiver_port,
            "--google-ads-sandbox-port": args.google_ads_sandbox_port,
            "--meta-sandbox-port": args.meta_sandbox_port, "--linkedin-sandbox-port": args.linkedin_sandbox_port,
            "--tiktok-sandbox-port": args.tiktok_sandbox_port,
            "--ecomanager-sandbox-port": args.ecomanager_sandbox_port,
            "--maystro-sandbox-port": args.maystro_sandbox_port}


def check_ports(ports: Mapping[str, int]) -> None:
    """Fail before starting anything when a port is taken: half a stack (e.g. a daemon whose UI
    port belongs to someone else, or a second `dev` next to the first) is worse than none."""
    for option, port in ports.items():
        if port and not _port_free(port):
            raise SystemExit(f"port {port} is already in use ({option}); is another `sync-pipelines dev`"
                             f" running? Stop it or choose another port with {option.split()[0]}.")


def demo_steps(environ: Mapping[str, str]) -> dict[str, bool]:
    """Which demo writes `dev` may do, given the environment it was started with: only into the
    embedded databases it manages, never into a configured (possibly real) one."""
    return {
        # Sandbox accounts in sync.integrations (and their webhook subscriptions).
        "register_accounts": not environ.get("DATABASE_URL"),
        # Seeding and drifting the replication demo's source tables.
        "seed_source": not environ.get("DATABASE_URL") and not environ.get("SOURCE_DATABASE_URL"),
    }


def _set_credentials(env: dict[str, str], provider: str, accounts) -> None:
    for account in accounts:
        env[credentials_env(provider, account)] = sandbox_secret(provider, account)


def _register(env: dict[str, str], provider: str, accounts) -> None:
    with app_connection(env) as conn:
        for account in accounts:
            var = credentials_env(provider, account)
            found = get_account(conn, provider, account)
            if found is None:
                upsert_account(conn, provider, account, credentials_env=var,
                               display_name=f"Sandbox {account.split('.')[0]}")
            elif found.credentials_env != var:  # keep preferences edited in earlier sessions
                upsert_account(conn, provider, account, credentials_env=var, display_name=found.display_name,
                               active=found.active, sync_enabled=found.sync_enabled, cadence=found.cadence,
                               lookback_days=found.lookback_days)


def _sandboxes(env: dict[str, str], stack: ExitStack, args: argparse.Namespace,
               register: bool) -> dict[str, str]:
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
    _set_credentials(env, "shipstation", SHIPSTATION_STORES)
    if register:
        _register(env, "shipstation", SHIPSTATION_STORES)

    shopify = ShopifySandbox(seed=7, app_secret=WEBHOOK_SECRET)
    for shop, orders in SHOPIFY_SHOPS.items():
        shopify.add_shop(shop, sandbox_secret("shopify", shop), orders=orders, customers=orders // 3)
    shopify_url = stack.enter_context(serve_in_thread(shopify.app, port=args.shopify_sandbox_port)).url
    stack.callback(shopify.close)
    env["SHOPIFY_BASE_URL_TEMPLATE"] = f"{shopify_url}/shops/{{shop}}"
    _set_credentials(env, "shopify", SHOPIFY_SHOPS)
    if register:
        _register(env, "shopify", SHOPIFY_SHOPS)
    shopify.start_drift(args.drift_seconds)
    from sync_pipelines import dev_ads

    ads = dev_ads.start(env, stack, args, register, app_connection)
    from sync_pipelines import dev_cod

    def register_stores(provider: str, stores) -> None:
        if register:
            _register(env, provider, stores)

    cod = dev_cod.start(env, stack, args, register_stores, sandbox_secret, credentials_env)
    return {"ShipStation v2": shipstation_url, "Shopify Admin": shopify_url, **ads, **cod}


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
    with app_connection(env) as conn:
        for shop in SHOPIFY_SHOPS:
            manage(client, get_account(conn, "shopify", shop), "update", default_address())


def _replication_demo(env: dict[str, str], stack: ExitStack, every: float) -> None:
    """Seed the demo source tables and keep changing a few rows, as the sandboxes do."""
    import threading

    from sync_pipelines.defs.replication.demo import drift_demo_source, seed_demo_source

    url = env["SOURCE_DATABASE_URL"]
    seed_demo_source(url)
    stop = threading.Event()

    def drift() -> None:
        while not stop.wait(every):
            drift_demo_source(url)

    threading.Thread(target=drift, name="source-drift", daemon=True).start()
    stack.callback(stop.set)


def spawn(command: list[str], **kwargs) -> subprocess.Popen:
    """Popen whose child honours SIGINT even when `dev` was started with it ignored (`&`, nohup,
    CI): an ignored signal stays ignored across exec, a handled one is reset to the default.
    (No preexec_fn: not safe with the sandbox threads running.)"""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return subprocess.Popen(command, **kwargs)


def dagster_dev(env: Mapping[str, str], port: int, **popen_kwargs) -> subprocess.Popen:
    """`dagster dev` (webserver + daemon) on the project's workspace, started in DAGSTER_HOME:
    started in the project root, Dagster would warn that the root's dagster.yaml "will not be
    used" — it is used, through the link in DAGSTER_HOME, but Dagster only looks at the path."""
    return spawn([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
                  "-w", str(PROJECT_ROOT / "workspace.yaml")],
                 cwd=env["DAGSTER_HOME"], env=dict(env), start_new_session=True, **popen_kwargs)


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    check_ports(dev_ports(args))
    steps = demo_steps(env)
    with ExitStack() as stack:
        server = local_environment(env)
        # A wrong DATABASE_URL stops here with one line, not after everything started.
        check_app_database(env)
        # Stop only a server this process started: not one kept by --keep-db, `db start` or another `dev`.
        if server is not None and server.started and not args.keep_db:
            stack.callback(server.stop)
        sandboxes = _sandboxes(env, stack, args, register=steps["register_accounts"])
        receiver = _receiver(env, stack, args.receiver_port)
        if steps["register_accounts"]:
            _subscribe_sandbox_shops(env)
            from sync_pipelines import dev_cod

            dev_cod.subscribe(env, receiver, app_connection, credentials_env)
        if steps["seed_source"]:
            _replication_demo(env, stack, args.drift_seconds)
        print(f"app database      {redact_url(env['DATABASE_URL'])}")
        if not steps["register_accounts"]:
            print("demo accounts     not registered: DATABASE_URL is set (not the embedded database)")
        if env.get("SOURCE_DATABASE_URL"):
            demo = "replication demo" if steps["seed_source"] else "configured; demo data not written"
            print(f"source database   {redact_url(env['SOURCE_DATABASE_URL'])} ({demo})")
        for name, url in sandboxes.items():
            print(f"sandbox           {url} ({name})")
        print(f"webhook receiver  {receiver}/webhooks/shopify, …/ecomanager, …/maystro/<store>/<token>")
        if env["SYNC_AUTH_TOKEN"] == DEV_TRIGGER_TOKEN:
            print(f"trigger           curl -X POST -H 'Authorization: Bearer {DEV_TRIGGER_TOKEN}'"
                  f" {receiver}/triggers/replication_sync")
            print(f"                  curl -X POST -H 'Authorization: Bearer {DEV_TRIGGER_TOKEN}'"
                  f" -d '{{\"userId\": \"user-alice\", \"timeframeDays\": 7}}' {receiver}/triggers/google_ads_sync")
        print(f"Dagster UI        http://127.0.0.1:{args.port}")
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, _interrupt)
        dagster = dagster_dev(env, args.port)
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
