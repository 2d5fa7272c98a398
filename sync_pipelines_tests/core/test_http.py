"""Tests for sync_pipelines.core.http against a real local HTTP server (no mocking of requests)."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import GeneratorType
from urllib.parse import parse_qs, urlsplit

import pytest

from sync_pipelines.core.http import (
    MAX_RESET_PAUSE,
    AuthenticationError,
    CallStats,
    HttpClient,
    IntegrationError,
    MalformedResponseError,
    RateLimiter,
    RateLimitError,
    RateLimitHeaders,
    RequestFailed,
    ServerError,
    TransportError,
    paginate_link_header,
    paginate_links_next,
    paginate_page_numbers,
    rate_limiter_for,
)

SECRET = "sk-live-super-secret-key-123"
RATE_LIMIT_HEADERS = RateLimitHeaders(
    limit="X-Rate-Limit-Limit", remaining="X-Rate-Limit-Remaining", reset="X-Rate-Limit-Reset")


# ----------------------------------------------------------------- test server
class ScriptedServer:
    """Per-path queues of canned responses; the last response of a queue repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, dict, bytes, float]]] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with script.lock:
                    script.requests.append({"path": parts.path, "query": parse_qs(parts.query),
                                            "headers": dict(self.headers), "method": self.command,
                                            "body": sent})
                    queue = script.routes.get(parts.path) or [(404, {}, b'{"error":"no route"}', 0)]
                    status, headers, body, delay = queue.pop(0) if len(queue) > 1 else queue[0]
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815  (writes share the scripts)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def script(self, path: str, *responses) -> None:
        """Each response: (status, body[, headers[, delay]]); dict/list bodies are JSON-encoded."""
        queue = []
        for r in responses:
            status, body, headers, delay = (*r, {}, 0)[:4] if len(r) == 2 else (*r, 0)[:4]
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            queue.append((status, headers, body, delay))
        self.routes[path] = queue

    def hits(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


class FakeClock:
    """Deterministic monotonic clock whose sleep just advances time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(server: ScriptedServer, clock: FakeClock, **kw) -> HttpClient:
    opts = dict(integration="shipstation", account="store-a", base_url=server.url,
                headers={"API-Key": SECRET}, timeout=(2.0, 2.0), max_retries=4,
                backoff_factor=0.01, backoff_jitter=0.0, sleep=clock.sleep)
    opts.update(kw)
    return HttpClient(**opts)


# ------------------------------------------------------------------ retries
def test_429_burst_with_retry_after_is_absorbed_and_counted(server, clock):
    server.script("/v2/products", *[(429, {"message": "slow down"}, {"Retry-After": "1"})] * 3,
                  (200, {"products": [1]}))
    with make_client(server, clock) as client:
        assert client.get_json("/v2/products") == {"products": [1]}
    s = client.stats
    assert (s.calls, s.retries, s.throttled, s.server_errors) == (4, 3, 3, 0)
    assert len(server.hits("/v2/products")) == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]  # Retry-After dominates the tiny backoff
    assert s.wait_seconds == pytest.approx(3.0)
    assert s.as_metadata() == {"api_calls": 4, "retries": 3, "http_429s": 3, "http_5xx": 0,
                               "malformed_pages": 0, "wait_seconds": 3.0}


def test_5xx_burst_is_absorbed_with_backoff(server, clock):
    server.script("/v2/products", (500, "oops"), (502, "bad gw"), (503, "unavail"), (200, {"ok": True}))
    with make_client(server, clock) as client:
        assert client.get("/v2/products").json() == {"ok": True}
    assert (client.stats.calls, client.stats.retries, client.stats.server_errors) == (4, 3, 3)
    assert clock.sleeps == pytest.approx([0.01, 0.02, 0.04])  # exponential, first retry backs off too


def test_401_raises_immediately_without_leaking_secrets(server, clock):
    server.script("/v2/products", (401, {"message": f"bad key {SECRET}"}))
    with make_client(server, clock) as client:
        with pytest.raises(AuthenticationError) as info:
            client.get("/v2/products", params={"access_token": "qs-secret-value"})
    err = info.value
    assert client.stats.calls == 1 and len(server.hits("/v2/products")) == 1
    assert clock.sleeps == []
    assert (err.integration, err.account, err.status) == ("shipstation", "store-a", 401)
    msg = str(err)
    assert msg.startswith(
        "shipstation account 'store-a': authentication failed (HTTP 401) on GET /v2/products")
    assert "credentials" in msg
    dump = msg + repr(vars(err)) + repr(err.args)
    assert SECRET not in dump and "qs-secret-value" not in dump and "access_token" not in dump
    assert err.__cause__ is None


def test_403_is_authentication_error_too(server, clock):
    server.script("/x", (403, "forbidden"))
    with make_client(server, clock) as client, pytest.raises(AuthenticationError):
        client.get("x")
    assert client.stats.calls == 1


def test_persistent_500_raises_server_error_after_budget(server, clock):
    server.script("/v2/products", (500, "boom"))
    with make_client(server, clock, max_retries=2) as client:
        with pytest.raises(ServerError) as info:
            client.get_json("/v2/products")
    assert info.value.status == 500
    assert (client.stats.calls, client.stats.retries, client.stats.server_errors) == (3, 2, 3)
    assert len(server.hits("/v2/products")) == 3
    assert isinstance(info.value, IntegrationError)


def test_persistent_429_raises_rate_limit_error(server, clock):
    server.script("/v2/products", (429, "", {"Retry-After": "0"}))
    with make_client(server, clock, max_retries=2) as client, pytest.raises(RateLimitError):
        client.get("/v2/products")
    assert (client.stats.calls, client.stats.throttled) == (3, 3)


def test_huge_retry_after_raises_instead_of_sleeping(server, clock):
    server.script("/v2/products", (429, "", {"Retry-After": "3600"}), (200, {}))
    with make_client(server, clock) as client:
        with pytest.raises(RateLimitError) as info:
            client.get("/v2/products")
    assert "3600" in str(info.value) and clock.sleeps == []
    assert (client.stats.calls, client.stats.throttled) == (1, 1)


def test_retry_after_http_date_is_honoured(server, clock):
    from email.utils import formatdate

    server.script("/x", (503, "", {"Retry-After": formatdate(time.time() + 30, usegmt=True)}), (200, {}))
    with make_client(server, clock) as client:
        client.get("/x")
    assert 25 < clock.sleeps[0] <= 30


def test_garbage_retry_after_falls_back_to_backoff(server, clock):
    server.script("/x", (503, "", {"Retry-After": "soon-ish"}), (200, {"ok": 1}))
    with make_client(server, clock) as client:
        assert client.get_json("/x") == {"ok": 1}
    assert clock.sleeps == pytest.approx([0.01])


def test_other_4xx_not_retried_and_body_excerpt_scrubbed(server, clock):
    server.script("/v2/products", (422, {"error": f"invalid field; your key was {SECRET}"}))
    with make_client(server, clock) as client, pytest.raises(RequestFailed) as info:
        client.get("/v2/products")
    assert client.stats.calls == 1 and info.value.status == 422
    assert "invalid field" in str(info.value) and SECRET not in str(info.value)


def test_redirects_are_not_followed(server, clock):
    server.script("/moved", (302, "", {"Location": "http://evil.example/steal"}))
    with make_client(server, clock) as client, pytest.raises(RequestFailed) as info:
        client.get("/moved")
    assert info.value.status == 302


def test_connection_refused_is_transport_error_after_retries(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(integration="shipstation", account="store-a", base_url=f"http://127.0.0.1:{port}",
                        headers={"API-Key": SECRET}, max_retries=2, backoff_factor=0.01,
                        backoff_jitter=0.0, sleep=clock.sleep)
    with client, pytest.raises(TransportError) as info:
        client.get("/v2/products", params={"token": "qs-secret-value"})
    assert (client.stats.calls, client.stats.retries) == (3, 2)
    assert "qs-secret-value" not in str(info.value) and info.value.__cause__ is None


def test_read_timeout_is_retried_then_transport_error(server, clock):
    server.script("/slow", (200, {"ok": 1}, {}, 0.3))
    with make_client(server, clock, timeout=(1.0, 0.1), max_retries=1) as client:
        with pytest.raises(TransportError):
            client.get("/slow")
    assert client.stats.calls == 2


# ---------------------------------------------------------------- malformed
def test_truncated_json_once_then_valid(server, clock):
    server.script("/v2/products", (200, '{"products": [1, 2'), (200, {"products": [1, 2]}))
    with make_client(server, clock) as client:
        assert client.get_json("/v2/products") == {"products": [1, 2]}
    s = client.stats
    assert (s.calls, s.malformed, s.retries) == (2, 1, 1)
    assert s.as_metadata()["malformed_pages"] == 1


def test_persistent_truncated_json_raises(server, clock):
    server.script("/v2/products", (200, '{"products": [1, 2'))
    with make_client(server, clock, malformed_retries=2) as client:
        with pytest.raises(MalformedResponseError) as info:
            client.get_json("/v2/products")
    assert (client.stats.calls, client.stats.malformed) == (3, 3)
    assert "not valid JSON" in str(info.value) and "store-a" in str(info.value)


# --------------------------------------------------------------- pagination
def test_links_next_pagination_over_three_pages(server, clock):
    base = server.url
    server.script(
        "/v2/products",
        (200, {"products": [{"id": 1}, {"id": 2}],
               "links": {"next": {"href": f"{base}/v2/products?page=2&page_size=2"}}}),
        (200, {"products": [{"id": 3}, {"id": 4}], "links": {"next": {"href": "/v2/products?page=3"}}}),
        (200, {"products": [{"id": 5}], "links": {"next": None}}),
    )
    with make_client(server, clock) as client:
        pages = paginate_links_next(client, "/v2/products", params={"page_size": 2, "sku": "A"},
                                    items_key="products")
        assert isinstance(pages, GeneratorType)
        assert next(pages) == [{"id": 1}, {"id": 2}]
        assert len(server.hits("/v2/products")) == 1  # lazy: one page at a time
        assert list(pages) == [[{"id": 3}, {"id": 4}], [{"id": 5}]]
    queries = [h["query"] for h in server.hits("/v2/products")]
    assert queries[0] == {"page_size": ["2"], "sku": ["A"]}
    assert queries[1] == {"page": ["2"], "page_size": ["2"], "sku": ["A"]}  # no duplicated page_size
    assert queries[2]["page"] == ["3"]
    assert all(h["headers"]["API-Key"] == SECRET for h in server.hits("/v2/products"))


@pytest.mark.parametrize("links", [None, {}, {"next": {}}, {"next": {"href": ""}}, {"next": None}])
def test_links_next_stops_on_missing_next(server, clock, links):
    server.script("/p", (200, {"items": [1], **({"links": links} if links is not None else {})}))
    with make_client(server, clock) as client:
        assert list(paginate_links_next(client, "/p", items_key="items")) == [[1]]


def test_links_next_missing_items_key_is_malformed(server, clock):
    server.script("/p", (200, {"data": []}))
    with make_client(server, clock, malformed_retries=1) as client:
        with pytest.raises(MalformedResponseError):
            list(paginate_links_next(client, "/p", items_key="items"))
    assert client.stats.malformed == 2


def test_links_next_loop_is_detected(server, clock):
    server.script("/p", (200, {"items": [1], "links": {"next": {"href": "/p?page=2"}}}),
                  (200, {"items": [2], "links": {"next": {"href": "/p?page=2"}}}))
    with make_client(server, clock) as client:
        with pytest.raises(MalformedResponseError, match="loop"):
            list(paginate_links_next(client, "/p", items_key="items"))


def test_next_link_to_another_host_is_refused(server, clock):
    server.script("/p", (200, {"items": [1], "links": {"next": {"href": "https://evil.example/p?page=2"}}}))
    with make_client(server, clock) as client:
        pages = paginate_links_next(client, "/p", items_key="items")
        assert next(pages) == [1]
        with pytest.raises(ValueError, match="another origin"):
            next(pages)
        with pytest.raises(ValueError):
            client.get(f"http://localhost:{server.httpd.server_port}/p")  # same port, other host
        with pytest.raises(ValueError):
            client.get(f"https://127.0.0.1:{server.httpd.server_port}/p")  # other scheme
    assert len(server.requests) == 1


def test_link_header_pagination_does_not_resend_params(server, clock):
    base = server.url
    server.script(
        "/admin/orders.json",
        (200, {"orders": [1, 2]}, {"Link": f'<{base}/admin/orders.json?limit=2&page_info=abc>; rel="next"'}),
        (200, {"orders": [3, 4]}, {"Link": '</admin/orders.json?limit=2&page_info=xyz>; rel="next", '
                                           '</admin/orders.json?limit=2&page_info=abc>; rel="previous"'}),
        (200, {"orders": [5]}, {"Link": '</admin/orders.json?limit=2&page_info=xyz>; rel="previous"'}),
    )
    with make_client(server, clock) as client:
        pages = list(paginate_link_header(client, "/admin/orders.json",
                                          params={"limit": 2, "status": "any"}, items_key="orders"))
    assert pages == [[1, 2], [3, 4], [5]]
    queries = [h["query"] for h in server.hits("/admin/orders.json")]
    assert queries[0] == {"limit": ["2"], "status": ["any"]}
    assert queries[1] == {"limit": ["2"], "page_info": ["abc"]}
    assert queries[2] == {"limit": ["2"], "page_info": ["xyz"]}


def test_page_number_pagination(server, clock):
    server.script("/orders", (200, {"orders": [1], "page": 1, "pages": 3}),
                  (200, {"orders": [2], "page": 2, "pages": 3}),
                  (200, {"orders": [3], "page": 3, "pages": 3}))
    with make_client(server, clock) as client:
        assert list(paginate_page_numbers(client, "/orders", params={"pageSize": 1},
                                          items_key="orders")) == [[1], [2], [3]]
    assert [h["query"]["page"] for h in server.hits("/orders")] == [["1"], ["2"], ["3"]]
    assert all(h["query"]["pageSize"] == ["1"] for h in server.hits("/orders"))


# ----------------------------------------------------------- rate limiting
def test_rate_limiter_spaces_acquires(clock):
    limiter = RateLimiter(20, burst=1, clock=clock.monotonic, sleep=clock.sleep)
    start = clock.now
    waited = sum(limiter.acquire() for _ in range(10))
    assert clock.now - start >= 0.4
    assert waited == pytest.approx(0.45)


def test_rate_limiter_burst_then_steady(clock):
    limiter = RateLimiter(10, burst=5, clock=clock.monotonic, sleep=clock.sleep)
    for _ in range(5):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(0.1)


def test_rate_limiter_real_time_smoke():
    limiter = RateLimiter(50, burst=1)
    start = time.monotonic()
    for _ in range(6):
        limiter.acquire()
    assert time.monotonic() - start >= 0.09


def test_unlimited_limiter_never_waits(clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    assert sum(limiter.acquire() for _ in range(100)) == 0 and clock.sleeps == []


def test_observe_remaining_zero_blocks_until_reset(clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    limiter.observe(remaining=5, reset_seconds=30)
    assert limiter.acquire() == 0
    limiter.observe(remaining=0, reset_seconds=7)
    assert limiter.acquire() == pytest.approx(7)
    assert limiter.acquire() == 0


def test_penalize_pauses(clock):
    limiter = RateLimiter(100, burst=10, clock=clock.monotonic, sleep=clock.sleep)
    limiter.penalize(2.5)
    assert limiter.acquire() == pytest.approx(2.5)


def test_registry_returns_same_instance_per_key():
    a = rate_limiter_for("test:acct-1", 2, 4)
    assert rate_limiter_for("test:acct-1", 99, 1) is a
    assert rate_limiter_for("test:acct-2", 2, 4) is not a


def test_rate_limit_headers_parsing_tolerates_garbage():
    h = RATE_LIMIT_HEADERS
    assert h.parse({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "12"}) == (0, 12.0)
    assert h.parse({}) == (None, None)
    assert h.parse({"X-Rate-Limit-Remaining": "lots", "X-Rate-Limit-Reset": "nan"}) == (None, None)
    custom = RateLimitHeaders(limit="L", remaining="R", reset="S")
    assert custom.parse({"R": "3.0", "S": ""}) == (3, None)


def test_client_honours_provider_rate_limit_headers(server, clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/v2/products",
                  (200, {"a": 1}, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "5"}),
                  (200, {"a": 2}, {"X-Rate-Limit-Remaining": "garbage"}))
    with make_client(server, clock, rate_limiter=limiter,
                     rate_limit_headers=RATE_LIMIT_HEADERS) as client:
        assert client.get_json("/v2/products") == {"a": 1}
        assert client.stats.wait_seconds == 0
        assert client.get_json("/v2/products") == {"a": 2}
    assert client.stats.wait_seconds == pytest.approx(5)


def test_429_penalizes_shared_limiter(server, clock):
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/x", (429, "", {"Retry-After": "2"}), (200, {}))
    with make_client(server, clock, rate_limiter=limiter) as client:
        client.get("/x")
    assert limiter._blocked_until == pytest.approx(clock.now)  # others were paused for the same 2 s


# ------------------------------------------------------------------ misc
def test_errors_pickle_roundtrip():
    err = ServerError("shipstation", "store-a", "server error (HTTP 500)", status=500, method="GET",
                      path="/x")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err) and clone.status == 500 and clone.account == "store-a"


def test_paths_append_to_base_url_prefix(server, clock):
    server.script("/api/v1/items", (200, {"ok": 1}))
    with make_client(server, clock, base_url=server.url + "/api/v1/") as client:
        assert client.get_json("items") == {"ok": 1}
        assert client.get_json("/items") == {"ok": 1}


def test_callstats_defaults():
    assert CallStats().as_metadata() == {"api_calls": 0, "retries": 0, "http_429s": 0, "http_5xx": 0,
                                         "malformed_pages": 0, "wait_seconds": 0.0}


def test_rate_limiter_is_shared_safely_across_threads():
    limiter = RateLimiter(100, burst=1)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 0.18  # 20 tokens at 100/s, first one free


# ------------------------------------------------------------------ writes
def test_write_429_is_retried_like_a_read(server, clock):
    """Retry-After honoured, the account's limiter paused, jittered backoff, same budget."""
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/webhooks.json", (429, "", {"Retry-After": "2"}), (429, "", {"Retry-After": "0"}),
                  (201, {"webhook": {"id": 1}}))
    with make_client(server, clock, rate_limiter=limiter, backoff_jitter=0.5) as client:
        assert client.send_json("POST", "webhooks.json", {"webhook": {}}) == {"webhook": {"id": 1}}
    assert [h["method"] for h in server.hits("/webhooks.json")] == ["POST"] * 3
    assert clock.sleeps[0] == 2.0  # Retry-After dominates the backoff
    assert 0.02 <= clock.sleeps[1] <= 0.02 + 0.5  # the second backoff step plus jitter
    assert limiter._blocked_until == pytest.approx(clock.now)  # others paused as long
    assert (client.stats.calls, client.stats.retries, client.stats.throttled) == (3, 2, 2)


