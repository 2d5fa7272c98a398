"""Per-API-key fixed-window rate limiter mimicking ShipStation's (200 requests/minute).

The window length is a knob so benchmarks can scale the limit down in time (e.g. 20
requests per 6 s) and still exercise the client's throttling within a short run. Each
key's window starts at its first request (not wall-clock aligned) so a test doing N
quick requests never straddles a boundary by accident.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

LIMIT_HEADER = "X-Rate-Limit-Limit"
REMAINING_HEADER = "X-Rate-Limit-Remaining"
RESET_HEADER = "X-Rate-Limit-Reset"


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # integer seconds until the key's window resets, >= 0
    retry_after: int  # what Retry-After should say when not allowed, >= 1

    def headers(self) -> dict[str, str]:
        return {
            LIMIT_HEADER: str(self.limit),
            REMAINING_HEADER: str(self.remaining),
            RESET_HEADER: str(self.reset_seconds),
        }


class RateLimiter:
    """``requests_per_minute`` is really "requests per window"; the window is 60 s by default."""

    def __init__(
        self,
        requests_per_minute: int | None = 200,
        window_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # key -> [window_start, count]
        self.requests_per_minute: int | None = None
        self.window_seconds: float = 60.0
        self.configure(requests_per_minute=requests_per_minute, window_seconds=window_seconds)

    def configure(self, *, requests_per_minute: int | None | object = ..., window_seconds: float | object = ...) -> None:
        """Changing the limit restarts every window, so the new limit applies cleanly."""
        rpm = self.requests_per_minute if requests_per_minute is ... else requests_per_minute
        window = self.window_seconds if window_seconds is ... else window_seconds
        if rpm is not None:
            rpm = int(rpm)  # type: ignore[call-overload]
            if rpm < 1:
                raise ValueError(f"requests_per_minute must be >= 1 or None (off), got {rpm}")
        window = float(window)  # type: ignore[arg-type]
        if not window > 0:
            raise ValueError(f"window_seconds must be > 0, got {window}")
        with self._lock:
            self.requests_per_minute = rpm
            self.window_seconds = window
            self._windows.clear()

    @property
    def enabled(self) -> bool:
        return self.requests_per_minute is not None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def hit(self, key: str) -> RateDecision | None:
        """Count one request for ``key``; None when limiting is off."""
        with self._lock:
            limit = self.requests_per_minute
            if limit is None:
                return None
            now = self._clock()
            state = self._windows.get(key)
            if state is None or now >= state[0] + self.window_seconds:
                state = [now, 0]
                self._windows[key] = state
            # window - elapsed (not start + window - now): float rounding must never make a
            # fresh 60 s window report 61.
            left = min(self.window_seconds, max(0.0, self.window_seconds - (now - state[0])))
            allowed = state[1] < limit
            if allowed:
                state[1] += 1
            return RateDecision(
                allowed=allowed,
                limit=limit,
                remaining=max(0, limit - int(state[1])),
                reset_seconds=max(0, math.ceil(left)),
                retry_after=max(1, math.ceil(left)),
            )

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"requests_per_minute": self.requests_per_minute, "window_seconds": self.window_seconds}
