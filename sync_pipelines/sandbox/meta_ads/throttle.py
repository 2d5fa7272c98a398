"""Business Use Case throttling of an ad account's Insights calls, and its usage headers.

Contract: "Rate Limiting" (https://developers.facebook.com/docs/graph-api/overview/rate-limiting —
Business Use Case Rate Limits; https://developers.facebook.com/docs/marketing-api/overview/
rate-limiting). Every response carries ``X-Business-Use-Case-Usage``: a JSON object keyed by the
business object (here the ad account id) whose list holds ``{"type": "ads_insights",
"call_count", "total_cputime", "total_time"`` (percent of the quota used) ``,
"estimated_time_to_regain_access"`` (minutes until a throttled object may call again)
``, "ads_api_access_tier"}``; ``X-Ad-Account-Usage`` (``acc_id_util_pct``,
``reset_time_duration`` in seconds) and ``X-FB-Ads-Insights-Throttle`` (``app_id_util_pct``,
``acc_id_util_pct``) too. Beyond the quota the call fails with a throttling code: 80000 (BUC,
ads_insights; 80000–80014 for the other use cases), 17 (user request limit), 613 (ad account
calls), 4 (application limit) — in an HTTP 400 body, like every Graph error.

Off by default; ``calls_per_window`` turns the rolling-window quota on, ``throttle_next`` queues
a deterministic burst of one code for tests.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from sync_pipelines.sandbox.meta_ads.errors import GraphError

BUC_HEADER = "X-Business-Use-Case-Usage"
AD_ACCOUNT_HEADER = "X-Ad-Account-Usage"
INSIGHTS_THROTTLE_HEADER = "X-FB-Ads-Insights-Throttle"
ACCESS_TIER = "standard_access"
_BUC_MESSAGE = ("There have been too many calls from this ad-account. Wait a bit and try again. For more info, "
                "please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.")
# code -> (error_subcode, message after "(#code) ")
THROTTLE_ERRORS: dict[int, tuple[int | None, str]] = {
    4: (1504022, "Application request limit reached"),
    17: (2446079, "User request limit reached"),
    613: (1487742, "There have been too many calls from this ad-account. Please wait a bit and try again."),
    **{code: (2446079, _BUC_MESSAGE) for code in range(80000, 80015)},
}


def throttle_error(code: int, status: int, headers: dict[str, str]) -> GraphError:
    subcode, message = THROTTLE_ERRORS[code]
    return GraphError(code, f"(#{code}) {message}", subcode=subcode, status=status, transient=True,
                      headers=headers)


@dataclass
class _Account:
    calls: deque[float]
    blocked_until: float = 0.0


class InsightsThrottle:
    """Per-account rolling-window quota of calls; thread-safe (handlers run on many threads)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self._bursts: dict[str, deque[list[int]]] = {}  # account -> [[code, n, regain_minutes], ...]
        self.calls_per_window: int | None = None
        self.window_seconds = 3600.0
        self.block_seconds = 60.0
        self.code = 80000
        self.http_status = 400

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Validate every knob before applying any; ``reset`` forgets counted calls and blocks."""
        clean: dict[str, Any] = {}
        for name, value in knobs.items():
            if name == "calls_per_window":
                value = None if value in (None, 0) else int(value)
                if value is not None and value < 1:
                    raise ValueError("calls_per_window must be >= 1, or 0/None (off)")
            elif name in ("window_seconds", "block_seconds"):
                value = float(value)
                if value <= 0:
                    raise ValueError(f"{name} must be > 0")
            elif name == "code":
                value = _throttle_code(value)
            elif name == "http_status":
                value = int(value)
                if not 400 <= value <= 599:
                    raise ValueError("http_status must be a 4xx or 5xx status")
            elif name != "reset":
                raise ValueError(f"unknown throttle knob {name!r}")
            clean[name] = value
        with self._lock:
            for name, value in clean.items():
                if name == "reset":
                    if value:
                        self._accounts.clear()
                        self._bursts.clear()
                else:
                    setattr(self, name, value)
        return self.snapshot()

    def throttle_next(self, account_id: str, code: int, n: int = 1, regain_minutes: int = 0) -> None:
        """Answer the account's next `n` calls with throttling `code`, reporting `regain_minutes`."""
        code = _throttle_code(code)
        if int(n) < 1 or int(regain_minutes) < 0:
            raise ValueError("need n >= 1 and regain_minutes >= 0")
        with self._lock:
            self._bursts.setdefault(account_id, deque()).append([code, int(n), int(regain_minutes)])

    def hit(self, account_id: str) -> tuple[dict[str, str], GraphError | None]:
        """Count one call of the account: the usage headers, and the error if it is throttled."""
        with self._lock:
            burst = self._bursts.get(account_id)
            if burst:
                code, _, regain = head = burst[0]
                head[1] -= 1
                if head[1] <= 0:
                    burst.popleft()
                headers = _headers(account_id, 100, regain, reset_seconds=regain * 60)
                return headers, throttle_error(code, self.http_status, headers)
            limit = self.calls_per_window
            if limit is None:
                return {}, None
            now = self._clock()
            state = self._accounts.setdefault(account_id, _Account(deque()))
            if state.blocked_until and state.blocked_until <= now:  # access regained: a fresh quota
                state.calls.clear()
                state.blocked_until = 0.0
            while state.calls and state.calls[0] <= now - self.window_seconds:
                state.calls.popleft()
            if state.blocked_until > now or len(state.calls) >= limit:
                if not state.blocked_until:
                    state.blocked_until = now + self.block_seconds
                regain = math.ceil((state.blocked_until - now) / 60)
                headers = _headers(account_id, max(100, 100 * len(state.calls) // limit), regain,
                                   reset_seconds=math.ceil(state.blocked_until - now))
                return headers, throttle_error(self.code, self.http_status, headers)
            state.calls.append(now)
            reset = math.ceil(state.calls[0] + self.window_seconds - now)
            return _headers(account_id, 100 * len(state.calls) // limit, 0, reset_seconds=reset), None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"calls_per_window": self.calls_per_window, "window_seconds": self.window_seconds,
                    "block_seconds": self.block_seconds, "code": self.code, "http_status": self.http_status,
                    "pending": {account: [list(b) for b in bursts] for account, bursts in self._bursts.items()
                                if bursts}}


def _throttle_code(value: Any) -> int:
    code = int(value)
    if code not in THROTTLE_ERRORS:
        raise ValueError(f"code must be 4, 17, 613 or 80000-80014, got {code}")
    return code


def _headers(account_id: str, pct: int, regain_minutes: int, *, reset_seconds: int) -> dict[str, str]:
    buc = {account_id: [{"type": "ads_insights", "call_count": pct, "total_cputime": pct * 3 // 5,
                         "total_time": pct * 4 // 5, "estimated_time_to_regain_access": regain_minutes,
                         "ads_api_access_tier": ACCESS_TIER}]}
    return {
        BUC_HEADER: json.dumps(buc, separators=(",", ":")),
        AD_ACCOUNT_HEADER: json.dumps({"acc_id_util_pct": float(pct), "reset_time_duration": max(0, reset_seconds),
                                       "ads_api_access_tier": ACCESS_TIER}, separators=(",", ":")),
        INSIGHTS_THROTTLE_HEADER: json.dumps({"app_id_util_pct": float(pct), "acc_id_util_pct": float(pct),
                                              "ads_api_access_tier": ACCESS_TIER}, separators=(",", ":")),
    }
