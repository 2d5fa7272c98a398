"""Fixtures of the assignment tests: a store of our own, its orders, agents serving only it.

Imported by the test modules (not a conftest, which the EcoManager sync tests own). The session
database is shared, so every agent serves only this test's stores and everything it made is
deleted afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.defs.ecomanager.agents import add_agent
from sync_pipelines.defs.ecomanager.assignment_queue import ensure_assignment_schema, set_assign_from

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Store:
    def __init__(self, conn, account: str, agent_prefix: str):
        self.conn, self.account, self.prefix = conn, account, agent_prefix
        self.agents: list[str] = []
        self.accounts = [account]
        self.next_id = 1000

    def agent(self, name: str, *, stores: list[str] | None | str = "this store", **fields) -> str:
        agent_id = f"{self.prefix}-{name}"
        add_agent(self.conn, agent_id, name, stores=[self.account] if stores == "this store" else stores, **fields)
        self.agents.append(agent_id)
        return agent_id

    def orders(self, count: int, *, account: str | None = None, created_at: datetime | None = None,
               confirmation_state: str | None = None, order_state: str | None = "Nouvelle") -> list[int]:
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        for offset, order_id in enumerate(ids):
            self.conn.execute(
                "INSERT INTO ecomanager.orders (account, order_id, confirmation_state, order_state, created_at, raw)"
                " VALUES (%s, %s, %s, %s, %s, '{}')",
                (account or self.account, order_id, confirmation_state, order_state,
                 (created_at or T0) + timedelta(seconds=offset)))
        return ids

    def set_order(self, order_id: int, **values) -> None:
        assignments = ", ".join(f"{column} = %({column})s" for column in values)
        self.conn.execute(f"UPDATE ecomanager.orders SET {assignments} WHERE account = %(account)s"
                          " AND order_id = %(order_id)s", {**values, "account": self.account, "order_id": order_id})

    def holder(self, order_id: int, account: str | None = None) -> tuple[str, str] | None:
        """(agent_id, state) of the order's assignment."""
        row = self.conn.execute("SELECT agent_id, state FROM ecomanager.assignments WHERE account = %s"
                                " AND order_id = %s", (account or self.account, order_id)).fetchone()
        return tuple(row) if row else None

    def loads(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT agent_id, count(*) FROM ecomanager.assignments WHERE state = 'open'"
                                 " AND account = ANY(%s) GROUP BY agent_id", (self.accounts,)).fetchall()
        return dict(rows)

    def log(self, order_id: int) -> list[tuple]:
        return self.conn.execute(
            "SELECT action, agent_id, previous_agent_id, changed_by, reason FROM ecomanager.activity_log"
            " WHERE account = %s AND order_id = %s ORDER BY id", (self.account, order_id)).fetchall()


@pytest.fixture
def store(conn, unique):
    """A store whose orders created from T0 - 1 day on are assigned, and a factory of its agents."""
    ensure_assignment_schema(conn)
    made = Store(conn, f"store-{unique}", f"agent-{unique}")
    set_assign_from(conn, made.account, T0 - timedelta(days=1))
    yield made
    for table in ("activity_log", "assignments", "orders", "assignment_stores"):
        conn.execute(f"DELETE FROM ecomanager.{table} WHERE account = ANY(%s)", (made.accounts,))
    conn.execute("DELETE FROM ecomanager.agents WHERE agent_id = ANY(%s)", (made.agents,))
