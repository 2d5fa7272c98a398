"""`benchmarks/ads_sync.py` end to end at a small size (5 accounts × 10 days on Google Ads, Meta,
LinkedIn and TikTok together through the real daemon, Google's quota errors on), and what it relies on: the sandboxes'
many-account command lines and `SYNC_REPORT_BACKFILL_DAYS`. Counts are asserted, never timings."""

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
from sync_pipelines.sandbox.linkedin_ads import LinkedInAdsSandbox
from sync_pipelines.sandbox.meta_ads import MetaAdsSandbox
from sync_pipelines.sandbox.linkedin_ads import app as linkedin_app
from sync_pipelines.sandbox.meta_ads import app as meta_app
from sync_pipelines.sandbox.tiktok_ads import TikTokAdsSandbox
from sync_pipelines.sandbox.tiktok_ads import app as tiktok_app


def sandbox_args(*argv: str, add_arguments=_add_arguments) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
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


def test_the_meta_sandbox_command_line_serves_many_ad_accounts_with_known_ids():
    args = sandbox_args("--account-count", "11", "--first-account-id", "act_500", "--throttle-calls", "4",
                        "--throttle-window-seconds", "30", "--throttle-block-seconds", "30",
                        add_arguments=meta_app._add_arguments)
    sandbox, banner = meta_app._build(args)
    assert sandbox.account_ids == [str(500 + i) for i in range(11)]
    assert (sandbox.throttle.calls_per_window, sandbox.throttle.window_seconds, sandbox.throttle.block_seconds) == (
        4, 30.0, 30.0)
    lines = banner("http://127.0.0.1:1")
    assert sum(line.startswith("  ad account ") for line in lines) == 10
    assert "  … and 1 more ad accounts (to act_510)" in lines
    assert meta_app._build(sandbox_args(add_arguments=meta_app._add_arguments))[0].account_ids == ["1001", "1002"]


def test_the_linkedin_sandbox_command_line_serves_many_ad_accounts_under_one_known_grant():
    args = sandbox_args("--account-count", "11", "--first-account-id", "urn:li:sponsoredAccount:600", "--big-account",
                        "", "--refresh-token", "AQR-known", "--access-token", "AQV-known",
                        add_arguments=linkedin_app._add_arguments)
    sandbox, banner = linkedin_app._build(args)
    assert sandbox.account_ids == [str(600 + i) for i in range(11)]
    assert sandbox.oauth.check("Bearer AQV-known", sandbox.now()).refresh_token == "AQR-known"
    assert sandbox.oauth.token_endpoint({"grant_type": "refresh_token", "refresh_token": "AQR-known",
                                         "client_id": linkedin_app.CLIENT_ID,
                                         "client_secret": linkedin_app.CLIENT_SECRET}, sandbox.now())["access_token"]
    lines = banner("http://127.0.0.1:1")
    assert sum(line.startswith("  ad account ") for line in lines) == 10
    assert lines[-1] == "  … and 1 more ad accounts (to 610)"
    default, _ = linkedin_app._build(sandbox_args(add_arguments=linkedin_app._add_arguments))
    assert default.account_ids == ["508000001", "508000002", "508000999"]
    with pytest.raises(SystemExit):
        linkedin_app._build(sandbox_args("--account-count", "-1", add_arguments=linkedin_app._add_arguments))


def test_the_tiktok_sandbox_command_line_serves_many_advertisers_with_known_ids_and_token():
    args = sandbox_args("--advertiser-count", "12", "--first-advertiser-id", "7100000000", "--advertisers", "7001",
                        "--token", "known-token", add_arguments=tiktok_app._add_arguments)
    sandbox, banner = tiktok_app._build(args)
    assert sandbox.advertiser_ids == ["7001", *(str(7_100_000_000 + i) for i in range(12))]
    assert sandbox.tokens.check("known-token", sandbox.now(), None)
    lines = banner("http://127.0.0.1:1")
    assert sum(line.startswith("  advertiser ") for line in lines) == 10
    assert "  … and 3 more advertisers (to 7100000011)" in lines
    assert tiktok_app._build(sandbox_args(add_arguments=tiktok_app._add_arguments))[0].advertiser_ids == ["7001", "7002"]
    with pytest.raises(SystemExit):
        tiktok_app._build(sandbox_args("--first-advertiser-id", "x", add_arguments=tiktok_app._add_arguments))


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


PLATFORMS = ("google_ads", "meta_ads", "linkedin_ads", "tiktok_ads")
NIGHTLY_REQUESTS = {"google_ads": 1, "meta_ads": 1, "linkedin_ads": 3, "tiktok_ads": 1}  # per account


