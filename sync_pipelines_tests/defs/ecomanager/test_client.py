"""EcoManagerClient against the sandbox (and a scripted server for what the sandbox cannot get wrong)."""

from __future__ import annotations

import math
import time

import pytest

from sync_pipelines.core.http import AuthenticationError, MalformedResponseError, RequestFailed
from sync_pipelines.defs.ecomanager.client import (
    DEFAULT_BASE_URL,
    ORDERS_PATH,
    EcoManagerClient,
    store_base_url,
)
from sync_pipelines_tests.core.test_http import ScriptedServer
from sync_pipelines_tests.defs.ecomanager.conftest import account_for, order_calls
from sync_pipelines_tests.sandbox.delivery_receiver import DeliveryReceiver


def ids(pages) -> list[int]:
    return [order["id"] for page in pages for order in page]


def new_since(session, mark: int | None) -> list[int]:
    """What the sync loop does: read newest first, stop at the first id at or below the mark."""
    found = []
    for page in session.orders_newest_first():
        for order in page:
            if mark is not None and order["id"] <= mark:
                return found
            found.append(order["id"])
    return found


# ------------------------------------------------------------------ paging
def test_newest_first_follows_the_cursor_over_every_order(sandbox, client, add_store):
    account = add_store(orders=250)
    data = sandbox.store(account.account)
    with client.session(account) as session:
        pages = list(session.orders_newest_first())
    assert [len(p) for p in pages] == [100, 100, 50]
    assert ids(pages) == list(range(data.next_id - 1, data.first_id - 1, -1))
    assert order_calls(sandbox, account.account) == 3
    assert session.http.stats.calls == 3


def test_the_complete_listing_is_every_order_once_lowest_first(sandbox, client, add_store):
    account = add_store(orders=230)
    data = sandbox.store(account.account)
    gone = data.first_id + 7
    sandbox.delete_order(account.account, gone)
    changed = sandbox.update_order(account.account, data.first_id + 8, order_state="Annulé")
    with client.session(account) as session:
        orders = [order for page in session.orders() for order in page]
    listed = [order["id"] for order in orders]
    assert listed == sorted(listed) and len(listed) == len(set(listed)) == 229
    assert gone not in listed
    assert next(o for o in orders if o["id"] == changed["id"]) == changed


def test_pages_are_fetched_lazily_and_stopping_early_costs_exactly_the_pages_read(sandbox, client, add_store):
    account = add_store(orders=1_000)
    with client.session(account) as session:
        pages = session.orders_newest_first()
        assert order_calls(sandbox, account.account) == 0  # a generator: nothing sent yet
        next(pages)
        assert order_calls(sandbox, account.account) == 1
        next(pages)
        pages.close()
    assert order_calls(sandbox, account.account) == 2


def test_requests_carry_bearer_token_accept_per_page_and_sort(monkeypatch):
    server = ScriptedServer()
    try:
        server.script(ORDERS_PATH, (200, {"data": [{"id": 9}, {"id": 8}], "meta": {"next_cursor": "abc"}}),
                      (200, {"data": [{"id": 7}], "meta": {"next_cursor": None}}))
        monkeypatch.setenv("ECOMANAGER_TEST_TOKEN_X", "tok-secret-123")
        client = EcoManagerClient(base_url_template=server.url, requests_per_minute=None, page_size=2)
        with client.session(account_for("scripted", "ECOMANAGER_TEST_TOKEN_X")) as session:
            assert ids(session.orders_newest_first()) == [9, 8, 7]
        first, second = server.hits(ORDERS_PATH)
        assert first["headers"]["Authorization"] == "Bearer tok-secret-123"
        assert first["headers"]["Accept"] == "application/json"
        assert first["query"] == {"per_page": ["2"], "sort": ["-id"]}
        assert second["query"] == {"per_page": ["2"], "sort": ["-id"], "cursor": ["abc"]}
    finally:
        server.close()


def test_a_listing_that_is_not_newest_first_raises_instead_of_stopping_wrongly(monkeypatch):
    server = ScriptedServer()
    try:  # an API that ignored sort=-id: stopping at "the first known id" would find nothing new
        server.script(ORDERS_PATH, (200, {"data": [{"id": 3}, {"id": "2"}], "meta": {"next_cursor": "c"}}),
                      (200, {"data": [{"id": "5"}], "meta": {"next_cursor": None}}))
        monkeypatch.setenv("ECOMANAGER_TEST_TOKEN_X", "tok")
        client = EcoManagerClient(base_url_template=server.url, requests_per_minute=None)
        with client.session(account_for("scripted", "ECOMANAGER_TEST_TOKEN_X")) as session:
            pages = session.orders_newest_first()
            assert next(pages) == [{"id": 3}, {"id": "2"}]
            with pytest.raises(MalformedResponseError, match="not newest first"):
                next(pages)  # across pages too, ids given as digit strings too
    finally:
        server.close()


