"""`paginate_body_cursor`: an opaque cursor carried in the body (Laravel's cursorPaginate shape)."""

from __future__ import annotations

from collections.abc import Iterator
from types import GeneratorType

import pytest

from sync_pipelines.core.http import MalformedResponseError, paginate_body_cursor
from sync_pipelines_tests.core.test_http import FakeClock, ScriptedServer, make_client


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def page(items, next_cursor, *, per_page=2):
    """A body shaped like Laravel's cursor paginator (the shape EcoManager's v2 lists answer)."""
    return {"data": items,
            "links": {"first": None, "last": None, "prev": None,
                      "next": f"/orders?cursor={next_cursor}" if next_cursor else None},
            "meta": {"path": "/orders", "per_page": per_page, "next_cursor": next_cursor, "prev_cursor": None}}


def test_follows_meta_next_cursor_lazily_and_keeps_the_params(server, clock):
    server.script("/orders", (200, page([{"id": 9}, {"id": 8}], "c1")),
                  (200, page([{"id": 7}, {"id": 6}], "c2")),
                  (200, page([{"id": 5}], None)))
    with make_client(server, clock) as client:
        pages = paginate_body_cursor(client, "/orders", params={"per_page": 2, "sort": "-id"})
        assert isinstance(pages, GeneratorType)
        assert next(pages) == [{"id": 9}, {"id": 8}]
        assert len(server.hits("/orders")) == 1  # nothing fetched ahead of the caller
        assert list(pages) == [[{"id": 7}, {"id": 6}], [{"id": 5}]]
    queries = [h["query"] for h in server.hits("/orders")]
    assert queries[0] == {"per_page": ["2"], "sort": ["-id"]}  # no cursor on the first page
    assert queries[1] == {"per_page": ["2"], "sort": ["-id"], "cursor": ["c1"]}
    assert queries[2] == {"per_page": ["2"], "sort": ["-id"], "cursor": ["c2"]}


def test_stopping_early_costs_only_the_pages_read(server, clock):
    server.script("/orders", *[(200, page([{"id": n}], f"c{n}")) for n in range(1, 10)])
    with make_client(server, clock) as client:
        for number, items in enumerate(paginate_body_cursor(client, "/orders"), start=1):
            if number == 3:
                break
    assert len(server.hits("/orders")) == 3


@pytest.mark.parametrize("meta", [{"next_cursor": None}, {"next_cursor": ""}, {}, None])
@pytest.mark.parametrize("links", [None, {"next": None}, {"next": ""}])
def test_stops_without_a_next_cursor_or_link(server, clock, meta, links):
    body = {"data": [{"id": 1}], **({"meta": meta} if meta is not None else {}),
            **({"links": links} if links is not None else {})}
    server.script("/orders", (200, body), (200, page([{"id": 0}], None)))
    with make_client(server, clock) as client:
        assert list(paginate_body_cursor(client, "/orders")) == [[{"id": 1}]]
    assert len(server.hits("/orders")) == 1


def test_stops_on_an_empty_page_despite_a_cursor(server, clock):
    server.script("/orders", (200, page([{"id": 1}], "c1")), (200, page([], "c2")), (200, page([{"id": 0}], None)))
    with make_client(server, clock) as client:
        assert list(paginate_body_cursor(client, "/orders")) == [[{"id": 1}], []]
    assert len(server.hits("/orders")) == 2


def test_custom_items_key_cursor_path_and_param(server, clock):
    server.script("/things", (200, {"results": [1], "paging": {"after": "A"}}),
                  (200, {"results": [2], "paging": {"after": None}}))
    with make_client(server, clock) as client:
        pages = list(paginate_body_cursor(client, "/things", items_key="results", cursor_path="paging.after",
                                          cursor_param="after"))
    assert pages == [[1], [2]]
    assert server.hits("/things")[1]["query"] == {"after": ["A"]}


def test_a_repeated_cursor_is_a_loop(server, clock):
    server.script("/orders", (200, page([{"id": 2}], "same")), (200, page([{"id": 1}], "same")))
    with make_client(server, clock) as client:
        with pytest.raises(MalformedResponseError, match="loop"):
            list(paginate_body_cursor(client, "/orders"))
    assert len(server.hits("/orders")) == 2


def test_without_a_cursor_a_next_link_is_followed_with_the_params_it_lacks(server, clock):
    base = server.url
    server.script("/orders", (200, {"data": [{"id": 1}], "links": {"next": f"{base}/orders?page=2"},
                                    "meta": {"current_page": 1}}),
                  (200, {"data": [{"id": 2}], "links": {"next": "/orders?page=3&per_page=1"}}),
                  (200, {"data": [{"id": 3}], "links": {"next": None}}))
    with make_client(server, clock) as client:
        assert list(paginate_body_cursor(client, "/orders", params={"per_page": 1, "sort": "-id"})) == [
            [{"id": 1}], [{"id": 2}], [{"id": 3}]]
    queries = [h["query"] for h in server.hits("/orders")]
    assert queries[1] == {"page": ["2"], "per_page": ["1"], "sort": ["-id"]}
    assert queries[2] == {"page": ["3"], "per_page": ["1"], "sort": ["-id"]}  # per_page not sent twice


def test_a_next_link_loop_or_another_origin_is_refused(server, clock):
    server.script("/loop", (200, {"data": [1], "links": {"next": "/loop?page=2"}}),
                  (200, {"data": [2], "links": {"next": "/loop?page=2"}}))
    server.script("/away", (200, {"data": [1], "links": {"next": "https://evil.example/away?page=2"}}))
    with make_client(server, clock) as client:
        with pytest.raises(MalformedResponseError, match="loop"):
            list(paginate_body_cursor(client, "/loop"))
        with pytest.raises(ValueError, match="another origin"):
            list(paginate_body_cursor(client, "/away"))
        server.script("/nolinks", (200, {"data": [1], "links": {"next": "/nolinks?page=2"}}))
        assert list(paginate_body_cursor(client, "/nolinks", next_link_path=None)) == [[1]]
    assert len(server.hits("/loop")) == 2 and len(server.hits("/away")) == 1


def test_gives_up_after_max_pages(server, clock):
    server.script("/orders", *[(200, page([{"id": n}], f"c{n}")) for n in range(1, 6)])
    with make_client(server, clock) as client:
        pages = paginate_body_cursor(client, "/orders", max_pages=2)
        assert [next(pages), next(pages)] == [[{"id": 1}], [{"id": 2}]]
        with pytest.raises(MalformedResponseError, match="did not end after 2 pages"):
            next(pages)
    assert len(server.hits("/orders")) == 2


def test_a_page_without_its_list_is_malformed(server, clock):
    server.script("/orders", (200, {"meta": {"next_cursor": None}}))
    with make_client(server, clock, malformed_retries=1) as client:
        with pytest.raises(MalformedResponseError, match="no list under 'data'"):
            list(paginate_body_cursor(client, "/orders"))
    assert client.stats.malformed == 2


def test_a_cursor_given_in_params_is_not_sent_twice(server, clock):
    server.script("/orders", (200, page([{"id": 1}], None)))
    with make_client(server, clock) as client:
        list(paginate_body_cursor(client, "/orders", params={"cursor": "stale", "per_page": 1}))
    assert server.hits("/orders")[0]["query"] == {"per_page": ["1"]}