def test_write_refuses_a_huge_retry_after_instead_of_sleeping(server, clock):
    server.script("/webhooks.json", (429, "", {"Retry-After": "86400"}), (201, {}))
    with make_client(server, clock, max_retry_after=120) as client:
        with pytest.raises(RateLimitError) as info:
            client.send_json("POST", "webhooks.json", {"a": 1})
    assert clock.sleeps == [] and len(server.hits("/webhooks.json")) == 1
    assert "86400" in str(info.value) and "POST /webhooks.json" in str(info.value)
    assert info.value.status == 429


def test_write_persistent_429_raises_rate_limit_error_after_the_retry_budget(server, clock):
    server.script("/webhooks/1.json", (429, "", {"Retry-After": "0"}))
    with make_client(server, clock, max_retries=2) as client, pytest.raises(RateLimitError):
        client.send_json("PUT", "webhooks/1.json", {"a": 1})
    assert len(server.hits("/webhooks/1.json")) == 3
    assert clock.sleeps == pytest.approx([0.01, 0.02])  # backoff although Retry-After said 0


@pytest.mark.parametrize("status", [500, 503])
def test_write_5xx_is_a_server_error_and_never_replayed(server, clock, status):
    server.script("/webhooks/1.json", (status, {"errors": f"down {SECRET}"}))
    with make_client(server, clock) as client, pytest.raises(ServerError) as info:
        client.send_json("DELETE", "webhooks/1.json")
    assert len(server.hits("/webhooks/1.json")) == 1 and clock.sleeps == []
    assert info.value.status == status and info.value.method == "DELETE"
    assert SECRET not in str(info.value)


