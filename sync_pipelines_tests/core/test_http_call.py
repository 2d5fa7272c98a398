"""`HttpClient.call_json`: reads whose errors the provider classifies (throttling in a 400's body,
the wait in the body), POST reads retried, header swaps scrubbed from errors."""

from __future__ import annotations

import json

import pytest

from sync_pipelines.core.http import (AuthenticationError, ErrorVerdict, RateLimiter, RateLimitError,
                                      RequestFailed, ServerError)
from sync_pipelines_tests.core.test_http import clock, make_client, server  # noqa: F401  (fixtures)


def meta_like(status, headers, body):
    error = (body or {}).get("error", {})
    if error.get("code") == 17:
        return ErrorVerdict("throttle", "user request limit reached", delay=7.0)
    if error.get("code") == 190:
        return ErrorVerdict("auth", "access token expired")
    return None


def test_a_throttle_code_in_a_400_body_is_waited_out_and_the_limiter_paused(server, clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/insights", (400, {"error": {"code": 17}}), (200, {"data": [1]}))
    http = make_client(server, clock, classify=meta_like, rate_limiter=limiter)
    assert http.call_json("GET", "/insights") == {"data": [1]}
    assert 7.0 in clock.sleeps and http.stats.retries == 1
    assert limiter._blocked_until >= clock.now - 7.0


def test_a_post_read_is_retried_on_5xx_and_429_with_retry_after(server, clock):
    server.script("/search", (503, "busy"), (429, "slow", {"Retry-After": "3"}), (200, [{"results": []}]))
    http = make_client(server, clock)
    assert http.call_json("POST", "/search", json={"query": "SELECT"}) == [{"results": []}]
    assert len(server.hits("/search")) == 3 and 3.0 in clock.sleeps
    assert json.loads(server.hits("/search")[0]["body"]) == {"query": "SELECT"}


def test_auth_and_fail_verdicts_are_not_retried_and_say_why(server, clock):
    server.script("/insights", (400, {"error": {"code": 190, "message": "Session has expired"}}))
    http = make_client(server, clock, classify=meta_like)
    with pytest.raises(AuthenticationError, match="access token expired"):
        http.call_json("GET", "/insights")
    assert len(server.hits("/insights")) == 1
    server.script("/bad", (400, {"error": {"code": 100}}))
    with pytest.raises(RequestFailed):
        http.call_json("GET", "/bad")


def test_a_wait_longer_than_the_cap_is_refused_not_slept(server, clock):
    server.script("/q", (429, {"error": {}}))
    http = make_client(server, clock, max_retry_after=5,
                       classify=lambda s, h, b: ErrorVerdict("throttle", "quota", delay=3600))
    with pytest.raises(RateLimitError, match="3600"):
        http.call_json("POST", "/q")
    assert clock.sleeps == []


def test_retries_end_after_the_budget(server, clock):
    server.script("/q", (500, "down"))
    http = make_client(server, clock, max_retries=2)
    with pytest.raises(ServerError):
        http.call_json("POST", "/q")
    assert len(server.hits("/q")) == 3


def test_a_swapped_header_is_sent_and_scrubbed_from_errors(server, clock):
    server.script("/q", (400, "token new-token-value-123 is bad"))
    http = make_client(server, clock)
    http.set_header("Authorization", "Bearer new-token-value-123")
    with pytest.raises(RequestFailed) as failed:
        http.call_json("GET", "/q")
    assert server.hits("/q")[0]["headers"]["Authorization"] == "Bearer new-token-value-123"
    assert "new-token-value-123" not in str(failed.value)


def code_in_body(status, headers, body):
    """An API answering every error with HTTP 200 and a non-zero `code` (TikTok's Business API)."""
    code = body.get("code") if isinstance(body, dict) else None
    if not code:
        return None
    kind = {40100: "throttle", 50000: "retry", 40105: "auth"}.get(code, "fail")
    return ErrorVerdict(kind, f"code {code}: {body.get('message')}")


def test_a_throttle_verdict_on_a_200_body_is_waited_out_counted_and_pauses_the_limiter(server, clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/report", (200, {"code": 40100, "message": "too frequent"}),
                  (200, {"code": 50000, "message": "system error"}), (200, {"code": 0, "data": {"list": [1]}}))
    http = make_client(server, clock, classify_ok=code_in_body, rate_limiter=limiter)
    assert http.call_json("GET", "/report") == {"code": 0, "data": {"list": [1]}}
    assert len(server.hits("/report")) == 3
    assert http.stats.retries == 2 and http.stats.throttled == 1
    assert limiter._blocked_until > 0


def test_auth_and_fail_verdicts_on_a_200_body_raise_at_once_with_the_detail(server, clock):
    server.script("/report", (200, {"code": 40105, "message": "invalid token"}))
    with pytest.raises(AuthenticationError, match="code 40105: invalid token"):
        make_client(server, clock).call_json("GET", "/report", classify_ok=code_in_body)
    server.script("/bad", (200, {"code": 40002, "message": "bad dimensions"}))
    with pytest.raises(RequestFailed, match="40002: bad dimensions"):
        make_client(server, clock, classify_ok=code_in_body).call_json("GET", "/bad")
    assert len(server.hits("/report")) == len(server.hits("/bad")) == 1


def test_a_200_stays_an_answer_without_classify_ok_and_when_it_says_none(server, clock):
    server.script("/report", (200, {"code": 40100}), (200, {"code": 0}))
    assert make_client(server, clock).call_json("GET", "/report") == {"code": 40100}
    assert make_client(server, clock, classify_ok=code_in_body).call_json("GET", "/report") == {"code": 0}


def test_a_200_throttle_outlasting_the_budget_is_rate_limited(server, clock):
    server.script("/report", (200, {"code": 40100, "message": "too frequent"}))
    with pytest.raises(RateLimitError, match="40100"):
        make_client(server, clock, max_retries=2, classify_ok=code_in_body).call_json("GET", "/report")
    assert len(server.hits("/report")) == 3
