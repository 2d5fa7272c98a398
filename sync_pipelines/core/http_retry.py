"""The urllib3 `Retry` every `HttpClient` mounts: it counts retries into the client's statistics,
sleeps through the client's (injectable) sleep, feeds the rate limiter and refuses absurd
Retry-After values. Its own module because subclassing urllib3's `Retry` imports urllib3, which
`core.http` leaves to the first client built (see its docstring)."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from urllib3.util.retry import Retry

from sync_pipelines.core.http import _retry_after_seconds, _RetryAfterTooLong

if TYPE_CHECKING:
    from sync_pipelines.core.http import HttpClient

log = logging.getLogger("sync_pipelines.core.http")  # the client's logger, as before the move


class CountingRetry(Retry):
    """urllib3 Retry that reports into the owning client's stats, sleeps through the
    client's (injectable) sleep and refuses absurd Retry-After values."""

    owner: HttpClient | None = None

    def new(self, **kw: Any) -> CountingRetry:  # urllib3 makes a new Retry per attempt
        retry = super().new(**kw)
        retry.owner = self.owner
        return retry

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        # Only reached when a retry will follow; the final response is counted by the client.
        if self.owner is not None and response is not None:
            self.owner._saw_response(response.status, response.headers)
            log.info("%s %s: HTTP %s, retrying", method, urlsplit(url or "").path, response.status)
        elif error is not None:
            log.info("%s %s: %s, retrying", method, urlsplit(url or "").path, type(error).__name__)
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 skips backoff on the first retry; hammering a throttled API is rude.
        n = len(self.history)
        if n == 0:
            return 0.0
        value = self.backoff_factor * 2 ** (n - 1) + random.random() * self.backoff_jitter
        return float(min(self.backoff_max, value))

    def sleep(self, response=None) -> None:
        owner = self.owner
        if owner is None:
            return super().sleep(response)
        delay = self.get_backoff_time()
        retry_after = None
        if response is not None and self.respect_retry_after_header:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            if retry_after > owner.max_retry_after:
                raise _RetryAfterTooLong(retry_after)
            delay = max(delay, retry_after)
        if response is not None and response.status == 429 and owner.rate_limiter is not None:
            owner.rate_limiter.penalize(delay)  # other clients of this account back off too
        owner._wait(delay)
        owner._bump("retries")
        owner._before_send()
