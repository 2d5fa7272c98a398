"""The confirmation agents new EcoManager orders are handed to, and the bookkeeping of who has what.

Pure (no Dagster): the assets, the sensor and the CLI all read these tables.

- `agents`: who can take orders — `active` (employed; an admin's switch), `available` (on duty right
  now), `capacity` (most open orders at once), optional working hours in their own time zone, the
  stores they serve (NULL = every store), and `rotation`/`last_assigned_at`, which break load ties
  round-robin (the agent assigned longest ago goes first).
- `assignments`: an order's *current* assignment, one row per order — the primary key (account,
  order_id) is the last line of "every order assigned exactly once": whatever the callers do, a
  second row for the same order cannot exist. `state` is open (the agent works on it; counts
  toward their load), closed (the confirmation ended, or the order was deleted) or unassigned
  (back in the queue, `agent_id` still naming who had it). `excluded_agents` lists the agents
  an order was taken from by hand, who never get it back automatically.
- `activity_log`: one row per change (assigned, reassigned, unassigned, closed), kept 30 days by
  the daily cleanup (`retention.py`).
- `assignment_stores`: per store, `assign_from` — only orders created at or after it are assigned,
  so connecting a store with years of history does not hand its backlog out (see `assignment.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import ARRAY

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.defs.ecomanager.tables import SCHEMA

metadata = sa.MetaData()

OPEN, CLOSED, UNASSIGNED = "open", "closed", "unassigned"
AUTO, MANUAL = "auto", "manual"
ASSIGNED, REASSIGNED = "assigned", "reassigned"
ACTIONS = (ASSIGNED, REASSIGNED, UNASSIGNED, CLOSED)

AGENTS = sa.Table(
    "agents", metadata,
    sa.Column("agent_id", sa.Text, primary_key=True, comment="the app's id for the agent (e.g. their user id)"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true(),
              comment="false: left the team; their open orders are reassigned"),
    sa.Column("available", sa.Boolean, nullable=False, server_default=sa.true(),
              comment="false: off duty (break, absent); their open orders are reassigned"),
    sa.Column("capacity", sa.Integer, nullable=False, server_default="20", comment="most open orders at once"),
    sa.Column("stores", ARRAY(sa.Text), comment="the stores (accounts) they serve; NULL = every store"),
    sa.Column("work_start", sa.Time, comment="start of their working hours (local); NULL = any time"),
    sa.Column("work_end", sa.Time, comment="end of their working hours (local, exclusive); before start = overnight"),
    sa.Column("timezone", sa.Text, nullable=False, server_default="Africa/Algiers",
              comment="IANA zone of the working hours"),
    sa.Column("rotation", sa.BigInteger, nullable=False, server_default="0",
              comment="position in the round-robin: larger = assigned more recently"),
    sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.CheckConstraint("capacity >= 0", name="agents_capacity_not_negative"),
    sa.CheckConstraint("(work_start IS NULL) = (work_end IS NULL)", name="agents_hours_both_or_neither"),
    schema=SCHEMA,
    comment="Confirmation agents new orders are assigned to (least-loaded first, ties round-robin).",
)

ASSIGNMENTS = sa.Table(
    "assignments", metadata,
    sa.Column("account", sa.Text, nullable=False, comment="the store"),
    sa.Column("order_id", sa.BigInteger, nullable=False),
    sa.Column("agent_id", sa.Text, sa.ForeignKey(AGENTS.c.agent_id), nullable=False,
              comment="open: who works on it; closed/unassigned: who had it last"),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("changed_by", sa.Text, nullable=False, server_default=AUTO, comment="auto or manual"),
    sa.Column("reason", sa.Text, comment="why it was last unassigned or closed"),
    sa.Column("excluded_agents", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]"),
              comment="agents it was taken from by hand: never given back to them automatically"),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, comment="when the state last changed"),
    sa.PrimaryKeyConstraint("account", "order_id", name="assignments_one_per_order"),
    sa.CheckConstraint(f"state IN ('{OPEN}', '{CLOSED}', '{UNASSIGNED}')", name="assignments_state"),
    sa.CheckConstraint(f"changed_by IN ('{AUTO}', '{MANUAL}')", name="assignments_changed_by"),
    sa.Index("assignments_open_by_agent", "agent_id", postgresql_where=sa.text(f"state = '{OPEN}'")),
    sa.Index("assignments_unassigned", "account", postgresql_where=sa.text(f"state = '{UNASSIGNED}'")),
    schema=SCHEMA,
    comment="Each order's current assignment (one row per order).",
)

ACTIVITY_LOG = sa.Table(
    "activity_log", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("order_id", sa.BigInteger, nullable=False),
    sa.Column("agent_id", sa.Text, comment="the agent it went to (assigned/reassigned) or was taken from"),
    sa.Column("previous_agent_id", sa.Text, comment="reassigned: who had it before"),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("changed_by", sa.Text, nullable=False, server_default=AUTO),
    sa.Column("reason", sa.Text),
    sa.CheckConstraint("action IN (" + ", ".join(f"'{a}'" for a in ACTIONS) + ")", name="activity_log_action"),
    sa.Index("activity_log_at", "at"),  # the daily cleanup deletes by age
    sa.Index("activity_log_order", "account", "order_id"),
    schema=SCHEMA,
    comment="One row per assignment, reassignment, unassignment and closing; kept 30 days.",
)

ASSIGNMENT_STORES = sa.Table(
    "assignment_stores", metadata,
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("assign_from", sa.DateTime(timezone=True), nullable=False,
              comment="orders created before this are history and never assigned automatically"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema=SCHEMA,
    comment="Per store: from when its new orders are assigned to agents.",
)

TABLES = (AGENTS, ASSIGNMENTS, ACTIVITY_LOG, ASSIGNMENT_STORES)


# ------------------------------------------------------------------------------ administration
_AGENT_FIELDS = ("agent_id", "name", "active", "available", "capacity", "stores", "work_start", "work_end",
                 "timezone", "last_assigned_at")
EDITABLE = ("name", "active", "available", "capacity", "stores", "work_start", "work_end", "timezone")


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    active: bool
    available: bool
    capacity: int
    stores: list[str] | None
    work_start: time | None
    work_end: time | None
    timezone: str
    last_assigned_at: datetime | None
    open_orders: int = 0


def check(changes: dict) -> None:
    """Refuse values the tables would refuse, with a sentence instead of a constraint name."""
    if changes.get("capacity") is not None and changes["capacity"] < 0:
        raise ValueError("capacity is the most open orders at once: 0 or more")
    if "timezone" in changes:
        try:
            ZoneInfo(changes["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {changes['timezone']!r} (an IANA name, e.g. Africa/Algiers)") from None
    if (changes.get("work_start") is None) != (changes.get("work_end") is None):
        raise ValueError("working hours need both a start and an end (or neither)")


def add_agent(conn: psycopg.Connection, agent_id: str, name: str, **fields) -> Agent:
    """Create an agent (or overwrite the given fields of an existing one)."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValueError(f"unknown agent fields {sorted(unknown)}")
    check(fields)
    ensure_tables(conn, TABLES)
    values = {"agent_id": agent_id, "name": name, **fields}
    columns = list(values)
    updates = [c for c in columns if c != "agent_id"]
    conn.execute(sql.SQL("INSERT INTO {t} ({c}) VALUES ({v}) ON CONFLICT (agent_id) DO UPDATE SET {u}, updated_at = now()")
                 .format(t=sql.Identifier(SCHEMA, AGENTS.name), c=sql.SQL(", ").join(map(sql.Identifier, columns)),
                         v=sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
                         u=sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates)),
                 values)
    return get_agent(conn, agent_id)


