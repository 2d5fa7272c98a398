"""The Meta Marketing API sandbox must behave like the published contract, or client tests on it
prove nothing: versioned Graph paths, cursor paging with ``paging.next``, numbers as strings,
account-local days, async report runs (complete, stuck, failed), Business Use Case throttling
with its usage headers, code 190 tokens and the long-lived exchange, restatement.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.meta_ads import (
    AD_ACCOUNT_HEADER, BUC_HEADER, INSIGHTS_THROTTLE_HEADER, MetaAdsSandbox, account_number,
)
from sync_pipelines.sandbox.meta_ads.app import _add_arguments, _build
from sync_pipelines.sandbox.server import serve_in_thread

NOW = datetime(2025, 7, 10, 5, 0, tzinfo=timezone.utc)  # 22:00 on 07-09 in Los Angeles, 17:00 on 07-10 in Auckland
TOKEN = "test-token"
FIELDS = "account_currency,campaign_id,campaign_name,impressions,clicks,spend,actions,action_values"
DECIMAL = re.compile(r"^\d+\.\d{2}$")


def time_range(since: str, until: str) -> str:
    return json.dumps({"since": since, "until": until})


@pytest.fixture
def sandbox():
    sb = MetaAdsSandbox(seed=11, faults=Faults(seed=11))
    sb.set_clock(NOW)
    sb.add_account("act_1001", currency="USD", timezone_name="America/Los_Angeles", campaigns=4)
    sb.add_account("2002", currency="JPY", timezone_name="Pacific/Auckland", campaigns=2)
    sb.issue_token(TOKEN)
    yield sb
    sb.close()


@pytest.fixture
def server(sandbox):
    with serve_in_thread(sandbox.app) as running:
        yield running


@pytest.fixture
def graph(server):
    """GET/POST on the versioned Graph API with the test token as a bearer header."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else f"{server.url}/v23.0/{path}"
        return session.request(method, url, timeout=10, **kwargs)

    yield call
    session.close()


def insights_params(since: str, until: str, **extra) -> dict:
    return {"level": "campaign", "time_increment": "1", "time_range": time_range(since, until),
            "fields": FIELDS, **extra}


def walk(graph, first: requests.Response) -> tuple[list[dict], int]:
    """Every row of a paged answer, following paging.next; (rows, pages)."""
    rows, pages, response = [], 0, first
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        pages += 1
        following = body.get("paging", {}).get("next")
        if not following:
            return rows, pages
        response = graph("GET", following)


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["fbtrace_id"]
    return body["error"]


# ------------------------------------------------------------------ accounts
def test_ad_account_fields_and_ids(graph):
    r = graph("GET", "act_1001", params={"fields": "name,currency,timezone_name,account_status"})
    assert r.status_code == 200
    assert r.json() == {"name": "Sandbox ad account 1001", "currency": "USD", "timezone_name": "America/Los_Angeles",
                        "account_status": 1, "id": "act_1001"}
    assert r.headers["facebook-api-version"] == "v23.0"
    assert account_number("act_77") == account_number("77") == "77"
    with pytest.raises(ValueError):
        account_number("act_x1")


