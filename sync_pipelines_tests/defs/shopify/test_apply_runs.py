"""Bounded webhook runs: one run per tick whatever the number of shops, many shops per run, one
shop's failure never holds back the others, and webhook runs are told apart from sync runs."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import yaml

from sync_pipelines.core import inbox
from sync_pipelines.core.dg import realtime
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shopify.sensors import ROUTES, apply_job, route_name, sensors

inbox_sensor = next(s for s in sensors if s.name == "shopify_inbox_sensor")
DAGSTER_YAML = Path(__file__).resolve().parents[3] / "dagster.yaml"


def order(order_id, updated_at="2026-03-01T10:00:00Z"):
    return {"id": order_id, "created_at": "2026-03-01T09:00:00Z", "updated_at": updated_at}


def deliver(conn, shop, order_id, topic="orders/updated", updated_at="2026-03-01T10:00:00Z"):
    inbox_id, _ = inbox.append(conn, provider="shopify", account=shop, topic=topic,
                               delivery_id=f"{shop}-{order_id}-{topic}", payload=order(order_id, updated_at))
    return inbox_id


def tick(instance, cursor):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase()}) as context:
        return inbox_sensor(context)


def run(instance, request, job=apply_job):
    return job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags,
                                        resources={"app_db": AppDatabase()}, raise_on_error=False)


def test_one_run_per_tick_applies_every_shop_with_its_own_materializations(conn, unique, instance):
    cursor = str(inbox.newest_after(conn, "shopify", 0) or 0)
    shops = [f"bulk{n}-{unique}.myshopify.com" for n in range(40)]
    for n, shop in enumerate(shops):
        deliver(conn, shop, 100 + n)
        deliver(conn, shop, 200 + n)

    result = tick(instance, cursor)
    (request,) = result.run_requests  # one run for 40 shops (the old sensor asked for 40)
    assert request.tags["sync/webhooks"] == "shopify" and request.tags["sync/trigger"] == "webhook"
    assert "sync/provider" not in request.tags  # outside the provider's API concurrency limit
    outcome = run(instance, request)

    assert outcome.success
    assert conn.execute("SELECT count(*) FROM shopify.orders WHERE account = ANY(%s)", (shops,)).fetchone()[0] == 80
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = ANY(%s) AND processed_at IS NULL",
                        (shops,)).fetchone()[0] == 0
    partitions = sorted(e.event_specific_data.materialization.partition for e in outcome.all_events
                        if e.event_type_value == "ASSET_MATERIALIZATION")
    assert partitions == sorted(shops)  # "when did shop X last change" stays answerable per shop
    # Nothing new: no run; the cursor kept.
    assert not tick(instance, result.cursor).run_requests


def test_no_second_run_while_one_waits_to_start(conn, unique, instance):
    cursor = str(inbox.newest_after(conn, "shopify", 0) or 0)
    deliver(conn, f"wait-{unique}.myshopify.com", 1)
    first = tick(instance, cursor)
    (request,) = first.run_requests
    waiting = instance.create_run_for_job(apply_job, run_config=request.run_config, tags=request.tags)  # NOT_STARTED
    deliver(conn, f"wait-{unique}.myshopify.com", 2)
    second = tick(instance, first.cursor)
    assert not second.run_requests  # the waiting run applies the new delivery too (it reads at start)
    assert int(second.cursor) > int(first.cursor)
    instance.report_run_canceled(waiting)
    deliver(conn, f"wait-{unique}.myshopify.com", 3)
    assert len(tick(instance, second.cursor).run_requests) == 1


def test_a_shop_whose_rows_are_locked_does_not_hold_back_the_others(conn, unique, instance, database_url,
                                                                   monkeypatch):
    monkeypatch.setattr(realtime, "LOCK_TIMEOUT", "300ms")
    once = realtime.build_apply_job("shopify", ROUTES, route_name, retry_policy=None)  # no retry: one attempt
    free, locked, other = (f"{name}-{unique}.myshopify.com" for name in ("free", "locked", "other"))
    deliver(conn, locked, 1)
    assert run(instance, realtime.apply_request("shopify", f"seed-{unique}", accounts=[locked]), once).success
    deliver(conn, free, 2)
    deliver(conn, locked, 1, topic="orders/paid", updated_at="2026-03-01T11:00:00Z")  # a change: needs the row lock
    deliver(conn, other, 3)
    both = realtime.apply_request("shopify", f"all-{unique}", accounts=[free, locked, other])

    with psycopg.connect(database_url) as holder, holder.transaction():  # e.g. a sync writing that shop
        holder.execute("SELECT 1 FROM shopify.orders WHERE account = %s FOR UPDATE", (locked,))
        first = run(instance, both, once)

    assert not first.success
    failure = next(e for e in first.all_events if e.event_type_value == "STEP_FAILURE")
    failed = failure.event_specific_data.error.message
    assert locked in failed and free not in failed and other not in failed
    applied = conn.execute("SELECT account FROM shopify.orders WHERE account = ANY(%s) ORDER BY account",
                           ([free, other],)).fetchall()
    assert [a for (a,) in applied] == [free, other]
    assert sorted(materialized(first)) == sorted([free, other])
    assert pending(conn, [free, locked, other]) == {locked: 1}  # left for the retry, not lost

    second = run(instance, both, once)  # the lock is gone: the retry applies the rest
    assert second.success and materialized(second) == [locked] and pending(conn, [free, locked, other]) == {}


def materialized(result):
    return [e.event_specific_data.materialization.partition for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"]


def pending(conn, shops):
    return dict(conn.execute("SELECT account, count(*) FROM sync.inbox WHERE account = ANY(%s) AND processed_at IS NULL"
                             " GROUP BY account", (shops,)).fetchall())


def test_webhook_runs_are_outside_the_provider_run_limit():
    limits = yaml.safe_load(DAGSTER_YAML.read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    request = realtime.apply_request("shopify", "k")
    matching = [limit for limit in limits if limit["key"] in request.tags]
    assert [limit["key"] for limit in matching] == ["sync/webhooks"]
    assert json.loads(json.dumps(request.tags))["dagster/priority"] == realtime.PRIORITY
