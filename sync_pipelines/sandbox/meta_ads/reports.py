"""Insights queries, their rows and cursor paging, and async report runs.

Contract (https://developers.facebook.com/docs/marketing-api/insights/ and its reference
https://developers.facebook.com/docs/marketing-api/reference/ad-account/insights/):
``level`` (``account`` by default on an ad account, ``campaign``), ``time_increment`` (an integer
1–90 of days, or ``all_days``), ``time_range={"since","until"}`` (account-local days, inclusive;
else ``date_preset``, default ``last_30d``), ``fields``, ``limit``; rows are paged with opaque
``after`` cursors and a ``paging.next`` URL (https://developers.facebook.com/docs/graph-api/
results — cursor-based pagination). A campaign with no delivery on a day has no row.

Async runs (https://developers.facebook.com/docs/marketing-api/insights/best-practices/ —
"Asynchronous Jobs"): ``POST act_<id>/insights`` answers ``{"report_run_id"}``; ``GET
/<report_run_id>`` reports ``async_status`` ("Job Not Started", "Job Started", "Job Running",
"Job Completed", "Job Failed", "Job Skipped") and ``async_percent_completion``; once completed,
``GET /<report_run_id>/insights`` pages the result. How a job behaves is a sandbox knob
(`JobRule`): complete after K polls, stuck at "Job Running" with 100 %, failed, skipped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sync_pipelines.sandbox.meta_ads.data import INSIGHTS_FIELDS, AccountData, add_cells, render
from sync_pipelines.sandbox.meta_ads.errors import GraphError, invalid_parameter

LIMIT_DEFAULT = 25
LIMIT_MAX = 5000  # our choice: the API documents none, but a client asking for more finds out here
MAX_MONTHS_BACK = 37  # "the start date of the time range cannot be beyond 37 months from the current date"
DEFAULT_FIELDS = ["impressions", "spend"]
JOB_MODES = ("complete", "stuck", "failed", "skipped")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PRESETS = {"today": (0, 0), "yesterday": (1, 1), "last_3d": (3, 1), "last_7d": (7, 1), "last_14d": (14, 1),
            "last_28d": (28, 1), "last_30d": (30, 1), "last_90d": (90, 1)}  # (days back from, to)


@dataclass(frozen=True)
class InsightsQuery:
    since: date
    until: date
    level: str
    time_increment: int | None  # None: all_days
    fields: tuple[str, ...]

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def fingerprint(self) -> str:
        raw = f"{self.since}|{self.until}|{self.level}|{self.time_increment}|{','.join(self.fields)}"
        return hashlib.sha1(raw.encode()).hexdigest()[:10]


def _parse_day(raw: Any, name: str) -> date:
    if not isinstance(raw, str) or not _DATE.fullmatch(raw):
        raise invalid_parameter(f"Param time_range[{name}] must be a date in YYYY-MM-DD format")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid_parameter(f"Param time_range[{name}] is not a valid date: {raw}") from None


def _time_range(params: dict[str, str], today: date) -> tuple[date, date]:
    raw = params.get("time_range")
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise invalid_parameter("Param time_range must be a JSON object with since and until") from None
        if not isinstance(parsed, dict):
            raise invalid_parameter("Param time_range must be a JSON object with since and until")
    elif "time_range[since]" in params or "time_range[until]" in params:
        parsed = {"since": params.get("time_range[since]"), "until": params.get("time_range[until]")}
    else:
        preset = params.get("date_preset", "last_30d")
        if preset not in _PRESETS:
            raise invalid_parameter(f"date_preset must be one of {sorted(_PRESETS)} (the sandbox's), got {preset}")
        back_from, back_to = _PRESETS[preset]
        return today - timedelta(days=back_from), today - timedelta(days=back_to)
    since, until = _parse_day(parsed.get("since"), "since"), _parse_day(parsed.get("until"), "until")
    if since > until:
        raise invalid_parameter("Param time_range[since] must be on or before time_range[until]")
    oldest = _months_back(today, MAX_MONTHS_BACK)
    if since < oldest:
        raise GraphError(3018, "(#3018) The start date of the time range cannot be beyond 37 months from the "
                               "current date")
    return since, until


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, 28))


def parse_query(params: dict[str, str], today: date) -> InsightsQuery:
    """The query an insights call asks for, or the GraphError Meta would answer."""
    unsupported = [name for name in ("breakdowns", "action_breakdowns", "time_ranges", "filtering",
                                     "summary", "product_id_limit")
                   if params.get(name) not in (None, "", "[]")]
    if unsupported:
        raise invalid_parameter(f"The sandbox does not emulate {', '.join(unsupported)}")
    level = params.get("level", "account")
    if level not in ("account", "campaign"):
        raise invalid_parameter(f"level must be account or campaign in the sandbox, got {level}")
    raw_increment = params.get("time_increment", "all_days")
    if raw_increment == "all_days":
        increment = None
    elif raw_increment.isdigit() and 1 <= int(raw_increment) <= 90:
        increment = int(raw_increment)
    else:
        raise invalid_parameter(f"time_increment must be an integer 1-90 or all_days, got {raw_increment}")
    fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()] or DEFAULT_FIELDS
    unknown = [f for f in fields if f not in INSIGHTS_FIELDS]
    if unknown:
        raise invalid_parameter(f"{unknown[0]} is not valid for fields param. Valid fields are: "
                                f"{', '.join(sorted(INSIGHTS_FIELDS))}")
    since, until = _time_range(params, today)
    return InsightsQuery(since, until, level, increment, tuple(dict.fromkeys(fields)))


def parse_limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return LIMIT_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= LIMIT_MAX:
        raise invalid_parameter(f"Param limit must be an integer between 1 and {LIMIT_MAX}")
    return int(raw)


def compute_rows(account: AccountData, query: InsightsQuery, today: date) -> list[dict[str, Any]]:
    """The query's rows as of now: buckets of `time_increment` days (date order), then campaigns
    (id order); nothing after the account's `today`, no row for a bucket without delivery."""
    last = min(query.until, today)
    rows: list[dict[str, Any]] = []
    if query.since > last:
        return rows
    span = query.time_increment or query.days
    start = query.since
    while start <= last:
        stop = min(start + timedelta(days=span - 1), query.until)
        days = [start + timedelta(days=i) for i in range((min(stop, last) - start).days + 1)]
        per_campaign = []
        for campaign in account.campaigns:
            cells = [c for day in days if (c := account.cell(campaign, day)) is not None]
            if cells:
                per_campaign.append((campaign, add_cells(cells)))
        if query.level == "campaign":
            rows.extend(render(account, campaign, start, stop, cell, list(query.fields))
                        for campaign, cell in per_campaign)
        elif per_campaign:
            rows.append(render(account, None, start, stop, add_cells([c for _, c in per_campaign]),
                               list(query.fields)))
        start = stop + timedelta(days=1)
    return rows


