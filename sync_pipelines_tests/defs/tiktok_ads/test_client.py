"""The TikTok client against the Business API sandbox: pages until total_page, 30-day windows,
every error class answered with HTTP 200 (throttling waited out, transient codes retried, token
codes → one refresh or re-authorisation, anything else loud), string metrics to exact numbers,
the advertiser's own days, and restatement replaced through core's report engine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from sync_pipelines.core import credentials, reports
from sync_pipelines.core.entities import row_builder
from sync_pipelines.core.http import MalformedResponseError, RateLimitError, RequestFailed
from sync_pipelines.core.oauth import ReauthorisationRequired
from sync_pipelines.defs.tiktok_ads import tables
from sync_pipelines.defs.tiktok_ads.client import METRICS, TikTokAdsClient, classify
from sync_pipelines.defs.tiktok_ads.provider import DECLARATION

LA_TODAY = date(2025, 7, 9)


def read(session, first: date, last: date) -> tuple[list[dict], int]:
    pages = list(session.daily_metrics(first, last))
    return [row for page in pages for row in page], len(pages)


def keyed(rows: list[dict]) -> dict:
    return {(r["dimensions"]["campaign_id"], r["dimensions"]["stat_time_day"]): {m: r["metrics"][m] for m in METRICS}
            for r in rows}


def calls(sandbox, kind: str, number: str) -> int:
    return sandbox.stats()["calls"].get(kind, {}).get(number, 0)


def record_urls(session) -> list[str]:
    sent: list[str] = []
    session.http._session.hooks["response"].append(lambda resp, **_: sent.append(resp.request))
    return sent


def small_pages(client: TikTokAdsClient, size: int) -> TikTokAdsClient:
    return client.model_copy(update={"page_size": size})


# ------------------------------------------------------------------------ reading
def test_a_window_is_paged_until_total_page_with_json_encoded_lists(tiktok_sandbox, tiktok_client, connect):
    account = connect(campaigns=6)
    first, last = LA_TODAY - timedelta(days=9), LA_TODAY
    with account.session(small_pages(tiktok_client, 7)) as session:
        sent = record_urls(session)
        rows, pages = read(session, first, last)
    expected = tiktok_sandbox.rows(account.number, first, last)
    assert keyed(rows) == keyed(expected) and len(rows) == len(expected) > 14  # three pages or more
    assert pages == len(sent) == -(-len(expected) // 7)  # ⌈rows / page size⌉ requests, no extra one
    query = parse_qs(urlsplit(sent[0].url).query)
    assert json.loads(query["dimensions"][0]) == ["campaign_id", "stat_time_day"]
    assert "campaign_name" in json.loads(query["metrics"][0]) and query["data_level"] == ["AUCTION_CAMPAIGN"]
    assert [parse_qs(urlsplit(r.url).query)["page"][0] for r in sent] == [str(n) for n in range(1, pages + 1)]
    assert sent[0].headers["Access-Token"] == account.token and account.token not in sent[0].url


def test_a_range_longer_than_30_days_is_read_in_30_day_windows(tiktok_sandbox, tiktok_client, connect):
    account = connect(campaigns=2)
    first, last = LA_TODAY - timedelta(days=64), LA_TODAY  # 65 days
    with account.session(tiktok_client) as session:
        sent = record_urls(session)
        rows, _ = read(session, first, last)
    spans = [(parse_qs(urlsplit(r.url).query)["start_date"][0], parse_qs(urlsplit(r.url).query)["end_date"][0])
             for r in sent]
    assert spans == [("2025-05-06", "2025-06-04"), ("2025-06-05", "2025-07-04"), ("2025-07-05", "2025-07-09")]
    assert keyed(rows) == keyed(tiktok_sandbox.rows(account.number, first, last))


def test_a_report_that_changes_while_paged_is_read_again(tiktok_sandbox, tiktok_client, connect):
    account = connect(campaigns=5)
    first, last = LA_TODAY - timedelta(days=6), LA_TODAY
    restated = []
    with account.session(small_pages(tiktok_client, 10)) as session:
        def restate_once(resp, **_):
            if not restated:
                restated.append(tiktok_sandbox.restate(account.number, days=7, change=0, vanish=1))
        session.http._session.hooks["response"].append(restate_once)
        rows, _ = read(session, first, last)
    assert keyed(rows) == keyed(tiktok_sandbox.rows(account.number, first, last))  # the re-read, whole
    assert calls(tiktok_sandbox, "report", account.number) > -(-len(rows) // 10)


def test_a_report_that_never_settles_fails_rather_than_storing_a_mix(tiktok_sandbox, tiktok_client, connect):
    account = connect(campaigns=5)
    with account.session(small_pages(tiktok_client, 10)) as session:
        def restate_always(resp, **_):
            tiktok_sandbox.restate(account.number, days=7, change=0, vanish=1)
        session.http._session.hooks["response"].append(restate_always)
        with pytest.raises(MalformedResponseError, match="kept changing while paged"):
            read(session, LA_TODAY - timedelta(days=6), LA_TODAY)


def test_days_and_time_zone_are_the_advertisers_own(tiktok_sandbox, tiktok_client, connect):
    # 14:00 on 07-10 in Tokyo when it is 22:00 on 07-09 in LA; enough campaigns that one delivers that day
    account = connect(timezone="Asia/Tokyo", campaigns=12)
    with account.session(tiktok_client) as session:
        assert session.account_timezone() == "Asia/Tokyo"
        rows, _ = read(session, date(2025, 7, 10), date(2025, 7, 11))
    assert {r["dimensions"]["stat_time_day"] for r in rows} == {"2025-07-10 00:00:00"}


# ------------------------------------------------------------------------ numbers
def test_string_metrics_become_exact_numbers():
    build = row_builder(tables.CAMPAIGN_METRICS_DAILY)
    columns = [c.name for c in tables.CAMPAIGN_METRICS_DAILY.columns if c.name != "synced_at"]
    record = {"dimensions": {"campaign_id": "1780000000000000001", "stat_time_day": "2025-07-09 00:00:00"},
              "metrics": {"campaign_name": "Summer", "currency": "JPY", "spend": "1234567.89", "impressions": "123456",
                          "clicks": "789", "conversion": "12", "total_complete_payment_rate": "1000.10",
                          "total_purchase_value": "0.20"}}
    row = dict(zip(columns, build("7001", record)))
    assert row["date"] == date(2025, 7, 9) and row["campaign_id"] == "1780000000000000001"
    assert row["spend"] == Decimal("1234567.89") and str(row["spend"]) == "1234567.89"
    assert (row["impressions"], row["clicks"], row["conversions"]) == (123456, 789, Decimal("12"))
    assert row["conversion_value"] == Decimal("1000.30") and row["currency"] == "JPY"
    no_value = {**record, "metrics": {**record["metrics"], "conversion": "-", "total_purchase_value": "-"}}
    row = dict(zip(columns, build("7001", no_value)))
    assert row["conversions"] == 0 and row["conversion_value"] == Decimal("1000.10")
    for bad in ({"impressions": "12.5"}, {"spend": "1e3x"}):
        with pytest.raises(Exception):
            build("7001", {**record, "metrics": {**record["metrics"], **bad}})
    with pytest.raises(ValueError, match="not a day"):
        tables.stat_day("2025-07-09 13:00:00")


def test_the_tables_numbers_are_the_sandboxs_strings_exactly(tiktok_sandbox, tiktok_client, connect, conn):
    account = connect(campaigns=4)
    first, last = LA_TODAY - timedelta(days=9), LA_TODAY  # ten days: the first campaign runs on all of them
    with account.session(tiktok_client) as session:
        reports.sync_report(conn, reports.ReportStream("tiktok_ads", tables.CAMPAIGN_METRICS_DAILY, 30),
                            account.number, first, last, session.daily_metrics)
    stored = {(cid, day): (spend, value) for cid, day, spend, value in conn.execute(
        "SELECT campaign_id, date, spend, conversion_value FROM tiktok_ads.campaign_metrics_daily WHERE account = %s",
        (account.number,)).fetchall()}
    expected = {(r["dimensions"]["campaign_id"], date.fromisoformat(r["dimensions"]["stat_time_day"][:10])):
                (Decimal(r["metrics"]["spend"]), Decimal(r["metrics"]["total_complete_payment_rate"])
                 + Decimal(r["metrics"]["total_purchase_value"]))
                for r in tiktok_sandbox.rows(account.number, first, last)}
    assert stored == expected and len(stored) >= 4  # (how many campaign-days deliver is the seed's draw)


# ------------------------------------------------------------------------ 200-with-error
@pytest.mark.parametrize("code", [40100, 40132, 61000])
def test_throttling_codes_are_waited_out(tiktok_sandbox, tiktok_client, connect, code):
    account = connect()
    tiktok_sandbox.fail_next(account.number, code, n=2)
    with account.session(tiktok_client) as session:
        rows, _ = read(session, LA_TODAY - timedelta(days=2), LA_TODAY)
        assert session.http.stats.throttled == 2 and session.http.stats.retries == 2
    assert rows and calls(tiktok_sandbox, f"error_{code}", account.number) == 2


def test_throttling_that_outlasts_the_retries_fails_as_rate_limited(tiktok_sandbox, tiktok_client, connect):
    account = connect()
    tiktok_sandbox.fail_next(account.number, 40100, n=50)
    with account.session(tiktok_client) as session, pytest.raises(RateLimitError, match="40100"):
        read(session, LA_TODAY, LA_TODAY)


@pytest.mark.parametrize("code", [50000, 50002, 51000, 60001])
def test_transient_codes_are_retried(tiktok_sandbox, tiktok_client, connect, code):
    account = connect()
    tiktok_sandbox.fail_next(account.number, code, n=1)
    with account.session(tiktok_client) as session:
        rows, _ = read(session, LA_TODAY, LA_TODAY)
        assert session.http.stats.retries == 1
    assert rows


def test_other_codes_fail_loudly_with_code_message_and_request_id(tiktok_sandbox, tiktok_client, connect):
    account = connect()
    tiktok_sandbox.fail_next(account.number, 40002, message=f"Invalid metrics for token {account.token}")
    with account.session(tiktok_client) as session, pytest.raises(RequestFailed) as failed:
        read(session, LA_TODAY, LA_TODAY)
    text = str(failed.value)
    assert "TikTok code 40002: Invalid metrics" in text and "request_id " in text and account.number in text
    assert account.token not in text
    assert calls(tiktok_sandbox, "error_40002", account.number) == 1  # not retried


def test_http_outages_in_front_of_the_api_are_retried(tiktok_sandbox, tiktok_client, connect):
    account = connect()
    tiktok_sandbox.faults.fail_next("503", 2)
    with account.session(tiktok_client) as session:
        rows, _ = read(session, LA_TODAY, LA_TODAY)
    assert rows


def test_classify_reads_the_code_not_the_status():
    body = {"code": 40105, "message": "token abc-secret-token is revoked", "request_id": "r1"}
    verdict = classify(200, {}, body, secrets=("abc-secret-token",))
    assert verdict.kind == "auth" and "abc-secret-token" not in verdict.detail and "r1" in verdict.detail
    assert classify(200, {}, {"code": 0, "data": {}}) is None and classify(503, {}, None) is None
    kinds = {code: classify(200, {}, {"code": code, "message": "m"}).kind
             for code in (40001, 40002, 40100, 40102, 40103, 40104, 40107, 50002, 40700)}
    assert kinds == {40001: "auth", 40002: "fail", 40100: "throttle", 40102: "auth", 40103: "auth",
                     40104: "auth", 40107: "auth", 50002: "retry", 40700: "fail"}


# ------------------------------------------------------------------------ tokens
@pytest.mark.parametrize("refused", ["revoked", "no permission"])
def test_a_refused_long_term_token_needs_reauthorisation(tiktok_sandbox, tiktok_client, connect, refused):
    account = connect()
    if refused == "revoked":
        tiktok_sandbox.tokens.revoke(account.token)
    else:
        tiktok_sandbox.fail_next(account.number, 40001)
    with account.session(tiktok_client) as session, pytest.raises(ReauthorisationRequired, match="long-term"):
        read(session, LA_TODAY, LA_TODAY)
    assert tiktok_sandbox.stats()["token_refreshes"] == 0


def test_a_refused_refreshable_token_is_refreshed_once_and_the_call_repeated(tiktok_sandbox, tiktok_client,
                                                                             connect, conn, cipher):
    account = connect(refreshable=True)
    tiktok_sandbox.fail_next(account.number, 40105)
    with account.session(tiktok_client) as session:
        rows, _ = read(session, LA_TODAY, LA_TODAY)
    assert rows and tiktok_sandbox.stats()["token_refreshes"] == 1
    stored = credentials.load(conn, cipher, "tiktok_ads", account.number)
    assert stored.access_token != account.token and stored.expires_at > datetime(2025, 7, 10, 5, tzinfo=UTC)


def test_an_expired_refreshable_token_is_refreshed_before_use(tiktok_sandbox, tiktok_client, connect):
    account = connect(refreshable=True)
    tiktok_sandbox.set_clock(datetime(2025, 7, 11, 6, 0, tzinfo=UTC))  # 25 hours later
    with account.session(tiktok_client) as session:
        rows, _ = read(session, LA_TODAY, LA_TODAY)
    assert rows and tiktok_sandbox.stats()["token_refreshes"] == 1
    assert calls(tiktok_sandbox, "error_40102", account.number) == 0


def test_an_expired_refresh_token_needs_reauthorisation(tiktok_sandbox, tiktok_client, connect, conn, cipher):
    account = connect(refreshable=True)
    refresh_token = credentials.load(conn, cipher, "tiktok_ads", account.number).refresh_token
    tiktok_sandbox.tokens.expire_refresh(refresh_token, tiktok_sandbox.now())
    tiktok_sandbox.tokens.expire(account.token, tiktok_sandbox.now())
    with account.session(tiktok_client) as session, pytest.raises(ReauthorisationRequired, match="40103"):
        read(session, LA_TODAY, LA_TODAY)


def test_a_refresh_with_wrong_app_credentials_is_a_configuration_failure(tiktok_sandbox, tiktok_client, connect,
                                                                         monkeypatch):
    account = connect(refreshable=True)
    monkeypatch.setenv("TIKTOK_APP_SECRET", "wrong-secret-value")
    tiktok_sandbox.fail_next(account.number, 40105)
    with account.session(tiktok_client) as session, pytest.raises(Exception) as failed:
        read(session, LA_TODAY, LA_TODAY)
    assert not isinstance(failed.value, ReauthorisationRequired)
    assert "TIKTOK_APP_SECRET" in str(failed.value) and "wrong-secret-value" not in str(failed.value)


def test_advertiser_ids_are_stored_as_digits():
    assert DECLARATION.normalise_account(" 7001234 ") == "7001234"
    with pytest.raises(ValueError):
        DECLARATION.normalise_account("act_7001")


# ------------------------------------------------------------------------ restatement
def test_the_report_engine_replaces_a_restated_window_from_this_client(tiktok_sandbox, tiktok_client, connect, conn):
    account = connect(campaigns=4)
    stream = reports.ReportStream("tiktok_ads", tables.CAMPAIGN_METRICS_DAILY, 30)
    first, last = LA_TODAY - timedelta(days=6), LA_TODAY

    def stored():
        return {(cid, day): (conv, value) for cid, day, conv, value in conn.execute(
            "SELECT campaign_id, date, conversions, conversion_value FROM tiktok_ads.campaign_metrics_daily"
            " WHERE account = %s", (account.number,)).fetchall()}

    def upstream():
        return {(r["dimensions"]["campaign_id"], date.fromisoformat(r["dimensions"]["stat_time_day"][:10])):
                (Decimal(r["metrics"]["conversion"]), Decimal(r["metrics"]["total_complete_payment_rate"])
                 + Decimal(r["metrics"]["total_purchase_value"])) for r in tiktok_sandbox.rows(account.number, first, last)}

    with account.session(tiktok_client) as session:
        reports.sync_report(conn, stream, account.number, first, last, session.daily_metrics)
        assert stored() == upstream()
        restated = tiktok_sandbox.restate(account.number, days=5, change=4, vanish=2)
        assert stored() != upstream()  # late conversions arrived upstream
        result = reports.sync_report(conn, stream, account.number, first, last, session.daily_metrics)
    assert stored() == upstream() and result.counts.deleted == 2 and result.counts.updated >= 4
    assert {(v["campaign_id"], date.fromisoformat(v["date"])) for v in restated["vanished"]}.isdisjoint(stored())
