"""Shared HTTP machinery for every provider client.

All provider clients go through :class:`HttpClient` so that retries, rate limiting,
error reporting and secret hygiene behave identically everywhere. Nothing here knows
about Dagster: assets turn :class:`CallStats` into metadata themselves.

Secret hygiene: error messages, exception attributes and log lines only ever carry
the HTTP method and the URL *path* -- never header values or query strings -- and
transport exceptions are re-raised ``from None`` because requests/urllib3 messages
embed the full URL.

requests and urllib3 are imported when the first client is built, not with this module: the code
location imports it, and every run pays for what the location imports, while only runs that call
an API open a session (replication, webhook and operations runs never do).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from sync_pipelines.core.rowcodec import response_json

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Longest pause a rate-limit header may impose (HttpClient passes its own max_retry_after).
MAX_RESET_PAUSE = 120.0
# A listing longer than this is a provider bug (e.g. `next` links that never end), not data.
MAX_PAGES = 100_000


# --------------------------------------------------------------------------- errors
def _rebuild_error(cls: type, args: tuple, state: dict) -> IntegrationError:
    err = Exception.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class IntegrationError(Exception):
    """Base error; always names integration + account so an operator knows whose
    credentials or quota to look at."""

    def __init__(self, integration: str, account: str, detail: str, *, status: int | None = None,
                 method: str | None = None, path: str | None = None, hint: str | None = None):
        self.integration, self.account, self.status = integration, account, status
        self.method, self.path = method, path
        where = f" on {method} {path}" if method else ""
        tail = f" — {hint}" if hint else ""
        super().__init__(f"{integration} account '{account}': {detail}{where}{tail}")

    def __reduce__(self):  # keyword-only __init__ would otherwise break pickling
        return (_rebuild_error, (type(self), self.args, self.__dict__))


class AuthenticationError(IntegrationError):
    """401/403: retrying cannot help and may lock the account, so never retried."""


class RateLimitError(IntegrationError):
    """429s outlasted the retry budget, or the provider asked for an absurd wait."""


class ServerError(IntegrationError):
    """5xx outlasted the retry budget."""


class MalformedResponseError(IntegrationError):
    """Body was not valid JSON / not the expected shape, even after re-requests."""


class RequestFailed(IntegrationError):
    """Other 4xx (and unexpected 3xx): a bug or bad input, retrying won't help."""


class TransportError(IntegrationError):
    """Connection errors / timeouts that outlasted the retry budget."""


@dataclass(frozen=True)
class ErrorVerdict:
    """What a provider's error response means, when its HTTP status alone does not say (Meta
    answers throttling with HTTP 400 and a code in the body; Google puts the wait in the body).

    `kind`: "retry" (transient), "throttle" (rate limited: also pauses the account's limiter),
    "auth" (credentials refused: never retried), "fail" (a bug or bad input). `delay`: seconds the
    provider asked to wait. `detail` goes into the error message: short, never a secret."""

    kind: str
    detail: str
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("retry", "throttle", "auth", "fail"):
            raise ValueError(f"ErrorVerdict kind must be retry, throttle, auth or fail, not {self.kind!r}")

    def redacted(self, secrets: Iterable[str]) -> ErrorVerdict:
        """The same verdict with each of `secrets` masked in its detail (an error body can echo
        the token or client secret the request carried)."""
        detail = self.detail
        for secret in secrets:
            detail = detail.replace(secret, "***")
        return ErrorVerdict(self.kind, detail, self.delay)


ErrorClassifier = Callable[[int, Mapping[str, str], Any], "ErrorVerdict | None"]
"""(status, response headers, parsed JSON body or None) → a verdict, or None for the default by
status (429/5xx retried, 401/403 authentication, other 4xx failed)."""

# `classify_ok` is the same signature for a *successful* (2xx) body: a verdict makes it an error
# (TikTok answers every error with HTTP 200 and a non-zero `code`), None keeps it as the answer.


