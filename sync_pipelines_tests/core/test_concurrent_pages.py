"""core.concurrent_pages against a loopback HTTP server: order, the in-flight bound, the rate
limit (request timestamps as the server saw them), errors, early stop, drift, memory bound."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from sync_pipelines.core.concurrent_pages import Page, concurrent_pages
from sync_pipelines.core.http import HttpClient, RateLimiter, RequestFailed


class PagedServer:
    """`GET /items?page=N`: `per_page` items a page out of `total` (changeable), each request
    taking `delay` seconds; records arrival times and the peak of requests in flight."""

    def __init__(self, total: int, per_page: int = 5, delay: float = 0.0, fail_page: int | None = None,
                 report_count: bool = True) -> None:
        self.total, self.per_page, self.delay = total, per_page, delay
        self.fail_page, self.report_count = fail_page, report_count
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, int]] = []
        self.in_flight = self.peak = 0
        box = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                page = int(parse_qs(urlsplit(self.path).query)["page"][0])
                with box.lock:
                    box.arrivals.append((time.monotonic(), page))
                    box.in_flight += 1
                    box.peak = max(box.peak, box.in_flight)
                try:
                    time.sleep(box.delay)
                    status, body = box.answer(page)
                finally:
                    with box.lock:
                        box.in_flight -= 1
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, page: int) -> tuple[int, dict]:
        if page == self.fail_page:
            return 400, {"detail": "bad page"}
        start = (page - 1) * self.per_page
        if start >= self.total and page > 1:
            return 404, {"detail": "Invalid page."}
        items = [{"n": i} for i in range(start, min(start + self.per_page, self.total))]
        body = {"results": items, "next": page * self.per_page < self.total}
        if self.report_count:
            body["count"] = self.total
        return 200, body

    def pages_requested(self) -> list[int]:
        with self.lock:
            return sorted(p for _, p in self.arrivals)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def make_server():
    servers: list[PagedServer] = []

    def make(*args, **kwargs) -> PagedServer:
        servers.append(PagedServer(*args, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def client_for(server: PagedServer, limiter: RateLimiter | None = None) -> HttpClient:
    return HttpClient(integration="test", account="acct", base_url=server.url, headers={},
                      rate_limiter=limiter, backoff_factor=0.01, backoff_max=0.02, max_retries=1, pool_size=16)


def reader(client: HttpClient, per_page: int = 5):
    def fetch(number: int) -> Page:
        try:
            body = client.get_json("/items", {"page": number})
        except RequestFailed as error:
            if error.status == 404:
                return Page([], False)
            raise
        total = -(-body["count"] // per_page) if "count" in body else None
        return Page(body["results"], bool(body["next"]), total)

    return fetch


def page_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pages-test")]


def test_every_page_in_order_with_the_count_from_the_first_page(make_server):
    server = make_server(total=103, delay=0.01)
    client = client_for(server)
    pages = list(concurrent_pages(client, reader(client), max_in_flight=4))
    assert [item["n"] for page in pages for item in page] == list(range(103))
    assert server.pages_requested() == list(range(1, 22))  # 21 pages, none past the end
    assert client.stats.calls == 21
    assert page_threads() == []


def test_never_more_than_max_in_flight_and_really_concurrent(make_server):
    server = make_server(total=200, delay=0.05)
    client = client_for(server)
    assert sum(len(p) for p in concurrent_pages(client, reader(client), max_in_flight=4)) == 200
    assert server.peak == 4  # the server saw four requests open at once (never five): really concurrent


def test_stays_within_the_rate_limit(make_server):
    server = make_server(total=150, delay=0.0)
    rate, burst = 40.0, 3
    client = client_for(server, RateLimiter(rate, burst))
    assert sum(len(p) for p in concurrent_pages(client, reader(client), max_in_flight=10)) == 150
    times = sorted(t for t, _ in server.arrivals)
    assert len(times) == 30
    # Token bucket: any span of T seconds holds at most burst + rate * T requests (small slack
    # for the time between the limiter's decision and the server's clock reading).
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i] + 0.01) + 1e-9
    assert times[-1] - times[0] >= (30 - burst) / rate * 0.95


def test_an_error_is_raised_in_its_turn_and_no_thread_outlives_it(make_server):
    server = make_server(total=100, delay=0.01, fail_page=7)
    client = client_for(server)
    seen = []
    with pytest.raises(RequestFailed):
        for page in concurrent_pages(client, reader(client), max_in_flight=4):
            seen.extend(item["n"] for item in page)
    assert seen == list(range(30))  # pages 1..6, then page 7's error
    assert max(server.pages_requested()) <= 7 + 3  # nothing requested beyond the window
    assert page_threads() == []


def test_a_caller_stopping_early_stops_the_requests(make_server):
    server = make_server(total=1000, delay=0.01)
    client = client_for(server)
    pages = concurrent_pages(client, reader(client), max_in_flight=5)
    for _ in range(3):
        next(pages)
    pages.close()
    assert page_threads() == []
    requested = len(server.pages_requested())
    time.sleep(0.05)
    assert len(server.pages_requested()) == requested <= 3 + 5


def test_memory_is_bounded_by_max_in_flight_pages(make_server):
    server = make_server(total=400, delay=0.0)
    client = client_for(server)
    yielded = 0
    for _ in concurrent_pages(client, reader(client), max_in_flight=3):
        yielded += 1
        time.sleep(0.01)  # a slow consumer: fetching must not run ahead
        assert len(server.pages_requested()) <= yielded + 3
    assert yielded == 80


def test_records_added_while_paging_extend_the_listing(make_server):
    server = make_server(total=50, delay=0.0)
    client = client_for(server)
    fetch = reader(client)

    def growing(number: int) -> Page:
        if number == 2:
            server.total = 63  # orders arrive mid-sync: the end moves
        return fetch(number)

    pages = list(concurrent_pages(client, growing, max_in_flight=4))
    assert [item["n"] for page in pages for item in page] == list(range(63))


def test_without_a_count_pages_run_ahead_until_one_says_no_next(make_server):
    server = make_server(total=42, delay=0.0, report_count=False)
    client = client_for(server)
    pages = list(concurrent_pages(client, reader(client), max_in_flight=4))
    assert [item["n"] for page in pages for item in page] == list(range(42))
    assert page_threads() == []


def test_a_single_page_listing_makes_one_request(make_server):
    server = make_server(total=3)
    client = client_for(server)
    assert list(concurrent_pages(client, reader(client))) == [[{"n": 0}, {"n": 1}, {"n": 2}]]
    assert server.pages_requested() == [1]


def test_the_shared_client_counts_every_wait_and_call_of_its_threads(make_server):
    """Threads sharing a client: a statistic read before a wait and written after it would lose
    the other threads' updates made meanwhile."""

    class SlowLimiter(RateLimiter):
        def acquire(self) -> float:
            time.sleep(0.02)
            return 0.02

    server = make_server(total=1)
    client = client_for(server, SlowLimiter(None))
    threads = [threading.Thread(target=lambda: [client._before_send() for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.stats.calls == 20
    assert client.stats.wait_seconds == pytest.approx(0.4)