def test_offset_pages_repeat_and_skip_orders_while_the_listing_changes(sandbox, client, add_store):
    account = add_store(orders=50)
    with client.session(account) as session:
        # 5 orders arrive after page 1 (sort=-id): page 2 starts 5 places later in a listing that
        # grew at the top, so its first 5 orders were already on page 1
        sandbox.arrive_after(account.account, requests=1, add=5)
        offset = []
        for number in range(1, 7):
            body = session.http.get_json(ORDERS_PATH, {"page": number, "per_page": 10, "sort": "-id"})
            offset += [o["id"] for o in body["data"]]
        assert len(offset) - len(set(offset)) == 5
        # an order deleted from page 1 after it was read moves every later order up one place:
        # the first order of page 2 slides onto page 1 and is never read
        first = session.http.get_json(ORDERS_PATH, {"page": 1, "per_page": 10, "sort": "-id"})["data"]
        sandbox.delete_order(account.account, first[0]["id"])
        second = session.http.get_json(ORDERS_PATH, {"page": 2, "per_page": 10, "sort": "-id"})["data"]
    skipped = first[-1]["id"] - 1
    assert sandbox.store(account.account).order(skipped) is not None
    assert skipped not in [o["id"] for o in first + second]


def test_cursor_pages_neither_repeat_nor_skip_while_the_listing_changes(sandbox, client, add_store):
    account = add_store(orders=50)
    data = sandbox.store(account.account)
    walk_start = set(data.ids_below(None, 10**6))
    sandbox.arrive_after(account.account, requests=1, add=5)  # the same changes as the offset walk
    seen = []
    with client.model_copy(update={"page_size": 10}).session(account) as session:
        for number, page in enumerate(session.orders_newest_first(), start=1):
            seen += [o["id"] for o in page]
            if number == 1:
                sandbox.delete_order(account.account, page[0]["id"])
    assert len(seen) == len(set(seen)) == 50
    assert set(seen) == walk_start  # the arrivals are above the walk: the next scan's
    assert order_calls(sandbox, account.account) == 5


def test_orders_arriving_mid_sync_are_found_by_the_next_scan_none_missed_none_repeated(sandbox, client, add_store):
    account = add_store(orders=400)
    data = sandbox.store(account.account)
    mark = data.next_id - 1
    first_batch = sandbox.add_orders(account.account, 150)
    sandbox.arrive_after(account.account, requests=1, add=30)  # while the scan is on its first page
    with client.session(account) as session:
        found = new_since(session, mark)
        assert found == sorted(first_batch, reverse=True)
        next_mark = found[0]  # the mark a scan keeps: the highest id of its first page
        again = new_since(session, next_mark)
    assert len(again) == 30 and min(again) > max(first_batch)
    assert set(found) | set(again) == set(range(mark + 1, data.next_id))


@pytest.mark.parametrize("history", [100, 10_000, 100_000])
@pytest.mark.parametrize("new", [0, 1, 500])
def test_api_calls_to_find_the_new_orders_do_not_depend_on_history(sandbox, client, add_store, history, new):
    account = add_store(orders=history)
    mark = sandbox.store(account.account).next_id - 1
    added = sandbox.add_orders(account.account, new)
    sandbox.reset_stats()
    with client.session(account) as session:
        found = new_since(session, mark)
    assert found == sorted(added, reverse=True)
    assert order_calls(sandbox, account.account) == math.ceil((new + 1) / client.page_size)  # 1, 1, 6


def test_single_order_and_a_deleted_one(sandbox, client, add_store):
    account = add_store(orders=30)
    data = sandbox.store(account.account)
    wanted = data.first_id + 3
    sandbox.delete_order(account.account, data.first_id + 4)
    with client.session(account) as session:
        assert session.order(wanted) == data.order(wanted)
        assert session.order(data.first_id + 4) is None
        assert session.order(10**9) is None


# --------------------------------------------------------- errors and limits
def test_429_and_5xx_are_retried(sandbox, client, add_store):
    account = add_store(orders=250)
    sandbox.faults.configure(retry_after_seconds=0)
    sandbox.faults.fail_next("429", 2)
    sandbox.faults.fail_next("500", 2)
    sandbox.faults.fail_next("503", 1)
    with client.session(account) as session:
        assert len(ids(session.orders_newest_first())) == 250
    assert session.http.stats.retries == 5
    assert session.http.stats.throttled == 2 and session.http.stats.server_errors == 3


def test_a_truncated_page_is_requested_again(sandbox, client, add_store):
    account = add_store(orders=120)
    sandbox.faults.fail_next("truncated", 1)
    with client.session(account) as session:
        assert len(ids(session.orders())) == 120
    assert session.http.stats.malformed == 1


