"""Inbox retention is an operations job: it purges every provider's old processed deliveries, the
old processed triggers and old rejections, and keeps recent and unprocessed rows."""

from __future__ import annotations

import dagster as dg
import pytest

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.operations.inbox_retention import inbox_retention_job


def add(conn, provider, account, delivery, *, processed_days_ago=None):
    inbox_id, _ = inbox.append(conn, provider=provider, account=account, topic="t", delivery_id=delivery,
                               payload={"id": 1})
    if processed_days_ago is not None:
        conn.execute("UPDATE sync.inbox SET processed_at = now() - make_interval(days => %s), run_id = 'r'"
                     " WHERE id = %s", (processed_days_ago, inbox_id))
    return inbox_id


def reject(conn, provider, account, days_ago):
    inbox.record_rejection(conn, provider, "bad_signature", account)
    conn.execute("UPDATE sync.webhook_rejections SET received_at = now() - make_interval(days => %s)"
                 " WHERE id = (SELECT max(id) FROM sync.webhook_rejections)", (days_ago,))


@pytest.fixture
def account(conn, unique):
    """The test's account; its rows go afterwards (an old pending row would make /health unhealthy)."""
    ensure_tables(conn, inbox.TABLES)
    name = f"retention-{unique}"
    yield name
    conn.execute("DELETE FROM sync.inbox WHERE account = %s", (name,))
    conn.execute("DELETE FROM sync.webhook_rejections WHERE account = %s", (name,))


def test_purges_old_processed_rows_of_every_provider_and_keeps_the_rest(conn, account, unique):
    old, kept = [], []
    for provider in ("shopify", "shipstation", "trigger"):  # webhooks of any provider, and triggers
        old.append(add(conn, provider, account, f"{unique}-{provider}-old", processed_days_ago=8))
        kept.append(add(conn, provider, account, f"{unique}-{provider}-recent", processed_days_ago=1))
        kept.append(add(conn, provider, account, f"{unique}-{provider}-pending"))  # never processed
        conn.execute("UPDATE sync.inbox SET received_at = now() - interval '30 days' WHERE id = %s", (kept[-1],))
        reject(conn, provider, account, days_ago=8)
        reject(conn, provider, account, days_ago=1)

    with dg.instance_for_test() as instance:
        result = inbox_retention_job.execute_in_process(instance=instance, resources={"app_db": AppDatabase()})
    assert result.success

    remaining = {row[0] for row in conn.execute("SELECT id FROM sync.inbox WHERE account = %s", (account,))}
    assert remaining == set(kept)
    rejections = conn.execute(
        "SELECT provider, count(*) FROM sync.webhook_rejections WHERE account = %s GROUP BY provider ORDER BY 1",
        (account,)).fetchall()
    assert rejections == [("shipstation", 1), ("shopify", 1), ("trigger", 1)]


def test_settings_are_run_config_and_the_job_has_its_own_schedule(conn, account, unique):
    three_days = add(conn, "shopify", account, f"{unique}-3d", processed_days_ago=3)
    with dg.instance_for_test() as instance:
        config = {"ops": {"purge_inbox": {"config": {"processed_older_than_days": 2}}}}
        assert inbox_retention_job.execute_in_process(run_config=config, instance=instance,
                                                      resources={"app_db": AppDatabase()}).success
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE id = %s", (three_days,)).fetchone()[0] == 0

    from sync_pipelines.definitions import defs

    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def("inbox_retention_daily")
    assert (schedule.job_name, schedule.cron_schedule) == ("inbox_retention", "0 2 * * *")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # Shopify's cleanup only reconciles Shopify.
    assert [node.name for node in repo.get_job("shopify_cleanup").graph.node_defs] == ["reconcile_deletes"]
