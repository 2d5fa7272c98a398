"""LinkedIn through Dagster: the same core report job as the other platforms, against the LinkedIn
sandbox — a revoked grant fails and marks only its account, a 90-day backfill past the response
cap lands whole, a restated window is replaced, and the trigger body is accepted for its job.

The sandbox runs on the real clock (the engine picks days from "now", UTC for LinkedIn); today's
numbers are still those of the sandbox's seed, so comparisons include them.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from sync_pipelines.core import credentials, outcomes, reports
from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import get_account, upsert_account
from sync_pipelines.defs.linkedin_ads.assets import SPEC, sync_job
from sync_pipelines.defs.linkedin_ads.client import LinkedInAdsClient
from sync_pipelines.defs.linkedin_ads.provider import DECLARATION, NAME
from sync_pipelines.defs.linkedin_ads.triggers import TRIGGER

TABLE = "linkedin_ads.campaign_analytics_daily"



@pytest.fixture
def account(sandbox, conn, cipher):
    """A connected ad account (registry row as `accounts connect` writes it + its tokens)."""
    sandbox.set_clock(None)

    def add(campaigns=3):
        number = str(random.randrange(10**8, 10**9))
        sandbox.add_account(number, campaigns=campaigns)
        refresh_token, access = sandbox.grant(accounts=[number])
        upsert_account(conn, DECLARATION, f"urn:li:sponsoredAccount:{number}", credentials_env="", owner="user-1")
        credentials.store(conn, cipher, NAME, number, Tokens(access, refresh_token, datetime.now(UTC) + timedelta(days=50)))
        return number, refresh_token

    return add


def run(instance, client, accounts_, *, raise_on_error=True, **config):
    return sync_job.execute_in_process(
        run_config={"ops": {SPEC.op_name: {"config": {"accounts": accounts_, **config}}}},
        instance=instance, resources={"app_db": AppDatabase(), NAME: client}, raise_on_error=raise_on_error)


def upstream(sandbox, number, first, last):
    return {(e["pivotValues"][0].rsplit(":", 1)[1], date(**e["dateRange"]["start"])):
            (e["impressions"], Decimal(e["costInLocalCurrency"])) for e in sandbox.elements(number, first, last)}


def stored(conn, number, first, last):
    rows = conn.execute(f"SELECT campaign_id, date, impressions, spend FROM {TABLE} WHERE account = %s"
                        " AND date BETWEEN %s AND %s", (number, first, last)).fetchall()
    return {(cid, day): (imp, spend) for cid, day, imp, spend in rows}


def test_a_revoked_grant_fails_only_its_account_and_marks_it(instance, client, sandbox, account, conn):
    good, _ = account()
    bad, bad_refresh = account()
    sandbox.revoke(bad_refresh)

    result = run(instance, client, [good, bad], days=5, raise_on_error=False)

    assert not result.success
    marked = get_account(conn, NAME, bad)
    assert marked.needs_reauth and marked.auth_error and marked.timezone == "UTC"
    assert not get_account(conn, NAME, good).needs_reauth
    latest = {o.account: o for o in outcomes.latest(conn, NAME)}
    assert latest[bad].needs_reauth and latest[good].ok
    today = datetime.now(UTC).date()
    assert stored(conn, good, today - timedelta(days=5), today) == upstream(sandbox, good, today - timedelta(days=5),
                                                                             today)
    assert instance.get_materialized_partitions(SPEC.asset_key) == {good}


def test_a_backfill_past_the_cap_lands_whole_and_a_restatement_is_corrected(instance, client, sandbox, account,
                                                                              conn):
    sandbox.set_max_elements(500)  # 12 campaigns × 90 days ≈ 930 campaign-days: past this cap for any seed
    number, _ = account(campaigns=12)  # (10 gave ≤ 500 in 0.2 % of draws; 12: 587 at least in 600)
    # Built anew: Dagster rebuilds a resource from its config, which a pydantic model_copy does not update.
    capped = LinkedInAdsClient(**{**client.model_dump(), "max_elements": 500})
    run(instance, capped, [number], kind="backfill")
    state = reports.report_states(conn, SPEC.stream)[number]
    assert state.backfilled_at is not None
    today = datetime.now(UTC).date()
    first = today - timedelta(days=89)  # a 90-day backfill, today included
    assert stored(conn, number, first, today) == upstream(sandbox, number, first, today)
    assert len(stored(conn, number, first, today)) > 500 and sandbox.stats()["truncated_responses"] == 0

    sandbox.restate(number, days=10, vanish=2)
    assert stored(conn, number, first, today) != upstream(sandbox, number, first, today)
    run(instance, capped, [number], kind="restatement")
    assert stored(conn, number, first, today) == upstream(sandbox, number, first, today)


def test_the_trigger_body_names_linkedins_job_and_normalises_account_ids():
    config = TRIGGER.parse_body({"accounts": ["urn:li:sponsoredAccount:123"], "timeframeDays": 3})
    assert TRIGGER.job == "linkedin_ads_sync"
    assert config == {"ops": {SPEC.op_name: {"config": {"accounts": ["123"], "days": 3}}}}
