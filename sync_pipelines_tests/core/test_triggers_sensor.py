"""The external-triggers sensor: stored triggers → one RunRequest each, keyed for exactly-once launch."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dagster as dg
import pytest

from sync_pipelines.core import inbox
from sync_pipelines.core.dg import triggers as core_triggers
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.triggers import build_trigger_sensor
from sync_pipelines.receiver import triggers as receiver_triggers


@dg.op
def noop() -> None:
    pass


@dg.job(name="replication_sync_test")
def replication_job():
    noop()


@dg.job(name="other_sync_test")
def other_job():
    noop()


sensor = build_trigger_sensor([replication_job, other_job])


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def sweep_now(conn, monkeypatch):
    """Sweep at once; swept rows stay pending until their run exists, so settle this module's leftovers."""
    def settle():
        inbox.ensure_inbox_tables(conn)
        conn.execute("UPDATE sync.inbox SET processed_at = now(), run_id = 'test' WHERE provider = 'trigger'"
                     " AND account = ANY(%s) AND processed_at IS NULL", (["replication_sync_test", "other_sync_test"],))

    monkeypatch.setattr(core_triggers, "SWEEP_AFTER", timedelta(0))
    settle()
    yield
    settle()


def tick(instance, cursor):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase()}) as context:
        return sensor(context)


def append(conn, job, source="qstash", delivery_id=None):
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    inbox_id, _ = inbox.append(conn, provider="trigger", account=job, topic="trigger", delivery_id=delivery_id,
                               payload={}, headers={"source": source})
    return inbox_id, delivery_id


def newest_id(conn):
    inbox.ensure_inbox_tables(conn)
    return conn.execute("SELECT coalesce(max(id), 0) FROM sync.inbox").fetchone()[0]


def processed(conn, inbox_id):
    return conn.execute("SELECT processed_at IS NOT NULL, run_id FROM sync.inbox WHERE id = %s",
                        (inbox_id,)).fetchone()


def test_sensor_shape():
    assert sensor.name == "external_triggers_sensor"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 5
    assert {target.job_name for target in sensor.targets} == {"replication_sync_test", "other_sync_test"}
    assert core_triggers.PROVIDER == receiver_triggers.PROVIDER
    dg.Definitions.validate_loadable(
        dg.Definitions(jobs=[replication_job, other_job], sensors=[sensor], resources={"app_db": AppDatabase()}))


def test_one_run_request_per_trigger_with_its_run_key_and_cursor_advance(instance, conn):
    start = str(newest_id(conn))
    first_id, first = append(conn, "replication_sync_test", "qstash")
    second_id, second = append(conn, "other_sync_test", "bearer")
    duplicate_id, _ = append(conn, "replication_sync_test", "qstash", delivery_id=first)  # a replayed message
    assert duplicate_id == first_id

    result = tick(instance, start)
    assert [(r.job_name, r.run_key) for r in result.run_requests] == [
        ("replication_sync_test", f"trigger:{first}"), ("other_sync_test", f"trigger:{second}")]
    assert result.run_requests[0].tags == {"sync/trigger": "external", "sync/trigger_source": "qstash",
                                           "sync/inbox_id": str(first_id)}
    assert result.run_requests[1].tags["sync/trigger_source"] == "bearer"
    assert result.cursor == str(second_id)
    assert processed(conn, first_id) == (True, "sensor") and processed(conn, second_id) == (True, "sensor")

    again = tick(instance, result.cursor)  # nothing new: no second request for the replayed message
    assert not again.run_requests and again.cursor == result.cursor
    append(conn, "replication_sync_test", delivery_id=first)
    assert not tick(instance, result.cursor).run_requests


def test_triggers_for_jobs_the_sensor_does_not_launch_are_marked_processed(instance, conn):
    start = str(newest_id(conn))
    stranger_id, _ = append(conn, "not_a_job_here")
    known_id, known = append(conn, "replication_sync_test")
    result = tick(instance, start)
    assert [r.run_key for r in result.run_requests] == [f"trigger:{known}"]
    assert result.cursor == str(known_id)
    assert processed(conn, stranger_id) == (True, "sensor")


def test_a_trigger_the_cursor_stepped_over_is_swept(instance, conn, sweep_now):
    start = newest_id(conn)
    late_id, late = append(conn, "replication_sync_test")
    # As if a slower insert committed after a higher id was read: cursor already past it, still pending.
    result = tick(instance, str(late_id))
    assert [r.run_key for r in result.run_requests] == [f"trigger:{late}"]
    assert result.cursor == str(late_id)
    assert start < late_id


def test_a_swept_trigger_is_requested_until_its_run_exists(instance, conn, sweep_now):
    """A lost tick result (timeout, code server restart) re-runs the old cursor: the swept row must
    not be lost, so it stays pending until Dagster has a run with its run key."""
    late_id, late = append(conn, "replication_sync_test")
    for _ in range(2):  # the first result never reached Dagster; the tick is evaluated again
        result = tick(instance, str(late_id))
        assert [r.run_key for r in result.run_requests] == [f"trigger:{late}"]
        assert processed(conn, late_id) == (False, None)
    replication_job.execute_in_process(instance=instance, tags={"dagster/run_key": f"trigger:{late}"})
    result = tick(instance, str(late_id))
    assert not result.run_requests and processed(conn, late_id) == (True, "sensor")


def test_a_swept_trigger_for_an_unknown_job_is_marked_processed(instance, conn, sweep_now):
    stranger_id, _ = append(conn, "not_a_job_here")
    assert not tick(instance, str(stranger_id)).run_requests
    assert processed(conn, stranger_id) == (True, "sensor")


def test_empty_inbox_skips(instance, conn):
    result = tick(instance, str(newest_id(conn)))
    assert not result.run_requests and result.skip_reason is not None


def test_needs_jobs():
    with pytest.raises(ValueError):
        build_trigger_sensor([])
