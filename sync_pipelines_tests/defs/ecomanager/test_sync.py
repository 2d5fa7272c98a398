"""EcoManager through Dagster: the batch job (new orders by mark, the full reconciliation), the
schedule on each store's clock, webhooks from the sandbox through the receiver into the apply
job, and agent assignment after both — exactly once even when a sync and a webhook apply race.
Against the sandbox and the real database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import dagster as dg
import pytest

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import set_timezone, upsert_account
from sync_pipelines.defs.ecomanager import webhooks
from sync_pipelines.defs.ecomanager.agents import add_agent
from sync_pipelines.defs.ecomanager.assets import orders, stores, sync_job, sync_store
from sync_pipelines.defs.ecomanager.schedules import orders_schedule
from sync_pipelines.defs.ecomanager.sensors import apply_job, waiting_orders_sensor
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines_tests.defs.ecomanager.conftest import order_calls

SECRET = "eco-secret"



@pytest.fixture
def registered(add_store, conn):
    def add(name: str = "store", orders: int = 250):
        account = add_store(name, orders)
        upsert_account(conn, "ecomanager", account.account, credentials_env=account.credentials_env)
        return account

    return add


def run(instance, client, accounts, mode="new"):
    return sync_job.execute_in_process(
        run_config={"ops": {"ecomanager_sync_accounts": {"config": {"accounts": accounts, "mode": mode}}}},
        instance=instance, resources={"app_db": AppDatabase(), "ecomanager": client}, raise_on_error=False)


def latest(instance, store):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["ecomanager", "orders"]), asset_partitions=[store]), limit=1)
    return {k: v.value for k, v in records.records[0].asset_materialization.metadata.items()}


def stored(conn, store):
    return conn.execute("SELECT count(*), max(order_id) FROM ecomanager.orders WHERE account = %s"
                        " AND deleted_at IS NULL", (store,)).fetchone()


def assignments(conn, store):
    return conn.execute("SELECT order_id, agent_id FROM ecomanager.assignments WHERE account = %s AND state = 'open'"
                        " ORDER BY order_id", (store,)).fetchall()


def test_hourly_batches_read_only_new_orders_assign_them_and_keep_a_bad_store_to_itself(
        instance, client, sandbox, registered, conn, monkeypatch):
    a, b, bad = registered("a", 250), registered("b", 120), registered("bad", 10)
    monkeypatch.setenv(bad.credentials_env, "wrong-token")
    add_agent(conn, f"agent-{a.account}", "Amina", stores=[a.account, b.account], capacity=50)
    first = run(instance, client, [a.account, b.account, bad.account])
    assert not first.success  # the run names the bad store …
    assert stored(conn, a.account)[0] == 250 and stored(conn, b.account)[0] == 120  # … the others are synced
    assert assignments(conn, a.account) == []  # history is not handed out

    calls_before = order_calls(sandbox, a.account)
    assert run(instance, client, [a.account, b.account]).success
    assert order_calls(sandbox, a.account) - calls_before == 1  # nothing new: one request
    assert latest(instance, a.account)["records_fetched"] == 0

    new = sandbox.add_orders(a.account, 3)
    assert run(instance, client, [a.account]).success
    meta = latest(instance, a.account)
    assert meta["records_inserted"] == 3 and meta["orders_assigned"] == 3 and meta["cursor_after"] == str(max(new))
    assert [order for order, _ in assignments(conn, a.account)] == new
    assert stored(conn, a.account) == (253, max(new))


def test_the_full_reconciliation_catches_changes_and_deletes_that_came_without_a_webhook(
        instance, client, sandbox, registered, conn):
    store = registered("full", 40)
    assert run(instance, client, [store.account]).success
    first = sandbox.store(store.account).first_id
    gone, delivered = first + 7, first + 8
    sandbox.delete_order(store.account, gone)
    sandbox.update_order(store.account, delivered, order_state="Livré")
    assert run(instance, client, [store.account]).success  # the hourly sync sees neither
    assert run(instance, client, [store.account], mode="full").success
    meta = latest(instance, store.account)
    assert meta["mode"] == "full" and meta["records_deleted"] == 1 and meta["records_updated"] >= 1
    assert conn.execute("SELECT deleted_at IS NOT NULL FROM ecomanager.orders WHERE account = %s AND order_id = %s",
                        (store.account, gone)).fetchone() == (True,)
    assert conn.execute("SELECT order_state FROM ecomanager.orders WHERE account = %s AND order_id = %s",
                        (store.account, delivered)).fetchone() == ("Livré",)


def test_the_per_store_asset_syncs_one_store(instance, client, registered, conn):
    store = registered("solo", 30)
    instance.add_dynamic_partitions(stores.name, [store.account])
    assert dg.materialize([orders], partition_key=store.account, instance=instance,
                          resources={"app_db": AppDatabase(), "ecomanager": client}).success
    assert stored(conn, store.account)[0] == 30


def test_the_schedule_follows_each_stores_clock_from_08_to_20_then_reconciles_at_21(instance, registered, conn):
    algiers, kolkata = registered("alg", 1).account, registered("kol", 1).account
    set_timezone(conn, "ecomanager", kolkata, "Asia/Kolkata")
    with dg.build_resources({"app_db": AppDatabase()}) as resources:
        def due(hour: int, minute: int = 0) -> dict[str, str]:
            context = dg.build_schedule_context(instance=instance, resources={"app_db": resources.app_db},
                                                scheduled_execution_time=datetime(2026, 12, 4, hour, minute, tzinfo=UTC))
            result = orders_schedule(context)
            found = {}
            for request in result if isinstance(result, list) else []:
                config = request.run_config["ops"]["ecomanager_sync_accounts"]["config"]
                found.update({account: config["mode"] for account in config["accounts"]})
            return found

        assert due(7).get(algiers) == "new" and kolkata not in due(7)  # 08:00 Algiers, 12:30 Kolkata
        assert due(2, 30).get(kolkata) == "new" and algiers not in due(2, 30)  # 08:00 Kolkata
        assert due(19).get(algiers) == "new" and due(20).get(algiers) == "full"  # 20:00, then 21:00 reconcile
        assert algiers not in due(6) and algiers not in due(21) and algiers not in due(7, 15)


def test_a_webhook_order_is_applied_and_assigned_without_waiting_for_the_hour_and_only_once_when_a_sync_races(
        instance, client, sandbox, registered, conn, database_url):
    ensure_tables(conn, inbox.TABLES)
    store = registered("hook", 20)
    agent = f"agent-{store.account}"
    add_agent(conn, agent, "Karim", stores=[store.account], capacity=100)
    assert run(instance, client, [store.account]).success
    app = create_app(database_url, environ={webhooks.SECRET_ENV: SECRET})
    with serve_in_thread(app) as receiver, client.session(store) as session:
        for event in webhooks.EVENTS:  # activation probes the receiver's GET
            session.create_webhook(name=event, event=event, delivery_url=f"{receiver.url}/webhooks/ecomanager",
                                   secret=SECRET)
        new = sandbox.add_orders(store.account, 5)  # the sandbox signs and POSTs OrderCreated for each
        deadline = datetime.now(UTC).timestamp() + 10
        while datetime.now(UTC).timestamp() < deadline and conn.execute(
                "SELECT count(*) FROM sync.inbox WHERE provider = 'ecomanager' AND account = %s",
                (store.account,)).fetchone()[0] < 5:
            threading.Event().wait(0.05)
    barrier = threading.Barrier(2)
    results = {}

    def hourly():
        barrier.wait()
        results["sync"] = sync_store(AppDatabase(), client, store, "new")

    def webhook_apply():  # the instance is the test's: a second instance_for_test in a thread would
        barrier.wait()      # swap the process-wide DAGSTER_HOME under the other tests' feet
        results["apply"] = apply_job.execute_in_process(
            instance=instance, resources={"app_db": AppDatabase()},
            run_config={"ops": {"apply_ecomanager_webhooks": {"config": {"accounts": [store.account]}}}})

    threads = [threading.Thread(target=hourly), threading.Thread(target=webhook_apply)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["sync"].ok and results["apply"].success
    assert assignments(conn, store.account) == [(order, agent) for order in new]
    logged = conn.execute("SELECT order_id, count(*) FROM ecomanager.activity_log WHERE account = %s"
                          " AND action = 'assigned' GROUP BY order_id ORDER BY order_id", (store.account,)).fetchall()
    assert logged == [(order, 1) for order in new]  # each order assigned exactly once, logged once


def test_waiting_orders_are_assigned_when_an_agent_becomes_available(instance, client, sandbox, registered, conn):
    store = registered("wait", 5)
    assert run(instance, client, [store.account]).success
    new = sandbox.add_orders(store.account, 2)
    assert run(instance, client, [store.account]).success
    assert latest(instance, store.account)["orders_waiting_for_agent"] == 2
    with dg.build_resources({"app_db": AppDatabase()}) as resources:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": resources.app_db})
        assert waiting_orders_sensor(context) is None or not isinstance(waiting_orders_sensor(context), dg.RunRequest)
        add_agent(conn, f"late-{store.account}", "Late", stores=[store.account])
        request = waiting_orders_sensor(dg.build_sensor_context(instance=instance,
                                                                resources={"app_db": resources.app_db}))
    assert isinstance(request, dg.RunRequest)
    from sync_pipelines.defs.ecomanager.assignment import assign_pending
    assign_pending(conn, [store.account])
    assert [order for order, _ in assignments(conn, store.account)] == new


def test_the_manual_trigger_launches_the_listed_stores_in_the_mode_asked(instance, client, registered, conn,
                                                                          database_url):
    import requests

    from sync_pipelines.core.dg.triggers import build_trigger_sensor
    from sync_pipelines.defs.ecomanager.triggers import TRIGGER

    store = registered("trig", 12)
    headers = {"Authorization": "Bearer trigger-token-eco"}
    with serve_in_thread(create_app(database_url, environ={"SYNC_AUTH_TOKEN": "trigger-token-eco"})) as receiver:
        bad = requests.post(f"{receiver.url}/triggers/ecomanager_sync", json={"mode": "everything"}, headers=headers,
                            timeout=10)
        assert bad.status_code == 400 and "mode must be one of" in bad.json()["detail"]
        ok = requests.post(f"{receiver.url}/triggers/ecomanager_sync", timeout=10,
                           json={"accounts": [f"https://{store.account}.ecomanager.dz"], "mode": "full"},
                           headers={**headers, "Idempotency-Key": f"eco-{store.account}"})
        assert ok.status_code == 202
    sensor = build_trigger_sensor([sync_job], bodies={TRIGGER.job: TRIGGER.parse_body})
    with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()},
                                 cursor=str(ok.json()["id"] - 1)) as context:
        (request,) = sensor(context).run_requests
    config = request.run_config["ops"]["ecomanager_sync_accounts"]["config"]
    assert config == {"accounts": [store.account], "mode": "full"}
    assert run(instance, client, config["accounts"], config["mode"]).success
    assert stored(conn, store.account)[0] == 12
