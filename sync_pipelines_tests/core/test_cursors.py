from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core import cursors
from sync_pipelines.core.database import ensure_tables


def test_cursor_commits_and_rolls_back_with_the_transaction(conn, unique):
    ensure_tables(conn, [cursors.CURSORS])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with conn.transaction():
        cursors.save(conn, "s", unique, t0)
    assert cursors.load(conn, "s", unique) == t0

    with pytest.raises(RuntimeError):
        with conn.transaction():
            cursors.save(conn, "s", unique, t0 + timedelta(hours=1))
            raise RuntimeError("crash before commit")
    assert cursors.load(conn, "s", unique) == t0


def test_cursor_never_moves_backwards_and_compares_instants(conn, unique):
    ensure_tables(conn, [cursors.CURSORS])
    later = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with conn.transaction():
        cursors.save(conn, "s", unique, later)
        # 02:00+01:00 is 01:00Z: earlier as an instant though larger as a string.
        cursors.save(conn, "s", unique, datetime.fromisoformat("2026-03-29T02:00:00+01:00"))
    assert cursors.load(conn, "s", unique) == later
    with conn.transaction():
        cursors.reset(conn, "s", unique)
    assert cursors.load(conn, "s", unique) is None
