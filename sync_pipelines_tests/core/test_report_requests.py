"""The body of `POST /triggers/<provider>_sync`: the seeds' fields, checked strictly, as run config."""

from __future__ import annotations

import pytest

from sync_pipelines.core.report_requests import parse_report_request


def config(body, provider="ads"):
    return parse_report_request(provider, body, str.lower)["ops"]["ads_sync_accounts"]["config"]


def test_the_seeds_bodies_become_run_config():
    assert config({"userId": "user123", "providerId": "ads", "jobType": "manual-sync", "timeframeDays": 7}) == \
        {"owner": "user123", "kind": "manual", "days": 7}
    assert config({"allUsers": True, "timeframeDays": 1}) == {"days": 1}
    assert config({"accounts": ["ACT-1"], "startDate": "2026-10-01", "endDate": "2026-10-31"}) == \
        {"accounts": ["act-1"], "first_day": "2026-10-01", "last_day": "2026-10-31"}
    assert config({"accountId": "A", "jobType": "initial-backfill"}) == {"accounts": ["a"], "kind": "backfill"}


@pytest.mark.parametrize("body, message", [
    ([], "JSON object"),
    ({"userId": "u", "maxJobs": 3}, "unknown field"),
    ({"timeframeDays": 3}, "userId, accounts"),
    ({"userId": "u", "allUsers": True}, "not both"),
    ({"userId": "u", "providerId": "other"}, "does not match"),
    ({"userId": "u", "timeframeDays": -1}, "between 0 and 3650"),
    ({"userId": "u", "timeframeDays": "7"}, "integer"),
    ({"userId": "u", "startDate": "2026-13-01"}, "YYYY-MM-DD"),
    ({"userId": "u", "startDate": "2026-10-02", "endDate": "2026-10-01"}, "before"),
    ({"userId": "u", "startDate": "2026-10-02", "timeframeDays": 2}, "not both"),
    ({"userId": "u", "endDate": "2026-10-02"}, "needs a startDate"),
    ({"accounts": []}, "list of 1"),
    ({"accounts": [1]}, "list of 1"),
    ({"userId": "u", "jobType": "cleanup"}, "jobType"),
])
def test_bad_bodies_are_refused_with_the_reason(body, message):
    with pytest.raises(ValueError, match=message):
        config(body)
