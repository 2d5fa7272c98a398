"""TikTok through Dagster: the same core report job as Google and Meta, against the TikTok sandbox —
each account's failure its own (a revoked long-term token marks only its integration), a 90-day
backfill in ⌈90 / 30⌉ report reads, late conversions restated and corrected, and the trigger body.

The sandbox runs on the real clock (the engine picks days from "now"); today's numbers still grow
upstream, so comparisons stop at yesterday.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from sync_pipelines.core import credentials, outcomes, reports
from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.registry import get_account, upsert_account
from sync_pipelines.defs.tiktok_ads.assets import SPEC, sync_job
from sync_pipelines.defs.tiktok_ads.provider import DECLARATION, NAME
from sync_pipelines.defs.tiktok_ads.triggers import TRIGGER
from sync_pipelines_tests.defs.ads_fixtures import job_runner, new_cipher, stored_metrics

TABLE = "tiktok_ads.campaign_metrics_daily"
run = job_runner(sync_job, SPEC.op_name, NAME)


@pytest.fixture
def account(tiktok_sandbox, conn, monkeypatch):
    """A connected advertiser (registry row as `accounts connect` writes it + its long-term token)."""
    cipher = new_cipher(monkeypatch)
    tiktok_sandbox.set_clock(None)

    def add(timezone="America/Los_Angeles", campaigns=3):
        number = str(random.randrange(10**15, 10**16))
        tiktok_sandbox.add_advertiser(number, timezone=timezone, campaigns=campaigns)
        token = tiktok_sandbox.issue_token(advertisers=[number]).value
        upsert_account(conn, DECLARATION, number, credentials_env="", owner="user-1")
        credentials.store(conn, cipher, NAME, number, Tokens(token))
        return number, token

    return add


def upstream(sandbox, number, first, last):
    return {(r["dimensions"]["campaign_id"], date.fromisoformat(r["dimensions"]["stat_time_day"][:10])):
            (int(r["metrics"]["impressions"]), Decimal(r["metrics"]["spend"]), Decimal(r["metrics"]["conversion"]))
            for r in sandbox.rows(number, first, last)}


def stored(conn, number, first, last):
    return stored_metrics(conn, TABLE, number, first, last, "impressions", "spend", "conversions")


def test_a_revoked_token_fails_only_its_account_and_marks_it(instance, tiktok_client, tiktok_sandbox, account, conn):
    good, _ = account()
    bad, bad_token = account()
    tiktok_sandbox.tokens.revoke(bad_token)  # the advertiser withdrew the authorisation: 40105

    result = run(instance, tiktok_client, [good, bad], days=5, raise_on_error=False)

    assert not result.success
    marked = get_account(conn, NAME, bad)
    assert marked.needs_reauth and "long-term" in marked.auth_error
    assert not get_account(conn, NAME, good).needs_reauth
    latest = {o.account: o for o in outcomes.latest(conn, NAME)}
    assert latest[bad].needs_reauth and latest[good].ok
    today = tiktok_sandbox.advertiser(good).today(tiktok_sandbox.now())
    first, yesterday = today - timedelta(days=5), today - timedelta(days=1)
    assert stored(conn, good, first, yesterday) == upstream(tiktok_sandbox, good, first, yesterday)
    assert instance.get_materialized_partitions(SPEC.asset_key) == {good}


def test_a_backfill_is_three_30_day_reads_and_late_conversions_are_corrected(instance, tiktok_client,
                                                                              tiktok_sandbox, account, conn):
    number, _ = account(campaigns=4)
    tiktok_sandbox.reset_stats()
    run(instance, tiktok_client, [number], kind="backfill")
    assert tiktok_sandbox.stats()["calls"]["report"][number] == 3  # 90 days, ≤ 30 a read, one page each
    assert reports.report_states(conn, SPEC.stream)[number].backfilled_at is not None
    today = tiktok_sandbox.advertiser(number).today(tiktok_sandbox.now())
    first, yesterday = today - timedelta(days=27), today - timedelta(days=1)
    assert stored(conn, number, first, yesterday) == upstream(tiktok_sandbox, number, first, yesterday)

    assert tiktok_sandbox.restate(number, days=10, vanish=2)["changed"]
    assert stored(conn, number, first, yesterday) != upstream(tiktok_sandbox, number, first, yesterday)
    run(instance, tiktok_client, [number], kind="restatement")
    assert stored(conn, number, first, yesterday) == upstream(tiktok_sandbox, number, first, yesterday)


def test_the_advertisers_time_zone_is_learnt_once_and_its_days_used(instance, tiktok_client, tiktok_sandbox,
                                                                    account, conn):
    number, _ = account(timezone="Asia/Tokyo")
    result = run(instance, tiktok_client, [number], days=2)
    assert get_account(conn, NAME, number).timezone == "Asia/Tokyo"
    today = tiktok_sandbox.advertiser(number).today(tiktok_sandbox.now())
    (read,) = [e.materialization.metadata for e in result.get_asset_materialization_events()]
    assert (read["first_day"].value, read["last_day"].value) == ((today - timedelta(days=2)).isoformat(),
                                                                 today.isoformat())  # Tokyo's days
    days = {d for (d,) in conn.execute(f"SELECT DISTINCT date FROM {TABLE} WHERE account = %s", (number,))}
    assert days and max(days) <= today and min(days) >= today - timedelta(days=2)  # (a day may have no delivery)


def test_the_trigger_body_names_tiktoks_job_and_checks_advertiser_ids():
    config = TRIGGER.parse_body({"accounts": [" 7001 "], "timeframeDays": 3})
    assert TRIGGER.job == "tiktok_ads_sync"
    assert config == {"ops": {SPEC.op_name: {"config": {"accounts": ["7001"], "days": 3}}}}
    with pytest.raises(ValueError):
        TRIGGER.parse_body({"accounts": ["act_7001"]})