@pytest.mark.slow
def test_the_benchmark_backfills_and_syncs_nightly_through_the_daemon(postgres_server, tmp_path):
    accounts, days, campaigns = 5, 10, 5
    name = f"t{uuid.uuid4().hex[:8]}"
    result = ads_sync.run_scenario(postgres_server, tmp_path, name=name,
                                   platforms=[ads_sync.GOOGLE_ADS, ads_sync.META_ADS, ads_sync.LINKEDIN_ADS,
                                              ads_sync.TIKTOK_ADS],
                                   accounts=accounts, days=days, campaigns=campaigns,
                                   throttles={"google_ads": ads_sync.Throttle(4, 3.0, "DEVELOPER")}, timeout=300)
    backfill, nightly = result["backfill"], result["nightly"]

    # One automation run per platform read every account's backfill: the sensors' first ticks, nobody
    # launching them.
    assert backfill["runs_by_job_trigger_kind_status"] == {f"{p}_sync automation backfill SUCCESS": 1 for p in PLATFORMS}
    assert backfill["accounts_per_run"] == [accounts] * 4
    assert backfill["run_peak_rss_mb"]["count"] == 4  # the sampler saw every run process
    for platform in PLATFORMS:
        app = backfill["app"][platform]
        assert app["accounts_backfilled"] == accounts and app["account_syncs_ok_in_pass"] == accounts
        assert app["account_days_synced"] == accounts * (days + 1)  # the last `days` days and today
        assert app["accounts_failed_in_pass"] == 0 and app["accounts_needing_reauth"] == 0
    # Meta: its time zone, then one async report run (created, polled twice, read) per account.
    assert backfill["requests"]["meta_ads"]["status_counts"] == {"200": 5 * accounts}
    # LinkedIn: the ad account, its campaigns' page and one adAnalytics read, on the stored grant's
    # access token (valid for weeks: no refresh). TikTok: the advertiser and one report (11 days ≤ 30).
    assert backfill["requests"]["linkedin_ads"]["api_requests"] == 3 * accounts
    assert backfill["requests"]["tiktok_ads"]["api_requests"] == 2 * accounts
    assert backfill["requests"]["linkedin_ads"]["token_requests"] == backfill["requests"]["tiktok_ads"][
        "token_requests"] == 0
    # Per account: one token refresh, the time zone query and one searchStream for all days; the
    # quota errors were waited out (more requests, not failures).
    requests = backfill["requests"]["google_ads"]
    assert requests["token_requests"] == accounts
    assert requests["status_counts"]["200"] == 2 * accounts
    assert requests["quota_errors_429"] > 0
    assert requests["api_requests"] == 2 * accounts + requests["quota_errors_429"]

    # Nightly: one batch run per platform, one request per account (yesterday and today), no refresh.
    assert nightly["run_requests"] == 4
    assert nightly["runs_by_job_trigger_kind_status"] == {f"{p}_sync nightly scheduled SUCCESS": 1 for p in PLATFORMS}
    for platform in PLATFORMS:
        assert nightly["requests"][platform]["token_requests"] == 0
        assert nightly["requests"][platform]["status_counts"]["200"] == NIGHTLY_REQUESTS[platform] * accounts
        assert nightly["app"][platform]["account_days_synced_in_pass"] == accounts * 2
        assert nightly["app"][platform]["accounts_failed_in_pass"] == 0

    # The rows are exactly what the sandbox serves (same seed and ids: the same numbers).
    upstream, meta_upstream = GoogleAdsSandbox(seed=7), MetaAdsSandbox(seed=7)
    with psycopg.connect(postgres_server.ensure_database(f"app_{name}"), autocommit=True) as conn:
        spans = conn.execute("SELECT account, first_day, last_day FROM sync.report_accounts"
                             " WHERE stream = 'meta_ads/campaign_insights_daily'").fetchall()
        assert len(spans) == accounts
        for account, first, last in spans:
            assert last - first == timedelta(days=days)
            meta_upstream.add_account(account, campaigns=campaigns)
            before_today = last - timedelta(days=1)
            expected = meta_upstream.rows(account, first, before_today)
            stored = conn.execute("SELECT count(*) FROM meta_ads.campaign_insights_daily WHERE account = %s"
                                  " AND date BETWEEN %s AND %s", (account, first, before_today)).fetchone()[0]
            assert stored == len(expected) > 0
        spans = conn.execute("SELECT account, first_day, last_day FROM sync.report_accounts"
                             " WHERE stream = 'google_ads/campaign_metrics_daily'").fetchall()
        assert len(spans) == accounts
        for account, first, last in spans:
            assert last - first == timedelta(days=days)
            upstream.add_customer(account, campaigns=campaigns)
            before_today = last - timedelta(days=1)  # today's partial row may have appeared since
            expected = upstream.search(account, METRICS_QUERY.format(first=first, last=before_today))
            stored = conn.execute("SELECT count(*) FROM google_ads.campaign_metrics_daily WHERE account = %s"
                                  " AND date BETWEEN %s AND %s", (account, first, before_today)).fetchone()[0]
            assert stored == len(expected) > 0
        for platform, table, upstream_rows in (("linkedin_ads", "linkedin_ads.campaign_analytics_daily", linkedin_rows),
                                               ("tiktok_ads", "tiktok_ads.campaign_metrics_daily", tiktok_rows)):
            spans = conn.execute("SELECT account, first_day, last_day FROM sync.report_accounts WHERE stream LIKE %s",
                                 (f"{platform}/%",)).fetchall()
            assert len(spans) == accounts
            for account, first, last in spans:
                assert last - first == timedelta(days=days)
                before_today = last - timedelta(days=1)
                stored = conn.execute(f"SELECT count(*) FROM {table} WHERE account = %s AND date BETWEEN %s AND %s",
                                      (account, first, before_today)).fetchone()[0]
                assert stored == len(upstream_rows(account, first, before_today, campaigns)) > 0


def linkedin_rows(account, first, last, campaigns):
    upstream = LinkedInAdsSandbox(seed=7)
    upstream.add_account(account, campaigns=campaigns)
    return upstream.elements(account, first, last)


def tiktok_rows(account, first, last, campaigns):
    upstream = TikTokAdsSandbox(seed=7)
    upstream.add_advertiser(account, campaigns=campaigns)
    return upstream.rows(account, first, last)
