"""A sync request for a report provider's job, from a JSON body (the seeds' `/api/integrations/
schedule` and cron bodies, sent to `POST /triggers/<provider>_sync`), checked strictly and turned
into the batch job's run config. Pure: the receiver validates with it (400 with the message) before
storing the trigger, and the trigger sensor builds the run from it.

    {"userId": "u1", "timeframeDays": 7}                       the user's accounts, last 7 days
    {"accounts": ["123"], "startDate": "2026-10-01", "endDate": "2026-10-31"}
    {"allUsers": true, "jobType": "initial-backfill"}          every account's 90-day backfill
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

JOB_TYPES = {"manual-sync": "manual", "scheduled-sync": "scheduled", "initial-backfill": "backfill",
             "restatement": "restatement"}
FIELDS = ("userId", "providerId", "accounts", "accountId", "timeframeDays", "startDate", "endDate", "jobType",
          "allUsers")
MAX_ACCOUNTS = 1000


def report_op_name(provider: str) -> str:
    """The batch job's op (its config is the run config): `<provider>_sync_accounts`."""
    return f"{provider}_sync_accounts"


def report_job_name(provider: str) -> str:
    return f"{provider}_sync"


def _text(body: dict, key: str, limit: int = 200) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValueError(f"{key} must be a non-empty string of at most {limit} characters")
    return value.strip()


def _day(body: dict, key: str) -> str | None:
    value = _text(body, key, 10)
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{key} must be a date YYYY-MM-DD, not {value!r}") from None


def parse_report_request(provider: str, body: Any,
                         normalise_account: Callable[[str], str] = lambda a: a) -> dict:
    """The run config for `body`; ValueError naming the first problem."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    provider_id = _text(body, "providerId")
    if provider_id is not None and provider_id != provider:
        raise ValueError(f"providerId {provider_id!r} does not match this job's provider {provider!r}")
    config: dict[str, Any] = {}
    owner = _text(body, "userId")
    all_users = body.get("allUsers", False)
    if not isinstance(all_users, bool):
        raise ValueError("allUsers must be true or false")
    if owner and all_users:
        raise ValueError("give userId or allUsers, not both")
    if owner:
        config["owner"] = owner
    accounts = body.get("accounts")
    if body.get("accountId") is not None:
        if accounts is not None:
            raise ValueError("give accounts or accountId, not both")
        accounts = [body["accountId"]]
    if accounts is not None:
        if (not isinstance(accounts, list) or not accounts or len(accounts) > MAX_ACCOUNTS
                or not all(isinstance(a, str) and a.strip() and len(a) <= 200 for a in accounts)):
            raise ValueError(f"accounts must be a list of 1 to {MAX_ACCOUNTS} account ids")
        config["accounts"] = [normalise_account(a.strip()) for a in accounts]
    if not (owner or all_users or accounts):
        raise ValueError("name whose accounts to sync: userId, accounts (or accountId), or allUsers: true")
    days = body.get("timeframeDays")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
            raise ValueError("timeframeDays must be an integer between 0 and 3650")
        config["days"] = days
    first, last = _day(body, "startDate"), _day(body, "endDate")
    if (first or last) and days is not None:
        raise ValueError("give timeframeDays or startDate/endDate, not both")
    if first and last and last < first:
        raise ValueError(f"endDate {last} is before startDate {first}")
    if last and not first:
        raise ValueError("endDate needs a startDate")
    if first:
        config["first_day"] = first
    if last:
        config["last_day"] = last
    job_type = _text(body, "jobType")
    if job_type is not None:
        if job_type not in JOB_TYPES:
            raise ValueError(f"jobType must be one of {', '.join(JOB_TYPES)}, not {job_type!r}")
        config["kind"] = JOB_TYPES[job_type]
    return {"ops": {report_op_name(provider): {"config": config}}}


def report_trigger_parser(provider: str, normalise_account: Callable[[str], str] = lambda a: a
                          ) -> Callable[[object], dict]:
    return lambda body: parse_report_request(provider, body, normalise_account)
