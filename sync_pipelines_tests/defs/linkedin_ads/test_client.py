"""The LinkedIn client against the sandbox: the Rest.li 2.0 query, the 15,000-element cap (planned
below it, a response at it split and re-read), 429s waited out, token refresh and revocation,
the version header, exact decimals, and the fit with core's report engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from sync_pipelines.core import credentials
from sync_pipelines.core.http import RequestFailed
from sync_pipelines.core.oauth import ReauthorisationRequired
from sync_pipelines.core.reports import ReportStream, sync_report
from sync_pipelines.defs.linkedin_ads.client import (
    _oauth_refused_grant, analytics_query, classify, REFRESH_GRANT,
)
from sync_pipelines.defs.linkedin_ads.provider import NAME, ad_account_id
from sync_pipelines.defs.linkedin_ads.tables import CAMPAIGN_ANALYTICS_DAILY

FIRST, LAST = date(2025, 2, 1), date(2025, 3, 9)


def truth(sandbox, number: str, first: date = FIRST, last: date = LAST) -> dict[tuple[str, str], dict]:
    out = {}
    for e in sandbox.elements(number, first, last):
        d = e["dateRange"]["start"]
        out[(e["pivotValues"][0].rsplit(":", 1)[1], date(d["year"], d["month"], d["day"]).isoformat())] = e
    return out


def read(client, ads, first: date = FIRST, last: date = LAST):
    with client.session(ads.account, ads.tokens) as session:
        records = [r for page in session.daily_metrics(first, last) for r in page]
        return records, session


def keyed(records) -> dict[tuple[str, str], dict]:
    return {(r["campaign"]["id"], r["date"]): r["analytics"] for r in records}


# ----------------------------------------------------------------------------- the request
def test_the_query_is_restli_2_with_the_urns_encoded_inside_list():
    query = analytics_query("508915158", date(2025, 1, 1), date(2025, 1, 31), ["11", "12"])
    assert query == (
        "q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY"
        "&dateRange=(start:(year:2025,month:1,day:1),end:(year:2025,month:1,day:31))"
        "&accounts=List(urn%3Ali%3AsponsoredAccount%3A508915158)"
        "&campaigns=List(urn%3Ali%3AsponsoredCampaign%3A11,urn%3Ali%3AsponsoredCampaign%3A12)"
        "&fields=dateRange,pivotValues,impressions,clicks,costInLocalCurrency,externalWebsiteConversions,"
        "conversionValueInLocalCurrency")


def test_the_encoded_query_reaches_the_api_as_built(sandbox, client, connect):
    ads = connect()
    seen = []
    original = sandbox._analytics

    def spy(request, grant):
        seen.append(request.scope["query_string"].decode())
        return original(request, grant)

    sandbox._analytics = spy
    records, _ = read(client, ads, date(2025, 3, 1), date(2025, 3, 2))
    assert records and seen == [analytics_query(ads.number, date(2025, 3, 1), date(2025, 3, 2))]


def test_account_ids_take_the_number_or_the_urn():
    assert ad_account_id(" urn:li:sponsoredAccount:508915158 ") == ad_account_id("508915158") == "508915158"
    with pytest.raises(ValueError):
        ad_account_id("urn:li:sponsoredCampaign:1")


# ----------------------------------------------------------------------------- the 15,000 cap
def test_a_range_that_would_exceed_15000_elements_comes_back_whole(sandbox, client, connect):
    ads = connect(campaigns=200)
    first, last = date(2024, 12, 9), date(2025, 3, 9)  # 91 days × 200 campaigns: ~17,000 campaign-days
    expected = truth(sandbox, ads.number, first, last)
    assert len(expected) > 15_000
    whole = requests.get(f"{sandbox.url}/rest/adAnalytics?" + analytics_query(ads.number, first, last), timeout=30,
                         headers={"LinkedIn-Version": "202609", "X-Restli-Protocol-Version": "2.0.0",
                                  "Authorization": f"Bearer {ads.tokens.access_token()}"}).json()["elements"]
    assert len(whole) == 15_000  # what one request would have stored: silently short

    records, session = read(client, ads, first, last)

    assert keyed(records).keys() == expected.keys()
    assert {k: v["costInLocalCurrency"] for k, v in keyed(records).items()} == \
        {k: v["costInLocalCurrency"] for k, v in expected.items()}
    assert session.analytics_requests == 2 and session.capped_responses == 0  # ⌊14,999 / 200⌋ = 74 days a request


def test_a_response_at_the_cap_is_split_and_read_again(sandbox, client, connect):
    capped = client.model_copy(update={"max_elements": 100})
    sandbox.set_max_elements(100)
    ads = connect(campaigns=3)
    sandbox.add_unlisted_campaigns(ads.number, 6)  # the listing says 3: requests planned at 33 days hit the cap
    sandbox.reset_stats()

    records, session = read(capped, ads)

    assert keyed(records).keys() == truth(sandbox, ads.number).keys() and len(records) > 100  # > one capped answer
    assert session.capped_responses >= 1 and sandbox.stats()["truncated_responses"] >= 1


def test_a_single_day_at_the_cap_is_read_in_campaign_sets(sandbox, client, connect):
    capped = client.model_copy(update={"max_elements": 5, "campaigns_per_request": 3})
    sandbox.set_max_elements(5)
    ads = connect(campaigns=12)

    records, session = read(capped, ads, date(2025, 3, 1), date(2025, 3, 3))

    assert keyed(records).keys() == truth(sandbox, ads.number, date(2025, 3, 1), date(2025, 3, 3)).keys()
    assert session.capped_responses == 3 and session.analytics_requests == 3 + 3 * 4


# ----------------------------------------------------------------------------- engine, decimals, restatement
def test_exact_decimals_names_and_a_restated_window_replaced(sandbox, client, connect, conn):
    ads = connect(campaigns=4)
    stream = ReportStream(NAME, CAMPAIGN_ANALYTICS_DAILY, max_window_days=client.max_window_days)
    with client.session(ads.account, ads.tokens) as session:
        sync_report(conn, stream, ads.number, FIRST, LAST, session.daily_metrics)
    names = {str(c.id): c.name for c in sandbox.account(ads.number).campaigns}

    def stored() -> dict[tuple[str, str], tuple]:
        rows = conn.execute("SELECT campaign_id, date, impressions, clicks, spend, conversions, conversion_value,"
                            " currency, campaign_name FROM linkedin_ads.campaign_analytics_daily WHERE account = %s",
                            (ads.number,)).fetchall()
        return {(r[0], r[1].isoformat()): r[2:] for r in rows}

    def exact(key, e) -> tuple:
        return (e["impressions"], e["clicks"], Decimal(e["costInLocalCurrency"]),
                Decimal(e["externalWebsiteConversions"]), Decimal(e["conversionValueInLocalCurrency"]), "USD",
                names[key[0]])

    before = truth(sandbox, ads.number)
    assert stored() == {k: exact(k, e) for k, e in before.items()} and len(before) > 30  # 4 campaigns × 37 days, campaigns start and stop at random
    assert any(v[2].as_tuple().exponent < -2 for v in stored().values())  # micro-currency kept, not cents
    restated = sandbox.restate(ads.number, days=5, vanish=3)
    gone = {(v["campaign_id"], v["date"]) for v in restated["vanished"]}
    with client.session(ads.account, ads.tokens) as session:
        sync_report(conn, stream, ads.number, date(2025, 3, 1), LAST, session.daily_metrics)
    after = truth(sandbox, ads.number)
    assert stored() == {k: exact(k, e) for k, e in after.items()} and gone and not gone & set(stored())
    assert stored() != {k: exact(k, e) for k, e in before.items()}


def test_days_are_utc_and_the_timezone_costs_no_request(client, connect):
    ads = connect()
    with client.session(ads.account, ads.tokens) as session:
        assert session.account_timezone() == "UTC" and session.http.stats.calls == 0


# ----------------------------------------------------------------------------- errors
def test_429s_are_waited_out(sandbox, client, connect):
    ads = connect()
    sandbox.faults.fail_next("429", 2)
    records, session = read(client, ads)
    assert keyed(records).keys() == truth(sandbox, ads.number).keys()
    assert session.http.stats.throttled == 2 and session.http.stats.retries >= 2


def test_an_inactive_version_fails_naming_the_setting(client, connect):
    ads = connect()
    old = client.model_copy(update={"api_version": "202301"})
    with pytest.raises(RequestFailed, match="NONEXISTENT_VERSION.*LINKEDIN_ADS_API_VERSION"):
        read(old, ads)


def test_a_lost_permission_fails_instead_of_reading_nothing(sandbox, client, connect, conn, cipher):
    ads = connect()
    _, other_access = sandbox.grant(accounts=["1"])  # adAnalytics would answer this token with no elements
    credentials.store(conn, cipher, NAME, ads.number, credentials.Tokens(other_access, ads.refresh_token,
                                                                         datetime.now(UTC) + timedelta(days=9)))
    with pytest.raises(RequestFailed, match="ACCESS_DENIED"):
        read(client, ads)


# ----------------------------------------------------------------------------- tokens
def test_a_refused_token_is_refreshed_once_and_the_call_repeated(sandbox, client, connect, conn, cipher):
    ads = connect(access_token="AQVnot-a-token-the-sandbox-issued")
    records, _ = read(client, ads)
    assert keyed(records).keys() == truth(sandbox, ads.number).keys()
    assert sandbox.stats()["token_refreshes"] == 1
    stored = credentials.load(conn, cipher, NAME, ads.number)
    assert stored.access_token != "AQVnot-a-token-the-sandbox-issued" and stored.refresh_token == ads.refresh_token
    assert stored.expires_at > datetime.now(UTC) + timedelta(days=59)
    # The refresh token does not slide: its own lapse date is stored for the re-authorisation warning.
    assert datetime.now(UTC) + timedelta(days=300) < stored.refresh_expires_at < datetime.now(UTC) + timedelta(days=366)


def test_a_revoked_grant_needs_reauthorisation(sandbox, client, connect):
    ads = connect()
    sandbox.revoke(ads.refresh_token)  # the access token dies with it: 401, then the refresh is refused
    with pytest.raises(ReauthorisationRequired, match="expired .* or was revoked"):
        read(client, ads)


def test_the_refresh_tokens_expiry_is_what_is_left_of_its_year(sandbox, client, connect):
    ads = connect()
    sandbox.advance(100 * 86400)
    answer = requests.post(f"{sandbox.url}/oauth/v2/accessToken", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": ads.refresh_token, "client_id": "sandbox-linkedin-client",
        "client_secret": "sandbox-linkedin-client-secret"}).json()
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    assert REFRESH_GRANT.tokens_from_answer(answer, "a", issued).refresh_expires_at == issued + timedelta(days=265)
    assert REFRESH_GRANT.tokens_from_answer({"access_token": "x"}, "a", issued).refresh_expires_at is None


def test_refused_grants_and_errors_are_classified():
    assert _oauth_refused_grant("invalid_grant", "")
    assert _oauth_refused_grant("invalid_request", "The provided authorization grant or refresh token is invalid,"
                                                   " expired or revoked")
    assert not _oauth_refused_grant("invalid_request", 'A required parameter "client_secret" is missing')
    assert classify(401, {}, {"status": 401, "code": "EXPIRED_ACCESS_TOKEN"}).kind == "auth"
    assert classify(429, {}, {"status": 429, "code": "TOO_MANY_REQUESTS"}).kind == "throttle"
    assert classify(503, {}, None).kind == "retry"
    assert classify(400, {}, {"status": 400, "code": "VERSION_MISSING", "message": "A version must be present"}
                    ).detail.endswith("(YYYYMM)")


def test_missing_oauth_client_settings_are_named(client, connect, monkeypatch):
    ads = connect(access_token="AQVunknown")
    monkeypatch.delenv("LINKEDIN_ADS_CLIENT_SECRET")
    with pytest.raises(credentials.CredentialsError, match="LINKEDIN_ADS_CLIENT_SECRET"):
        read(client, ads)
