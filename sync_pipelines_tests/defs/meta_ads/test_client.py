"""The Meta ads client against the Marketing API sandbox: cursor paging, async report runs that
complete, get stuck or fail (split, then a clear failure), every kind of throttling backed off,
usage headers slowing the account down, code 190 → one refresh → retried or re-authorisation,
long-lived token exchange, exact decimals and the account's own days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import CredentialsError, Tokens
from sync_pipelines.core.entities import row_builder
from sync_pipelines.core.http import RateLimitError, RequestFailed
from sync_pipelines.core.oauth import ReauthorisationRequired
from sync_pipelines.defs.meta_ads import tables
from sync_pipelines.defs.meta_ads.client import _without_token, classify
from sync_pipelines.defs.meta_ads.provider import DECLARATION
from sync_pipelines.defs.meta_ads.usage import MetaUsageHeaders, Usage, read_usage

LA_TODAY = date(2025, 7, 9)


def read(session, first: date, last: date) -> tuple[list[dict], int]:
    pages = list(session.daily_metrics(first, last))
    return [row for page in pages for row in page], len(pages)


def truth(sandbox, number: str, first: date, last: date) -> list[dict]:
    """The sandbox's rows as the client yields them (every field; empty action lists filled in)."""
    rows = sandbox.rows(number, first, last)
    for row in rows:
        row.setdefault("actions", [])
        row.setdefault("action_values", [])
    return rows


def comparable(rows: list[dict]) -> dict:
    keep = ("campaign_id", "campaign_name", "impressions", "clicks", "spend", "actions", "action_values",
            "account_currency", "date_start")
    return {(r["campaign_id"], r["date_start"]): {k: r[k] for k in keep} for r in rows}


def calls(sandbox, kind: str, number: str) -> int:
    return sandbox.stats()["calls"].get(kind, {}).get(number, 0)