def test_a_bad_token_is_an_authentication_error_naming_the_store_not_the_token(sandbox, client, add_store,
                                                                               monkeypatch):
    account = add_store(orders=10)
    monkeypatch.setenv(account.credentials_env, "wrong-token-abcdef")
    with client.session(account) as session:
        with pytest.raises(AuthenticationError) as caught:
            next(session.orders_newest_first())
    message = str(caught.value)
    assert account.account in message and "HTTP 401" in message
    assert "wrong-token-abcdef" not in message and "wrong-token-abcdef" not in repr(caught.value.__dict__)
    assert session.http.stats.calls == 1  # never retried


def test_laravel_rate_limit_headers_pace_the_store_before_a_429(sandbox, client, add_store):
    account = add_store(orders=300)
    sandbox.limiter.configure(requests_per_minute=2, window_seconds=1)
    started = time.monotonic()
    with client.session(account) as session:
        assert len(ids(session.orders_newest_first())) == 300
    assert sandbox.stats()["rate_limited_429"] == 0  # X-RateLimit-Remaining: 0 paused us in time
    assert session.http.stats.wait_seconds >= 0.9 and time.monotonic() - started >= 0.9


def test_a_429_with_retry_after_is_waited_out(sandbox, client, add_store):
    account = add_store(orders=150)
    sandbox.limiter.configure(requests_per_minute=1, window_seconds=1)
    client = client.model_copy(update={"requests_per_minute": None})
    with client.session(account) as session:
        session.http.rate_limit_headers = None  # ignore the headers: meet the 429 itself
        assert len(ids(session.orders_newest_first())) == 150
    assert sandbox.stats()["rate_limited_429"] >= 1 and session.http.stats.throttled >= 1


# ----------------------------------------------------------------- setup
def test_base_url_template_from_the_field_the_environment_or_the_default(sandbox, add_store, monkeypatch):
    assert store_base_url(DEFAULT_BASE_URL, "natureldz") == "https://natureldz.ecomanager.dz"
    assert store_base_url("http://127.0.0.1:1/stores/{store}/", "a") == "http://127.0.0.1:1/stores/a"
    assert store_base_url("http://proxy.internal/", "a") == "http://proxy.internal"  # no {store}: as is
    account = add_store(orders=5)
    monkeypatch.setenv("ECOMANAGER_BASE_URL", sandbox.base_url_template(sandbox.url))
    with EcoManagerClient(requests_per_minute=None).session(account) as session:
        assert session.http.base_url == f"{sandbox.url}/stores/{account.account}"
        assert len(ids(session.orders())) == 5
    monkeypatch.delenv("ECOMANAGER_BASE_URL")
    with EcoManagerClient(requests_per_minute=None).session(account) as session:
        assert session.http.base_url == f"https://{account.account}.ecomanager.dz"


def test_a_store_given_as_its_url_is_its_subdomain_and_page_size_is_bounded(sandbox, client, add_store):
    account = add_store(orders=3)
    as_url = account_for(f"https://{account.account}.ecomanager.dz/", account.credentials_env)
    with client.session(as_url) as session:
        assert session.http.base_url.endswith(f"/stores/{account.account}")
        assert len(ids(session.orders())) == 3
    with pytest.raises(ValueError, match="page_size"):
        client.model_copy(update={"page_size": 101}).session(account)


# -------------------------------------------------------------- webhooks
def test_webhooks_are_created_listed_toggled_and_deleted(sandbox, client, add_store):
    account = add_store(orders=5)
    up, down = DeliveryReceiver("/webhooks/ecomanager"), DeliveryReceiver("/webhooks/ecomanager", probe_status=503)
    try:
        with client.session(account) as session:
            hook = session.create_webhook(name="new orders", event="OrderCreated", delivery_url=up.url,
                                          secret="s3cret-value")
            assert hook["is_active"] == 1 and up.probes == 1
            with pytest.raises(RequestFailed) as refused:
                session.create_webhook(name="x", event="OrderDeleted", delivery_url=down.url, secret="s3cret-value")
            assert refused.value.status == 422 and "s3cret-value" not in str(refused.value)
            idle = session.create_webhook(name="idle", event="OrderDeleted", delivery_url=down.url,
                                          secret="s3cret-value", active=False)
            assert [w["id"] for w in session.webhooks()] == [hook["id"], idle["id"]]
            assert session.set_webhook_active(hook["id"], False)["is_active"] == 0
            session.delete_webhook(idle["id"])
            assert [w["id"] for w in session.webhooks()] == [hook["id"]]
        assert down.probes == 1
    finally:
        up.close()
        down.close()
