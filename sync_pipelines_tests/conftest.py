"""Shared fixtures: a real (embedded) PostgreSQL for the session, sandboxes on loopback ports.

The test cluster lives in a temporary folder on its own port, so tests never touch the local
development database. `DATABASE_URL` points at it for the whole session, which is also what
subprocesses started by tests (e.g. the kill-mid-sync test) inherit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

# Step retries wait 15 s in production; tests that exercise them should not.
os.environ.setdefault("SYNC_STEP_RETRY_DELAY_SECONDS", "0.1")

import dagster as dg
import psycopg
import pytest

from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port


@pytest.fixture(scope="session")
def postgres_server():
    root = Path(tempfile.mkdtemp(prefix="sync-pipelines-test-"))
    os.chmod(root, 0o755)
    server = EmbeddedPostgres(root / "postgres", port=_free_port(), fast=True)
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server):
    url = postgres_server.ensure_database("app_test")
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    yield url
    if previous is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = previous


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def unique():
    """A short unique suffix, so tests sharing the session database never see each other's rows."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def dagster_env(postgres_server, tmp_path_factory) -> dict[str, str]:
    """Environment for a Dagster process using the project's dagster.yaml on the test server."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").symlink_to(Path(__file__).resolve().parents[1] / "dagster.yaml")
    postgres_server.ensure_database("dagster_test")
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_USERNAME="postgres",
        DAGSTER_PG_PASSWORD="unused-with-trust-auth",
        DAGSTER_PG_HOST="127.0.0.1",
        DAGSTER_PG_PORT=str(postgres_server.port),
        DAGSTER_PG_DB="dagster_test",
    )
    return env


@pytest.fixture
def instance():
    """A throwaway Dagster instance (what `dg.materialize` and the sensors run against)."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(autouse=True)
def _no_instance_state_across_tests():
    """Each test starts and ends without a current Dagster instance state storage.

    Entering a `DagsterInstance` puts its state storage in a context variable until the instance
    is exited; a Dagster context object dropped without being closed and collected later (on
    whichever thread the garbage collector runs) leaves a storage whose instance is gone, and a
    later test loading definitions fails with "Attempted to resolve undefined DagsterInstance
    weakref" (seen in full runs, never alone). Reset around every test, as for any global.
    """
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
