"""MaystroClient against the sandbox: DRF paging under `list`, 10 pages in flight within the
store's rate limit, orders arriving mid-sync, 429 + Retry-After, a refused token, webhook management."""

from __future__ import annotations

import threading
import time

import pytest

from sync_pipelines.core.http import AuthenticationError, RateLimitError
from sync_pipelines.defs.maystro.client import MaystroClient


def all_orders(session) -> list[dict]:
    return [order for page in session.orders() for order in page]


def test_every_order_once_newest_first_twenty_a_page(client, store, sandbox):
    account, key = store(orders=437)
    with client.session(account) as session:
        pages = list(session.orders())
        assert [len(p) for p in pages] == [20] * 21 + [17]
        orders = [o for p in pages for o in p]
        assert [o["external_order_id"] for o in orders] == [f"ORD-{n}" for n in range(437, 0, -1)]
        assert session.http.stats.calls == 22
    assert sandbox.stats()["requests_by_key"][key] == 22


def test_ten_pages_in_flight_at_once(client, store, sandbox):
    account, _ = store(orders=20 * 60)
    sandbox.faults.configure(latency_ms=40)  # each page answers late enough for the others to overlap it
    with client.session(account) as session:
        assert len(all_orders(session)) == 1200
    assert sandbox.stats()["peak_in_flight"] == 10  # the sandbox saw ten requests open at once, never more


def test_in_flight_pages_stay_within_the_rate_limit(sandbox, store, unique):
    account, _ = store(orders=20 * 40)
    arrivals: list[float] = []
    lock = threading.Lock()
    original = sandbox._enter

    def stamp() -> None:
        with lock:
            arrivals.append(time.monotonic())
        original()

    sandbox._enter = stamp
    client = MaystroClient(base_url=sandbox.url, requests_per_minute=1200, max_in_flight=10)  # 20/s, burst 10
    with client.session(account) as session:
        assert len(all_orders(session)) == 800
    arrivals.sort()
    assert len(arrivals) == 40
    for i in range(len(arrivals)):
        for j in range(i + 1, len(arrivals)):
            assert j - i + 1 <= 10 + 20 * (arrivals[j] - arrivals[i] + 0.02)
    assert arrivals[-1] - arrivals[0] >= (40 - 10) / 20 * 0.9


def test_orders_arriving_while_paging_are_not_missed(client, store, sandbox):
    account, key = store(orders=300)
    with client.session(account) as session:
        pages = session.orders()
        first = next(pages)
        sandbox.add_orders(key, 45)  # new orders go on top: everything shifts 45 places down
        rest = [o for p in pages for o in p]
    seen = {o["external_order_id"] for o in first + rest}
    assert {f"ORD-{n}" for n in range(1, 301)} <= seen  # none of the listed ones missed


def test_a_throttled_page_waits_retry_after_and_the_run_completes(client, store, sandbox):
    account, key = store(orders=200)
    sandbox.limiter.configure(requests_per_minute=4, window_seconds=0.5)
    with client.session(account) as session:
        assert len(all_orders(session)) == 200
        assert session.http.stats.throttled > 0
    assert sandbox.stats()["rate_limited_429"] > 0


def test_a_throttle_outlasting_the_retries_fails(client, store, sandbox):
    account, _ = store(orders=100)
    sandbox.faults.configure(retry_after_seconds=0)
    sandbox.faults.fail_next("429", 50)
    with client.session(account) as session, pytest.raises(RateLimitError):
        all_orders(session)


def test_a_refused_token_fails_at_once_without_the_key_in_the_error(client, store, sandbox, monkeypatch):
    account, key = store(orders=50)
    monkeypatch.setenv(account.credentials_env, "wrong-token-123456")
    with client.session(account) as session, pytest.raises(AuthenticationError) as error:
        all_orders(session)
    assert "wrong-token-123456" not in str(error.value)
    assert sandbox.stats()["unauthorized_401"] == 1


def test_an_order_by_reference(client, store):
    account, _ = store(orders=50)
    with client.session(account) as session:
        assert session.order_by_reference("ORD-17")["display_id"] == "100017"
        assert session.order_by_reference("ORD-999") is None


def test_webhook_hooks_are_created_once_listed_and_deleted(client, store, sandbox):
    account, key = store(orders=5)
    with client.session(account) as session:
        hook = session.ensure_hook("https://example.test/webhooks/maystro/s3cret")
        assert session.ensure_hook("https://example.test/webhooks/maystro/s3cret")["id"] == hook["id"]
        assert [h["endpoint"] for h in session.hooks()] == ["https://example.test/webhooks/maystro/s3cret"]
        assert hook["trigger_type"] == "OrderStatusChanged"
        session.delete_hook(hook["id"])
        assert session.hooks() == []


def test_the_base_url_comes_from_the_environment_when_unset(store, sandbox, monkeypatch):
    account, _ = store(orders=3)
    monkeypatch.setenv("MAYSTRO_BASE_URL", sandbox.url)
    with MaystroClient(requests_per_minute=None).session(account) as session:
        assert len(all_orders(session)) == 3