def update_agent(conn: psycopg.Connection, agent_id: str, **changes) -> Agent | None:
    """Change some fields of an agent; None if there is no such agent. Their open orders move at
    the next assignment when they become inactive or unavailable (see `assignment.py`)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"unknown agent fields {sorted(unknown)}")
    if not changes:
        raise ValueError("nothing to change")
    check(changes)
    ensure_tables(conn, TABLES)
    updated = conn.execute(
        sql.SQL("UPDATE {t} SET {u}, updated_at = now() WHERE agent_id = %(agent_id)s")
        .format(t=sql.Identifier(SCHEMA, AGENTS.name),
                u=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in changes)),
        {**changes, "agent_id": agent_id}).rowcount
    return get_agent(conn, agent_id) if updated else None


def list_agents(conn: psycopg.Connection, agent_id: str | None = None) -> list[Agent]:
    """Every agent (or one) with their current load (open assignments)."""
    ensure_tables(conn, TABLES)
    rows = conn.execute(
        sql.SQL("SELECT {f}, (SELECT count(*) FROM {a} x WHERE x.agent_id = g.agent_id AND x.state = %(open)s)"
                " FROM {t} g WHERE %(agent_id)s::text IS NULL OR g.agent_id = %(agent_id)s ORDER BY g.agent_id")
        .format(f=sql.SQL(", ").join(sql.Identifier("g", c) for c in _AGENT_FIELDS),
                a=sql.Identifier(SCHEMA, ASSIGNMENTS.name), t=sql.Identifier(SCHEMA, AGENTS.name)),
        {"open": OPEN, "agent_id": agent_id}).fetchall()
    return [Agent(*row) for row in rows]


def get_agent(conn: psycopg.Connection, agent_id: str) -> Agent | None:
    found = list_agents(conn, agent_id)
    return found[0] if found else None
