"""The Google Ads client against the sandbox: batches, quota waits, token refresh and revocation,
the manager header, exact decimals, and the fit with core's report engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from sync_pipelines.core import credentials
from sync_pipelines.core.dg.reports import ReportProvider, ReportRange, sync_account
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.http import AuthenticationError, RateLimitError, RequestFailed
from sync_pipelines.core.oauth import ReauthorisationRequired
from sync_pipelines.core.registry import NEEDS_REAUTH, get_account
from sync_pipelines.core.reports import ReportStream, sync_report
from sync_pipelines.defs.google_ads.client import METRICS_QUERY, classify
from sync_pipelines.defs.google_ads.provider import DECLARATION, NAME, normalise_customer_id
from sync_pipelines.defs.google_ads.tables import CAMPAIGN_METRICS_DAILY

FIRST, LAST = date(2025, 2, 1), date(2025, 3, 10)
MANAGER = "999-000-1111"


def expected(sandbox, customer_id: str, first: date = FIRST, last: date = LAST) -> list[dict]:
    return sandbox.search(customer_id, METRICS_QUERY.format(first=first, last=last))


def by_key(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["campaign"]["id"], r["segments"]["date"]): r for r in rows}


# ----------------------------------------------------------------------------- reading
def test_daily_metrics_reads_every_batch_of_one_request(sandbox, client, connect):
    ads = connect(campaigns=8)  # > 100 rows for any seed (142 at least in 1,000 draws; 5 gave ≤ 100 in 1.4 %)
    sandbox.batch_size = 7
    with client.session(ads.account, ads.tokens) as session:
        pages = list(session.daily_metrics(FIRST, LAST))
        assert session.http.stats.calls == 1
    rows = [row for page in pages for row in page]
    assert len(pages) > 3 and all(len(p) <= 7 for p in pages)
    assert rows == expected(sandbox, ads.account.account) and len(rows) > 100
    assert {r["segments"]["date"] for r in rows} <= {(FIRST + timedelta(days=n)).isoformat() for n in range(38)}


def test_an_empty_range_yields_nothing_and_timezone_is_the_customers(client, connect):
    ads = connect(time_zone="Asia/Tokyo")
    with client.session(ads.account, ads.tokens) as session:
        assert list(session.daily_metrics(date(2023, 1, 1), date(2023, 1, 31))) == []
        assert session.account_timezone() == "Asia/Tokyo"


def test_exact_decimals_and_a_restated_window_replaced(sandbox, client, connect, conn):
    ads = connect(campaigns=4)
    customer = ads.account.account
    stream = ReportStream(NAME, CAMPAIGN_METRICS_DAILY, max_window_days=client.max_window_days)
    with client.session(ads.account, ads.tokens) as session:
        sync_report(conn, stream, customer, FIRST, LAST, session.daily_metrics)

    def stored() -> dict[tuple[str, str], tuple]:
        rows = conn.execute("SELECT campaign_id, date, impressions, clicks, spend, conversions, conversion_value,"
                            " currency, campaign_name FROM google_ads.campaign_metrics_daily WHERE account = %s",
                            (customer,)).fetchall()
        return {(r[0], r[1].isoformat()): r[2:] for r in rows}

    def exact(row: dict) -> tuple:
        m = row["metrics"]
        return (int(m["impressions"]), int(m["clicks"]), Decimal(m["costMicros"]) / 10**6,
                Decimal(repr(float(m["conversions"]))), Decimal(repr(float(m["conversionsValue"]))), "USD",
                row["campaign"]["name"])

    before = by_key(expected(sandbox, customer))
    assert stored() == {k: exact(r) for k, r in before.items()}
    assert any(v[2] != v[2].quantize(Decimal("0.01")) for v in stored().values())  # micros kept, not cents
    restated = sandbox.restate(customer, days=5, vanish=3)
    gone = {(v["campaign_id"], v["date"]) for v in restated["vanished"]}
    with client.session(ads.account, ads.tokens) as session:
        sync_report(conn, stream, customer, date(2025, 3, 1), LAST, session.daily_metrics)
    after = by_key(expected(sandbox, customer))
    assert stored() == {k: exact(r) for k, r in after.items()} and not gone & set(stored())
    assert stored() != {k: exact(r) for k, r in before.items()}


# ----------------------------------------------------------------------------- throttling & faults
def test_a_quota_error_waits_its_retry_delay(sandbox, client, connect):
    ads = connect()
    sandbox.faults.fail_next("429", 1)  # RESOURCE_EXHAUSTED, retryDelay "1s", no Retry-After
    with client.session(ads.account, ads.tokens) as session:
        rows = [r for page in session.daily_metrics(FIRST, LAST) for r in page]
        stats = session.http.stats
    assert rows == expected(sandbox, ads.account.account)
    assert (stats.calls, stats.throttled, stats.retries) == (2, 1, 1)
    assert stats.wait_seconds >= 1.0  # the backoff alone is ~0.01 s


def test_a_wait_beyond_max_retry_after_fails_at_once(sandbox, client, connect):
    ads = connect()
    sandbox.set_throttle(requests=1, retry_delay_seconds=3600)
    with client.session(ads.account, ads.tokens) as session:
        session.account_timezone()
        with pytest.raises(RateLimitError, match="3600"):
            list(session.daily_metrics(FIRST, LAST))
        assert session.http.stats.calls == 2 and session.http.stats.wait_seconds < 1


def test_a_broken_stream_and_a_truncated_body_are_read_again(sandbox, client, connect):
    ads = connect()
    sandbox.batch_size = 5
    with client.session(ads.account, ads.tokens) as session:
        sandbox.fail_stream_next(1)  # 200, first batch, then {"error": INTERNAL}
        broken = [r for page in session.daily_metrics(FIRST, LAST) for r in page]
        assert (session.http.stats.calls, session.http.stats.retries) == (2, 1)
        sandbox.faults.fail_next("truncated", 1)
        truncated = [r for page in session.daily_metrics(FIRST, LAST) for r in page]
        assert (session.http.stats.calls, session.http.stats.malformed) == (4, 1)
    assert broken == truncated == expected(sandbox, ads.account.account)


def test_a_bad_query_fails_with_googles_error_code(client, connect):
    ads = connect()
    with client.session(ads.account, ads.tokens) as session:
        with pytest.raises(RequestFailed, match=r"queryError\.UNRECOGNIZED_FIELD: .*campaign\.foo"):
            session.search_stream("SELECT campaign.foo FROM campaign")
        assert session.http.stats.calls == 1


# ----------------------------------------------------------------------------- tokens
def test_a_refused_token_is_refreshed_once_and_the_call_repeated(sandbox, client, connect, conn, cipher):
    ads = connect(access_token="ya29.stale-token")
    with client.session(ads.account, ads.tokens) as session:
        assert session.account_timezone() == "America/New_York"
        assert session.http.stats.calls == 2
    assert sandbox.stats()["unauthorized_401"] == 1 and sandbox.stats()["oauth"] == {"ok": 1}
    stored = credentials.load(conn, cipher, NAME, ads.account.account)
    assert stored.access_token != "ya29.stale-token" and stored.refresh_token == ads.refresh_token
    assert stored.expires_at > datetime.now(UTC) + timedelta(minutes=55)


def test_an_expired_token_is_refreshed_before_use(sandbox, client, connect):
    ads = connect(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    sandbox.expire_access_tokens()
    with client.session(ads.account, ads.tokens) as session:
        assert session.account_timezone() == "America/New_York"
    assert sandbox.stats()["unauthorized_401"] == 0 and sandbox.stats()["oauth"] == {"ok": 1}


def test_a_rotated_refresh_token_is_kept(sandbox, client, connect, conn, cipher):
    ads = connect(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    sandbox.oauth.rotate_refresh_tokens = True
    with client.session(ads.account, ads.tokens) as session:
        session.account_timezone()
    stored = credentials.load(conn, cipher, NAME, ads.account.account).refresh_token
    assert stored != ads.refresh_token and stored in sandbox.oauth.grants


def test_a_revoked_grant_needs_reauthorisation(sandbox, client, connect):
    ads = connect()
    sandbox.revoke(ads.refresh_token)  # its access tokens die with it
    with client.session(ads.account, ads.tokens) as session:
        with pytest.raises(ReauthorisationRequired, match="invalid_grant"):
            session.account_timezone()
    assert sandbox.stats()["oauth"] == {"invalid_grant": 1}


def test_a_refused_oauth_client_is_not_the_accounts_fault(sandbox, client, connect, monkeypatch):
    ads = connect(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", "wrong-secret")
    with client.session(ads.account, ads.tokens) as session:
        with pytest.raises(AuthenticationError, match="invalid_client") as raised:
            session.account_timezone()
    assert not isinstance(raised.value, ReauthorisationRequired)
    assert "wrong-secret" not in str(raised.value)


# ----------------------------------------------------------------------------- headers
def test_a_managed_customer_is_read_through_the_manager_in_its_settings(sandbox, client, connect):
    ads = connect(manager_id=MANAGER, settings={"login_customer_id": MANAGER})
    with client.session(ads.account, ads.tokens) as session:
        rows = [r for page in session.daily_metrics(FIRST, LAST) for r in page]
    assert rows == expected(sandbox, ads.account.account)
    bare = connect(manager_id=MANAGER)
    with client.session(bare.account, bare.tokens) as session:
        with pytest.raises(RequestFailed, match="USER_PERMISSION_DENIED.*login_customer_id"):
            session.account_timezone()
    assert sandbox.stats()["oauth"] == {}  # a permission error is not a token problem


def test_developer_token_is_sent_when_set_and_its_errors_name_the_variable(sandbox, client, connect, monkeypatch):
    ads = connect()
    monkeypatch.delenv("GOOGLE_ADS_DEVELOPER_TOKEN")
    with client.session(ads.account, ads.tokens) as session:
        with pytest.raises(RequestFailed, match="DEVELOPER_TOKEN_PARAMETER_MISSING.*GOOGLE_ADS_DEVELOPER_TOKEN"):
            session.account_timezone()
    sandbox.developer_token_required = False  # since the 2026-09-09 sunset the header is optional
    with client.session(ads.account, ads.tokens) as session:
        assert session.account_timezone() == "America/New_York"
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", "leaky-developer-token")
    with client.session(ads.account, ads.tokens) as session:
        body = [{"error": {"code": 403, "status": "PERMISSION_DENIED", "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"authorizationError": "DEVELOPER_TOKEN_PROHIBITED"},
                        "message": "Developer token 'leaky-developer-token' is not allowed with project '1'."}]}]}}]
        verdict = session._classify(403, {}, body)
    assert verdict.kind == "fail" and "leaky-developer-token" not in verdict.detail and "***" in verdict.detail


# ----------------------------------------------------------------------------- classification
def quota_body(details: list) -> list:
    return [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource has been exhausted",
                       "details": details}}]


@pytest.mark.parametrize("body, kind, delay", [
    (quota_body([{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure", "errors": [
        {"errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"}, "message": "Too many requests.",
         "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "retryDelay": "23s"}}}]}]), "throttle", 23.0),
    (quota_body([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}]), "throttle", 1.5),
    (quota_body([]), "throttle", None),
    ({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid authentication"}},
     "auth", None),
    ([{"error": {"code": 503, "status": "UNAVAILABLE", "message": "The service is currently unavailable."}}],
     "retry", None),
    ([{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "The caller does not have permission"}}],
     "fail", None),
    (None, "fail", None),
])
def test_classify_reads_the_status_and_googleads_failure(body, kind, delay):
    status = (error.get("code") if (error := (body[0] if isinstance(body, list) else body or {}).get("error"))
              else 404)
    verdict = classify(status, {}, body)
    assert (verdict.kind, verdict.delay) == (kind, delay)


def test_customer_ids_are_stored_without_dashes():
    assert DECLARATION.normalise_account(" 123-456-7890 ") == "1234567890" == normalise_customer_id("1234567890")
    for bad in ("123-456-789", "act_1234567890", "12345678901"):
        with pytest.raises(ValueError, match="10 digits"):
            normalise_customer_id(bad)


# ----------------------------------------------------------------------------- the engine
def test_core_report_engine_syncs_a_customer_and_marks_a_revoked_one(sandbox, client, connect, conn):
    spec = ReportProvider(stream=ReportStream(NAME, CAMPAIGN_METRICS_DAILY, 90), client_key=NAME,
                          partitions=dg.DynamicPartitionsDefinition(name="google_ads_customers"))
    ads = connect(time_zone="Europe/Paris")
    done = sync_account(spec, AppDatabase(), client, ads.account, ReportRange(first_day="2025-01-01"), run_id="t",
                        now=datetime(2025, 3, 10, 15, 0, tzinfo=UTC))
    assert done.ok, done.error
    assert (done.first, done.last) == (date(2025, 1, 1), date(2025, 3, 10))
    assert done.metadata["windows"] == 1 and done.metadata["api_calls"] == 2  # time zone + one 69-day window
    assert get_account(conn, NAME, ads.account.account).timezone == "Europe/Paris"
    count = conn.execute("SELECT count(*) FROM google_ads.campaign_metrics_daily WHERE account = %s",
                         (ads.account.account,)).fetchone()[0]
    assert count == len(expected(sandbox, ads.account.account, date(2025, 1, 1), date(2025, 3, 10))) > 0

    revoked = connect()
    sandbox.revoke(revoked.refresh_token)
    done = sync_account(spec, AppDatabase(), client, revoked.account, ReportRange(days=3), run_id="t")
    assert not done.ok and done.needs_reauth
    assert get_account(conn, NAME, revoked.account.account).auth_status == NEEDS_REAUTH
