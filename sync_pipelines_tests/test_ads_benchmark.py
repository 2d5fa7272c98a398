"""`benchmarks/ads_sync.py` end to end at a small size (5 accounts × 10 days through the real
daemon, quota errors on), and what it relies on: the Google Ads sandbox's many-customer command
line and `SYNC_REPORT_BACKFILL_DAYS`. Counts are asserted, never timings."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta

import dagster as dg
import psycopg
import pytest

from benchmarks import ads_sync
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.defs.google_ads.client import METRICS_QUERY
from sync_pipelines.defs.google_ads.provider import DECLARATION
from sync_pipelines.defs.google_ads.sensors import sensors
from sync_pipelines.sandbox.google_ads import GoogleAdsSandbox
from sync_pipelines.sandbox.google_ads.app import _add_arguments, _build


def sandbox_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(list(argv))


def test_the_sandbox_command_line_serves_many_customers_with_known_ids_and_refresh_token():
    sandbox, banner = _build(sandbox_args("--customer-count", "12", "--first-customer-id", "2000000000",
                                          "--refresh-token", "1//known", "--throttle-requests", "3",
                                          "--throttle-scope", "DEVELOPER", "--throttle-retry-delay", "2"))
    assert sandbox.customers == [f"{2_000_000_000 + i}" for i in range(12)]
    assert sandbox.access_token("1//known").startswith("ya29.")  # the grant exists under the given token
    assert sandbox.throttle_snapshot() == {"requests": 3, "window_seconds": 60.0, "scope": "DEVELOPER",
                                           "retry_delay_seconds": 2, "retry_info": False}
    lines = banner("http://127.0.0.1:1")
    assert sum(line.startswith("  customer ") for line in lines) == 10
    assert lines[-1] == "  … and 2 more customers (to 2000000011)"


def test_the_sandbox_command_line_keeps_its_single_default_customer_and_lists():
    assert _build(sandbox_args())[0].customers == ["1234567890"]
    sandbox, _ = _build(sandbox_args("--customers", "111-222-3333", "--customer-count", "2",
                                     "--first-customer-id", "1112223333"))
    assert sandbox.customers == ["1112223333", "1112223334"]  # listed once, then the counted ones
    with pytest.raises(SystemExit):
        _build(sandbox_args("--customer-count", "2", "--first-customer-id", "9999999999"))


@pytest.mark.parametrize(("env", "expected"), [(None, None), ("10", 10)])
def test_backfill_days_come_from_the_environment_when_set(conn, monkeypatch, env, expected):
    monkeypatch.setenv("SYNC_REPORT_MAX_RUNS_PER_TICK", "1000")
    if env is None:
        monkeypatch.delenv("SYNC_REPORT_BACKFILL_DAYS", raising=False)
    else:
        monkeypatch.setenv("SYNC_REPORT_BACKFILL_DAYS", env)
    account = f"{uuid.uuid4().int % 9_000_000_000 + 1_000_000_000}"
    upsert_account(conn, DECLARATION, account, credentials_env="GOOGLE_ADS_OAUTH")
    sensor = next(s for s in sensors if s.name == "google_ads_automation")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()})
        requests = sensor.evaluate_tick(context).run_requests
    mine = [r for r in requests if account in r.run_config["ops"]["google_ads_sync_accounts"]["config"]["accounts"]]
    assert len(mine) == 1 and mine[0].tags["sync/kind"] == "backfill"
    assert mine[0].run_config["ops"]["google_ads_sync_accounts"]["config"].get("days") == expected


@pytest.mark.slow
def test_the_benchmark_backfills_and_syncs_nightly_through_the_daemon(postgres_server, tmp_path):
    accounts, days, campaigns = 5, 10, 5
    name = f"t{uuid.uuid4().hex[:8]}"
    result = ads_sync.run_scenario(postgres_server, tmp_path, name=name, platforms=[ads_sync.GOOGLE_ADS],
                                   accounts=accounts, days=days, campaigns=campaigns,
                                   throttle=ads_sync.Throttle(4, 3.0, "DEVELOPER"), timeout=300)
    backfill, nightly = result["backfill"], result["nightly"]

    # One automation run read every account's backfill: the sensor's first tick, nobody launching it.
    assert backfill["runs_by_job_trigger_kind_status"] == {"google_ads_sync automation backfill SUCCESS": 1}
    assert backfill["accounts_per_run"] == [accounts]
    assert backfill["run_peak_rss_mb"]["count"] == 1  # the sampler saw the run process
    app = backfill["app"]["google_ads"]
    assert app["accounts_backfilled"] == accounts and app["account_syncs_ok_in_pass"] == accounts
    assert app["account_days_synced"] == accounts * (days + 1)  # the last `days` days and today
    assert app["accounts_failed_in_pass"] == 0 and app["accounts_needing_reauth"] == 0
    # Per account: one token refresh, the time zone query and one searchStream for all days; the
    # quota errors were waited out (more requests, not failures).
    requests = backfill["requests"]["google_ads"]
    assert requests["token_requests"] == accounts
    assert requests["status_counts"]["200"] == 2 * accounts
    assert requests["quota_errors_429"] > 0
    assert requests["api_requests"] == 2 * accounts + requests["quota_errors_429"]

    # Nightly: one batch run, one request per account (yesterday and today), no refresh needed.
    assert nightly["run_requests"] == 1
    assert nightly["runs_by_job_trigger_kind_status"] == {"google_ads_sync nightly scheduled SUCCESS": 1}
    assert nightly["requests"]["google_ads"]["status_counts"]["200"] == accounts
    assert nightly["requests"]["google_ads"]["token_requests"] == 0
    assert nightly["app"]["google_ads"]["account_days_synced_in_pass"] == accounts * 2
    assert nightly["app"]["google_ads"]["accounts_failed_in_pass"] == 0

    # The rows are exactly what the sandbox serves (same seed and ids: the same numbers).
    upstream = GoogleAdsSandbox(seed=7)
    with psycopg.connect(postgres_server.ensure_database(f"app_{name}"), autocommit=True) as conn:
        spans = conn.execute("SELECT account, first_day, last_day FROM sync.report_accounts").fetchall()
        assert len(spans) == accounts
        for account, first, last in spans:
            assert last - first == timedelta(days=days)
            upstream.add_customer(account, campaigns=campaigns)
            before_today = last - timedelta(days=1)  # today's partial row may have appeared since
            expected = upstream.search(account, METRICS_QUERY.format(first=first, last=before_today))
            stored = conn.execute("SELECT count(*) FROM google_ads.campaign_metrics_daily WHERE account = %s"
                                  " AND date BETWEEN %s AND %s", (account, first, before_today)).fetchone()[0]
            assert stored == len(expected) > 0
