"""Failure alerts from run storage, delivered to a real local HTTP receiver."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from sync_pipelines.core.dg.alerts import _read_cursor, build_failure_alert_sensor, finished_runs
from sync_pipelines.core.dg.resources import AppDatabase


class Hook:
    """A Slack-like webhook on 127.0.0.1 that records posts and can be told to fail."""

    def __init__(self):
        self.messages: list[str] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.status == 200:
                    hook.messages.append(json.loads(body)["text"])
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.server.shutdown()


@dg.op(config_schema={"fail": bool})
def maybe_fail(context):
    if context.op_config["fail"]:
        raise RuntimeError("upstream said no")


@dg.job
def flaky_job():
    maybe_fail()


def run(instance, account, fail):
    flaky_job.execute_in_process(
        run_config={"ops": {"maybe_fail": {"config": {"fail": fail}}}}, instance=instance, raise_on_error=False,
        tags={"sync/provider": "shipstation", "sync/account": account},
    )


def test_alert_after_threshold_once_then_recovery(hook, database_url, unique, monkeypatch):
    monkeypatch.setenv("SCHEDULER_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SCHEDULER_ALERT_FAILURE_THRESHOLD", "5")
    monkeypatch.setenv("SCHEDULER_ALERT_FAILURE_THRESHOLD_SHIPSTATION", "3")
    sensor = build_failure_alert_sensor()
    account, other = f"store-{unique}", f"calm-{unique}"
    with dg.instance_for_test() as instance:
        cursor = None

        def tick():
            nonlocal cursor
            with dg.build_sensor_context(instance=instance, cursor=cursor,
                                         resources={"app_db": AppDatabase()}) as context:
                result = sensor(context)
            cursor = result.cursor

        run(instance, other, fail=True)  # another account's single failure: no alert
        for _ in range(2):
            run(instance, account, fail=True)
        tick()
        assert hook.messages == []
        run(instance, account, fail=True)  # third in a row: threshold reached
        tick()
        assert len(hook.messages) == 1
        assert "failed 3 times in a row" in hook.messages[0] and account in hook.messages[0]
        assert "upstream said no" in hook.messages[0] and "/runs/" in hook.messages[0]
        run(instance, account, fail=True)
        run(instance, account, fail=True)
        tick()
        tick()
        assert len(hook.messages) == 1, "no alert storm while the streak continues"

        hook.status = 500  # the alert channel itself is down
        run(instance, account, fail=False)
        tick()  # must not raise
        assert len(hook.messages) == 1
        hook.status = 200
        tick()  # the kept recovery message is delivered now
        assert len(hook.messages) == 2 and "recovered" in hook.messages[1]
        tick()
        assert len(hook.messages) == 2


def test_an_undelivered_failure_alert_is_sent_with_the_recovery_not_replaced(hook, database_url, unique,
                                                                            monkeypatch):
    monkeypatch.setenv("SCHEDULER_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SCHEDULER_ALERT_FAILURE_THRESHOLD_SHIPSTATION", "2")
    sensor = build_failure_alert_sensor()
    account = f"store-{unique}"
    with dg.instance_for_test() as instance:
        hook.status = 500  # the channel is down during the whole outage
        for _ in range(2):
            run(instance, account, fail=True)
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            cursor = sensor(context).cursor
        run(instance, account, fail=False)  # recovered before the alert got through
        hook.status = 200
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase()}) as context:
            sensor(context)

    (message,) = hook.messages
    assert "failed 2 times in a row" in message and "recovered" in message


def add_finished_runs(instance, n, job, account):
    """Finished runs recorded directly; SQLite run storage stamps them to the second, so many
    share one update timestamp."""
    for _ in range(n):
        instance.add_run(DagsterRun(job_name=job, run_id=uuid.uuid4().hex, status=dg.DagsterRunStatus.SUCCESS,
                                    tags={"sync/provider": "shipstation", "sync/account": account}))


@pytest.mark.parametrize("batch_size", [1, 5, 500])
def test_finished_runs_pages_through_every_run_once(unique, batch_size):
    with dg.instance_for_test() as instance:
        add_finished_runs(instance, 12, f"busy_{unique}", "a")
        run(instance, "b", fail=True)
        records = list(finished_runs(instance, datetime(2000, 1, 1, tzinfo=UTC), batch_size))
    ids = [r.dagster_run.run_id for r in records]
    assert len(ids) == len(set(ids)) == 13
    stamps = [r.update_timestamp for r in records]
    assert stamps == sorted(stamps)


def test_more_runs_in_the_look_back_than_a_batch_never_stall_the_cursor(hook, database_url, unique, monkeypatch):
    """The tick re-reads 10 minutes before its cursor; with more finished runs there than one
    batch, it must still read past them, and never hand back an earlier cursor."""
    monkeypatch.setenv("SCHEDULER_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SCHEDULER_ALERT_FAILURE_THRESHOLD", "3")
    sensor = build_failure_alert_sensor(batch_size=5)
    account = f"store-{unique}"
    with dg.instance_for_test() as instance:
        add_finished_runs(instance, 12, f"busy_{unique}", f"busy-{unique}")
        cursor = datetime.now(UTC).isoformat()

        def tick():
            nonlocal cursor
            with dg.build_sensor_context(instance=instance, cursor=cursor,
                                         resources={"app_db": AppDatabase()}) as context:
                result = sensor(context)
            assert _read_cursor(result.cursor)[0] >= _read_cursor(cursor)[0]
            cursor = result.cursor

        tick()
        for _ in range(3):
            run(instance, account, fail=True)
        tick()
        assert len(hook.messages) == 1 and "failed 3 times in a row" in hook.messages[0]
        assert account in hook.messages[0]


def test_accounts_of_a_batch_run_are_alerted_one_by_one_and_a_revoked_grant_at_once(hook, database_url, unique,
                                                                                 monkeypatch):
    from sync_pipelines.core import outcomes

    monkeypatch.setenv("SCHEDULER_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SCHEDULER_ALERT_FAILURE_THRESHOLD", "2")
    sensor = build_failure_alert_sensor()
    provider, flaky, revoked, fine = f"ads{unique}", f"flaky-{unique}", f"revoked-{unique}", f"fine-{unique}"
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            cursor = sensor(context).cursor

        def batch(run_id, *results):
            with AppDatabase().connect() as conn:
                outcomes.record(conn, [outcomes.Outcome(f"{provider}_sync", provider, account, run_id, ok,
                                                        needs_reauth, None if ok else error)
                                       for account, ok, needs_reauth, error in results])
            nonlocal cursor
            with dg.build_sensor_context(instance=instance, cursor=cursor,
                                         resources={"app_db": AppDatabase()}) as context:
                cursor = sensor(context).cursor

        batch("run-1", (flaky, False, False, "HTTP 500"), (revoked, False, True, "invalid_grant"), (fine, True, False, ""))
        assert len(hook.messages) == 1
        assert "needs re-authorisation" in hook.messages[0] and revoked in hook.messages[0]
        batch("run-2", (flaky, False, False, "HTTP 500"), (fine, True, False, ""))
        assert len(hook.messages) == 2
        assert "failed 2 times in a row" in hook.messages[1] and flaky in hook.messages[1]
        assert fine not in " ".join(hook.messages)
        batch("run-3", (flaky, True, False, ""))
        assert "recovered" in hook.messages[2] and flaky in hook.messages[2]


def test_an_authorisation_about_to_lapse_is_warned_once_per_expiry(hook, database_url, unique, monkeypatch):
    from datetime import timedelta

    from cryptography.fernet import Fernet

    from sync_pipelines.core import credentials
    from sync_pipelines.core.credentials import Cipher, Tokens

    monkeypatch.setenv("SCHEDULER_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SYNC_REAUTH_WARNING_DAYS", "14")
    cipher = Cipher([Fernet.generate_key().decode()])
    provider = f"ads{unique}"
    lapses = datetime.now(UTC) + timedelta(days=5)
    with AppDatabase().connect() as conn:
        credentials.store(conn, cipher, provider, "soon", Tokens("a", "r", None, refresh_expires_at=lapses))
        credentials.store(conn, cipher, provider, "later", Tokens("a", "r", None,
                                                                  refresh_expires_at=lapses + timedelta(days=60)))
    sensor = build_failure_alert_sensor()
    with dg.instance_for_test() as instance:
        for _ in range(2):
            with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
                sensor(context)
        mine = [m for m in hook.messages if provider in m]
        assert len(mine) == 1 and f"{provider}/soon" in mine[0] and "lapses" in mine[0]
        with AppDatabase().connect() as conn:  # reconnected: a new lapse date, warned again when near
            credentials.store(conn, cipher, provider, "soon", Tokens("b", "r2", None,
                                                                     refresh_expires_at=lapses + timedelta(days=1)))
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            sensor(context)
        with AppDatabase().connect() as conn:  # other tests share the database (and the alert channel)
            conn.execute("DELETE FROM sync.oauth_tokens WHERE provider = %s", (provider,))
        assert len([m for m in hook.messages if provider in m]) == 2
