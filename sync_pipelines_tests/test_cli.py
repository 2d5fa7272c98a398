"""The documented way to add and deactivate an account, without hand-written SQL."""

import os
from pathlib import Path

import pytest

from sync_pipelines.cli import main
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import get_account


def test_accounts_add_list_deactivate(database_url, unique, capsys):
    account = f"cli-{unique}"
    assert main(["accounts", "add", "shipstation", account, "--credentials-env", "MY_KEY",
                 "--name", "CLI store", "--cadence", "hourly", "--lookback-days", "3"]) == 0
    with AppDatabase().connect() as conn:
        found = get_account(conn, "shipstation", account)
    assert (found.display_name, found.cadence, found.lookback_days, found.active) == ("CLI store", "hourly", 3, True)
    assert found.credentials_env == "MY_KEY"

    assert main(["accounts", "list", "shipstation"]) == 0
    assert account in capsys.readouterr().out

    assert main(["accounts", "deactivate", "shipstation", account]) == 0
    with AppDatabase().connect() as conn:
        assert not get_account(conn, "shipstation", account).active
    assert main(["accounts", "deactivate", "shipstation", f"missing-{unique}"]) == 1


def test_shopify_accounts_are_stored_lowercase_as_the_receiver_sees_them(database_url, unique, capsys):
    """The receiver lowercases shop domains; a mixed-case registration would get 403 for ever."""
    typed = f"Cli-{unique}.MyShopify.com"
    assert main(["accounts", "add", "shopify", typed, "--credentials-env", "SHOPIFY_TOKEN_CLI"]) == 0
    assert typed.lower() in capsys.readouterr().out
    with AppDatabase().connect() as conn:
        assert get_account(conn, "shopify", typed) is None
        assert get_account(conn, "shopify", typed.lower()).display_name == typed
    assert main(["accounts", "deactivate", "shopify", typed]) == 0
    with AppDatabase().connect() as conn:
        assert not get_account(conn, "shopify", typed.lower()).active
    # Other providers' ids may be case-sensitive: kept as typed.
    assert main(["accounts", "add", "shipstation", f"Store-{unique}", "--credentials-env", "K"]) == 0
    with AppDatabase().connect() as conn:
        assert get_account(conn, "shipstation", f"Store-{unique}") is not None


