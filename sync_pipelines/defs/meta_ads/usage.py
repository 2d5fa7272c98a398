"""Meta's usage headers, read so the client slows down before it is throttled and waits as long
as Meta says once it is.

Contract: "Rate Limiting" (https://developers.facebook.com/docs/graph-api/overview/rate-limiting —
Business Use Case Rate Limits; https://developers.facebook.com/docs/marketing-api/overview/
rate-limiting). ``X-Business-Use-Case-Usage`` is a JSON object keyed by business object id, each a
list of ``{"type", "call_count", "total_cputime", "total_time"`` (percent of the quota used)
``, "estimated_time_to_regain_access"`` (minutes)``}``; ``X-Ad-Account-Usage`` has
``acc_id_util_pct`` and ``reset_time_duration`` (seconds); ``X-FB-Ads-Insights-Throttle`` has
``app_id_util_pct`` and ``acc_id_util_pct``. Throttling starts when any percentage reaches 100.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_pipelines.core.http import MAX_RESET_PAUSE, RateLimiter

BUC_HEADER = "X-Business-Use-Case-Usage"
AD_ACCOUNT_HEADER = "X-Ad-Account-Usage"
INSIGHTS_THROTTLE_HEADER = "X-FB-Ads-Insights-Throttle"


def _header_json(headers: Mapping[str, str], name: str) -> Any:
    value = headers.get(name)
    if value is None:  # a plain dict (tests, other transports) may keep another spelling
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") and number > 0 else 0.0


@dataclass(frozen=True)
class Usage:
    percent: float  # the highest share of any quota used, 0–100 (or more)
    regain_seconds: float  # how long Meta says calls stay refused; 0 when not throttled


def read_usage(headers: Mapping[str, str]) -> Usage:
    """The highest usage any of the three headers reports, and the longest wait any of them asks."""
    percent = regain = 0.0
    buc = _header_json(headers, BUC_HEADER)
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    percent = max(percent, *(_number(entry.get(k)) for k in ("call_count", "total_cputime",
                                                                            "total_time")))
                    regain = max(regain, 60 * _number(entry.get("estimated_time_to_regain_access")))
    account = _header_json(headers, AD_ACCOUNT_HEADER)
    if isinstance(account, dict):
        used = _number(account.get("acc_id_util_pct"))
        percent = max(percent, used)
        if used >= 100:
            regain = max(regain, _number(account.get("reset_time_duration")))
    insights = _header_json(headers, INSIGHTS_THROTTLE_HEADER)
    if isinstance(insights, dict):
        percent = max(percent, _number(insights.get("app_id_util_pct")), _number(insights.get("acc_id_util_pct")))
    return Usage(percent, regain)


@dataclass(frozen=True)
class MetaUsageHeaders:
    """Feeds an account's limiter from every response (the `apply` HttpClient calls): a throttled
    account pauses for Meta's estimate; past `slow_down_at` percent the account pauses a little
    before each call, up to `max_slowdown` seconds at 100 %, so the quota is rarely hit at all."""

    slow_down_at: float = 75.0
    max_slowdown: float = 30.0

    def pause_for(self, usage: Usage) -> float:
        if usage.regain_seconds > 0:
            return usage.regain_seconds
        if usage.percent < self.slow_down_at or self.slow_down_at >= 100:
            return 0.0
        share = min(1.0, (usage.percent - self.slow_down_at) / (100 - self.slow_down_at))
        return self.max_slowdown * share

    def apply(self, limiter: RateLimiter, headers: Mapping[str, str], *, max_pause: float = MAX_RESET_PAUSE) -> None:
        pause = self.pause_for(read_usage(headers))
        if pause > 0:
            limiter.penalize(min(pause, max_pause))
