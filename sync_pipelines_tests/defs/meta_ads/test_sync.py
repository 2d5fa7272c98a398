"""Meta through Dagster: the same core report job as Google, against the Meta sandbox — each account's
failure its own (an invalidated token marks only its integration), a 90-day backfill in one async
report run, a restated window replaced, and the trigger body accepted for Meta's job.

The sandbox runs on the real clock (the engine picks days from "now"); today's numbers still grow
upstream, so comparisons stop at yesterday.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from sync_pipelines.core import credentials, outcomes, reports
from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.registry import get_account, upsert_account
from sync_pipelines.defs.meta_ads.assets import SPEC, sync_job
from sync_pipelines.defs.meta_ads.provider import DECLARATION, NAME
from sync_pipelines.defs.meta_ads.triggers import TRIGGER
from sync_pipelines_tests.defs.ads_fixtures import job_runner, new_cipher, stored_metrics

TABLE = "meta_ads.campaign_insights_daily"
run = job_runner(sync_job, SPEC.op_name, NAME)


@pytest.fixture
def account(meta_sandbox, conn, monkeypatch):
    """A connected ad account (registry row as `accounts connect` writes it + its token)."""
    cipher = new_cipher(monkeypatch)
    meta_sandbox.set_clock(None)

    def add(timezone="America/Los_Angeles", campaigns=3):
        number = str(random.randrange(10**11, 10**12))  # random: per-account limiters never meet
        meta_sandbox.add_account(number, timezone_name=timezone, campaigns=campaigns)
        token = meta_sandbox.issue_token(f"EAAdg{number}", accounts=[number], expires_in=None).value
        upsert_account(conn, DECLARATION, f"act_{number}", credentials_env="", owner="user-1")
        credentials.store(conn, cipher, NAME, number, Tokens(token, None, datetime.now(UTC) + timedelta(days=50)))
        return number, token

    return add


def upstream(sandbox, number, first, last):
    return {(r["campaign_id"], date.fromisoformat(r["date_start"])): (int(r["impressions"]), Decimal(r["spend"]))
            for r in sandbox.rows(number, first, last)}


def stored(conn, number, first, last):
    return stored_metrics(conn, TABLE, number, first, last, "impressions", "spend")


def test_an_invalidated_token_fails_only_its_account_and_marks_it(instance, meta_client, meta_sandbox, account,
                                                                  conn):
    good, _ = account()
    bad, bad_token = account()
    meta_sandbox.invalidate_token(bad_token, subcode=460)  # password changed: only a person can fix it

    result = run(instance, meta_client, [good, bad], days=5, raise_on_error=False)

    assert not result.success
    marked = get_account(conn, NAME, bad)
    assert marked.needs_reauth and marked.auth_error
    assert not get_account(conn, NAME, good).needs_reauth
    latest = {o.account: o for o in outcomes.latest(conn, NAME)}
    assert latest[bad].needs_reauth and latest[good].ok
    today = meta_sandbox.account(good).today(meta_sandbox.now())
    first, yesterday = today - timedelta(days=5), today - timedelta(days=1)
    assert stored(conn, good, first, yesterday) == upstream(meta_sandbox, good, first, yesterday)
    assert instance.get_materialized_partitions(SPEC.asset_key) == {good}


def test_a_backfill_is_one_async_report_run_and_a_restatement_is_corrected(instance, meta_client, meta_sandbox,
                                                                             account, conn):
    number, _ = account(campaigns=4)
    meta_sandbox.reset_stats()
    run(instance, meta_client, [number], kind="backfill")
    calls = meta_sandbox.stats()["calls"]
    assert calls.get("report_runs", {}).get(number) == 1  # 90 days: one async run, not 91 requests
    state = reports.report_states(conn, SPEC.stream)[number]
    assert state.backfilled_at is not None
    today = meta_sandbox.account(number).today(meta_sandbox.now())
    first, yesterday = today - timedelta(days=27), today - timedelta(days=1)
    assert stored(conn, number, first, yesterday) == upstream(meta_sandbox, number, first, yesterday)

    changed = meta_sandbox.restate(number, days=10, vanish=2)
    assert changed
    assert stored(conn, number, first, yesterday) != upstream(meta_sandbox, number, first, yesterday)
    run(instance, meta_client, [number], kind="restatement")
    assert stored(conn, number, first, yesterday) == upstream(meta_sandbox, number, first, yesterday)


def test_the_trigger_body_names_metas_job_and_normalises_account_ids():
    config = TRIGGER.parse_body({"accounts": ["act_123"], "timeframeDays": 3})
    assert TRIGGER.job == "meta_ads_sync"
    assert config == {"ops": {SPEC.op_name: {"config": {"accounts": ["123"], "days": 3}}}}
    with pytest.raises(ValueError, match="providerId"):
        TRIGGER.parse_body({"userId": "u", "providerId": "google_ads"})
