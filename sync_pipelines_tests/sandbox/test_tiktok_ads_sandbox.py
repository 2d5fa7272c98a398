"""The TikTok Business API sandbox must behave like the published contract, or client tests on it
prove nothing: the Access-Token header, every answer HTTP 200 with a code, JSON-encoded list
parameters, at most 30 days by day, page/page_size with page_info, metrics as strings and
stat_time_day as a midnight time, the advertiser's own days, token refresh, restatement.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import requests

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.tiktok_ads import TikTokAdsSandbox
from sync_pipelines.sandbox.tiktok_ads.app import _add_arguments, _build

NOW = datetime(2025, 7, 10, 5, 0, tzinfo=timezone.utc)  # 22:00 on 07-09 in Los Angeles, 14:00 on 07-10 in Tokyo
TOKEN = "test-token"
REPORT, INFO, REFRESH = "/open_api/v1.3/report/integrated/get/", "/open_api/v1.3/advertiser/info/", \
    "/open_api/v1.3/oauth2/refresh_token/"
MONEY = re.compile(r"^\d+\.\d{2}$")


@pytest.fixture
def sandbox():
    sb = TikTokAdsSandbox(seed=11, app_id="app", app_secret="secret", faults=Faults(seed=11))
    sb.set_clock(NOW)
    sb.add_advertiser("7001", timezone="America/Los_Angeles", campaigns=4)
    sb.add_advertiser("7002", currency="JPY", timezone="Asia/Tokyo", campaigns=2)
    sb.issue_token(TOKEN)
    yield sb
    sb.close()


@pytest.fixture
def api(sandbox):
    with serve_in_thread(sandbox.app) as running:
        def get(path, token=TOKEN, **params):
            headers = {"Access-Token": token} if token else {}
            response = requests.get(running.url + path, params=params, headers=headers, timeout=5)
            assert response.status_code == 200  # every answer, errors included
            return response.json()
        get.url = running.url
        yield get


def report(api, token=TOKEN, **overrides):
    params = {"advertiser_id": "7001", "report_type": "BASIC", "data_level": "AUCTION_CAMPAIGN",
              "dimensions": json.dumps(["campaign_id", "stat_time_day"]),
              "metrics": json.dumps(["campaign_name", "currency", "spend", "impressions", "conversion"]),
              "start_date": "2025-07-01", "end_date": "2025-07-09", "page_size": "1000"}
    return api(REPORT, token, **{**params, **overrides})


def test_a_report_answers_strings_by_campaign_and_midnight_day(api):
    body = report(api)
    assert body["code"] == 0 and body["message"] == "OK" and body["request_id"]
    rows = body["data"]["list"]
    assert rows and body["data"]["page_info"]["total_number"] == len(rows)
    for row in rows:
        assert set(row) == {"dimensions", "metrics"}
        assert re.fullmatch(r"2025-07-0\d 00:00:00", row["dimensions"]["stat_time_day"])
        assert all(isinstance(v, str) for v in row["metrics"].values())
        assert MONEY.match(row["metrics"]["spend"]) and row["metrics"]["impressions"].isdigit()
        assert row["metrics"]["currency"] == "USD"


def test_pages_follow_page_and_page_size_with_total_page(api):
    whole = report(api)["data"]["list"]
    pages = [report(api, page=str(n), page_size="7")["data"] for n in (1, 2, 3, 4, 5, 6)]
    info = pages[0]["page_info"]
    assert info == {"page": 1, "page_size": 7, "total_number": len(whole), "total_page": -(-len(whole) // 7)}
    assert [row for p in pages for row in p["list"]] == whole and pages[-1]["list"] == []
    for bad in ("0", "1001", "x"):
        assert report(api, page_size=bad)["code"] == 40002


def test_more_than_30_days_by_day_is_refused_and_365_without_the_day(api):
    assert report(api, start_date="2025-06-10", end_date="2025-07-09")["code"] == 0  # 30 days
    refused = report(api, start_date="2025-06-09", end_date="2025-07-09")
    assert refused["code"] == 40002 and "30 days" in refused["message"] and refused["data"] == {}
    totals = report(api, start_date="2025-01-01", end_date="2025-07-09", dimensions=json.dumps(["campaign_id"]))
    assert totals["code"] == 0 and all("stat_time_day" not in r["dimensions"] for r in totals["data"]["list"])


@pytest.mark.parametrize("overrides", [
    {"dimensions": "campaign_id,stat_time_day"}, {"metrics": "spend"}, {"metrics": json.dumps(["spent"])},
    {"report_type": "AUDIENCE"}, {"data_level": "AUCTION_AD"}, {"start_date": "2025-7-1"},
    {"end_date": "2025-06-01"}, {"advertiser_id": "act_7001"}])
def test_malformed_parameters_are_40002(api, overrides):
    assert report(api, **overrides)["code"] == 40002


def test_token_errors_are_codes_in_a_200(api, sandbox):
    assert report(api, token=None)["code"] == 40104
    assert report(api, token="nope")["code"] == 40105
    limited = sandbox.issue_token("only-7002", advertisers=["7002"]).value
    assert report(api, token=limited)["code"] == 40001
    sandbox.tokens.revoke(TOKEN)
    assert report(api)["code"] == 40105


def test_queued_codes_and_the_per_second_limit(api, sandbox):
    sandbox.fail_next("7001", 40100, n=2)
    assert [report(api)["code"] for _ in range(3)] == [40100, 40100, 0]
    sandbox.requests_per_second = 2
    assert [report(api)["code"] for _ in range(3)] == [0, 0, 40100]


def test_days_are_the_advertisers_own(api):
    rows = report(api, advertiser_id="7002", start_date="2025-07-09", end_date="2025-07-11")["data"]["list"]
    assert {r["dimensions"]["stat_time_day"][:10] for r in rows} <= {"2025-07-09", "2025-07-10"}
    assert "2025-07-10" in {r["dimensions"]["stat_time_day"][:10] for r in rows}  # today in Tokyo, not in LA
    assert all(r["metrics"]["currency"] == "JPY" for r in rows)


def test_advertiser_info_gives_time_zone_and_currency(api):
    body = api(INFO, advertiser_ids=json.dumps(["7002"]), fields=json.dumps(["display_timezone", "currency"]))
    assert body["data"]["list"] == [{"display_timezone": "Asia/Tokyo", "currency": "JPY"}]
    assert api(INFO, advertiser_ids="7002")["code"] == 40002


def test_a_refreshable_token_is_refreshed_and_the_old_one_stops(api, sandbox):
    issued = sandbox.issue_token(refreshable=True)
    assert issued.expires_at == sandbox.now() + 86_400
    post = lambda body: requests.post(api.url + REFRESH, json=body, timeout=5).json()  # noqa: E731
    good = {"app_id": "app", "secret": "secret", "refresh_token": issued.refresh_token, "grant_type": "refresh_token"}
    assert post({**good, "secret": "wrong"})["code"] == 40001
    answer = post(good)
    assert answer["code"] == 0 and answer["data"]["expires_in"] == 86_400
    assert report(api, token=issued.value)["code"] == 40105
    assert report(api, token=answer["data"]["access_token"])["code"] == 0
    assert post({**good, "refresh_token": "unknown"})["code"] == 40107
    sandbox.tokens.expire_refresh(issued.refresh_token, sandbox.now())
    assert post(good)["code"] == 40103


def test_restatement_changes_conversions_and_vanishes_rows(sandbox):
    before = {(r["dimensions"]["campaign_id"], r["dimensions"]["stat_time_day"]): r["metrics"]
              for r in sandbox.rows("7001", datetime(2025, 7, 3).date(), datetime(2025, 7, 9).date())}
    restated = sandbox.restate("7001", days=7, change=3, vanish=1)
    after = {(r["dimensions"]["campaign_id"], r["dimensions"]["stat_time_day"]): r["metrics"]
             for r in sandbox.rows("7001", datetime(2025, 7, 3).date(), datetime(2025, 7, 9).date())}
    assert len(restated["changed"]) == 3 and len(after) == len(before) - 1
    for change in restated["changed"]:
        key = (change["campaign_id"], f"{change['date']} 00:00:00")
        assert int(after[key]["conversion"]) > int(before[key]["conversion"])


def test_the_command_line_builds_advertisers_and_a_long_term_token():
    import argparse

    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    sandbox, banner = _build(parser.parse_args(["--advertisers", "11,12"]))
    assert sandbox.advertiser_ids == ["11", "12"] and sandbox.tokens.get("sandbox-tiktok-token").expires_at is None
    assert any("advertiser 12" in line for line in banner("http://127.0.0.1:1"))
    sandbox.close()