# ------------------------------------------------------- rate-limit headers
def test_rate_limit_reset_as_epoch_milliseconds_or_nonsense():
    h = RATE_LIMIT_HEADERS
    remaining, reset = h.parse({"X-Rate-Limit-Remaining": "0",
                                "X-Rate-Limit-Reset": str(int(time.time() * 1000) + 60_000)})
    assert remaining == 0 and 50 < reset <= 60
    assert 50 < h.parse({"X-Rate-Limit-Reset": str(int(time.time()) + 60)})[1] <= 60  # epoch seconds
    assert h.parse({"X-Rate-Limit-Reset": "-5"}) == (None, None)


def test_rate_limit_header_pause_is_capped(server, clock):
    """remaining=0 with a reset far away pauses at most max_retry_after, not for a day."""
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    server.script("/p", (200, {"items": []}, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "86400"}))
    with make_client(server, clock, rate_limiter=limiter, rate_limit_headers=RATE_LIMIT_HEADERS,
                     max_retry_after=30) as client:
        client.get_json("/p")
        client.get_json("/p")
    assert clock.sleeps == [30]
    direct = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    direct.observe(remaining=0, reset_seconds=1.8e12)
    assert direct.acquire() == pytest.approx(MAX_RESET_PAUSE)


def test_provider_bucket_only_ever_lowers_our_tokens(clock):
    limiter = RateLimiter(1, burst=10, clock=clock.monotonic, sleep=clock.sleep)
    limiter.sync_available(40)  # the provider's bucket is bigger than ours: ours stays the ceiling
    assert sum(limiter.acquire() for _ in range(10)) == 0
    assert limiter.acquire() == pytest.approx(1)
    limiter.sync_available(0)  # the provider says it is spent: believe it
    assert limiter.acquire() == pytest.approx(1)


