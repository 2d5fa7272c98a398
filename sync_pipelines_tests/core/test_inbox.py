"""The inbox on a real PostgreSQL: de-duplication, ordering, processing, statistics, purging.

Each test uses its own provider name, so provider-wide counts see only that test's rows.
"""

from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core import inbox


@pytest.fixture
def provider(conn, unique):
    """The test's provider; its deliveries go afterwards (a pending row backdated by a test would
    make every later `/health` in the session unhealthy once it is older than 15 minutes)."""
    name = f"test-{unique}"
    yield name
    conn.execute("DELETE FROM sync.inbox WHERE provider = ANY(%s)", ([name, name + "-b", name + "-other"],))


def _append(conn, provider, delivery_id, account="shop-a", topic="orders/create", **kwargs):
    kwargs.setdefault("payload", {"id": delivery_id})
    return inbox.append(conn, provider=provider, account=account, topic=topic, delivery_id=delivery_id, **kwargs)


def test_append_dedupes_on_delivery_id(conn, provider):
    first, is_new = _append(conn, provider, "d1", payload=b'{"id": 1, "big": 12345678901234567890}',
                            headers={"X-Shopify-Topic": "orders/create"}, event_id="e1")
    again, again_new = _append(conn, provider, "d1", payload=b'{"id": "changed"}')
    third, _ = _append(conn, provider, "d1", payload="{}")
    assert is_new and not again_new
    assert first == again == third
    (event,) = inbox.read_after(conn, provider, 0)
    assert event.duplicates == 2
    assert event.payload == {"id": 1, "big": 12345678901234567890}  # the first delivery wins
    assert event.headers == {"X-Shopify-Topic": "orders/create"}
    assert event.event_id == "e1" and event.processed_at is None


def test_same_delivery_id_under_other_provider_is_distinct(conn, provider):
    a, _ = _append(conn, provider, "same")
    b, is_new = _append(conn, provider + "-other", "same")
    assert is_new and a != b


def test_read_after_orders_by_id_and_limits(conn, provider):
    ids = [_append(conn, provider, f"d{n}", account=f"shop-{n % 2}")[0] for n in range(5)]
    events = inbox.read_after(conn, provider, 0)
    assert [e.id for e in events] == sorted(ids)
    assert [e.id for e in inbox.read_after(conn, provider, ids[1], limit=2)] == ids[2:4]
    assert inbox.read_after(conn, provider, ids[-1]) == []


def test_pending_and_mark_processed(conn, provider):
    ids = [_append(conn, provider, f"d{n}", account="shop-a")[0] for n in range(4)]
    other, _ = _append(conn, provider, "x", account="shop-b")
    assert [e.id for e in inbox.pending(conn, provider, "shop-a")] == ids
    assert [e.id for e in inbox.pending(conn, provider, "shop-a", up_to_id=ids[1])] == ids[:2]
    with conn.transaction():
        locked = inbox.pending(conn, provider, "shop-a", up_to_id=ids[1], lock=True)
        assert inbox.mark_processed(conn, [e.id for e in locked], "run-1") == 2
    assert inbox.mark_processed(conn, [ids[0]], "run-2") == 0  # the first run keeps it
    assert inbox.mark_processed(conn, [], "run-3") == 0
    assert [e.id for e in inbox.pending(conn, provider, "shop-a")] == ids[2:]
    assert [e.id for e in inbox.pending(conn, provider, "shop-b")] == [other]
    done = inbox.read_after(conn, provider, 0)[0]
    assert done.run_id == "run-1" and done.processed_at is not None


def test_stale_accounts(conn, provider):
    old, _ = _append(conn, provider, "old", account="shop-a")
    newer, _ = _append(conn, provider, "newer", account="shop-a")
    _append(conn, provider, "fresh", account="shop-b")
    conn.execute("UPDATE sync.inbox SET received_at = now() - interval '10 minutes' WHERE id = %s", (old,))
    assert inbox.stale_accounts(conn, provider, older_than=timedelta(minutes=5)) == {"shop-a": newer}