class _RetryAfterTooLong(Exception):
    """Raised from inside urllib3's retry loop; converted to RateLimitError by the client."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


# ---------------------------------------------------------------------- stats
@dataclass
class CallStats:
    """Per-client counters, surfaced as asset metadata so throttling is visible."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    malformed: int = 0
    wait_seconds: float = 0.0

    def as_metadata(self) -> dict[str, int | float]:
        return {"api_calls": self.calls, "retries": self.retries, "http_429s": self.throttled,
                "http_5xx": self.server_errors, "malformed_pages": self.malformed,
                "wait_seconds": round(self.wait_seconds, 3)}


# ---------------------------------------------------------------- rate limiting
class RateLimiter:
    """Thread-safe token bucket. Shared per account (see :func:`rate_limiter_for`)
    because provider quotas are per account, not per client object."""

    def __init__(self, rate_per_second: float | None, burst: int = 1, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep = time.sleep):
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0 or None")
        self.rate, self.burst = rate_per_second, max(1, int(burst))
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._updated = clock()
        self._blocked_until = 0.0

    def acquire(self) -> float:
        """Block until a request may be sent; returns seconds waited. Sleeps outside
        the lock so one waiting thread never stalls the bookkeeping of others."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._blocked_until - now
                if delay <= 0:
                    if self.rate is None:
                        return waited
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                    self._updated = now
                    if self._tokens >= 1 - 1e-9:  # float slack, else fake clocks spin forever
                        self._tokens = max(0.0, self._tokens - 1)
                        return waited
                    delay = (1 - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay

    def observe(self, remaining: int | None, reset_seconds: float | None, *,
                max_pause: float = MAX_RESET_PAUSE) -> None:
        """Trust the provider's own counter: when it says the window is spent, pause
        everyone until it resets (1 s if it doesn't say when), but never longer than
        `max_pause`, so one odd header cannot stall the account for hours; if the window
        really is that long, the next request's 429 + Retry-After says so."""
        if remaining is not None and remaining <= 0:
            pause = reset_seconds if reset_seconds is not None and reset_seconds > 0 else 1.0
            self.penalize(min(pause, max_pause))

    def sync_available(self, available: float) -> None:
        """Adopt the provider's own view of the bucket when it has less room than ours (a
        leaky bucket shared with other apps or processes spends tokens we never saw), never
        when it has more: our own rate and burst stay the ceiling."""
        with self._lock:
            now = self._clock()
            if self.rate is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
            self._tokens = max(0.0, min(self._tokens, float(available)))

    def penalize(self, seconds: float) -> None:
        """Pause all users of this limiter, e.g. after a 429."""
        if seconds > 0:
            with self._lock:
                self._blocked_until = max(self._blocked_until, self._clock() + seconds)


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter_for(key: str, rate_per_second: float | None, burst: int = 1) -> RateLimiter:
    """Process-wide limiter per key (e.g. "<provider>:<account>"). First caller's
    settings win; later callers share that bucket."""
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = RateLimiter(rate_per_second, burst)
        return _limiters[key]


@dataclass(frozen=True)
class RateLimitHeaders:
    """Provider-specific names of the rate-limit headers; reset = seconds until reset."""

    limit: str
    remaining: str
    reset: str

    def parse(self, headers: Mapping[str, str]) -> tuple[int | None, float | None]:
        """(remaining, reset_seconds); garbage, negative or missing values become None.
        Some providers send the reset as an epoch timestamp, in seconds or milliseconds."""
        remaining, reset = _num(headers.get(self.remaining)), _num(headers.get(self.reset))
        if reset is not None:
            if reset < 0:
                reset = None
            elif reset > 1e12:  # epoch milliseconds (epoch seconds pass 1e12 only in year 33658)
                reset = max(0.0, reset / 1000 - time.time())
            elif reset > 1e9:  # epoch seconds (no window lasts 31 years)
                reset = max(0.0, reset - time.time())
        return (int(remaining) if remaining is not None else None), reset

    def apply(self, limiter: RateLimiter, headers: Mapping[str, str], *,
              max_pause: float = MAX_RESET_PAUSE) -> None:
        limiter.observe(*self.parse(headers), max_pause=max_pause)


@dataclass(frozen=True)
class BucketHeader:
    """A leaky-bucket header of the form `used/size` (Shopify's
    `X-Shopify-Shop-Api-Call-Limit: 32/40`): the free capacity is size − used."""

    name: str

    def apply(self, limiter: RateLimiter, headers: Mapping[str, str], *,
              max_pause: float = MAX_RESET_PAUSE) -> None:
        used, _, size = (headers.get(self.name) or "").partition("/")
        used_n, size_n = _num(used), _num(size)
        if used_n is not None and size_n is not None:
            limiter.sync_available(size_n - used_n)


def _num(value: str | None) -> float | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _default_kind(status: int) -> str:
    if status == 429:
        return "throttle"
    if status >= 500:
        return "retry"
    return "auth" if status in (401, 403) else "fail"


def _json_or_none(resp: Any) -> Any:
    """An error response's parsed JSON body, or None when it has none."""
    try:
        return response_json(resp) if resp.content else None
    except ValueError:
        return None


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds or HTTP-date; garbage -> None (fall back to backoff). Parsed here rather
    than by urllib3, which raises on garbage and silently clamps huge values."""
    seconds = _num(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)  # type: ignore[arg-type]
        if when.tzinfo is None:  # "-0000" (RFC 5322: UTC, origin zone unknown) parses naive
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# ------------------------------------------------------------------------ client
class HttpClient:
    """One requests.Session per provider account. Its GETs may run on several threads at once
    (`core.concurrent_pages`): the statistics are updated under a lock, the rate limiter is
    thread-safe, urllib3's pool is, and `pool_size` connections are kept open (at least the
    number of threads). Writes and header changes stay single-threaded."""

    def __init__(self, *, integration: str, account: str, base_url: str, headers: Mapping[str, str],
                 timeout: tuple[float, float] = (5.0, 30.0), max_retries: int = 6,
                 backoff_factor: float = 0.5, backoff_max: float = 30.0, backoff_jitter: float = 0.5,
                 malformed_retries: int = 3, rate_limiter: RateLimiter | None = None,
                 rate_limit_headers: RateLimitHeaders | BucketHeader | None = None, sleep: Sleep = time.sleep,
                 max_retry_after: float = 120.0, classify: ErrorClassifier | None = None,
                 classify_ok: ErrorClassifier | None = None, pool_size: int = 10):
        parts = urlsplit(base_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        self.integration, self.account = integration, account
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_factor, self.backoff_max = backoff_factor, backoff_max
        self.backoff_jitter = backoff_jitter
        self.malformed_retries, self.max_retry_after = malformed_retries, max_retry_after
        self.rate_limiter, self.rate_limit_headers = rate_limiter, rate_limit_headers
        self.stats = CallStats()
        self._stats_lock = threading.Lock()
        self.classify, self.classify_ok = classify, classify_ok
        self._sleep = sleep
        self._origin = _origin(base_url)
        # "Bearer <token>": the token alone is a secret too
        self._secrets = [x for v in headers.values() if v for x in {v, v.rpartition(" ")[2]} if len(x) >= 4]
        import requests
        from requests.adapters import HTTPAdapter

        from sync_pipelines.core.http_retry import CountingRetry

        retry = CountingRetry(
            total=max_retries, connect=max_retries, read=max_retries, status=max_retries,
            redirect=0, allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            status_forcelist=RETRY_STATUSES, backoff_factor=backoff_factor, backoff_max=backoff_max,
            backoff_jitter=backoff_jitter, respect_retry_after_header=True, raise_on_status=False,
            raise_on_redirect=False)
        retry.owner = self
        self._session = requests.Session()
        self._session.headers.update(headers)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=max(1, pool_size))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    # -- plumbing used by CountingRetry
    def _bump(self, name: str, amount: float = 1) -> None:
        """Add to one statistic; under a lock, as concurrent GETs share the client."""
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + amount)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
            self._bump("wait_seconds", seconds)

    def _before_send(self) -> None:
        if self.rate_limiter is not None:
            self._bump("wait_seconds", self.rate_limiter.acquire())
        self._bump("calls")

    def _saw_response(self, status: int, headers: Mapping[str, str]) -> None:
        if status == 429:
            self._bump("throttled")
        elif status >= 500:
            self._bump("server_errors")
        if self.rate_limiter is not None and self.rate_limit_headers is not None:
            self.rate_limit_headers.apply(self.rate_limiter, headers, max_pause=self.max_retry_after)

    def _backoff(self, retry: int) -> float:
        """Exponential backoff with jitter before the `retry`-th retry (1-based), capped."""
        value = self.backoff_factor * 2 ** (retry - 1) + random.random() * self.backoff_jitter
        return float(min(self.backoff_max, value))

    def _error(self, cls: type[IntegrationError], detail: str, path: str, status: int | None = None,
               hint: str | None = None, method: str = "GET") -> IntegrationError:
        return cls(self.integration, self.account, detail, status=status, method=method, path=path,
                   hint=hint)

    # -- public API
    def resolve(self, path_or_url: str) -> str:
        """Absolute URL for a path (appended to base_url, keeping its path prefix) or
        an absolute URL, which must stay on base_url's origin so a hostile `next`
        link can't walk our credentials to another host."""
        if urlsplit(path_or_url).scheme or path_or_url.startswith("//"):
            if _origin(path_or_url) != self._origin:
                raise ValueError(f"{self.integration} account '{self.account}': refusing URL on "
                                 f"another origin ({urlsplit(path_or_url).hostname})")
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        import requests  # loaded by __init__; a name lookup here

        url = self.resolve(path_or_url)
        path = urlsplit(url).path or "/"
        self._before_send()
        try:
            resp = self._session.get(url, params=params, timeout=self.timeout, allow_redirects=False)
        except _RetryAfterTooLong as e:
            raise self._retry_after_too_long(e.seconds, path, "GET") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise self._error(MalformedResponseError, "response body truncated", path) from None
        except requests.RequestException as e:
            reason = getattr(e.args[0], "reason", None) if e.args else None
            name = type(reason or e).__name__
            raise self._error(TransportError, f"transport failure ({name}) after retries", path) from None
        self._saw_response(resp.status_code, resp.headers)
        if resp.status_code < 300:
            return resp
        raise self._status_error(resp, path, "GET")

    def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.get_json_response(path_or_url, params)[0]

    def get_json_response(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
                          list_key: str | None = None) -> tuple[Any, requests.Response]:
        """(parsed body, response). Truncated/invalid JSON -- or, with `list_key`, a body
        whose `list_key` isn't a list -- is re-requested up to `malformed_retries` times
        because such glitches are usually transient proxy/edge errors."""
        import requests  # loaded by __init__; a name lookup here

        problem, resp, status = "", None, None
        for attempt in range(self.malformed_retries + 1):
            if attempt:
                self._bump("retries")
                self._wait(self._backoff(attempt))
            try:
                resp = self.get(path_or_url, params)
                status = resp.status_code
                body = response_json(resp, list_key)
            except MalformedResponseError:
                problem = "response body truncated"
            except requests.exceptions.JSONDecodeError:
                problem = "response body is not valid JSON"
            else:
                if list_key is None:
                    return body, resp
                if isinstance(body, dict) and isinstance(body.get(list_key), list):
                    return body, resp
                problem = f"response has no list under {list_key!r}"
            self._bump("malformed")
        path = urlsplit(self.resolve(path_or_url)).path
        raise self._error(MalformedResponseError, f"{problem} (after {self.malformed_retries} re-requests)",
                          path, status)

    def send_json(self, method: str, path: str, body: Any = None) -> Any:
        """A write (POST/PUT/DELETE) with a JSON body. urllib3 never replays writes, so only
        a 429 — which the provider guarantees it did not act on — is retried here, by the
        reads' rules: `max_retries`, jittered backoff, Retry-After honoured up to
        `max_retry_after` (refused above it), the account's limiter paused. A 5xx is not
        retried (the write may have been applied) and raises ServerError."""
        import requests  # loaded by __init__; a name lookup here

        url = self.resolve(path)
        path_only = urlsplit(url).path
        resp = None
        for attempt in range(self.max_retries + 1):
            self._before_send()
            try:
                resp = self._session.request(method, url, json=body, timeout=self.timeout,
                                             allow_redirects=False)
            except requests.RequestException as e:
                raise self._error(TransportError, f"transport failure ({type(e).__name__})",
                                  path_only, method=method) from None
            self._saw_response(resp.status_code, resp.headers)
            if resp.status_code != 429 or attempt == self.max_retries:
                break
            retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_retry_after:
                raise self._retry_after_too_long(retry_after, path_only, method)
            delay = max(self._backoff(attempt + 1), retry_after or 0.0)
            if self.rate_limiter is not None:
                self.rate_limiter.penalize(delay)  # other clients of this account back off too
            self._wait(delay)
            self._bump("retries")
        assert resp is not None
        if resp.status_code < 300:
            return resp.json() if resp.content else None
        raise self._status_error(resp, path_only, method)

    def set_header(self, name: str, value: str) -> None:
        """Replace a header on every later request (e.g. a refreshed bearer token); the value is
        scrubbed from error excerpts like the headers given at construction."""
        self._session.headers[name] = value
        for secret in {value, value.rpartition(" ")[2]}:  # "Bearer <token>": the token alone too
            if len(secret) >= 4:
                self._secrets.append(secret)

    def call_json(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                  json: Any = None, data: Mapping[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None, classify: ErrorClassifier | None = None,
                  classify_ok: ErrorClassifier | None = None) -> Any:
        """One API call whose errors the provider's `classify` (this call's, else the client's)
        may interpret; returns the parsed JSON body (None when empty).

        `classify_ok` (this call's, else the client's) reads a 2xx body for an error the provider
        answers with success (an API whose every answer is HTTP 200 with a code in the body): a
        verdict is handled exactly like one for an error status — retried, throttled, or raised.

        Meant for reads, whatever their method (Google's searchStream is a POST): a "retry" or
        "throttle" verdict — and, without a verdict, a 429 or 5xx — is retried up to `max_retries`
        times after max(jittered backoff, the verdict's delay, Retry-After); a wait longer than
        `max_retry_after` is refused with RateLimitError rather than slept. "auth" raises
        AuthenticationError, "fail" RequestFailed, each with the verdict's detail."""
        import requests  # loaded by __init__; a name lookup here

        classify = classify or self.classify
        classify_ok = classify_ok or self.classify_ok
        url = self.resolve(path_or_url)
        path = urlsplit(url).path or "/"
        for attempt in range(self.max_retries + 1):
            self._before_send()
            try:
                resp = self._session.request(method, url, params=params, json=json, data=data, headers=headers,
                                             timeout=self.timeout, allow_redirects=False)
            except _RetryAfterTooLong as e:
                raise self._retry_after_too_long(e.seconds, path, method) from None
            except requests.RequestException as e:
                if attempt < self.max_retries:
                    self._bump("retries")
                    self._wait(self._backoff(attempt + 1))
                    continue
                raise self._error(TransportError, f"transport failure ({type(e).__name__}) after retries",
                                  path, method=method) from None
            self._saw_response(resp.status_code, resp.headers)
            if resp.status_code < 300:
                if not resp.content:
                    return None
                try:
                    body = response_json(resp)
                except ValueError:
                    raise self._error(MalformedResponseError, "response body is not valid JSON", path,
                                      resp.status_code, method=method) from None
                verdict = classify_ok(resp.status_code, resp.headers, body) if classify_ok else None
                if verdict is None:
                    return body
                if verdict.kind == "throttle":
                    self._bump("throttled")
            else:
                verdict = classify(resp.status_code, resp.headers, _json_or_none(resp)) if classify else None
            kind = verdict.kind if verdict else _default_kind(resp.status_code)
            # urllib3 has already spent the retry budget on a GET's 429/5xx (see CountingRetry)
            spent = method.upper() == "GET" and resp.status_code in RETRY_STATUSES
            if kind in ("retry", "throttle") and attempt < self.max_retries and not spent:
                retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
                asked = max((verdict.delay or 0.0) if verdict else 0.0, retry_after or 0.0)
                if asked > self.max_retry_after:
                    raise self._retry_after_too_long(asked, path, method)
                delay = max(self._backoff(attempt + 1), asked)
                if kind == "throttle" and self.rate_limiter is not None:
                    self.rate_limiter.penalize(delay)  # other sessions of this account back off too
                self._bump("retries")
                self._wait(delay)
                continue
            if verdict is None:
                raise self._status_error(resp, path, method)
            cls = {"auth": AuthenticationError, "fail": RequestFailed, "throttle": RateLimitError,
                   "retry": ServerError}[kind]
            hint = "check this account's credentials" if kind == "auth" else None
            raise self._error(cls, f"{verdict.detail} (HTTP {resp.status_code})", path, resp.status_code, hint,
                              method)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _status_error(self, resp: requests.Response, path: str, method: str) -> IntegrationError:
        """The typed error for a final non-2xx response (reads and writes alike)."""
        status = resp.status_code
        if status in (401, 403):
            return self._error(AuthenticationError, f"authentication failed (HTTP {status})", path,
                               status, "check this account's credentials", method)
        if status == 429:
            return self._error(RateLimitError, "still rate limited (HTTP 429) after retries", path,
                               status, method=method)
        if status >= 500:
            if method == "GET":
                return self._error(ServerError, f"server error (HTTP {status}) after retries", path,
                                   status, method=method)
            return self._error(ServerError, f"server error (HTTP {status}), not retried", path, status,
                               "a write is never replayed: it may or may not have been applied",
                               method)
        return self._error(RequestFailed, f"request failed (HTTP {status}): {self._excerpt(resp)}",
                           path, status, method=method)

    def _retry_after_too_long(self, seconds: float, path: str, method: str) -> IntegrationError:
        return self._error(RateLimitError, f"rate limited (HTTP 429), provider asked to wait "
                           f"{seconds:.0f}s (> {self.max_retry_after:.0f}s)", path, 429, method=method)

    def _excerpt(self, resp: requests.Response) -> str:
        text = (resp.text or "")[:200].replace("\n", " ")
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text or "<empty body>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ApiSession:
    """One account's view of a provider's API: a single `HttpClient` (and so its call statistics)
    and the page size, closed on exit. A provider's session adds one method per stream."""

    def __init__(self, http: HttpClient, page_size: int):
        self.http = http
        self.page_size = page_size

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _with_params(url: str, params: Mapping[str, Any] | None) -> str:
    """Add params the URL doesn't already carry, so a `next` href that omits filters
    keeps them while one that includes them isn't sent duplicate keys."""
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    extra = [(k, v) for k, v in params.items() if k not in present and v is not None]
    return urlunsplit(parts._replace(query=urlencode(query + extra, doseq=True)))


# --------------------------------------------------------------------- paginators
def _too_many_pages(client: HttpClient, url: str, max_pages: int) -> IntegrationError:
    return client._error(MalformedResponseError, f"pagination did not end after {max_pages} pages",
                         urlsplit(url).path, hint="the provider kept offering a next page")


def _is_last_page(body: Mapping[str, Any]) -> bool:
    """The body's own `page`/`pages` (ShipStation v2) say this is the last page."""
    page, pages = _num(body.get("page")), _num(body.get("pages"))
    return page is not None and pages is not None and page >= pages


def paginate_links_next(client: HttpClient, path: str, *, params: Mapping[str, Any] | None = None,
                        items_key: str, max_pages: int = MAX_PAGES) -> Iterator[list[dict]]:
    """Follow ``body["links"]["next"]["href"]`` (ShipStation v2 style) until there is no next
    link, a page is empty, or the body's `page` >= `pages`: a `next` link offered past the end
    must not keep a run paging forever (more than `max_pages` pages raises). A page whose
    `items_key` is missing/not a list is re-requested like invalid JSON, then raises
    MalformedResponseError. Original params are kept unless the href already has them."""
    url, seen = _with_params(client.resolve(path), params), set()
    while url:
        if len(seen) >= max_pages:
            raise _too_many_pages(client, url, max_pages)
        seen.add(url)
        body, resp = client.get_json_response(url, list_key=items_key)
        items = body[items_key]
        yield items
        if not items or _is_last_page(body):
            return
        links = body.get("links")
        nxt = links.get("next") if isinstance(links, dict) else None
        href = nxt.get("href") if isinstance(nxt, dict) else None
        if not href or not isinstance(href, str):
            return
        url = _with_params(client.resolve(urljoin(resp.url, href)), params)
        if url in seen:
            raise client._error(MalformedResponseError, "pagination loop (next link already visited)",
                                urlsplit(url).path)


def paginate_page_numbers(client: HttpClient, path: str, *, params: Mapping[str, Any] | None = None,
                          items_key: str, page_param: str = "page",
                          max_pages: int = MAX_PAGES) -> Iterator[list[dict]]:
    """Request page 1, 2, ... until `page >= body["pages"]` or a page comes back empty.
    A missing/garbage `pages` means "keep going until empty": one extra request is
    cheaper than silently dropping records. More than `max_pages` pages raises."""
    query = dict(params or {})
    page = int(query.get(page_param, 1))
    for _ in range(max_pages):
        body, _ = client.get_json_response(path, {**query, page_param: page}, list_key=items_key)
        items = body[items_key]
        yield items
        pages = _num(body.get("pages"))
        if not items or (pages is not None and page >= pages):
            return
        page += 1
    raise _too_many_pages(client, client.resolve(path), max_pages)


def paginate_link_header(client: HttpClient, path: str, *, params: Mapping[str, Any] | None = None,
                         items_key: str, max_pages: int = MAX_PAGES) -> Iterator[list[dict]]:
    """RFC 8288 ``Link: <...>; rel="next"`` (Shopify style). The next URL carries its own
    cursor and filters; re-sending the original params would be rejected, so we don't.
    More than `max_pages` pages raises."""
    url: str | None = client.resolve(path)
    query, seen = params, set()
    while url:
        if len(seen) >= max_pages:
            raise _too_many_pages(client, url, max_pages)
        body, resp = client.get_json_response(url, query, list_key=items_key)
        seen.add(resp.url)
        yield body[items_key]
        nxt = resp.links.get("next", {}).get("url")
        if not nxt:
            return
        url, query = client.resolve(urljoin(resp.url, nxt)), None
        if url in seen:
            raise client._error(MalformedResponseError, "pagination loop (next link already visited)",
                                urlsplit(url).path)


def _at_path(body: Any, dotted: str) -> Any:
    """`body["meta"]["next_cursor"]` for "meta.next_cursor"; None where any step is missing."""
    value = body
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def paginate_body_cursor(client: HttpClient, path: str, *, params: Mapping[str, Any] | None = None,
                         items_key: str = "data", cursor_path: str = "meta.next_cursor",
                         cursor_param: str = "cursor", next_link_path: str | None = "links.next",
                         max_pages: int = MAX_PAGES) -> Iterator[list[dict]]:
    """Follow an opaque cursor the *body* carries (Laravel's `cursorPaginate`: the next page is the
    same request plus ``?cursor=<meta.next_cursor>``, with the original params re-sent) until there
    is no next page or a page comes back empty. A body without a cursor but with a next link at
    `next_link_path` (a numbered paginator's ``links.next``) is followed instead, same origin only,
    the original params added where the link lacks them: stopping there would silently drop pages.

    Lazy: each page is requested only when the caller asks for it, so a caller that stops early pays
    for exactly the pages it read. A cursor or link seen twice is a loop and raises
    MalformedResponseError, as do more than `max_pages` pages and a page without a list under
    `items_key` (after re-requests)."""
    base = dict(params or {})
    base.pop(cursor_param, None)
    target: str = path
    query: dict[str, Any] | None = base
    seen: set[str] = set()
    for _ in range(max_pages):
        body, resp = client.get_json_response(target, query, list_key=items_key)
        items = body[items_key]
        yield items
        if not items:
            return
        cursor = _at_path(body, cursor_path)
        if cursor is not None and not isinstance(cursor, bool) and cursor != "":
            key = f"cursor {cursor}"
            target, query = path, {**base, cursor_param: str(cursor)}
        else:
            link = _at_path(body, next_link_path) if next_link_path else None
            if not isinstance(link, str) or not link:
                return
            target, query = _with_params(client.resolve(urljoin(resp.url, link)), base), None
            key = f"link {target}"
        if key in seen:
            raise client._error(MalformedResponseError, "pagination loop (next page already visited)",
                                urlsplit(client.resolve(target)).path)
        seen.add(key)
    raise _too_many_pages(client, client.resolve(path), max_pages)
