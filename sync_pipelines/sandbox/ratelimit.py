"""The providers' rate limiters: ShipStation's fixed window per API key, Shopify's leaky
bucket per shop. Each takes an injectable clock and validates its knobs before applying them,
so a bad control request changes nothing.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

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
    """Per-API-key fixed-window rate limiter mimicking ShipStation's (200 requests/minute).

    ``requests_per_minute`` is really "requests per window"; the window is 60 s by default.
    The window length is a knob so benchmarks can scale the limit down in time (e.g. 20
    requests per 6 s) and still exercise the client's throttling within a short run. Each
    key's window starts at its first request (not wall-clock aligned) so a test doing N
    quick requests never straddles a boundary by accident.
    """

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

    def apply_control(self, body: dict[str, Any]) -> dict[str, object]:
        """Body of ``POST /_sandbox/ratelimit``: ``{"requests_per_minute": n | null (off),
        "window_seconds": s, "reset": true}``, each optional; any other field is refused."""
        allowed = {"requests_per_minute", "window_seconds", "reset"}
        if unknown := set(body) - allowed:
            raise ValueError(f"unknown rate limit knobs {sorted(unknown)}; expected some of {sorted(allowed)}")
        knobs = {k: body[k] for k in ("requests_per_minute", "window_seconds") if k in body}
        if knobs:
            self.configure(**knobs)
        if body.get("reset"):
            self.reset()
        return self.snapshot()


class LeakyBucket:
    """Shopify's REST limiter: each call adds 1, the bucket leaks ``leak_per_second``; a call
    that would overflow ``size`` is refused (and not counted)."""

    def __init__(self, size: int, leak_per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._level = 0.0
        self._at = clock()
        self.size, self.leak_per_second = 40, 2.0
        self.configure(size=size, leak_per_second=leak_per_second)

    def configure(self, *, size: int | None = None, leak_per_second: float | None = None) -> None:
        size = self.size if size is None else int(size)
        leak = self.leak_per_second if leak_per_second is None else float(leak_per_second)
        if size < 1 or not leak > 0:
            raise ValueError(f"need bucket_size >= 1 and leak_per_second > 0, got {size}, {leak}")
        with self._lock:
            self._drain()
            self.size, self.leak_per_second = size, leak

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self.leak_per_second)
        self._at = now

    def _used(self) -> int:
        return min(self.size, max(0, math.ceil(self._level - 1e-6)))

    def take(self) -> tuple[bool, int]:
        """(allowed, used after counting this call)."""
        with self._lock:
            self._drain()
            if self._level + 1 > self.size + 1e-9:
                return False, self._used()
            self._level += 1
            return True, self._used()

    def refund(self) -> int:
        with self._lock:
            self._drain()
            self._level = max(0.0, self._level - 1)
            return self._used()

    def reset(self) -> None:
        with self._lock:
            self._level, self._at = 0.0, self._clock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._drain()
            return {"bucket_size": self.size, "leak_per_second": self.leak_per_second, "used": self._used()}