# ------------------------------------------------------------------------ reading
def test_a_short_range_is_one_synchronous_read_paged_by_next(meta_sandbox, meta_client, connect):
    account = connect(campaigns=12)  # > 25 rows (two pages) for any seed: 38 at least in 2,000 draws (8 gave ≤ 25 in 0.15 %)
    first, last = LA_TODAY - timedelta(days=6), LA_TODAY
    sent: list[str] = []
    with account.session(meta_client) as session:
        session.http._session.hooks["response"].append(lambda resp, **_: sent.append(resp.request.url))
        rows, pages = read(session, first, last)
    assert len(sent) == pages and all(url.count("access_token=") == 1 for url in sent)  # next links echo it
    expected = truth(meta_sandbox, account.number, first, last)
    assert comparable(rows) == comparable(expected) and len(rows) == len(expected) > 25
    assert pages == -(-len(rows) // 25) > 1
    assert calls(meta_sandbox, "insights_sync", account.number) == pages
    assert calls(meta_sandbox, "report_runs", account.number) == 0


def test_a_long_range_is_one_async_report_run(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.set_job_behaviour(account.number, "complete", polls=3)
    first, last = LA_TODAY - timedelta(days=59), LA_TODAY
    with account.session(meta_client) as session:
        rows, _ = read(session, first, last)
        assert session.report_runs == 1
    assert comparable(rows) == comparable(truth(meta_sandbox, account.number, first, last))
    assert calls(meta_sandbox, "report_runs", account.number) == 1
    assert calls(meta_sandbox, "report_polls", account.number) == 3
    assert calls(meta_sandbox, "insights_sync", account.number) == 0


def test_a_stuck_run_is_waited_for_boundedly_then_split_in_halves(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.set_job_behaviour(account.number, "stuck", over_days=15)  # "Job Running" at 100 %, for ever
    first, last = LA_TODAY - timedelta(days=59), LA_TODAY  # 60 days → 30 + 30 → 4 × 15
    with account.session(meta_client) as session:
        rows, _ = read(session, first, last)
    assert comparable(rows) == comparable(truth(meta_sandbox, account.number, first, last))
    assert calls(meta_sandbox, "report_runs", account.number) == 1 + 2 + 4


def test_the_wait_for_a_run_is_bounded_by_max_poll_seconds(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.set_job_behaviour(account.number, "stuck", over_days=10)
    client = meta_client.model_copy(update={"poll_interval_seconds": 5.0, "max_poll_seconds": 60.0})
    waits: list[float] = []
    with account.session(client, sleep=waits.append) as session:  # polls recorded, not slept
        rows, _ = read(session, LA_TODAY - timedelta(days=19), LA_TODAY)
    assert rows and session.report_runs == 3
    assert waits.count(5.0) == 12 and sum(waits) < 61  # 60 s of 5 s polls on the stuck run, none after


def test_a_failed_run_is_split_at_once(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.set_job_behaviour(account.number, "failed", polls=1, count=1)
    first, last = LA_TODAY - timedelta(days=39), LA_TODAY
    with account.session(meta_client) as session:
        rows, _ = read(session, first, last)
    assert comparable(rows) == comparable(truth(meta_sandbox, account.number, first, last))
    assert calls(meta_sandbox, "report_runs", account.number) == 3
    assert calls(meta_sandbox, "report_polls", account.number) == 3  # no waiting on a failed run


def test_runs_that_never_complete_fail_naming_the_account_and_range(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.set_job_behaviour(account.number, "stuck")
    client = meta_client.model_copy(update={"sync_max_days": 0})
    with account.session(client) as session, pytest.raises(RequestFailed) as failed:
        read(session, date(2025, 7, 1), date(2025, 7, 4))
    message = str(failed.value)
    assert account.number in message and "2025-07-01..2025-07-04" in message
    assert "single days" in message and "Job Running, 100%" in message
    assert calls(meta_sandbox, "report_runs", account.number) == 3  # 4 days → 2 → 1, then it gives up


def test_a_sync_read_meta_finds_too_big_falls_back_to_a_report_run(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.sync_max_days = 2
    first, last = LA_TODAY - timedelta(days=4), LA_TODAY
    with account.session(meta_client) as session:
        rows, _ = read(session, first, last)
    assert comparable(rows) == comparable(truth(meta_sandbox, account.number, first, last))
    assert calls(meta_sandbox, "report_runs", account.number) == 1


def test_days_are_the_accounts_own(meta_sandbox, meta_client, connect):
    auckland = connect(timezone="Pacific/Auckland")
    with auckland.session(meta_client) as session:
        assert session.account_timezone() == "Pacific/Auckland"
        rows, _ = read(session, date(2025, 7, 8), date(2025, 7, 12))
    assert max(r["date_start"] for r in rows) == "2025-07-10"  # 17:00 on the 10th there; nothing later
    la = connect()
    with la.session(meta_client) as session:
        assert session.account_timezone() == "America/Los_Angeles"
        rows, _ = read(session, date(2025, 7, 8), date(2025, 7, 12))
    assert max(r["date_start"] for r in rows) == "2025-07-09"


def test_spend_and_conversions_become_exact_decimals(meta_sandbox, meta_client, connect, monkeypatch):
    yen = connect(currency="JPY")
    dollars = connect(currency="USD")
    quiet = meta_sandbox.account(dollars.number)  # a campaign-day with impressions only: Meta sends no lists
    quiet.overrides[(quiet.campaigns[0].id, LA_TODAY)] = {
        "impressions": 40, "clicks": 0, "spend": 7, "purchases": 0, "purchase_value": 0, "add_to_cart": 0,
        "landing_page_views": 0}
    build = row_builder(tables.campaign_insights_daily)
    columns = [c.name for c in tables.campaign_insights_daily.columns if c.name != "synced_at"]
    for account in (yen, dollars):
        with account.session(meta_client) as session:
            rows, _ = read(session, LA_TODAY - timedelta(days=6), LA_TODAY)
        for record in rows:
            row = dict(zip(columns, build(account.number, record)))
            assert row["spend"] == Decimal(record["spend"]) and str(row["spend"]) == record["spend"]
            purchases = {a["action_type"]: a["value"] for a in record["actions"]}
            assert row["conversions"] == Decimal(purchases.get("omni_purchase", "0"))
            assert isinstance(row["impressions"], int) and row["date"] == date.fromisoformat(record["date_start"])
            assert row["currency"] == ("JPY" if account is yen else "USD")
            if record["campaign_id"] == quiet.campaigns[0].id and record["date_start"] == LA_TODAY.isoformat():
                assert record["actions"] == record["action_values"] == []
                assert (row["conversions"], row["conversion_value"], row["spend"]) == (0, 0, Decimal("0.07"))


def test_purchase_action_types_are_configurable_and_never_summed(monkeypatch):
    stats = [{"action_type": "purchase", "value": "3"}, {"action_type": "omni_purchase", "value": "4"},
             {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"}]
    assert tables.first_purchase_type(stats) == Decimal(4)
    assert tables.first_purchase_type([{"action_type": "link_click", "value": "9"}]) == Decimal(0)
    assert tables.first_purchase_type([]) == Decimal(0)
    monkeypatch.setenv(tables.PURCHASE_ACTION_TYPES_ENV, "offsite_conversion.fb_pixel_purchase, purchase")
    assert tables.first_purchase_type(stats) == Decimal(3)
    assert tables.first_purchase_type([{"action_type": "purchase", "value": "0.1"}]) == Decimal("0.1")


def test_ad_account_ids_are_stored_as_numbers():
    assert DECLARATION.normalise_account("act_123") == DECLARATION.normalise_account(" 123 ") == "123"
    with pytest.raises(ValueError):
        DECLARATION.normalise_account("act_12x")


# ---------------------------------------------------------------------- throttling
@pytest.mark.parametrize("code", [4, 17, 613, 80000, 80004])
def test_every_kind_of_throttling_is_waited_out_for_metas_estimate(meta_sandbox, meta_client, connect, code):
    account = connect()
    meta_sandbox.throttle_next(account.number, code, n=2, regain_minutes=2)
    waits: list[float] = []
    with account.session(meta_client, sleep=waits.append) as session:  # sleeps recorded, not slept
        rows, _ = read(session, LA_TODAY - timedelta(days=1), LA_TODAY)
        assert session.http.stats.retries == 2
    assert [w for w in waits if w >= 120] == [120, 120]  # estimated_time_to_regain_access: 2 minutes
    assert rows and meta_sandbox.stats()["rate_limited_429"] == 2


def test_a_wait_longer_than_allowed_fails_as_rate_limited(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.throttle_next(account.number, 80000, n=1, regain_minutes=30)
    client = meta_client.model_copy(update={"max_throttle_wait_seconds": 60.0})
    with account.session(client) as session, pytest.raises(RateLimitError, match=account.number):
        read(session, LA_TODAY, LA_TODAY)


def test_throttling_verdicts_carry_metas_estimate():
    busy = {"X-Business-Use-Case-Usage": '{"1":[{"type":"ads_insights","call_count":100,"total_cputime":30,'
                                         '"total_time":40,"estimated_time_to_regain_access":3}]}'}
    body = {"error": {"message": "(#80000) too many calls", "code": 80000, "error_subcode": 2446079}}
    verdict = classify(400, busy, body)
    assert (verdict.kind, verdict.delay) == ("throttle", 180.0) and "80000/2446079" in verdict.detail
    account_usage = {"x-ad-account-usage": '{"acc_id_util_pct":100,"reset_time_duration":45}'}
    assert classify(400, account_usage, {"error": {"code": 17, "message": "User request limit reached"}}).delay == 45
    assert classify(403, {}, {"error": {"code": 4, "message": "Application request limit reached"}}).delay is None
    assert classify(400, {}, {"error": {"code": 613}}).kind == "throttle"


def test_error_codes_decide_whatever_the_status_and_never_leak_a_token():
    token = "EAAsecret-token-value"
    assert classify(400, {}, {"error": {"code": 190, "error_subcode": 463, "message": "expired"}}).kind == "auth"
    assert classify(400, {}, {"error": {"code": 200, "message": "Requires ads_read permission"}}).kind == "auth"
    assert classify(500, {}, {"error": {"code": 2, "message": "retry later", "is_transient": True}}).kind == "retry"
    assert classify(400, {}, {"error": {"code": 1, "message": "An unknown error occurred"}}).kind == "retry"
    failed = classify(400, {}, {"error": {"code": 100, "message": f"bad token {token} in call"}}, secrets=(token,))
    assert failed.kind == "fail" and token not in failed.detail and "Meta error 100" in failed.detail
    assert classify(500, {}, {"error": {"code": 1, "message": "Please reduce the amount of data you're asking "
                                                             "for, then retry your request"}}).kind == "fail"
    assert classify(502, {}, None) is None


def test_usage_headers_slow_the_account_down_before_it_is_throttled(meta_sandbox, meta_client, connect):
    account = connect()
    meta_sandbox.throttle.configure(calls_per_window=8, window_seconds=60)
    with account.session(meta_client) as session:
        session.account_timezone()  # 12 %
        assert session.http.stats.wait_seconds == 0
        for _ in range(5):  # 25 … 75 %: under the slow-down threshold
            session.account_timezone()
        assert session.http.stats.wait_seconds == 0
        session.account_timezone()  # 87 %: the next call waits a little
        session.account_timezone()
        assert session.http.stats.wait_seconds > 0
    usage = MetaUsageHeaders(slow_down_at=75, max_slowdown=30)
    assert usage.pause_for(Usage(50, 0)) == 0 and usage.pause_for(Usage(100, 0)) == 30
    assert usage.pause_for(Usage(87.5, 0)) == 15 and usage.pause_for(Usage(100, 120)) == 120
    assert read_usage({"X-FB-Ads-Insights-Throttle": '{"app_id_util_pct":91,"acc_id_util_pct":10}'}).percent == 91
    assert read_usage({"X-Business-Use-Case-Usage": "not json"}) == Usage(0, 0)


# -------------------------------------------------------------------------- tokens
def test_a_token_near_expiry_is_exchanged_before_use(meta_sandbox, meta_client, connect, conn, cipher):
    account = connect(stored_expires_in=timedelta(days=3))  # within the 7-day refresh window
    with account.session(meta_client) as session:
        session.account_timezone()
    stored = credentials.load(conn, cipher, "meta_ads", account.number)
    assert stored.access_token != account.token and meta_sandbox.stats()["token_exchanges"] == 1
    assert stored.expires_at - datetime.now(UTC) > timedelta(days=59)
    assert meta_sandbox.tokens.check(stored.access_token, meta_sandbox.now()).accounts == {account.number}


def test_a_refused_token_already_replaced_by_another_run_is_retried_with_the_new_one(
        meta_sandbox, meta_client, connect, conn, cipher):
    account = connect()
    with account.session(meta_client) as session:
        session.account_timezone()  # the session now holds the first token
        fresh = meta_sandbox.issue_token("EAAfresh" + account.number, accounts=[account.number], expires_in=None)
        credentials.store(conn, cipher, "meta_ads", account.number,
                          Tokens(fresh.value, None, datetime.now(UTC) + timedelta(days=50)))
        meta_sandbox.invalidate_token(account.token, 460)  # Meta now refuses the first with 190/460
        rows, _ = read(session, LA_TODAY, LA_TODAY)
    assert rows and account.tokens.refreshes == 0 and meta_sandbox.stats()["token_exchanges"] == 0


@pytest.mark.parametrize("subcode", [463, 460, 467])
def test_a_refused_token_is_exchanged_once_and_a_refused_exchange_needs_reauthorisation(
        meta_sandbox, meta_client, connect, subcode):
    account = connect()
    if subcode == 463:
        meta_sandbox.expire_token(account.token)
    else:
        meta_sandbox.invalidate_token(account.token, subcode)
    with account.session(meta_client) as session, pytest.raises(ReauthorisationRequired) as refused:
        read(session, LA_TODAY, LA_TODAY)
    assert account.tokens.refreshes == 1 and account.token not in str(refused.value)
    assert f"190/{subcode}" in str(refused.value)


def test_an_exchange_with_wrong_app_credentials_is_a_configuration_failure(meta_client, connect, monkeypatch):
    account = connect(stored_expires_in=timedelta(days=1))
    monkeypatch.setenv("META_APP_SECRET", "not-the-secret")
    with account.session(meta_client) as session, pytest.raises(RequestFailed) as failed:
        session.account_timezone()
    assert not isinstance(failed.value, ReauthorisationRequired) and "not-the-secret" not in str(failed.value)
    assert account.number in str(failed.value)
    monkeypatch.delenv("META_APP_SECRET")
    with account.session(meta_client) as session, pytest.raises(CredentialsError, match="META_APP_SECRET"):
        session.account_timezone()


def test_next_links_lose_the_token_meta_echoes():
    url = "https://graph.example/v23.0/act_1/insights?limit=5&access_token=EAAold&after=QQ"
    assert _without_token(url) == "https://graph.example/v23.0/act_1/insights?limit=5&after=QQ"


def test_the_report_engine_replaces_a_restated_window_from_this_client(meta_sandbox, meta_client, connect, conn):
    from sync_pipelines.core.reports import ReportStream, sync_report
    from sync_pipelines.defs.meta_ads.client import MAX_WINDOW_DAYS

    account = connect()
    stream = ReportStream("meta_ads", tables.campaign_insights_daily, MAX_WINDOW_DAYS)
    first, last = LA_TODAY - timedelta(days=13), LA_TODAY
    table = tables.campaign_insights_daily.fullname

    def stored() -> dict:
        rows = conn.execute(f"SELECT campaign_id, date, spend, conversions FROM {table} WHERE account = %s",
                            (account.number,)).fetchall()
        return {(cid, day.isoformat()): (spend, conversions) for cid, day, spend, conversions in rows}

    def upstream() -> dict:
        return {(r["campaign_id"], r["date_start"]): (Decimal(r["spend"]), tables.first_purchase_type(r["actions"]))
                for r in truth(meta_sandbox, account.number, first, last)}

    with account.session(meta_client) as session:
        sync_report(conn, stream, account.number, first, last, session.daily_metrics)
        assert stored() == upstream()
        restated = meta_sandbox.restate(account.number, days=5, change=4, vanish=2)
        assert stored() != upstream()  # a sync that never re-reads drifts from Meta's numbers
        again = sync_report(conn, stream, account.number, LA_TODAY - timedelta(days=4), LA_TODAY,
                            session.daily_metrics)
    assert stored() == upstream() and again.counts.deleted == 2
    assert {(v["campaign_id"], v["date"]) for v in restated["vanished"]}.isdisjoint(stored())
