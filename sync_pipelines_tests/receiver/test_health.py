"""`GET /health`: app database, inbox backlog, and Dagster's storage with daemon heartbeats."""

from __future__ import annotations

import time

import dagster as dg
import pytest
import requests
from dagster._daemon.types import DaemonHeartbeat
from psycopg.conninfo import conninfo_to_dict

from sync_pipelines.receiver.app import create_app
from sync_pipelines.receiver.health import REQUIRED_DAEMONS, dagster_storage_url
from sync_pipelines.sandbox.server import serve_in_thread


def beat(instance: dg.DagsterInstance, age_seconds: float) -> None:
    for daemon in REQUIRED_DAEMONS:
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - age_seconds, daemon, "test-daemon", []))


def health(database_url, environ):
    with serve_in_thread(create_app(database_url, environ=environ)) as running:
        response = requests.get(f"{running.url}/health", timeout=10)
    return response.status_code, response.json()


def test_health_reports_daemon_heartbeats_from_dagster_storage(database_url, dagster_env, monkeypatch):
    for key, value in dagster_env.items():
        monkeypatch.setenv(key, value)
    environ = dict(dagster_env, SHOPIFY_WEBHOOK_SECRET="x")
    with dg.DagsterInstance.get() as instance:
        beat(instance, age_seconds=3)
        status, body = health(database_url, environ)
        assert status == 200, body
        assert body["status"] == "healthy" and body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["dagster"]["status"] == "ok"
        assert set(REQUIRED_DAEMONS) <= set(body["checks"]["dagster"]["daemons"])
        assert {"pending", "oldest_pending_age_seconds"} <= set(body["checks"]["inbox"])

        beat(instance, age_seconds=600)  # the daemon went quiet ten minutes ago
        status, body = health(database_url, environ)
        assert status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["dagster"]["silent_daemons"] == list(REQUIRED_DAEMONS)


def test_health_without_dagster_storage_configured_checks_the_rest(database_url):
    status, body = health(database_url, {"SHOPIFY_WEBHOOK_SECRET": "x"})
    assert status == 200 and body["checks"]["dagster"] == {"status": "not_configured"}


@pytest.mark.parametrize("password", ["pa/ss", "a/b@c:d?e#f%g h", "p@ss/w?rd/"])
def test_storage_url_keeps_any_password_intact(password):
    """A '/' left unescaped ends the authority early: /health would be unhealthy for ever."""
    url = dagster_storage_url({"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_PORT": "6543",
                               "DAGSTER_PG_DB": "dag/ster", "DAGSTER_PG_USERNAME": "us/er",
                               "DAGSTER_PG_PASSWORD": password})
    parsed = conninfo_to_dict(url)
    assert (parsed["user"], parsed["password"], parsed["host"], parsed["port"], parsed["dbname"]) == (
        "us/er", password, "db.internal", "6543", "dag/ster")
