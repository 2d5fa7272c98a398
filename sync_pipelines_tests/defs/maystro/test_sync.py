"""Maystro through Dagster: the batch poll, the per-store asset, the 6-hourly schedule on each
store's clock, and status webhooks from the sandbox through the receiver's token URL into the
inbox and the apply job — against the sandbox and the real database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import dagster as dg
import pytest
import requests

from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import set_timezone, upsert_account
from sync_pipelines.defs.maystro import webhooks
from sync_pipelines.defs.maystro.assets import shipments, stores, sync_job
from sync_pipelines.defs.maystro.schedules import status_schedule
from sync_pipelines.defs.maystro.sensors import apply_job
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

SECRET = "maystro-secret"



@pytest.fixture
def registered(store, conn):
    """A sandbox store registered in the registry (partition added by the job)."""

    def add(orders: int = 60, name: str = "store"):
        account, api_key = store(orders=orders, name=name)
        upsert_account(conn, "maystro", account.account, credentials_env=account.credentials_env)
        return account.account, api_key

    return add


def poll(instance, client, accounts, raise_on_error=False):
    return sync_job.execute_in_process(
        run_config={"ops": {"maystro_sync_accounts": {"config": {"accounts": accounts}}}},
        instance=instance, resources={"app_db": AppDatabase(), "maystro": client}, raise_on_error=raise_on_error)


def materialization(instance, account):
    event = instance.get_latest_materialization_event(dg.AssetKey(["maystro", "shipments"]))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["maystro", "shipments"]), asset_partitions=[account]), limit=1)
    assert event is not None and records.records
    return {k: v.value for k, v in records.records[0].asset_materialization.metadata.items()}


def test_a_poll_writes_only_changes_flags_unknown_codes_and_keeps_a_bad_store_to_itself(
        instance, client, sandbox, registered, conn, monkeypatch):
    good, key = registered(orders=60, name="good")
    bad, _ = registered(orders=5, name="bad")
    monkeypatch.setenv(f"MAYSTRO_TEST_KEY_{bad.upper().replace('-', '_')}", "revoked")
    result = poll(instance, client, [good, bad])
    assert not result.success  # the run fails naming the bad store …
    first = materialization(instance, good)  # … and the good one is synced all the same
    assert first["statuses_read"] == 60 and first["statuses_new"] == 60 and first["statuses_unknown"] == 0
    assert conn.execute("SELECT count(*) FROM maystro.shipments WHERE account = %s", (good,)).fetchone()[0] == 60
    failed = conn.execute("SELECT ok, error FROM sync.account_outcomes WHERE provider = 'maystro' AND account = %s"
                          " ORDER BY recorded_at DESC LIMIT 1", (bad,)).fetchone()
    assert failed[0] is False and "revoked" not in failed[1]

    assert poll(instance, client, [good]).success
    again = materialization(instance, good)
    assert again["statuses_changed"] == 0 and again["statuses_unchanged"] == 60  # nothing rewritten

    sandbox.set_statuses(key, [(1, 41), (2, 50), (3, 99)], send_webhooks=False)  # 99: a code nobody mapped
    assert poll(instance, client, [good]).success
    changed = materialization(instance, good)
    assert changed["statuses_changed"] == 3 and changed["statuses_unknown"] == 1
    rows = conn.execute("SELECT status_code, status_known, status FROM maystro.shipments WHERE account = %s"
                        " AND status_code IN (41, 50, 99) AND maystro_id IN (SELECT maystro_id FROM"
                        " maystro.status_history WHERE account = %s AND source = 'poll' AND old_code IS NOT NULL)"
                        " ORDER BY status_code", (good, good)).fetchall()
    assert [(code, known) for code, known, _ in rows] == [(41, True), (50, True), (99, False)]
    assert rows[0][2] == "DELIVERED" and rows[1][2] == "CANCELLED" and rows[2][2] is None


def test_the_per_store_asset_polls_one_store(instance, client, registered):
    account, _ = registered(orders=25, name="solo")
    instance.add_dynamic_partitions(stores.name, [account])
    result = dg.materialize([shipments], partition_key=account, instance=instance,
                            resources={"app_db": AppDatabase(), "maystro": client})
    assert result.success
    assert materialization(instance, account)["statuses_read"] == 25


def test_the_schedule_polls_at_00_06_12_18_on_each_stores_clock(instance, registered, conn):
    algiers, _ = registered(orders=1, name="alg")
    tokyo, _ = registered(orders=1, name="tok")
    set_timezone(conn, "maystro", tokyo, "Asia/Tokyo")
    with dg.build_resources({"app_db": AppDatabase()}) as resources:
        def due(hour_utc: int, minute: int = 0):
            context = dg.build_schedule_context(instance=instance, resources={"app_db": resources.app_db},
                                                scheduled_execution_time=datetime(2026, 12, 4, hour_utc, minute, tzinfo=UTC))
            result = status_schedule(context)
            requests_ = result if isinstance(result, list) else []
            return {a for r in requests_ for a in r.run_config["ops"]["maystro_sync_accounts"]["config"]["accounts"]}

        assert algiers in due(5) and tokyo not in due(5)  # 06:00 in Algiers (UTC+1), 14:00 in Tokyo
        assert tokyo in due(3) and algiers not in due(3)  # 12:00 in Tokyo
        assert algiers not in due(5, 15) and algiers not in due(6)  # once per local hour, only the wanted ones


def envelope(event: dict, message_id: str = "m-1") -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return json.dumps({"message": {"data": data, "messageId": message_id, "publishTime": "2026-12-04T10:00:00Z"},
                       "subscription": "projects/maystro/subscriptions/x"}).encode()


def test_status_webhooks_through_the_token_url_are_applied_once_with_their_source(
        instance, client, sandbox, registered, conn, database_url):
    account, key = registered(orders=10, name="hook")
    assert poll(instance, client, [account]).success
    app = create_app(database_url, environ={webhooks.SECRET_ENV: SECRET})
    with serve_in_thread(app) as receiver:
        url = receiver.url + webhooks.webhook_path(SECRET, account)
        requests.post(f"{sandbox.url}/_sandbox/webhooks", json={"api_key": key, "url": url}, timeout=10).raise_for_status()
        sandbox.set_statuses(key, [(4, 41)])  # the sandbox POSTs the change, base64-wrapped
        order = sandbox.store(key).order(4)
        event = {"event": "OrderStatusChanged", "payload": {"status": 41, "id": order["id"],
                 "display_id_order": order["display_id"], "external_order_id": order["external_order_id"]}}
        again = requests.post(url, data=envelope(event, "same"), timeout=10)
        assert again.json()["status"] == "accepted"
        assert requests.post(url, data=envelope(event, "same"), timeout=10).json()["status"] == "duplicate"
        wrong = url.rsplit("/", 1)[0] + "/" + "0" * 64
        assert requests.post(wrong, data=envelope(event, "x"), timeout=10).status_code == 401
        other_store = receiver.url + webhooks.webhook_path(SECRET, "someone-else").rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1]
        assert requests.post(other_store, data=envelope(event, "y"), timeout=10).status_code == 401  # token is per store
        assert requests.post(url, data=b'{"message": {"data": "not base64!"}}', timeout=10).status_code == 400
        assert requests.post(receiver.url + "/webhooks/maystro", data=envelope(event, "z"), timeout=10).status_code == 401
    pending = conn.execute("SELECT count(*) FROM sync.inbox WHERE provider = 'maystro' AND account = %s"
                           " AND processed_at IS NULL", (account,)).fetchone()[0]
    assert pending == 2  # the sandbox's delivery and ours (the duplicate was not stored)
    result = apply_job.execute_in_process(instance=instance, resources={"app_db": AppDatabase()},
                                          run_config={"ops": {"apply_maystro_webhooks": {"config": {"accounts": [account]}}}})
    assert result.success
    row = conn.execute("SELECT status_code, status FROM maystro.shipments WHERE account = %s AND maystro_id = %s",
                       (account, str(order["id"]))).fetchone()
    assert row == (41, "DELIVERED")
    history = conn.execute("SELECT source, new_code FROM maystro.status_history WHERE account = %s AND maystro_id = %s"
                           " AND source = 'webhook'", (account, str(order["id"]))).fetchall()
    assert history == [("webhook", 41)]  # two deliveries of one change: one history row