# ------------------------------------------------------------------- paging
def encode_cursor(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset, mark = raw.split(":", 1)
        if mark != fingerprint or not offset.isdigit():
            raise ValueError
        return int(offset)
    except ValueError:
        raise invalid_parameter("Invalid cursor: the after/before cursor does not belong to this query") from None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    before: str | None
    after: str | None
    has_next: bool
    has_previous: bool


def page(rows: list[dict[str, Any]], params: dict[str, str], fingerprint: str) -> Page:
    """The slice `params` (``limit``, ``after`` or ``before``) asks for."""
    limit = parse_limit(params)
    if params.get("after"):
        start = decode_cursor(params["after"], fingerprint)
    elif params.get("before"):
        start = max(0, decode_cursor(params["before"], fingerprint) - limit)
    else:
        start = 0
    chunk = rows[start:start + limit]
    end = start + len(chunk)
    return Page(rows=chunk, before=encode_cursor(start, fingerprint) if chunk else None,
                after=encode_cursor(end, fingerprint) if chunk else None,
                has_next=end < len(rows), has_previous=start > 0)


# -------------------------------------------------------------------- jobs
@dataclass
class JobRule:
    """How the next report runs of an account behave: `mode` after `polls` polls, for runs
    spanning more than `over_days` days (None: any), for the next `count` runs (None: all)."""

    mode: str
    polls: int = 1
    over_days: int | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in JOB_MODES:
            raise ValueError(f"mode must be one of {JOB_MODES}, got {self.mode!r}")
        if self.polls < 0 or (self.over_days is not None and self.over_days < 0) or \
                (self.count is not None and self.count < 1):
            raise ValueError("need polls >= 0, over_days >= 0 and count >= 1")

    def matches(self, days: int) -> bool:
        return self.count != 0 and (self.over_days is None or days > self.over_days)

    def snapshot(self) -> dict[str, Any]:
        return {"mode": self.mode, "polls": self.polls, "over_days": self.over_days, "count": self.count}


@dataclass
class ReportRun:
    """One async job: its query, how it will behave, and its rows once completed."""

    id: str
    account_id: str
    query: InsightsQuery
    mode: str
    polls_needed: int
    created_at: float
    polls: int = 0
    completed_at: float | None = None
    rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    def poll(self) -> tuple[str, int]:
        """(async_status, async_percent_completion) after one more poll."""
        self.polls += 1
        done = self.polls >= self.polls_needed
        if self.mode == "complete":
            if done:
                return "Job Completed", 100
            if self.polls == 1:
                return "Job Not Started", 0
            return "Job Running", min(99, 100 * self.polls // max(self.polls_needed, 1))
        if self.mode == "stuck":  # the documented trap: "Job Running" at 100 %, forever
            return ("Job Started", 0) if self.polls == 1 and self.polls_needed > 1 else ("Job Running", 100)
        if not done:
            return "Job Running", min(99, 100 * self.polls // max(self.polls_needed, 1))
        return ("Job Failed", 0) if self.mode == "failed" else ("Job Skipped", 0)

    def status(self, async_status: str, percent: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "account_id": self.account_id, "async_status": async_status,
            "async_percent_completion": percent, "date_start": self.query.since.isoformat(),
            "date_stop": self.query.until.isoformat(), "time_ref": int(self.created_at),
            "is_running": async_status in ("Job Not Started", "Job Started", "Job Running"),
        }
        if self.completed_at is not None:
            body["time_completed"] = int(self.completed_at)
        return body


def not_ready(run_id: str) -> GraphError:
    """Reading a run's insights before "Job Completed"."""
    return GraphError(2601, f"(#2601) Error accessing adreport job: report run {run_id} has not completed")
