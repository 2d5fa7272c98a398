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
