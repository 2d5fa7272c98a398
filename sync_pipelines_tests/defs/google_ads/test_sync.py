"""Google Ads through Dagster: the batch job, the per-account asset, the automation sensor, the
nightly schedule and the signed trigger, against the sandbox and the real database.

The sandbox runs on the real clock here (the engine picks days from "now" on each account's
calendar), so what a sync should hold is asked of the sandbox itself (`sandbox.search`).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest
import requests

from sync_pipelines.core import outcomes, reports
from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.oauth import TokenSource
from sync_pipelines.core.registry import get_account, set_preferences
from sync_pipelines.defs.google_ads import definitions as google_defs
from sync_pipelines.defs.google_ads.assets import SPEC, accounts, metrics_daily, sync_job
from sync_pipelines.defs.google_ads.client import METRICS_QUERY
from sync_pipelines.defs.google_ads.provider import NAME
from sync_pipelines.defs.google_ads.schedules import schedules
from sync_pipelines.defs.google_ads.sensors import sensors
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

TABLE = "google_ads.campaign_metrics_daily"


@pytest.fixture(autouse=True)
def real_clock(sandbox):
    sandbox.set_clock(None)



def run(instance, client, accounts_: list[str], *, raise_on_error=True, **config):
    return sync_job.execute_in_process(
        run_config={"ops": {SPEC.op_name: {"config": {"accounts": accounts_, **config}}}},
        instance=instance, resources={"app_db": AppDatabase(), NAME: client}, raise_on_error=raise_on_error)


def upstream(sandbox, customer: str, first: date, last: date) -> dict[tuple[str, date], tuple]:
    query = METRICS_QUERY.format(first=first, last=last)
    rows = {}
    for row in sandbox.search(customer, query):
        metrics = row.get("metrics", {})
        key = (str(row["campaign"]["id"]), date.fromisoformat(row["segments"]["date"]))
        rows[key] = (int(metrics.get("impressions", 0)), Decimal(int(metrics.get("costMicros", 0))).scaleb(-6))
    return rows


def stored(conn, customer: str, first: date, last: date) -> dict[tuple[str, date], tuple]:
    found = conn.execute(f"SELECT campaign_id, date, impressions, spend FROM {TABLE} WHERE account = %s"
                         " AND date BETWEEN %s AND %s", (customer, first, last)).fetchall()
    return {(cid, day): (imp, spend) for cid, day, imp, spend in found}


def test_the_definitions_load_with_job_asset_check_schedule_and_sensors():
    names = {s.name for s in sensors} | {s.name for s in schedules}
    assert names == {"google_ads_accounts_sensor", "google_ads_automation", "google_ads_nightly"}
    from sync_pipelines.definitions import defs

    assert defs.resolve_job_def("google_ads_sync").name == "google_ads_sync"
    assert google_defs.defs.assets == [metrics_daily]


def test_a_batch_run_keeps_each_accounts_failure_its_own(instance, client, connect, conn, sandbox):
    good, other, revoked = connect(), connect(campaigns=2), connect()
    sandbox.revoke(revoked.refresh_token)
    sandbox.expire_access_tokens(revoked.refresh_token)

    result = run(instance, client, [good.account.account, other.account.account, revoked.account.account],
                 days=6, raise_on_error=False)

    assert not result.success  # the run says so, naming the account
    failure = result.failure_data_for_node(SPEC.op_name).user_failure_data
    assert revoked.account.account in failure.description and good.account.account not in failure.description
    for connected in (good, other):
        customer = connected.account.account
        today = sandbox.customer(customer).today(sandbox.now())  # the customer's own day (no campaign may run today)
        first, yesterday = today - timedelta(days=6), today - timedelta(days=1)  # today's numbers still grow
        assert stored(conn, customer, first, yesterday) == upstream(sandbox, customer, first, yesterday)
    marked = get_account(conn, NAME, revoked.account.account)
    assert marked.needs_reauth and "invalid_grant" in marked.auth_error
    latest = {o.account: o for o in outcomes.latest(conn, NAME)}
    assert latest[revoked.account.account].needs_reauth and latest[good.account.account].ok
    assert instance.get_materialized_partitions(SPEC.asset_key) == {good.account.account, other.account.account}


def test_restatement_replaces_the_window_and_corrects_the_drift(instance, client, connect, conn, sandbox):
    customer = connect(campaigns=5).account.account
    run(instance, client, [customer], days=10)
    # Up to yesterday: today's numbers grow by the minute, upstream as here.
    today = sandbox.customer(customer).today(sandbox.now()) - timedelta(days=1)
    first = today - timedelta(days=9)
    before = stored(conn, customer, first, today)
    assert before == upstream(sandbox, customer, first, today)

    sandbox.restate(customer, days=7, vanish=3)  # late conversions, invalid clicks removed
    assert stored(conn, customer, first, today) != upstream(sandbox, customer, first, today)  # drift
    run(instance, client, [customer], days=0)  # only today: the past still drifts
    assert stored(conn, customer, first, today) != upstream(sandbox, customer, first, today)
    run(instance, client, [customer], days=10)  # the lookback re-read replaces the window
    after = stored(conn, customer, first, today)
    assert after == upstream(sandbox, customer, first, today)
    assert len(after) < len(before)  # the vanished campaign-days are gone here too

    past = {"first_day": first.isoformat(), "last_day": today.isoformat()}
    run(instance, client, [customer], **past)
    again = run(instance, client, [customer], **past)  # the same range again: nothing written
    (event,) = [e for e in again.get_asset_materialization_events()]
    metadata = event.materialization.metadata
    assert (metadata["records_inserted"].value, metadata["records_updated"].value,
            metadata["records_deleted"].value) == (0, 0, 0)


def test_spend_is_exact_and_days_are_the_accounts_own(instance, client, connect, conn, sandbox):
    east = connect(time_zone="Pacific/Kiritimati").account.account  # UTC+14
    west = connect(time_zone="Pacific/Pago_Pago").account.account  # UTC-11: always a day behind
    result = run(instance, client, [east, west], days=1)
    read = {e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    now = datetime.now(UTC)
    for account, zone in ((east, "Pacific/Kiritimati"), (west, "Pacific/Pago_Pago")):
        local_today = now.astimezone(ZoneInfo(zone)).date()  # 25 hours apart: one or two dates
        assert read[account]["last_day"].value == local_today.isoformat()
        latest = conn.execute(f"SELECT max(date) FROM {TABLE} WHERE account = %s", (account,)).fetchone()[0]
        assert latest <= local_today  # nothing after the account's own today
    east_day = date.fromisoformat(read[east]["first_day"].value)  # a whole day: today's spend still grows
    assert get_account(conn, NAME, east).timezone == "Pacific/Kiritimati"
    micros = {(str(r["campaign"]["id"]), r["segments"]["date"]): int(r["metrics"].get("costMicros", 0))
              for r in sandbox.search(east, METRICS_QUERY.format(first=east_day, last=east_day))}
    for cid, day, spend in conn.execute(f"SELECT campaign_id, date, spend FROM {TABLE} WHERE account = %s"
                                        " AND date = %s", (east, east_day)):
        assert spend == Decimal(micros[(cid, day.isoformat())]) / Decimal(10**6)  # exact, no float on the way


def test_a_backfill_on_connect_costs_a_request_per_90_days_and_then_nothing_is_due(instance, client, connect, conn,
                                                                                   sandbox):
    connected = connect(campaigns=3)
    customer = connected.account.account
    disabled = connect().account.account
    set_preferences(conn, NAME, disabled, sync_enabled=False)
    automation = next(s for s in sensors if s.name == "google_ads_automation")

    def tick():
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            return automation(context)

    requested = [r for r in tick() if customer in r.run_config["ops"][SPEC.op_name]["config"]["accounts"]]
    (backfill,) = requested
    config = backfill.run_config["ops"][SPEC.op_name]["config"]
    assert config["kind"] == "backfill"
    assert all(disabled not in r.run_config["ops"][SPEC.op_name]["config"]["accounts"] for r in tick())

    sandbox.reset_stats()
    run(instance, client, [customer], kind="backfill")
    calls = sandbox.stats()["requests_by_customer"][customer]
    assert calls == 2  # 90 days: one searchStream read, plus the time zone once
    state = reports.report_states(conn, SPEC.stream)[customer]
    assert state.backfilled_at and state.last_restated_at
    days = reports.synced_days(conn, SPEC.stream, customer, date(2000, 1, 1), date(2100, 1, 1))
    assert len(days) == 90
    assert not [r for r in tick() if customer in r.run_config["ops"][SPEC.op_name]["config"]["accounts"]]

    # Hours later its cadence has come: a scheduled sync of its lookback window.
    conn.execute("UPDATE sync.report_accounts SET last_synced_at = now() - interval '3 hours'"
                 " WHERE stream = %s AND account = %s", (SPEC.stream.name, customer))
    (due,) = [r for r in tick() if customer in r.run_config["ops"][SPEC.op_name]["config"]["accounts"]]
    assert due.run_config["ops"][SPEC.op_name]["config"]["kind"] == "scheduled"
    assert due.tags["sync/trigger"] == "automation"


def test_the_nightly_schedule_launches_bounded_batches_of_automatable_accounts(conn, connect, instance, monkeypatch,
                                                                           unique):
    monkeypatch.setenv("SYNC_REPORT_BATCH_SIZE", "2")
    with AppDatabase().connect() as c:
        c.execute("UPDATE sync.integrations SET active = false WHERE provider = %s", (NAME,))
    live = [connect().account.account for _ in range(5)]
    off = connect().account.account
    set_preferences(conn, NAME, off, sync_enabled=False)
    (nightly,) = schedules
    with dg.build_schedule_context(instance=instance, resources={"app_db": AppDatabase()},
                                   scheduled_execution_time=datetime(2026, 12, 4, 2, tzinfo=UTC)) as context:
        requests_ = nightly.evaluate_tick(context).run_requests
    assert len(requests_) == 3
    launched = [a for r in requests_ for a in r.run_config["ops"][SPEC.op_name]["config"]["accounts"]]
    assert sorted(launched) == sorted(live)


def test_a_partition_launched_from_the_ui_syncs_the_range_set_in_the_launchpad(instance, client, connect, conn,
                                                                               sandbox):
    customer = connect().account.account
    instance.add_dynamic_partitions(accounts.name, [customer])
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=20), today - timedelta(days=15)
    result = dg.materialize([metrics_daily], partition_key=customer, instance=instance,
                            resources={"app_db": AppDatabase(), NAME: client},
                            run_config={"ops": {metrics_daily.op.name: {"config": {
                                "first_day": first.isoformat(), "last_day": last.isoformat()}}}})
    assert result.success
    days = {d for _, d in stored(conn, customer, date(2000, 1, 1), date(2100, 1, 1))}
    assert days and min(days) >= first and max(days) <= last
    assert stored(conn, customer, first, last) == upstream(sandbox, customer, first, last)


def test_the_signed_trigger_with_a_range_launches_that_sync(instance, client, connect, conn, database_url, sandbox):
    from sync_pipelines.core.dg.triggers import build_trigger_sensor
    from sync_pipelines.defs.google_ads.triggers import TRIGGER

    customer = connect().account.account
    environ = {"SYNC_AUTH_TOKEN": "trigger-token-123"}
    headers = {"Authorization": "Bearer trigger-token-123"}
    today = datetime.now(UTC).date()
    body = {"accounts": [customer], "startDate": (today - timedelta(days=30)).isoformat(),
            "endDate": (today - timedelta(days=28)).isoformat(), "jobType": "manual-sync"}
    with serve_in_thread(create_app(database_url, environ=environ)) as receiver:
        bad = requests.post(f"{receiver.url}/triggers/google_ads_sync", json={"userId": "u1", "timeframeDays": -3}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_body"
        assert "between 0 and 3650" in bad.json()["detail"]
        ok = requests.post(f"{receiver.url}/triggers/google_ads_sync", json=body,
                           headers={**headers, "Idempotency-Key": f"range-{customer}"})
        assert ok.status_code == 202
    sensor = build_trigger_sensor([sync_job], bodies={TRIGGER.job: TRIGGER.parse_body})
    with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()},
                                 cursor=str(ok.json()["id"] - 1)) as context:
        (request,) = sensor(context).run_requests
    config = request.run_config["ops"][SPEC.op_name]["config"]
    assert config == {"accounts": [customer], "first_day": body["startDate"], "last_day": body["endDate"],
                      "kind": "manual"}
    run(instance, client, config.pop("accounts"), **config)
    days = {d for _, d in stored(conn, customer, date(2000, 1, 1), date(2100, 1, 1))}
    assert days and min(days) >= date.fromisoformat(body["startDate"])
    assert max(days) <= date.fromisoformat(body["endDate"])


def test_runs_refreshing_one_expired_token_at_once_refresh_it_once(client, connect, conn, database_url, cipher,
                                                                   sandbox):
    connected = connect(expires_at=datetime.now(UTC) - timedelta(minutes=5))
    before = sandbox.stats()["oauth"].get("ok", 0)
    tokens, barrier = [], threading.Barrier(6)

    def one_run():
        source = TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, NAME,
                             connected.account.account, client.refresher(connected.account.account))
        barrier.wait()
        tokens.append(source.access_token())

    threads = [threading.Thread(target=one_run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and len(tokens) == 6
    assert sandbox.stats()["oauth"].get("ok", 0) - before == 1  # one refresh for six runs
    assert isinstance(tokens[0], str) and not Tokens(tokens[0]).expired()


def test_the_declaration_says_what_drives_an_account_and_accepts_a_cadence():
    from sync_pipelines.defs.google_ads.provider import DECLARATION

    assert DECLARATION.takes_cadence
    assert DECLARATION.drives("hourly") == "automation hourly + nightly daily 02:00 UTC"
    assert {s.cron_schedule for s in schedules} == set(DECLARATION.schedules.values())


def test_a_scheduled_sync_reads_each_accounts_own_lookback(instance, client, connect, conn):
    short, long = connect().account.account, connect().account.account
    set_preferences(conn, NAME, long, lookback_days=9)
    result = run(instance, client, [short, long], kind="scheduled")
    read = {e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    for account, lookback in ((short, 1), (long, 9)):
        first, last = (date.fromisoformat(read[account][k].value) for k in ("first_day", "last_day"))
        assert (last - first).days == lookback
