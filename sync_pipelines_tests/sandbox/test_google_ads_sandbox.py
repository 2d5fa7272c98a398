"""The Google Ads sandbox must reproduce the REST API's contract and traps, or clients tested
against it prove nothing.

Everything runs over real HTTP (``serve_in_thread`` + ``requests``); the clock is frozen so
the customer's "today" and its time zone are under the test's control.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.google_ads import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN, GoogleAdsSandbox
from sync_pipelines.sandbox.server import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
CUSTOMER = "1234567890"
MANAGER = "9990001111"
NOW = datetime(2025, 3, 10, 15, 0, tzinfo=timezone.utc)  # 11:00 in New York, 00:00 next day in Tokyo
SYNC_QUERY = ("SELECT campaign.id, campaign.name, campaign.status, segments.date, metrics.impressions, "
              "metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value, "
              "customer.currency_code, customer.time_zone FROM campaign "
              "WHERE segments.date BETWEEN '{first}' AND '{last}' ORDER BY segments.date, campaign.id")


class Ads:
    """A running sandbox with one customer, a grant and a valid access token."""

    def __init__(self, sandbox: GoogleAdsSandbox, url: str) -> None:
        self.sandbox, self.url = sandbox, url
        self.refresh_token = sandbox.grant()
        self.token = sandbox.access_token(self.refresh_token)
        self.http = requests.Session()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "developer-token": DEVELOPER_TOKEN, **extra}

    def stream(self, query: str, customer: str = CUSTOMER, headers: dict[str, str] | None = None,
               version: str = "v26") -> requests.Response:
        return self.http.post(f"{self.url}/{version}/customers/{customer}/googleAds:searchStream",
                              json={"query": query}, headers=self.headers() if headers is None else headers)

    def rows(self, first: str, last: str, customer: str = CUSTOMER, **headers: str) -> list[dict[str, Any]]:
        resp = self.stream(SYNC_QUERY.format(first=first, last=last), customer, self.headers(**headers))
        assert resp.status_code == 200, resp.text
        return [row for batch in resp.json() for row in batch.get("results", [])]

    def refresh(self, refresh_token: str | None = None, **form: str) -> requests.Response:
        data = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "refresh_token": refresh_token or self.refresh_token, **form}
        return self.http.post(f"{self.url}/token", data=data)

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.http.post(f"{self.url}/_sandbox/google_ads/{path}", json=body or {})
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def start():
    """``start(**sandbox_kwargs) -> Ads``, clock frozen at NOW, customer CUSTOMER (New York)."""
    running = []

    def _start(*, campaigns: int = 4, time_zone: str = "America/New_York", **kwargs: Any) -> Ads:
        sandbox = GoogleAdsSandbox(**kwargs)
        sandbox.set_clock(NOW)
        sandbox.add_customer(CUSTOMER, campaigns=campaigns, time_zone=time_zone)
        server = serve_in_thread(sandbox.app)
        ads = Ads(sandbox, server.url)
        running.append((sandbox, server, ads))
        return ads

    yield _start
    for sandbox, server, ads in running:
        ads.http.close()
        server.stop()
        sandbox.close()


def failure(resp: requests.Response) -> tuple[int, str, list[dict[str, Any]]]:
    """(HTTP status, canonical status, GoogleAdsError list) of a searchStream error: a JSON
    array holding one ``{"error": ...}``."""
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, body
    error = body[0]["error"]
    assert error["code"] == resp.status_code
    errors = [e for d in error.get("details", []) if d["@type"].endswith("errors.GoogleAdsFailure")
              for e in d["errors"]]
    return resp.status_code, error["status"], errors


def error_code(errors: list[dict[str, Any]]) -> tuple[str, str]:
    ((family, code),) = errors[0]["errorCode"].items()
    return family, code


# ----------------------------------------------------------------------- searchStream
def test_stream_is_batches_of_at_most_batch_size_with_camel_case_mask(start):
    ads = start(batch_size=4, campaigns=5)
    resp = ads.stream(SYNC_QUERY.format(first="2025-02-01", last="2025-03-09"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    batches = resp.json()
    assert len(batches) > 2 and all(1 <= len(b["results"]) <= 4 for b in batches)
    assert {b["requestId"] for b in batches} == {batches[0]["requestId"]} and len(batches[0]["requestId"]) == 22
    assert batches[0]["fieldMask"] == ("campaign.id,campaign.name,campaign.status,segments.date,metrics.impressions,"
                                       "metrics.clicks,metrics.costMicros,metrics.conversions,"
                                       "metrics.conversionsValue,customer.currencyCode,customer.timeZone")
    assert "queryResourceConsumption" in batches[-1] and "queryResourceConsumption" not in batches[0]
    rows = [r for b in batches for r in b["results"]]
    assert rows == ads.sandbox.search(CUSTOMER, SYNC_QUERY.format(first="2025-02-01", last="2025-03-09"))
    assert [(r["segments"]["date"], int(r["campaign"]["id"])) for r in rows] == \
        sorted((r["segments"]["date"], int(r["campaign"]["id"])) for r in rows)


def test_default_batches_hold_up_to_ten_thousand_rows(start):
    ads = start(campaigns=40)
    batches = ads.stream(SYNC_QUERY.format(first="2024-03-01", last="2025-03-09")).json()
    assert [len(b["results"]) for b in batches[:-1]] == [10_000] * (len(batches) - 1)
    assert 0 < len(batches[-1]["results"]) <= 10_000 and len(batches) >= 2


def test_int64_are_strings_doubles_numbers_and_resources_named(start):
    ads = start()
    rows = ads.rows("2025-03-01", "2025-03-05")
    assert rows
    for row in rows:
        m = row["metrics"]
        for name in ("impressions", "clicks", "costMicros"):
            assert isinstance(m[name], str) and re.fullmatch(r"\d+", m[name])
        assert isinstance(m["conversions"], (int, float)) and isinstance(m["conversionsValue"], (int, float))
        assert isinstance(row["campaign"]["id"], str)
        assert row["campaign"]["resourceName"] == f"customers/{CUSTOMER}/campaigns/{row['campaign']['id']}"
        assert row["customer"] == {"resourceName": f"customers/{CUSTOMER}", "currencyCode": "USD",
                                   "timeZone": "America/New_York"}
        assert row["campaign"]["status"] in ("ENABLED", "PAUSED", "REMOVED")
    assert any(int(r["metrics"]["costMicros"]) % 10_000 for r in rows)  # micros, not rounded cents
    assert any(r["metrics"]["conversions"] != int(r["metrics"]["conversions"]) for r in rows)


def test_a_query_matching_nothing_is_one_batch_without_results(start):
    ads = start()
    batches = ads.stream(SYNC_QUERY.format(first="2023-01-01", last="2023-01-31")).json()
    assert len(batches) == 1 and "results" not in batches[0] and batches[0]["fieldMask"]


def test_customer_query_and_gaql_filters(start):
    ads = start(campaigns=6)
    (row,) = [r for b in ads.stream("select customer.id, customer.time_zone, customer.currency_code from customer"
                                    ).json() for r in b["results"]]
    assert row["customer"] == {"resourceName": f"customers/{CUSTOMER}", "id": CUSTOMER,
                               "timeZone": "America/New_York", "currencyCode": "USD"}
    week = [r for b in ads.stream("SELECT campaign.id, segments.date, metrics.clicks FROM campaign "
                                  "WHERE segments.date DURING LAST_7_DAYS AND campaign.status IN ('ENABLED') "
                                  "ORDER BY metrics.clicks DESC LIMIT 5").json() for r in b["results"]]
    assert 0 < len(week) <= 5
    clicks = [int(r["metrics"]["clicks"]) for r in week]
    assert clicks == sorted(clicks, reverse=True)
    assert {r["segments"]["date"] for r in week} <= {(date(2025, 3, 10) - timedelta(days=n)).isoformat()
                                                     for n in range(1, 8)}  # LAST_7_DAYS excludes today
    enabled = {c.id for c in ads.sandbox.customer(CUSTOMER).campaigns if c.status(date(2025, 3, 10)) == "ENABLED"}
    assert {int(r["campaign"]["id"]) for r in week} <= enabled
    totals = [r for b in ads.stream('SELECT segments.date, metrics.impressions FROM customer WHERE segments.date '
                                    '>= "2025-03-01" AND segments.date <= "2025-03-02"').json()
              for r in b["results"]]
    per_campaign = ads.rows("2025-03-01", "2025-03-02")
    assert {r["segments"]["date"]: int(r["metrics"]["impressions"]) for r in totals} == {
        d: sum(int(r["metrics"]["impressions"]) for r in per_campaign if r["segments"]["date"] == d)
        for d in ("2025-03-01", "2025-03-02")}


@pytest.mark.parametrize("query, code", [
    ("SELECT campaign.foo FROM campaign", "UNRECOGNIZED_FIELD"),
    ("SELECT campaign.id FROM campaing", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"),
    ("SELECT campaign.id, segments.date, metrics.clicks FROM campaign", "EXPECTED_FILTERS_ON_DATE_RANGE"),
    ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2025-03-01' '2025-03-02'", "EXPECTED_AND"),
    ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2025-03-05' AND '2025-03-01'",
     "DATE_RANGE_TOO_NARROW"),
    ("SELECT campaign.id FROM campaign WHERE segments.date = '2025/03/01'", "INVALID_DATE_FORMAT"),
    ("SELECT campaign.id FROM campaign WHERE campaign.status = 'LIVE'", "BAD_ENUM_CONSTANT"),
    ("SELECT campaign.id FROM campaign WHERE campaign.name = \"abc'", "STRING_NOT_TERMINATED"),
    ("SELECT campaign.id FROM campaign ORDER campaign.id", "EXPECTED_BY"),
    ("SELECT campaign.id FROM campaign LIMIT 0", "LIMIT_VALUE_TOO_LOW"),
    ("SELECT campaign.id FROM customer", "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE"),
    ("campaign.id FROM campaign", "EXPECTED_SELECT"),
    ("SELECT campaign.id", "EXPECTED_FROM"),
    ("SELECT campaign.id FROM campaign WHERE", "UNEXPECTED_END_OF_QUERY"),
    ("SELECT campaign.id FROM campaign WHERE segments.date DURING LAST_9_DAYS", "INVALID_VALUE_WITH_DURING_OPERATOR"),
])
def test_bad_gaql_is_a_query_error_failure(start, query, code):
    ads = start()
    status, canonical, errors = failure(ads.stream(query))
    assert (status, canonical) == (400, "INVALID_ARGUMENT")
    assert error_code(errors) == ("queryError", code) and errors[0]["message"]


def test_bad_request_body_and_unknown_version(start):
    ads = start()
    resp = ads.http.post(f"{ads.url}/v26/customers/{CUSTOMER}/googleAds:searchStream", json={"querry": "x"},
                         headers=ads.headers())
    assert failure(resp)[:2] == (400, "INVALID_ARGUMENT") and "querry" in resp.json()[0]["error"]["message"]
    assert ads.stream("SELECT campaign.id FROM campaign", version="v9").status_code == 404
    assert ads.stream("SELECT campaign.id FROM campaign", version="v21").status_code == 404  # sunset 2026-08-05
    assert ads.stream("SELECT campaign.id FROM campaign", customer="123-456-7890").status_code == 400


# ----------------------------------------------------------------------- auth
def test_missing_invalid_and_expired_access_tokens_are_401_unauthenticated(start):
    ads = start()
    query = "SELECT customer.id FROM customer"
    status, canonical, errors = failure(ads.stream(query, headers={"developer-token": DEVELOPER_TOKEN}))
    assert (status, canonical, errors) == (401, "UNAUTHENTICATED", [])
    bogus = ads.headers(Authorization="Bearer ya29.not-a-token")
    assert error_code(failure(ads.stream(query, headers=bogus))[2]) == ("authenticationError", "OAUTH_TOKEN_INVALID")
    assert ads.stream(query).status_code == 200
    ads.sandbox.advance(3600)  # access tokens live 3,599 s
    status, canonical, errors = failure(ads.stream(query))
    assert (status, canonical, error_code(errors)) == (401, "UNAUTHENTICATED",
                                                       ("authenticationError", "OAUTH_TOKEN_EXPIRED"))
    ads.token = ads.refresh().json()["access_token"]
    assert ads.stream(query).status_code == 200
    assert ads.control("tokens/expire") == {"expired": 1}  # the refreshed one; the first had expired
    assert error_code(failure(ads.stream(query))[2]) == ("authenticationError", "OAUTH_TOKEN_EXPIRED")


def test_developer_token_missing_or_invalid(start):
    ads = start()
    query = "SELECT customer.id FROM customer"
    status, canonical, errors = failure(ads.stream(query, headers={"Authorization": f"Bearer {ads.token}"}))
    assert (status, canonical, error_code(errors)) == (400, "INVALID_ARGUMENT",
                                                       ("requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING"))
    status, canonical, errors = failure(ads.stream(query, headers=ads.headers(**{"developer-token": "nope"})))
    assert (status, canonical, error_code(errors)) == (401, "UNAUTHENTICATED",
                                                       ("authenticationError", "DEVELOPER_TOKEN_INVALID"))
    ads.control("developer_tokens", {"add": "another-token"})
    assert ads.stream(query, headers=ads.headers(**{"developer-token": "another-token"})).status_code == 200
    ads.control("developer_tokens", {"required": False})  # since the 2026-09-09 sunset: optional, ignored
    assert ads.stream(query, headers={"Authorization": f"Bearer {ads.token}"}).status_code == 200
    assert ads.stream(query, headers=ads.headers(**{"developer-token": "nope"})).status_code == 200


def test_customer_behind_a_manager_needs_login_customer_id(start):
    ads = start()
    ads.control("customers", {"customer_id": "555-000-1234", "manager_id": MANAGER, "campaigns": 2})
    query = "SELECT customer.id FROM customer"
    status, canonical, errors = failure(ads.stream(query, customer="5550001234"))
    assert (status, canonical, error_code(errors)) == (403, "PERMISSION_DENIED",
                                                       ("authorizationError", "USER_PERMISSION_DENIED"))
    assert "login-customer-id" in errors[0]["message"]
    assert ads.stream(query, "5550001234", ads.headers(**{"login-customer-id": MANAGER})).status_code == 200
    assert ads.stream(query, "5550001234", ads.headers(**{"login-customer-id": "9990001112"})).status_code == 403
    dashed = failure(ads.stream(query, "5550001234", ads.headers(**{"login-customer-id": "999-000-1111"})))
    assert dashed[0] == 400 and error_code(dashed[2]) == ("headerError", "INVALID_LOGIN_CUSTOMER_ID")
    # a direct customer accepts no header or itself, not an unrelated manager
    assert ads.stream(query, headers=ads.headers(**{"login-customer-id": CUSTOMER})).status_code == 200
    assert ads.stream(query, headers=ads.headers(**{"login-customer-id": MANAGER})).status_code == 403
    # a grant limited to some accounts reaches only those
    limited = ads.control("grants", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                     "customers": [MANAGER]})["refresh_token"]
    ads.token = ads.refresh(limited).json()["access_token"]
    assert ads.stream(query, "5550001234", ads.headers(**{"login-customer-id": MANAGER})).status_code == 200
    assert ads.stream(query).status_code == 403
    assert ads.stream(query, customer="1111111111").status_code == 403  # no such customer


# ----------------------------------------------------------------------- token endpoint
def test_token_refresh_and_its_errors(start):
    ads = start()
    resp = ads.refresh()
    body = resp.json()
    assert resp.status_code == 200 and set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 3599 and body["token_type"] == "Bearer"
    assert body["scope"] == "https://www.googleapis.com/auth/adwords"
    ads.token = body["access_token"]
    assert ads.stream("SELECT customer.id FROM customer").status_code == 200
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    resp = ads.http.post(f"{ads.url}/token", data={"grant_type": "refresh_token", "refresh_token": ads.refresh_token},
                         headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200
    good = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "refresh_token": ads.refresh_token}
    cases = [({"refresh_token": "1//unknown"}, 400, "invalid_grant"),
             ({"client_secret": "wrong"}, 401, "invalid_client"),
             ({"client_id": "who.apps.googleusercontent.com"}, 401, "invalid_client"),
             ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
             ({"refresh_token": None}, 400, "invalid_request")]
    for change, status, error in cases:
        form = {k: v for k, v in {**good, **change}.items() if v is not None}
        resp = ads.http.post(f"{ads.url}/token", data=form)
        assert (resp.status_code, resp.json()["error"]) == (status, error), change
        assert resp.json()["error_description"]
    assert ads.sandbox.stats()["oauth"]["invalid_grant"] == 1


def test_revoked_grant_refuses_refresh_and_its_access_tokens(start):
    ads = start()
    other = ads.sandbox.grant()
    other_token = ads.sandbox.access_token(other)
    ads.control("grants/revoke", {"refresh_token": ads.refresh_token})
    resp = ads.refresh()
    assert (resp.status_code, resp.json()) == (400, {"error": "invalid_grant",
                                                     "error_description": "Token has been expired or revoked."})
    status, _, errors = failure(ads.stream("SELECT customer.id FROM customer"))
    assert status == 401 and error_code(errors) == ("authenticationError", "OAUTH_TOKEN_REVOKED")
    ads.token = other_token  # another grant is untouched
    assert ads.stream("SELECT customer.id FROM customer").status_code == 200


def test_rotating_refresh_tokens_retires_the_old_one(start):
    ads = start()
    ads.control("oauth", {"rotate_refresh_tokens": True})
    body = ads.refresh().json()
    assert body["refresh_token"] != ads.refresh_token
    assert ads.refresh().json()["error"] == "invalid_grant"
    assert ads.refresh(body["refresh_token"]).status_code == 200


# ----------------------------------------------------------------------- throttling & faults
def test_throttled_requests_get_429_resource_exhausted_with_retry_delay(start):
    ads = start()
    ads.sandbox.add_customer("2223334444", campaigns=1)
    query = "SELECT customer.id FROM customer"
    assert ads.control("throttle", {"requests": 2, "window_seconds": 60})["requests"] == 2
    assert [ads.stream(query).status_code for _ in range(2)] == [200, 200]
    resp = ads.stream(query)
    status, canonical, errors = failure(resp)
    assert (status, canonical) == (429, "RESOURCE_EXHAUSTED") and "retry-after" not in resp.headers
    assert error_code(errors) == ("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED")
    delay = errors[0]["details"]["quotaErrorDetails"]["retryDelay"]
    assert re.fullmatch(r"\d+s", delay) and 1 <= int(delay[:-1]) <= 60
    assert ads.stream(query, customer="2223334444").status_code == 200  # per customer by default
    ads.control("throttle", {"scope": "DEVELOPER", "retry_delay_seconds": 7, "retry_info": True, "reset": True})
    assert [ads.stream(query, c).status_code for c in (CUSTOMER, "2223334444")] == [200, 200]
    resp = ads.stream(query, customer="2223334444")
    errors = failure(resp)[2]
    assert errors[0]["details"]["quotaErrorDetails"] == {"rateScope": "DEVELOPER", "retryDelay": "7s",
                                                         "rateName": "Number of operations for basic access"}
    retry_info = [d for d in resp.json()[0]["error"]["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry_info == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    ads.control("throttle", {"requests": None})
    assert ads.stream(query).status_code == 200
    assert ads.sandbox.stats()["rate_limited_429"] == 2


def test_injected_faults_use_google_bodies(start):
    ads = start(faults=Faults(retry_after_seconds=3))
    query = "SELECT customer.id FROM customer"
    ads.http.post(f"{ads.url}/_sandbox/faults", json={"fail_next": [{"kind": "429"}, {"kind": "503"},
                                                                    {"kind": "truncated"}]})
    errors = failure(ads.stream(query))[2]
    assert errors[0]["details"]["quotaErrorDetails"]["retryDelay"] == "3s"
    assert failure(ads.stream(query))[:2] == (503, "UNAVAILABLE")
    resp = ads.stream(query)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    assert ads.stream(query).status_code == 200


def test_a_stream_can_fail_after_its_first_batch(start):
    ads = start(batch_size=2)
    ads.control("stream_errors", {"n": 1})
    resp = ads.stream(SYNC_QUERY.format(first="2025-03-01", last="2025-03-08"))
    body = resp.json()
    assert resp.status_code == 200 and len(body) == 2 and len(body[0]["results"]) == 2
    assert body[1]["error"]["status"] == "INTERNAL" and body[1]["error"]["code"] == 500
    assert all("error" not in b for b in ads.stream(SYNC_QUERY.format(first="2025-03-01", last="2025-03-08")).json())


# ----------------------------------------------------------------------- data over time
def key(row: dict[str, Any]) -> tuple[str, str]:
    return row["campaign"]["id"], row["segments"]["date"]


def test_restatement_changes_past_days_and_removes_campaign_days(start):
    ads = start(campaigns=5)
    before = {key(r): r for r in ads.rows("2025-02-20", "2025-03-10")}
    result = ads.control("restate", {"customer_id": CUSTOMER, "days": 5, "vanish": 3})
    window = {(date(2025, 3, 10) - timedelta(days=n)).isoformat() for n in range(1, 6)}
    assert set(result["days"]) == window
    gone = {(v["campaign_id"], v["date"]) for v in result["vanished"]}
    after = {key(r): r for r in ads.rows("2025-02-20", "2025-03-10")}
    assert len(gone) == 3 and gone <= set(before) and not gone & set(after)
    assert set(after) == set(before) - gone
    for k, row in after.items():
        old, new = before[k]["metrics"], row["metrics"]
        if k[1] in window:
            assert new["conversions"] > old["conversions"]  # late conversions
            assert int(new["costMicros"]) <= int(old["costMicros"])  # invalid clicks removed
        else:
            assert new == old
    assert any(int(after[k]["metrics"]["costMicros"]) < int(before[k]["metrics"]["costMicros"]) for k in after)


def test_days_are_the_customers_own_and_end_at_its_today(start):
    ads = start()
    ads.sandbox.add_customer("3334445555", campaigns=4, time_zone="Asia/Tokyo")
    ads.sandbox.set_clock(datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc))  # NY: 9 Mar 22:00, Tokyo: 10 Mar 11:00
    ny = {r["segments"]["date"] for r in ads.rows("2025-03-08", "2025-03-12")}
    tokyo = ads.rows("2025-03-08", "2025-03-12", customer="3334445555")
    assert max(ny) == "2025-03-09"
    assert max(r["segments"]["date"] for r in tokyo) == "2025-03-10"
    assert {r["customer"]["timeZone"] for r in tokyo} == {"Asia/Tokyo"}
    today = {r["campaign"]["id"]: int(r["metrics"]["impressions"]) for r in tokyo if r["segments"]["date"] == "2025-03-10"}
    ads.sandbox.advance(6 * 3600)  # today's numbers are partial and grow during the day
    later = {r["campaign"]["id"]: int(r["metrics"]["impressions"])
             for r in ads.rows("2025-03-10", "2025-03-10", customer="3334445555")}
    assert today and all(later[c] > n for c, n in today.items())


def test_data_is_reproducible_from_the_seed(start):
    one, two, other = start(seed=11), start(seed=11), start(seed=12)
    rows = [a.rows("2025-01-01", "2025-03-09") for a in (one, two, other)]
    assert rows[0] == rows[1] and rows[0] != rows[2]


def test_drift_restates_recent_days(start):
    ads = start()
    before = ads.rows("2025-03-01", "2025-03-09")
    result = ads.control("restate", {"customer_id": CUSTOMER, "drift": True})
    assert result["days"] == ["2025-03-07", "2025-03-08", "2025-03-09"]
    assert ads.rows("2025-03-01", "2025-03-09") != before


def test_control_plane_lists_customers_and_moves_the_clock(start):
    ads = start()
    listed = ads.http.get(f"{ads.url}/_sandbox/google_ads/customers").json()["customers"]
    assert listed[CUSTOMER]["today"] == "2025-03-10" and len(listed[CUSTOMER]["campaigns"]) == 4
    assert ads.control("clock", {"advance": 86_400})["now"].startswith("2025-03-11T15:00")
    resp = ads.http.post(f"{ads.url}/_sandbox/google_ads/customers", json={"customer_id": "12"})
    assert resp.status_code == 400
    resp = ads.http.post(f"{ads.url}/_sandbox/google_ads/restate", json={"customer_id": "4445556666"})
    assert resp.status_code == 404
    health = ads.http.get(f"{ads.url}/_sandbox/health").json()
    assert health["provider"] == "google_ads" and health["customers"] == [CUSTOMER]


def test_command_line_serves_until_interrupted():
    proc = subprocess.Popen([sys.executable, "-m", "sync_pipelines.sandbox.google_ads", "--port", "0",
                             "--customers", "111-222-3333"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        url = re.search(r"on (http://\S+)", first).group(1)
        lines = [proc.stdout.readline() for _ in range(4)]  # developer token, client, refresh token, customer
        assert any("customer 1112223333" in line for line in lines)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                assert requests.get(f"{url}/_sandbox/health", timeout=2).json()["customers"] == ["1112223333"]
                break
            except requests.ConnectionError:
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
