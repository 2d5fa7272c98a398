"""`sync-pipelines dev`: fails fast on busy ports, writes demo data only into its own databases,
refuses a DAGSTER_HOME Dagster would silently run on SQLite in, and lets children honour Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys

import pytest

from sync_pipelines import dev
from sync_pipelines.core.embedded import _free_port


def _no_embedded_server(*args, **kwargs):
    raise AssertionError("the embedded server must not be started here")


def test_busy_port_is_reported_by_name_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = argparse.Namespace(port=port, sandbox_port=_free_port(), shopify_sandbox_port=0,
                                  receiver_port=_free_port(), google_ads_sandbox_port=0, meta_sandbox_port=0,
                                  linkedin_sandbox_port=0, tiktok_sandbox_port=0,
                                  ecomanager_sandbox_port=0, maystro_sandbox_port=0)
        with pytest.raises(SystemExit, match=rf"port {port} is already in use \(--port \(Dagster UI\)\)"):
            dev.check_ports(dev.dev_ports(args))
    dev.check_ports(dev.dev_ports(args))  # free again: no error


def test_demo_data_only_goes_into_the_embedded_databases():
    assert dev.demo_steps({}) == {"register_accounts": True, "seed_source": True}
    # An external source database named `source` is still never seeded or drifted.
    assert dev.demo_steps({"SOURCE_DATABASE_URL": "postgresql://h/source"}) == {
        "register_accounts": True, "seed_source": False}
    # An external app database: no sandbox accounts in its registry, no demo source either.
    assert dev.demo_steps({"DATABASE_URL": "postgresql://h/app"}) == {
        "register_accounts": False, "seed_source": False}


def test_dagster_home_without_dagster_yaml_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(dev, "EmbeddedPostgres", _no_embedded_server)
    with pytest.raises(SystemExit, match="has no dagster.yaml"):
        dev.local_environment({"DAGSTER_HOME": str(tmp_path)})


def test_configured_dagster_storage_is_kept(tmp_path, monkeypatch):
    """`status` reads the configured Dagster storage; no embedded server just for it."""
    monkeypatch.setattr(dev, "EmbeddedPostgres", _no_embedded_server)
    (tmp_path / "dagster.yaml").write_text("")
    configured = {"DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_HOST": "db.example", "DAGSTER_PG_PORT": "6543",
                  "DAGSTER_PG_DB": "dagster_prod", "DAGSTER_PG_USERNAME": "u", "DAGSTER_PG_PASSWORD": "p"}
    env = dict(configured)
    assert dev.local_environment(env, app_database=False) is None
    assert env == configured
    with pytest.raises(SystemExit, match="DAGSTER_PG_DB"):
        dev.local_environment({"DAGSTER_PG_HOST": "db.example"}, app_database=False)


CHILD = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"


def test_children_honour_sigint_when_started_with_it_ignored():
    """Started with `&`/nohup, SIGINT is inherited as ignored; `dagster dev` must still stop on it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ignored = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True).stdout
        assert ignored.strip() == "True"  # the defect this guards against
        child = dev.spawn([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.communicate(timeout=30)[0].strip() == "False"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_wrong_database_url_stops_dev_before_anything_starts(postgres_server, dagster_env):
    """One line naming the database and what to check, instead of a UI whose every run fails."""
    import os

    from sync_pipelines_tests.core.wrong_urls import WRONG_PASSWORD, wrong_urls

    env = dict(dagster_env, DATABASE_URL=wrong_urls(postgres_server)["wrong password"])
    ports = [str(_free_port()) for _ in range(4)]
    command = [sys.executable, "-m", "sync_pipelines.cli", "dev", "--port", ports[0], "--sandbox-port", ports[1],
               "--shopify-sandbox-port", ports[2], "--receiver-port", ports[3]]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 1 and out == ""
    assert "password authentication failed" in err and "Traceback" not in err and WRONG_PASSWORD not in err


def test_dagster_dev_starts_without_the_dagster_yaml_will_not_be_used_warning(dagster_env, database_url):
    """Started from the project root, `dagster dev` warned that the root's dagster.yaml "will not
    be used" although the same file is DAGSTER_HOME's; `dev` starts it where no such doubt arises."""
    import os
    import threading

    env = dict(dagster_env, DATABASE_URL=database_url)  # sensors never start the project's own server
    child = dev.dagster_dev(env, _free_port(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # However Dagster behaves, the process group goes within 120 s and the read below ends.
    watchdog = threading.Timer(120, os.killpg, (child.pid, signal.SIGKILL))
    watchdog.start()
    seen = []
    try:
        for line in child.stdout:
            seen.append(line)
            if "Launching Dagster services" in line:
                break
    finally:
        watchdog.cancel()
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert any("Launching Dagster services" in line for line in seen), "".join(seen)
    assert not any("will not be used" in line for line in seen), "".join(seen)


def test_the_ad_demo_connects_two_users_accounts_on_both_platforms_ready_to_sync(database_url, monkeypatch, tmp_path):
    """`make dev`'s ad platforms: sandboxes served, clients pointed at them, each demo user's
    accounts registered with its owner and encrypted tokens, and a sync of one of them works."""
    from contextlib import ExitStack
    from datetime import UTC, datetime

    from sync_pipelines import dev_ads
    from sync_pipelines.core.dg.reports import ReportRange, sync_account
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.core.registry import get_account, list_accounts
    from sync_pipelines.defs.google_ads.assets import SPEC as GOOGLE
    from sync_pipelines.defs.google_ads.client import GoogleAdsClient
    from sync_pipelines.defs.meta_ads.assets import SPEC as META
    from sync_pipelines.defs.linkedin_ads.assets import SPEC as LINKEDIN
    from sync_pipelines.defs.linkedin_ads.client import LinkedInAdsClient
    from sync_pipelines.defs.meta_ads.client import MetaAdsClient
    from sync_pipelines.defs.tiktok_ads.assets import SPEC as TIKTOK
    from sync_pipelines.defs.tiktok_ads.client import TikTokAdsClient

    monkeypatch.setattr(dev_ads, "local_dir", lambda: tmp_path)
    env = {"DATABASE_URL": database_url}
    args = argparse.Namespace(google_ads_sandbox_port=0, meta_sandbox_port=0, linkedin_sandbox_port=0,
                              tiktok_sandbox_port=0, drift_seconds=3600)
    with ExitStack() as stack:
        urls = dev_ads.start(env, stack, args, True, dev.app_connection)
        assert set(urls) == {"Google Ads API", "Meta Marketing API", "LinkedIn Marketing API", "TikTok Business API"}
        assert (tmp_path / "credentials.key").read_text().strip() == env["SYNC_CREDENTIALS_KEYS"]
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with AppDatabase().connect() as conn:
            owners = {(a.provider, a.owner) for a in list_accounts(conn) if a.owner in dev_ads.DEMO_USERS}
            platforms = ("google_ads", "meta_ads", "linkedin_ads", "tiktok_ads")
            assert owners == {(p, u) for u in dev_ads.DEMO_USERS for p in platforms}
            google = get_account(conn, "google_ads", "1234567890")
            meta = get_account(conn, "meta_ads", "1002")
            linkedin = get_account(conn, "linkedin_ads", "508000101")
            tiktok = get_account(conn, "tiktok_ads", "7002")
        now = datetime.now(UTC)
        for spec, client, account in ((GOOGLE, GoogleAdsClient(), google), (META, MetaAdsClient(), meta),
                                      (LINKEDIN, LinkedInAdsClient(), linkedin), (TIKTOK, TikTokAdsClient(), tiktok)):
            done = sync_account(spec, AppDatabase(), client, account, ReportRange(days=2), run_id="dev-test", now=now)
            assert done.ok and done.metadata["records_fetched"] > 0, done.error


def test_the_cod_demo_serves_both_sandboxes_subscribes_the_stores_and_syncs(database_url, conn, monkeypatch):
    """`make dev`'s EcoManager and Maystro: stores registered, agents added, each store's webhooks
    pointed at the receiver (EcoManager's activation probe answered), and a store syncs."""
    from contextlib import ExitStack

    from sync_pipelines import dev_cod
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.core.registry import get_account
    from sync_pipelines.defs.ecomanager.assets import sync_store
    from sync_pipelines.defs.ecomanager.client import EcoManagerClient
    from sync_pipelines.defs.maystro.assets import poll_store
    from sync_pipelines.defs.maystro.client import MaystroClient
    from sync_pipelines.receiver.app import create_app
    from sync_pipelines.sandbox.server import serve_in_thread

    env = {"DATABASE_URL": database_url}
    args = argparse.Namespace(ecomanager_sandbox_port=0, maystro_sandbox_port=0, drift_seconds=3600)
    registered = []

    def register(provider, stores):
        registered.append(provider)
        dev._register(env, provider, stores)

    with ExitStack() as stack:
        urls = dev_cod.start(env, stack, args, register, dev.sandbox_secret, dev.credentials_env)
        assert set(urls) == {"EcoManager shop API v2", "Maystro delivery API"} and registered == ["ecomanager", "maystro"]
        receiver = stack.enter_context(serve_in_thread(create_app(database_url, environ=env))).url
        dev_cod.subscribe(env, receiver, dev.app_connection, dev.credentials_env)
        dev_cod.subscribe(env, receiver, dev.app_connection, dev.credentials_env)  # a second `make dev`: no duplicates
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store = get_account(conn, "ecomanager", "lekidi")
        with EcoManagerClient().session(store) as session:
            assert sorted(hook["event"] for hook in session.webhooks()) == sorted(
                ["OrderCreated", "OrderDeleted", "OrderStatusChanged", "OrderConfirmationStatusChanged",
                 "OrderShippingStatusChanged"])
        done = sync_store(AppDatabase(), EcoManagerClient(), store, "new")
        assert done.ok and done.metadata["records_fetched"].value == 500, done.error
        polled = poll_store(AppDatabase(), MaystroClient(), get_account(conn, "maystro", "lekidi"))
        assert polled.ok and polled.metadata["statuses_read"] == 500, polled.error
    assert {a for (a,) in conn.execute("SELECT agent_id FROM ecomanager.agents WHERE agent_id = ANY(%s)",
                                       (list(dev_cod.AGENTS),))} == set(dev_cod.AGENTS)