@pytest.fixture
def tokyo_local_time():
    """Local time 9 h ahead of UTC, so a date read as local time is visibly wrong."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if previous is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = previous
    time.tzset()


def test_retry_after_http_date_with_minus_0000_zone_is_utc(server, clock, tokyo_local_time):
    from email.utils import formatdate

    when = formatdate(time.time() + 30)  # "... -0000": UTC, source zone unknown (RFC 5322)
    assert when.endswith("-0000")
    server.script("/x", (503, "", {"Retry-After": when}), (200, {}))
    with make_client(server, clock) as client:
        client.get("/x")
    assert 25 < clock.sleeps[0] <= 30


# ------------------------------------------------------------ pagination end
def test_links_next_stops_on_an_empty_page_despite_a_next_link(server, clock):
    server.script("/v2/products",
                  (200, {"products": [{"id": 1}], "links": {"next": {"href": "/v2/products?page=2"}}}),
                  (200, {"products": [], "links": {"next": {"href": "/v2/products?page=3"}}}),
                  (200, {"products": [{"id": 9}], "links": {"next": {"href": "/v2/products?page=4"}}}))
    with make_client(server, clock) as client:
        assert list(paginate_links_next(client, "/v2/products", items_key="products")) == [[{"id": 1}], []]
    assert len(server.hits("/v2/products")) == 2


def test_links_next_stops_at_the_last_page_the_body_reports(server, clock):
    server.script("/v2/products",
                  (200, {"products": [{"id": 1}], "page": 1, "pages": 2,
                         "links": {"next": {"href": "/v2/products?page=2"}}}),
                  (200, {"products": [{"id": 2}], "page": 2, "pages": 2,
                         "links": {"next": {"href": "/v2/products?page=3"}}}),
                  (200, {"products": [{"id": 2}], "page": 3, "pages": 2, "links": {}}))
    with make_client(server, clock) as client:
        assert list(paginate_links_next(client, "/v2/products", items_key="products")) == [[{"id": 1}], [{"id": 2}]]
    assert len(server.hits("/v2/products")) == 2


def test_links_next_gives_up_after_max_pages(server, clock):
    server.script("/p", *[(200, {"items": [n], "links": {"next": {"href": f"/p?page={n + 1}"}}})
                          for n in range(1, 6)])
    with make_client(server, clock) as client:
        pages = paginate_links_next(client, "/p", items_key="items", max_pages=3)
        assert [next(pages) for _ in range(3)] == [[1], [2], [3]]
        with pytest.raises(MalformedResponseError, match="did not end after 3 pages"):
            next(pages)
    assert len(server.hits("/p")) == 3


def test_link_header_and_page_number_paginators_are_bounded_too(server, clock):
    server.script("/orders.json", *[(200, {"orders": [n]}, {"Link": f'</orders.json?page_info=p{n}>; rel="next"'})
                                    for n in range(1, 6)])
    server.script("/numbered", (200, {"orders": [1]}))  # no `pages`, never empty
    with make_client(server, clock) as client:
        with pytest.raises(MalformedResponseError, match="did not end after 2 pages"):
            list(paginate_link_header(client, "/orders.json", items_key="orders", max_pages=2))
        with pytest.raises(MalformedResponseError, match="did not end after 3 pages"):
            list(paginate_page_numbers(client, "/numbered", items_key="orders", max_pages=3))
    assert len(server.hits("/orders.json")) == 2 and len(server.hits("/numbered")) == 3


def test_a_verdict_redacts_every_secret_and_keeps_its_kind_and_delay():
    from sync_pipelines.core.http import ErrorVerdict

    verdict = ErrorVerdict("throttle", "token ya29.abc refused for client s3cret (ya29.abc)", 7.5)
    redacted = verdict.redacted(["ya29.abc", "s3cret"])
    assert redacted == ErrorVerdict("throttle", "token *** refused for client *** (***)", 7.5)
    assert verdict.redacted([]) == verdict