def test_unknown_version_account_and_field_are_graph_errors(graph, server):
    r = requests.get(f"{server.url}/v12.0/act_1001", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 400 and error_of(r)["code"] == 2635
    r = graph("GET", "act_999/insights")
    assert r.status_code == 400 and (error_of(r)["code"], error_of(r)["error_subcode"]) == (100, 33)
    r = graph("GET", "act_1001", params={"fields": "name,bogus"})
    assert error_of(r)["code"] == 100


# ------------------------------------------------------------------ insights
def test_sync_insights_pages_with_after_cursors_and_next_on_the_same_origin(graph, sandbox, server):
    first = graph("GET", "act_1001/insights", params=insights_params("2025-06-20", "2025-07-09", limit=7))
    body = first.json()
    assert len(body["data"]) == 7
    cursors = body["paging"]["cursors"]
    assert set(cursors) == {"before", "after"} and "previous" not in body["paging"]
    following = urlsplit(body["paging"]["next"])
    assert f"{following.scheme}://{following.netloc}" == server.url
    assert f"after={cursors['after']}" in following.query
    rows, pages = walk(graph, first)
    expected = sandbox.rows("1001", date(2025, 6, 20), date(2025, 7, 9))
    assert rows == [{k: row[k] for k in row if k != "account_id"} for row in expected]
    assert pages == -(-len(rows) // 7) and len(rows) > 20
    assert [(r["date_start"], r["campaign_id"]) for r in rows] == sorted((r["date_start"], r["campaign_id"])
                                                                       for r in rows)
    assert len({(r["date_start"], r["campaign_id"]) for r in rows}) == len(rows)


def test_numbers_arrive_as_strings_with_the_currency_decimals(graph):
    rows, _ = walk(graph, graph("GET", "act_1001/insights", params=insights_params("2025-07-01", "2025-07-09")))
    for row in rows:
        assert row["date_start"] == row["date_stop"]
        assert row["impressions"].isdigit() and row["clicks"].isdigit()
        assert DECIMAL.match(row["spend"]), row["spend"]
        assert row["account_currency"] == "USD"
        for entry in row.get("actions", []) + row.get("action_values", []):
            assert set(entry) == {"action_type", "value"} and isinstance(entry["value"], str)
    assert any(a["action_type"] == "purchase" for r in rows for a in r.get("actions", []))
    assert all(DECIMAL.match(v["value"]) for r in rows for v in r.get("action_values", []))
    yen, _ = walk(graph, graph("GET", "act_2002/insights", params=insights_params("2025-07-01", "2025-07-09")))
    assert yen and all(r["spend"].isdigit() and r["account_currency"] == "JPY" for r in yen)


def test_only_requested_fields_and_levels(graph):
    r = graph("GET", "act_1001/insights", params={"level": "campaign", "time_increment": "1", "fields": "spend",
                                                  "time_range": time_range("2025-07-01", "2025-07-01")})
    assert r.json()["data"] and all(set(row) == {"spend", "date_start", "date_stop"} for row in r.json()["data"])
    total = graph("GET", "act_1001/insights", params={"fields": "impressions", "time_increment": "all_days",
                                                      "time_range": time_range("2025-07-01", "2025-07-03")})
    [row] = total.json()["data"]
    daily, _ = walk(graph, graph("GET", "act_1001/insights", params=insights_params("2025-07-01", "2025-07-03")))
    assert int(row["impressions"]) == sum(int(d["impressions"]) for d in daily)
    assert (row["date_start"], row["date_stop"]) == ("2025-07-01", "2025-07-03")


def test_days_are_the_accounts_own_and_never_after_its_today(graph):
    la, _ = walk(graph, graph("GET", "act_1001/insights", params=insights_params("2025-07-05", "2025-07-20")))
    auckland, _ = walk(graph, graph("GET", "act_2002/insights", params=insights_params("2025-07-05", "2025-07-20")))
    assert max(r["date_start"] for r in la) == "2025-07-09"  # 22:00 on the 9th in Los Angeles
    assert max(r["date_start"] for r in auckland) == "2025-07-10"  # 17:00 on the 10th in Auckland
    r = graph("GET", "act_1001", params={"fields": "timezone_offset_hours_utc"})
    assert r.json()["timezone_offset_hours_utc"] == -7


def test_bad_insights_parameters_are_code_100(graph):
    bad = [insights_params("2025-07-09", "2025-07-01"),
           insights_params("2025-07-01", "2025-07-02", fields="spend,nope"),
           insights_params("2025-07-01", "2025-07-02", time_increment="monthly"),
           insights_params("2025-07-01", "2025-07-02", limit="0"),
           insights_params("2025-07-01", "2025-07-02", after="not-a-cursor"),
           {**insights_params("2025-07-01", "2025-07-02"), "breakdowns": "age"}]
    for params in bad:
        r = graph("GET", "act_1001/insights", params=params)
        assert r.status_code == 400 and error_of(r)["code"] == 100, params
    r = graph("GET", "act_1001/insights", params=insights_params("2021-01-01", "2021-01-02"))
    assert error_of(r)["code"] == 3018


def test_a_sync_call_over_too_many_days_asks_for_less_data(graph, sandbox):
    sandbox.sync_max_days = 31
    assert graph("GET", "act_1001/insights", params=insights_params("2025-06-01", "2025-07-01")).status_code == 200
    r = graph("GET", "act_1001/insights", params=insights_params("2025-06-01", "2025-07-02"))
    assert r.status_code == 500 and error_of(r)["code"] == 1 and "reduce the amount of data" in error_of(r)["message"]


# ------------------------------------------------------------ async reports
def _start(graph, since="2025-04-01", until="2025-07-09") -> str:
    r = graph("POST", "act_1001/insights", data=insights_params(since, until))
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"report_run_id"}
    return r.json()["report_run_id"]


def test_async_report_completes_after_k_polls_and_pages_the_same_rows(graph, sandbox):
    sandbox.set_job_behaviour("1001", "complete", polls=3)
    run_id = _start(graph)
    seen = [graph("GET", run_id).json() for _ in range(3)]
    assert [s["async_status"] for s in seen] == ["Job Not Started", "Job Running", "Job Completed"]
    assert [s["async_percent_completion"] for s in seen][-1] == 100
    assert seen[-1]["account_id"] == "1001" and seen[-1]["date_start"] == "2025-04-01"
    rows, pages = walk(graph, graph("GET", f"{run_id}/insights", params={"limit": 100}))
    synced, _ = walk(graph, graph("GET", "act_1001/insights", params=insights_params("2025-04-01", "2025-07-09",
                                                                                     limit=500)))
    assert rows == synced and pages > 1
    assert sandbox.stats()["calls"]["report_runs"] == {"1001": 1}


def test_async_report_stuck_at_running_100_percent_never_serves_rows(graph, sandbox):
    sandbox.set_job_behaviour("1001", "stuck")
    run_id = _start(graph)
    statuses = {(s["async_status"], s["async_percent_completion"])
                for s in (graph("GET", run_id).json() for _ in range(6))}
    assert statuses == {("Job Running", 100)}
    r = graph("GET", f"{run_id}/insights")
    assert r.status_code == 400 and error_of(r)["code"] == 2601


def test_async_report_fails_for_large_ranges_only_and_for_a_count(graph, sandbox):
    sandbox.set_job_behaviour("1001", "failed", polls=2, over_days=30)
    sandbox.set_job_behaviour("1001", "skipped", polls=1, count=1)
    big = _start(graph, "2025-05-01", "2025-07-09")
    assert [graph("GET", big).json()["async_status"] for _ in range(2)] == ["Job Running", "Job Failed"]
    small = _start(graph, "2025-07-01", "2025-07-09")  # <= 30 days: the second rule, once
    assert graph("GET", small).json()["async_status"] == "Job Skipped"
    again = _start(graph, "2025-07-01", "2025-07-09")
    assert graph("GET", again).json()["async_status"] == "Job Completed"
    sandbox.clear_job_behaviour("1001")
    assert graph("GET", _start(graph, "2025-05-01", "2025-07-09")).json()["async_status"] == "Job Completed"


def test_job_behaviour_through_the_control_endpoint(server, graph):
    r = requests.post(f"{server.url}/_sandbox/meta_ads/jobs", json={"account_id": "act_1001", "mode": "stuck"},
                      timeout=10)
    assert r.json()["rules"]["1001"] == [{"mode": "stuck", "polls": 1, "over_days": None, "count": None}]
    assert graph("GET", _start(graph)).json()["async_percent_completion"] == 100
    bad = requests.post(f"{server.url}/_sandbox/meta_ads/jobs", json={"account_id": "1001", "mode": "melt"}, timeout=10)
    assert bad.status_code == 400


# ---------------------------------------------------------------- throttling
def test_usage_headers_climb_then_the_quota_throttles_with_code_80000(graph, sandbox):
    sandbox.throttle.configure(calls_per_window=4, window_seconds=60, block_seconds=150)
    seen = []
    for _ in range(4):
        r = graph("GET", "act_1001", params={"fields": "name"})
        assert r.status_code == 200
        usage = json.loads(r.headers[BUC_HEADER])["1001"][0]
        seen.append(usage["call_count"])
        assert usage["type"] == "ads_insights" and usage["estimated_time_to_regain_access"] == 0
        assert json.loads(r.headers[AD_ACCOUNT_HEADER])["acc_id_util_pct"] == usage["call_count"]
        assert json.loads(r.headers[INSIGHTS_THROTTLE_HEADER])["acc_id_util_pct"] == usage["call_count"]
    assert seen == [25, 50, 75, 100]
    r = graph("GET", "act_1001/insights", params=insights_params("2025-07-01", "2025-07-02"))
    assert r.status_code == 400
    error = error_of(r)
    assert (error["code"], error["error_subcode"], error["is_transient"]) == (80000, 2446079, True)
    assert json.loads(r.headers[BUC_HEADER])["1001"][0]["estimated_time_to_regain_access"] == 3  # 150 s → 3 min
    other = graph("GET", "act_2002", params={"fields": "name"})  # quotas are per ad account
    assert other.status_code == 200
    assert sandbox.stats()["rate_limited_429"] == 1


def test_quota_off_by_default_sends_no_usage_headers(graph):
    r = graph("GET", "act_1001")
    assert r.status_code == 200 and BUC_HEADER.lower() not in {h.lower() for h in r.headers}


@pytest.mark.parametrize("code,subcode", [(4, 1504022), (17, 2446079), (613, 1487742), (80000, 2446079),
                                          (80004, 2446079)])
def test_every_throttling_code_with_its_regain_estimate(graph, sandbox, code, subcode):
    sandbox.throttle_next("act_1001", code, n=2, regain_minutes=4)
    for _ in range(2):
        r = graph("GET", "act_1001/insights", params=insights_params("2025-07-01", "2025-07-02"))
        assert r.status_code == 400
        assert (error_of(r)["code"], error_of(r)["error_subcode"]) == (code, subcode)
        assert json.loads(r.headers[BUC_HEADER])["1001"][0]["estimated_time_to_regain_access"] == 4
    assert graph("GET", "act_1001/insights", params=insights_params("2025-07-01", "2025-07-02")).status_code == 200


def test_throttle_control_endpoint_and_http_status_knob(server, graph):
    r = requests.post(f"{server.url}/_sandbox/meta_ads/throttle", timeout=10, json={
        "http_status": 403, "throttle_next": {"account_id": "1001", "code": 17, "n": 1}})
    assert r.json()["pending"] == {"1001": [[17, 1, 0]]}
    throttled = graph("GET", "act_1001")
    assert throttled.status_code == 403 and error_of(throttled)["code"] == 17
    bad = requests.post(f"{server.url}/_sandbox/meta_ads/throttle", json={"code": 99}, timeout=10)
    assert bad.status_code == 400


# -------------------------------------------------------------------- tokens
def test_tokens_in_the_query_or_a_bearer_header_and_each_refusal(graph, sandbox, server):
    url = f"{server.url}/v23.0/act_1001"
    assert requests.get(url, params={"access_token": TOKEN}, timeout=10).status_code == 200
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 400 and error_of(missing)["code"] == 104
    unknown = requests.get(url, headers={"Authorization": "Bearer EAAnope"}, timeout=10)
    assert error_of(unknown)["code"] == 190 and "error_subcode" not in error_of(unknown)
    narrow = sandbox.issue_token("only-2002", accounts=["act_2002"]).value
    denied = requests.get(url, params={"access_token": narrow}, timeout=10)
    assert (error_of(denied)["code"], error_of(denied)["error_subcode"]) == (100, 33)
    for subcode in (460, 467):
        token = sandbox.issue_token(f"tok-{subcode}").value
        sandbox.invalidate_token(token, subcode)
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert (error_of(r)["code"], error_of(r)["error_subcode"]) == (190, subcode)
        assert token not in r.text


def test_tokens_expire_on_the_sandbox_clock(sandbox, server):
    token = sandbox.issue_token("short", expires_in=60).value
    url = f"{server.url}/v23.0/act_1001"
    assert requests.get(url, params={"access_token": token}, timeout=10).status_code == 200
    sandbox.advance(61)
    r = requests.get(url, params={"access_token": token}, timeout=10)
    assert (error_of(r)["code"], error_of(r)["error_subcode"]) == (190, 463)
    other = requests.post(f"{server.url}/_sandbox/meta_ads/tokens", json={"token": "x1", "expires_in": 10}, timeout=10)
    assert other.json()["access_token"] == "x1"
    requests.post(f"{server.url}/_sandbox/meta_ads/tokens/expire", json={"token": "x1"}, timeout=10)
    assert error_of(requests.get(url, params={"access_token": "x1"}, timeout=10))["error_subcode"] == 463


@pytest.mark.parametrize("path", ["/v23.0/oauth/access_token", "/oauth/access_token"])
def test_long_lived_token_exchange(sandbox, server, path):
    token = sandbox.issue_token("expiring-soon", accounts=["1001"], expires_in=3600).value
    params = {"grant_type": "fb_exchange_token", "client_id": "sandbox-meta-app",
              "client_secret": "sandbox-meta-app-secret", "fb_exchange_token": token}
    r = requests.get(f"{server.url}{path}", params=params, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 60 * 24 * 3600 and body["access_token"] != token
    fresh = requests.get(f"{server.url}/v23.0/act_1001", params={"access_token": body["access_token"]}, timeout=10)
    assert fresh.status_code == 200
    assert requests.get(f"{server.url}/v23.0/act_2002", params={"access_token": body["access_token"]},
                        timeout=10).status_code == 400  # same accounts as the token it replaced
    wrong = requests.get(f"{server.url}{path}", params={**params, "client_secret": "nope"}, timeout=10)
    assert error_of(wrong)["code"] == 1 and "nope" not in wrong.text
    sandbox.expire_token(token)
    expired = requests.get(f"{server.url}{path}", params=params, timeout=10)
    assert (error_of(expired)["code"], error_of(expired)["error_subcode"]) == (190, 463)
    assert sandbox.stats()["token_exchanges"] == 1


# --------------------------------------------------------------- restatement
def test_numbers_are_seeded_and_reproducible():
    def rows(seed: int) -> list[dict]:
        sb = MetaAdsSandbox(seed=seed)
        sb.set_clock(NOW)
        sb.add_account("1001", campaigns=3)
        return sb.rows("1001", date(2025, 6, 1), date(2025, 7, 9))

    assert rows(5) == rows(5) != rows(6)


def test_restatement_changes_past_numbers_and_makes_rows_vanish(graph, sandbox):
    def fetch() -> dict:
        rows, _ = walk(graph, graph("GET", "act_1001/insights", params=insights_params("2025-06-01", "2025-07-09")))
        return {(r["campaign_id"], r["date_start"]): r for r in rows}

    before = fetch()
    result = sandbox.restate("act_1001", days=10, change=8, vanish=3)
    after = fetch()
    vanished = {(v["campaign_id"], v["date"]) for v in result["vanished"]}
    changed = {(c["campaign_id"], c["date"]) for c in result["changed"]}
    assert len(vanished) == 3 and len(changed) == 8
    assert set(before) - set(after) == vanished
    assert all(before[key] != after[key] for key in changed)
    assert all(before[key] == after[key] for key in set(after) - changed)
    oldest = (date(2025, 7, 9) - timedelta(days=9)).isoformat()  # LA's today is the 9th
    assert all(day >= oldest for _, day in vanished | changed)
    late = [after[k] for k in changed]
    assert all(int(next(a["value"] for a in r["actions"] if a["action_type"] == "purchase")) >=
               int(next((a["value"] for a in before[k].get("actions", []) if a["action_type"] == "purchase"), 0))
               for k, r in zip(changed, late))


def test_restate_and_drift_control_endpoints(server, sandbox):
    r = requests.post(f"{server.url}/_sandbox/meta_ads/restate", json={"account_id": "1001", "days": 5, "vanish": 1},
                      timeout=10)
    assert r.status_code == 200 and len(r.json()["vanished"]) == 1 and r.json()["changed"]
    drift = requests.post(f"{server.url}/_sandbox/meta_ads/drift", json={"account_id": "1001"}, timeout=10)
    assert drift.status_code == 200 and drift.json()["changed"]
    truth = requests.get(f"{server.url}/_sandbox/meta_ads/insights",
                         params={"account_id": "1001", "since": "2025-07-01", "until": "2025-07-09"}, timeout=10)
    assert truth.json()["data"] == sandbox.rows("1001", date(2025, 7, 1), date(2025, 7, 9))
    unknown = requests.post(f"{server.url}/_sandbox/meta_ads/restate", json={"account_id": "9"}, timeout=10)
    assert unknown.status_code == 404


# -------------------------------------------------------- control and faults
def test_accounts_and_clock_control_endpoints(server):
    r = requests.post(f"{server.url}/_sandbox/meta_ads/accounts", timeout=10, json={
        "account_id": "act_3003", "currency": "EUR", "timezone_name": "Europe/Berlin", "campaigns": ["A", "B"]})
    assert r.status_code == 200 and r.json()["id"] == "act_3003" and len(r.json()["campaigns"]) == 2
    listed = requests.get(f"{server.url}/_sandbox/meta_ads/accounts", timeout=10).json()["ad_accounts"]
    assert [c["name"] for c in listed["3003"]["campaigns"]] == ["A", "B"]
    assert requests.post(f"{server.url}/_sandbox/meta_ads/accounts", json={"account_id": "x"},
                         timeout=10).status_code == 400
    clock = requests.post(f"{server.url}/_sandbox/meta_ads/clock", json={"now": "2025-08-01T00:00:00Z"}, timeout=10)
    assert clock.json()["frozen"] is True
    assert datetime.fromisoformat(clock.json()["now"]) == datetime(2025, 8, 1, tzinfo=timezone.utc)


def test_injected_faults_are_graph_errors(graph, sandbox):
    sandbox.faults.fail_next("500")
    r = graph("GET", "act_1001")
    assert r.status_code == 500 and error_of(r)["code"] == 2 and error_of(r)["is_transient"] is True
    sandbox.faults.fail_next("429")
    r = graph("GET", "act_1001")
    assert r.status_code == 429 and error_of(r)["code"] == 4 and r.headers["Retry-After"] == "1"
    sandbox.faults.fail_next("truncated")
    with pytest.raises(ValueError):
        graph("GET", "act_1001").json()
    assert graph("GET", "act_1001").status_code == 200


def test_command_line_builds_accounts_and_a_token():
    import argparse

    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(["--accounts", "act_11,12", "--throttle-calls", "9"])
    sandbox, banner = _build(args)
    assert sandbox.account_ids == ["11", "12"]
    assert sandbox.throttle.calls_per_window == 9
    assert sandbox.tokens.check("sandbox-meta-token", sandbox.now()).accounts is None
    assert any("act_12" in line for line in banner("http://127.0.0.1:1"))