@pytest.mark.parametrize("provider", ["woocommerce", "replication"])
def test_accounts_of_an_unknown_provider_are_refused_naming_the_known_ones(database_url, unique, capsys, provider):
    """No sensor would ever pick up an account of a provider nobody defined (replication and
    operations run without accounts): refuse it instead of answering "registered"."""
    account = f"my-shop-{unique}"
    for argv in (["accounts", "add", provider, account, "--credentials-env", "K"],
                 ["accounts", "activate", provider, account], ["accounts", "list", provider]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert f"unknown provider '{provider}'" in error and "shipstation, shopify" in error
    with AppDatabase().connect() as conn:
        assert get_account(conn, provider, account) is None


def test_status_reads_the_configured_dagster_storage(dagster_env, monkeypatch, capsys):
    """With DAGSTER_HOME/DAGSTER_PG_* set, status neither overrides them nor starts a server."""
    from sync_pipelines import dev

    def no_server(*args, **kwargs):
        raise AssertionError("status must not start the embedded server here")

    monkeypatch.setattr(dev, "EmbeddedPostgres", no_server)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for key, value in dagster_env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    assert main(["status", "--days", "1"]) == 0
    assert os.environ["DAGSTER_PG_DB"] == "dagster_test"
    capsys.readouterr()


def test_status_stops_the_embedded_server_it_started(monkeypatch, capsys):
    """Without configured storage status uses the embedded server, and leaves none running."""
    import tempfile
    from pathlib import Path

    from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

    local = Path(tempfile.mkdtemp(prefix="sync-status-"))
    local.chmod(0o755)
    monkeypatch.setenv("SYNC_LOCAL_DIR", str(local))
    monkeypatch.setenv("SYNC_EMBEDDED_PG_PORT", str(_free_port()))
    for key in ("DATABASE_URL", "DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB",
                "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    server = EmbeddedPostgres(local / "postgres")
    try:
        assert main(["status"]) == 0
        assert "no sync runs" in capsys.readouterr().out
        assert (local / "postgres" / "data" / "PG_VERSION").exists()
        assert not server.is_running()
    finally:
        server.stop()


@pytest.mark.parametrize("fault, reason", [
    ("closed port", "connection refused"),
    ("wrong password", "password authentication failed"),
    ("unknown database", "no such database"),
])
def test_a_wrong_database_url_is_one_line_on_stderr_without_the_password(postgres_server, fault, reason):
    """Not a psycopg traceback: one line naming user, host, port and database, and what to check."""
    import subprocess
    import sys

    from sync_pipelines_tests.core.wrong_urls import WRONG_PASSWORD, wrong_urls

    url = wrong_urls(postgres_server)[fault]
    env = dict(os.environ, DATABASE_URL=url)
    result = subprocess.run([sys.executable, "-m", "sync_pipelines.cli", "accounts", "list"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = [line for line in result.stderr.splitlines() if "RuntimeDirWarning" not in line
              and "user_runtime_dir" not in line]
    assert line.startswith("sync-pipelines: cannot connect to the app database")
    assert url.split("@", 1)[1] in line and reason in line and "DATABASE_URL" in line
    assert WRONG_PASSWORD not in result.stderr and "Traceback" not in result.stderr


def test_accounts_list_shows_what_really_drives_each_account(database_url, unique, capsys):
    """A Shopify shop follows the provider's fixed schedules: no registry cadence shown (nor accepted)."""
    shop, store = f"drives-{unique}.myshopify.com", f"drives-{unique}"
    assert main(["accounts", "add", "shopify", shop, "--credentials-env", "SHOPIFY_TOKEN_X"]) == 0
    added = capsys.readouterr().out
    assert "schedules: orders+customers every 15 min" in added and "30min" not in added
    assert main(["accounts", "add", "shipstation", store, "--credentials-env", "K", "--cadence", "hourly"]) == 0
    capsys.readouterr()
    assert main(["accounts", "list"]) == 0
    listed = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    # The automation column, then the auth column.
    assert listed[shop].endswith("schedules: orders+customers every 15 min, products every 30 min,"
                                 " analytics hourly, cleanup daily 02:00 UTC  ok")
    assert "30min" not in listed[shop]
    assert " hourly, lookback 1 d " in listed[store] and listed[store].endswith(" ok")
    with pytest.raises(SystemExit) as exited:
        main(["accounts", "add", "shopify", shop, "--credentials-env", "SHOPIFY_TOKEN_X", "--cadence", "daily"])
    assert exited.value.code == 2
    assert "follow fixed schedules" in capsys.readouterr().err


def test_declared_schedules_are_the_schedules_the_code_location_runs():
    """What `accounts list` shows comes from provider.py; it must match the Dagster schedules: a
    provider declaring fixed schedules has exactly those crons and no cadence schedules, one that
    declares none has a schedule for every registry cadence."""
    import sync_pipelines.defs
    from sync_pipelines.core.providers import declared_modules, discover_providers
    from sync_pipelines.core.dg.local_schedules import RUNS_AT
    from sync_pipelines.core.registry import CADENCES
    from sync_pipelines.definitions import defs

    schedules = list(defs.schedules or [])
    # A provider folder the code location does not load yet (no definitions.py) runs no schedules.
    wired = {m.__name__.split(".")[-2] for m in declared_modules(sync_pipelines.defs, "definitions")}
    for name, declared in discover_providers(sync_pipelines.defs).items():
        if name not in wired:
            continue
        mine = [s for s in schedules if s.name.startswith(f"{name}_")]
        cadence_schedules = {f"{name}_{cadence}_schedule" for cadence in CADENCES}
        if declared.schedules:
            assert not cadence_schedules & {s.name for s in mine}
            # Its per-account syncs (the hourly webhook health check is not one).
            # (a schedule on each account's clock states its times as metadata: its cron is a 15-min tick)
            per_account = {(s.metadata[RUNS_AT].value if RUNS_AT in s.metadata else s.cron_schedule)
                           for s in mine if "webhooks" not in s.name}
            assert set(declared.schedules.values()) == per_account, name
        else:
            assert cadence_schedules <= {s.name for s in mine}, name


def test_db_env_prints_what_dagster_commands_need_by_hand(monkeypatch, capsys):
    """`eval "$(sync-pipelines db env)"` gives a shell Dagster's PostgreSQL storage and the app database."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

    local = Path(tempfile.mkdtemp(prefix="sync-db-env-"))
    local.chmod(0o755)
    monkeypatch.setenv("SYNC_LOCAL_DIR", str(local))
    monkeypatch.setenv("SYNC_EMBEDDED_PG_PORT", str(_free_port()))
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere.example/app")  # not what db env prints
    server = EmbeddedPostgres(local / "postgres")
    try:
        assert main(["db", "env"]) == 0
        exports = capsys.readouterr().out
        assert f"export DAGSTER_PG_PORT={server.port}\n" in exports and "elsewhere" not in exports
        probe = ("import dagster, psycopg, os; i = dagster.DagsterInstance.get();"
                 " print(type(i.run_storage).__name__, len(i.get_runs()));"
                 " psycopg.connect(os.environ['DATABASE_URL']).close(); print('app ok')")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DATABASE_URL"))}
        result = subprocess.run(["bash", "-c", f'eval "$1"; exec "{sys.executable}" -c "$2"', "-", exports, probe],
                                capture_output=True, text=True, env=clean, timeout=120)
        assert result.stdout.splitlines() == ["PostgresRunStorage 0", "app ok"], result.stderr
    finally:
        server.stop()


def test_status_with_a_dead_dagster_storage_is_one_line(tmp_path):
    """`status` reads Dagster's storage (DAGSTER_PG_*): a dead one is one line too, not a traceback."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "dagster.yaml").symlink_to(Path(__file__).resolve().parents[1] / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(port),
               DAGSTER_PG_DB="dagster", DAGSTER_PG_USERNAME="postgres", DAGSTER_PG_PASSWORD="s3cret-pw")
    result = subprocess.run([sys.executable, "-m", "sync_pipelines.cli", "status"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "RuntimeDirWarning" not in line
              and "user_runtime_dir" not in line]
    assert line.startswith("sync-pipelines: cannot connect to Dagster's storage postgres@127.0.0.1:")
    assert "DAGSTER_PG_*" in line
