"""The LinkedIn Marketing API sandbox must behave like the published contract, or client tests on
it prove nothing: the LinkedIn-Version header refused when missing or inactive, Rest.li 2.0
syntax with encoded URNs, no paging and a silent 15,000-element cap, UTC days, empty answers for
unreadable accounts, cursor-paged campaigns, 401 codes, non-sliding refresh tokens, restatement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.linkedin_ads import CLIENT_ID, CLIENT_SECRET, REVOKED_GRANT, LinkedInAdsSandbox
from sync_pipelines.sandbox.linkedin_ads.app import _add_arguments, _build
from sync_pipelines.sandbox.server import serve_in_thread

NOW = datetime(2025, 3, 10, 23, 30, tzinfo=UTC)
RANGE = "(start:(year:2025,month:3,day:1),end:(year:2025,month:3,day:12))"
ACCOUNTS = "List(urn%3Ali%3AsponsoredAccount%3A1001)"


@pytest.fixture
def sandbox():
    sb = LinkedInAdsSandbox(seed=11, faults=Faults(seed=11))
    sb.set_clock(NOW)
    sb.add_account("1001", campaigns=4)
    sb.add_account("2002", currency="EUR", campaigns=2)
    with serve_in_thread(sb.app) as running:
        sb.url = running.url
        sb.refresh_token, sb.token = sb.grant(accounts=["1001"])
        yield sb
    sb.close()


def get(sb, path, query="", *, version="202609", restli=True, token=None):
    headers = {"Authorization": f"Bearer {token or sb.token}"}
    if version:
        headers["LinkedIn-Version"] = version
    if restli:
        headers["X-Restli-Protocol-Version"] = "2.0.0"
    return requests.get(f"{sb.url}{path}" + (f"?{query}" if query else ""), headers=headers, timeout=10)


def analytics(sb, accounts=ACCOUNTS, date_range=RANGE, extra="", **kwargs):
    return get(sb, "/rest/adAnalytics", f"q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange={date_range}"
                                        f"&accounts={accounts}&fields=dateRange,pivotValues,costInLocalCurrency{extra}",
               **kwargs)


def test_a_missing_version_header_is_refused_like_the_real_api(sandbox):
    answer = analytics(sandbox, version=None)
    assert answer.status_code == 400 and answer.json()["code"] == "VERSION_MISSING"
    old = analytics(sandbox, version="202301")
    assert old.status_code == 426 and old.json() == {"status": 426, "code": "NONEXISTENT_VERSION",
                                                     "message": "Requested version 202301 is not active"}
    assert analytics(sandbox, restli=False).status_code == 400  # Rest.li 2.0 syntax needs its header


def test_urns_inside_list_must_be_encoded(sandbox):
    assert analytics(sandbox, accounts="List(urn:li:sponsoredAccount:1001)").status_code == 400
    assert analytics(sandbox, date_range="%28start%3A%28year%3A2025%2Cmonth%3A3%2Cday%3A1%29%29").status_code == 400
    answer = analytics(sandbox)
    assert answer.status_code == 200
    element = answer.json()["elements"][0]
    assert set(element) == {"dateRange", "pivotValues", "costInLocalCurrency"}
    assert element["pivotValues"][0].startswith("urn:li:sponsoredCampaign:")
    assert isinstance(element["costInLocalCurrency"], str)


def test_days_are_utc_and_end_today(sandbox):
    days = {e["dateRange"]["start"]["day"] for e in analytics(sandbox).json()["elements"]}
    assert max(days) == 10  # 23:30 UTC on the 10th: no 11th, whatever a zone would say
    assert all(e["dateRange"]["start"] == e["dateRange"]["end"] for e in analytics(sandbox).json()["elements"])


def test_responses_are_silently_capped_without_paging(sandbox):
    full = analytics(sandbox).json()
    sandbox.set_max_elements(7)
    capped = analytics(sandbox).json()
    assert len(full["elements"]) > 7 and len(capped["elements"]) == 7
    assert capped["elements"] == full["elements"][-7:]  # the earliest days dropped, nothing said
    assert "nextPageToken" not in str(capped) and sandbox.stats()["truncated_responses"] == 1


def test_an_unreadable_account_answers_empty_and_its_details_403(sandbox):
    other = analytics(sandbox, accounts="List(urn%3Ali%3AsponsoredAccount%3A2002)")
    assert other.status_code == 200 and other.json()["elements"] == []
    assert get(sandbox, "/rest/adAccounts/2002", restli=False).status_code == 403
    assert get(sandbox, "/rest/adAccounts/1001", restli=False).json()["currency"] == "USD"


def test_campaigns_are_cursor_paged_and_unlisted_ones_missing(sandbox):
    sandbox.add_unlisted_campaigns("1001", 2)
    first = get(sandbox, "/rest/adAccounts/1001/adCampaigns", "q=search&pageSize=3").json()
    assert len(first["elements"]) == 3 and first["metadata"]["nextPageToken"]
    rest = get(sandbox, "/rest/adAccounts/1001/adCampaigns",
               f"q=search&pageSize=3&pageToken={first['metadata']['nextPageToken']}").json()
    assert len(rest["elements"]) == 1 and "nextPageToken" not in rest["metadata"]
    assert get(sandbox, "/rest/adAccounts/1001/adCampaigns", "q=search&pageSize=1001").status_code == 400


def test_401_codes_and_a_token_endpoint_that_never_extends_the_refresh_token(sandbox):
    assert get(sandbox, "/rest/adAccounts/1001", token="nope").json()["code"] == "INVALID_ACCESS_TOKEN"
    form = {"grant_type": "refresh_token", "refresh_token": sandbox.refresh_token, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET}
    sandbox.advance(59 * 86400)
    answer = requests.post(f"{sandbox.url}/oauth/v2/accessToken", data=form, timeout=10).json()
    assert answer["expires_in"] == 60 * 86400 and answer["refresh_token"] == sandbox.refresh_token
    assert answer["refresh_token_expires_in"] == 306 * 86400  # 365 − 59: not slid by the refresh
    sandbox.advance(86400)
    assert get(sandbox, "/rest/adAccounts/1001", token=sandbox.token).json()["code"] == "EXPIRED_ACCESS_TOKEN"
    wrong = requests.post(f"{sandbox.url}/oauth/v2/accessToken", data={**form, "client_secret": "x"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    sandbox.revoke(sandbox.refresh_token)
    assert get(sandbox, "/rest/adAccounts/1001", token=answer["access_token"]).json()["code"] == "REVOKED_ACCESS_TOKEN"
    refused = requests.post(f"{sandbox.url}/oauth/v2/accessToken", data=form, timeout=10)
    assert refused.status_code == 400 and refused.json() == {"error": "invalid_request",
                                                             "error_description": REVOKED_GRANT}


def test_faults_and_restatement(sandbox):
    sandbox.faults.fail_next("429", 1)
    throttled = analytics(sandbox)
    assert throttled.status_code == 429 and throttled.json()["code"] == "TOO_MANY_REQUESTS"
    before = sandbox.elements("1001", date(2025, 3, 1), date(2025, 3, 10))
    result = sandbox.restate("1001", days=5, vanish=2)
    after = sandbox.elements("1001", date(2025, 3, 1), date(2025, 3, 10))
    assert len(result["vanished"]) == 2 and len(after) == len(before) - 2 and after != before
    assert sandbox.elements("1001", date(2025, 3, 1), date(2025, 3, 5)) == [
        e for e in before if date(**e["dateRange"]["start"]) <= date(2025, 3, 5)]  # older days untouched


def test_the_command_line_serves_a_big_account_past_the_cap():
    import argparse

    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    sandbox, banner = _build(parser.parse_args([]))
    big = sandbox.account("508000999")
    today = sandbox.today()
    assert len(big.campaigns) == 200
    assert len(sandbox.elements("508000999", today - timedelta(days=90), today)) > 15_000
    assert any("508000999" in line for line in banner("http://127.0.0.1:8770"))
