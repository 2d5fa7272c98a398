"""Page-numbered listings fetched with several requests in flight, yielded in page order.

An API that pages by number (`?page=N`) and says how many records there are lets a client ask for
pages 2..N at once instead of one after another. Every request still goes through the account's
one `HttpClient`, so its rate limiter (thread-safe, shared by the threads) paces them all and its
statistics count them all; concurrency only hides latency, it never raises the request rate.

Bounded: at most `max_in_flight` pages are requested or waiting to be yielded at any time (a page
is asked for only when it is fewer than `max_in_flight` pages ahead of the one the caller reads),
so memory holds at most that many pages whatever the listing's length. An error on a page is
raised when that page's turn comes, after the pages before it were yielded; then, or when the
caller stops reading, pending requests are cancelled and the threads joined before the generator
returns (a request already sent finishes within the client's timeout): no thread outlives it.

How many pages: from the first page (`Page.total_pages`, e.g. ceil(count / page size)), extended
while the last planned page still says there is a next one (records added while paging push the
listing's end further); without a total, pages are asked for speculatively until one says there is
no next page, and what was fetched past it (including its errors) is discarded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sync_pipelines.core.http import MAX_PAGES, HttpClient, MalformedResponseError

DEFAULT_MAX_IN_FLIGHT = 10


@dataclass(frozen=True)
class Page:
    """One page as the provider's reader understood it."""

    items: list[dict[str, Any]]
    has_next: bool
    total_pages: int | None = None
    """How many pages the listing has, as this page says (None: it does not say)."""


def concurrent_pages(client: HttpClient, fetch: Callable[[int], Page], *, first: int = 1,
                     max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                     max_pages: int = MAX_PAGES) -> Iterator[list[dict[str, Any]]]:
    """Yield the items of pages `first`, `first + 1`, … in order, `fetch(n)` running on up to
    `max_in_flight` threads (each call goes through `client`). Stops after a page that is empty
    or says there is no next page; more than `max_pages` pages raises MalformedResponseError."""
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be >= 1")
    page = fetch(first)
    yield page.items
    if not page.items or not page.has_next:
        return
    last = page.total_pages + first - 1 if page.total_pages is not None else None
    next_submit = next_yield = first + 1
    pending: dict[int, Future[Page]] = {}
    pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix=f"pages-{client.integration}")
    stop = threading.Event()

    def guarded(number: int) -> Page:
        if stop.is_set():  # queued before the stop: not sent at all
            raise _Cancelled
        return fetch(number)

    try:
        while True:
            while (len(pending) < max_in_flight and next_submit < next_yield + max_in_flight
                   and (last is None or next_submit <= last)):
                if next_submit - first >= max_pages:
                    break
                pending[next_submit] = pool.submit(guarded, next_submit)
                next_submit += 1
            if next_yield not in pending:
                raise client._error(MalformedResponseError, f"pagination did not end after {max_pages} pages",
                                    "/", hint="the provider kept offering a next page")
            page = pending.pop(next_yield).result()
            yield page.items
            if not page.items or not page.has_next:
                return
            next_yield += 1
            if last is not None:
                total = page.total_pages + first - 1 if page.total_pages is not None else last
                last = max(last, total, next_yield)  # the listing grew while we paged: follow it
    finally:
        stop.set()
        for future in pending.values():
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class _Cancelled(Exception):
    """A page requested before the caller stopped: never sent, never read."""