def test_stats_counts_lag_and_rejections(conn, provider):
    since = datetime.now(UTC) - timedelta(minutes=1)
    ids = [_append(conn, provider, f"d{n}", triggered_at=datetime.now(UTC))[0] for n in range(5)]
    _append(conn, provider, "d0")
    _append(conn, provider, "no-trigger")
    inbox.mark_processed(conn, ids + [0], "run-1")
    # Lags of 1, 2, 3, 4 and 100 seconds between trigger and processing.
    for event_id, lag in zip(ids, (1, 2, 3, 4, 100), strict=True):
        conn.execute("UPDATE sync.inbox SET processed_at = triggered_at + %s WHERE id = %s",
                     (timedelta(seconds=lag), event_id))
    conn.execute("UPDATE sync.inbox SET received_at = now() - interval '30 seconds'"
                 " WHERE provider = %s AND delivery_id = 'no-trigger'", (provider,))
    for reason in ("bad_signature", "bad_signature", "unknown_account"):
        inbox.record_rejection(conn, provider, reason, account="shop-a" if reason == "unknown_account" else None)

    stats = inbox.stats(conn, provider, since)
    assert stats["received"] == 6
    assert stats["duplicates"] == 1
    assert stats["processed"] == 5
    assert stats["pending"] == 1
    assert 29 <= stats["oldest_pending_age_seconds"] < 60
    assert stats["lag_p50_seconds"] == pytest.approx(3.0)
    assert stats["lag_p95_seconds"] == pytest.approx(4 + 0.8 * 96)  # linear interpolation
    assert stats["rejected_by_reason"] == {"bad_signature": 2, "unknown_account": 1}
    assert inbox.stats(conn, provider, datetime.now(UTC) + timedelta(hours=1))["received"] == 0


def test_stats_of_an_empty_provider(conn, provider):
    stats = inbox.stats(conn, provider, datetime.now(UTC) - timedelta(days=1))
    assert stats == {"received": 0, "duplicates": 0, "processed": 0, "set_aside": 0, "pending": 0,
                     "oldest_pending_age_seconds": None, "lag_p50_seconds": None, "lag_p95_seconds": None,
                     "rejected_by_reason": {}}


def test_backlog_counts_every_provider(conn, provider):
    before = inbox.backlog(conn)["pending"]
    _append(conn, provider, "a")
    _append(conn, provider + "-b", "a")
    after = inbox.backlog(conn)
    assert after["pending"] == before + 2 and after["oldest_pending_age_seconds"] >= 0


def test_purge_processed_keeps_recent_and_pending(conn, provider):
    old, _ = _append(conn, provider, "old")
    recent, _ = _append(conn, provider, "recent")
    waiting, _ = _append(conn, provider, "waiting")
    inbox.mark_processed(conn, [old, recent], "run-1")
    conn.execute("UPDATE sync.inbox SET processed_at = now() - interval '8 days' WHERE id = %s", (old,))
    assert inbox.purge_processed(conn, timedelta(days=7), provider=provider) == 1
    assert [e.id for e in inbox.read_after(conn, provider, 0)] == [recent, waiting]


def test_purge_rejections(conn, provider):
    inbox.record_rejection(conn, provider, "too_large")
    conn.execute("UPDATE sync.webhook_rejections SET received_at = now() - interval '40 days'"
                 " WHERE provider = %s", (provider,))
    inbox.record_rejection(conn, provider, "too_large")
    assert inbox.purge_rejections(conn, timedelta(days=30)) >= 1
    assert inbox.stats(conn, provider, datetime.now(UTC) - timedelta(days=365))["rejected_by_reason"] == {"too_large": 1}


def test_append_rejects_payload_postgres_cannot_store(conn, provider):
    import psycopg

    with pytest.raises(psycopg.DataError):
        _append(conn, provider, "nul", payload=b'{"note": "\\u0000"}')
