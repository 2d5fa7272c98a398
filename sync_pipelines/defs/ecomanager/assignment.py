"""Hand new EcoManager orders to agents, exactly once: `assign_pending`, `unassign`, `pending_work`.

Call `assign_pending(conn, [store])` after every write of a store's orders (a sync, a webhook
apply) and `assign_pending(conn)` when `pending_work(conn)` says an agent could take a waiting
order. Each call, in one transaction:

1. locks every agent row (`SELECT … FOR UPDATE`, in agent_id order): concurrent callers — two
   runs, a sync and a webhook apply — queue here, and each sees what the previous one committed
   (READ COMMITTED, checked). The primary key of `assignments` (one row per order) is the last
   line: even a caller that skipped the lock could not give an order a second assignment;
2. closes the assignments whose order is finished (confirmed, cancelled, delivered, returned,
   deleted): the agent's capacity is free again (activity `closed`);
3. unassigns the open orders of agents who were deactivated, made unavailable, or no longer serve
   the store (activity `unassigned`): they join the queue and, in step 4, go to someone else
   (activity `reassigned`, naming the previous agent);
4. walks the queue (`assignment_queue.py`: what waits and why), longest-waiting first, giving
   each order to the least-loaded agent on duty who serves its store and has room (load = their
   open assignments, across stores; capacity = most open at once), ties to the agent assigned
   longest ago (round-robin). An order nobody can take stays in the queue — visible in the view
   `ecomanager.assignment_queue` and `waiting_orders` — and is assigned by a later call.

Reassignment rules: an agent deactivated or made unavailable (or whose stores no longer include
the order's) loses their *open* orders to the queue; working hours only gate new assignments (an
agent's orders stay with them overnight); lowering a capacity below the load takes nothing away.
An order unassigned by hand (`unassign`) goes back to the queue and is never given back to that
agent automatically. A closed assignment stays closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from sync_pipelines.defs.ecomanager.agents import (
    ACTIVITY_LOG,
    AGENTS,
    ASSIGNED,
    AUTO,
    CLOSED,
    MANUAL,
    OPEN,
    REASSIGNED,
    UNASSIGNED,
)
from sync_pipelines.defs.ecomanager.assignment_queue import (
    ASSIGNMENTS_SQL,
    ORDERS_SQL,
    QUEUE_SQL,
    _name,
    agent_on_duty,
    ensure_assignment_schema,
    is_finished,
    register_stores,
)
from sync_pipelines.defs.ecomanager.provider import NAME

AGENTS_SQL, LOG_SQL = _name(AGENTS), _name(ACTIVITY_LOG)


@dataclass
class AssignmentResult:
    """What one call did, for materialization metadata."""

    assigned: int = 0
    reassigned: int = 0
    waiting: int = 0
    closed: int = 0
    unassigned: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {"orders_assigned": self.assigned, "orders_reassigned": self.reassigned,
                "orders_waiting_for_agent": self.waiting, "assignments_closed": self.closed,
                "assignments_unassigned": self.unassigned, "assigned_by_agent": dict(sorted(self.by_agent.items()))}


@dataclass
class _Agent:
    agent_id: str
    stores: list[str] | None
    capacity: int
    rotation: int
    on_duty: bool


def _filter(column: str, accounts: Sequence[str] | None) -> str:
    return f" AND {column} = ANY(%(accounts)s)" if accounts is not None else ""


def assign_pending(conn: psycopg.Connection, accounts: Sequence[str] | None = None, *,
                   now: datetime | None = None) -> AssignmentResult:
    """Close finished assignments, free the orders of agents who left, and assign the waiting
    orders of `accounts` (None: every store). Safe to call any number of times, concurrently."""
    now = now or datetime.now(UTC)
    ensure_assignment_schema(conn)
    result = AssignmentResult()
    if accounts is not None and not accounts:
        return result
    params = {"now": now, "accounts": sorted(set(accounts)) if accounts is not None else None}
    with conn.transaction():
        level = conn.execute("SHOW transaction_isolation").fetchone()[0]
        if level != "read committed":  # a snapshot older than the lock would not see the previous holder's rows
            raise RuntimeError(f"assign_pending needs READ COMMITTED, not {level}")
        agents = [_Agent(*row) for row in conn.execute(
            f"SELECT g.agent_id, g.stores, g.capacity, g.rotation, {agent_on_duty('g', '%(now)s')}"
            f" FROM {AGENTS_SQL} g ORDER BY g.agent_id FOR UPDATE", params)]
        register_stores(conn, NAME, params["accounts"], now)
        result.closed = _close_finished(conn, params)
        result.unassigned = _release_from_agents_gone(conn, params)
        loads = Counter(dict(conn.execute(
            f"SELECT agent_id, count(*) FROM {ASSIGNMENTS_SQL} WHERE state = '{OPEN}' GROUP BY agent_id").fetchall()))
        if not any(a.on_duty and loads[a.agent_id] < a.capacity for a in agents):  # nobody can take one: count
            result.waiting = conn.execute(f"SELECT count(*) FROM {QUEUE_SQL} WHERE true"
                                          f"{_filter('account', params['accounts'])}", params).fetchone()[0]
            return result
        queue = conn.execute(
            f"SELECT account, order_id, previous_agent_id, excluded_agents, reason FROM {QUEUE_SQL}"
            f" WHERE true{_filter('account', params['accounts'])} ORDER BY waiting_since, account, order_id",
            params).fetchall()
        if not queue:
            return result
        plan = _plan(queue, [a for a in agents if a.on_duty], loads, max((a.rotation for a in agents), default=0))
        written = _write(conn, plan, params)
        rotations = {agent.agent_id: agent.rotation for agent in agents}  # advanced by _plan
        used = sorted({agent_id for _, _, agent_id, _, _ in written})
        if used:
            conn.execute(f"UPDATE {AGENTS_SQL} g SET rotation = r.rotation, last_assigned_at = %(now)s"
                         " FROM unnest(%(ids)s::text[], %(rotations)s::bigint[]) r(agent_id, rotation)"
                         " WHERE g.agent_id = r.agent_id",
                         {**params, "ids": used, "rotations": [rotations[i] for i in used]})
    for _, _, agent_id, previous, _ in written:
        if previous is None:
            result.assigned += 1
        else:
            result.reassigned += 1
        result.by_agent[agent_id] = result.by_agent.get(agent_id, 0) + 1
    result.waiting = len(queue) - len(written)
    return result


def _plan(queue, ready: list[_Agent], loads: Counter, rotation: int) -> list[tuple]:
    """(account, order_id, agent_id, previous_agent_id, reason) per order someone can take:
    least-loaded first, then the one assigned longest ago, then agent_id."""
    plan = []
    for account, order_id, previous, excluded, reason in queue:
        if all(loads[a.agent_id] >= a.capacity for a in ready):
            break  # everyone is full: the rest waits
        best = None
        for agent in ready:
            if loads[agent.agent_id] >= agent.capacity or agent.agent_id in excluded:
                continue
            if agent.stores is not None and account not in agent.stores:
                continue
            if best is None or (loads[agent.agent_id], agent.rotation, agent.agent_id) < (
                    loads[best.agent_id], best.rotation, best.agent_id):
                best = agent
        if best is None:
            continue
        loads[best.agent_id] += 1
        rotation += 1
        best.rotation = rotation
        plan.append((account, order_id, best.agent_id, previous, reason))
    return plan


def _write(conn: psycopg.Connection, plan: list[tuple], params: dict) -> list[tuple]:
    """Insert the first assignments (ON CONFLICT DO NOTHING: the key is the last line) and move the
    unassigned ones to their new agent, logging each row actually written; those rows."""
    fresh = [p for p in plan if p[3] is None]
    moved = [p for p in plan if p[3] is not None]
    written = []
    if fresh:
        rows = conn.execute(
            f"WITH ins AS (INSERT INTO {ASSIGNMENTS_SQL} (account, order_id, agent_id, state, changed_by,"
            " assigned_at, updated_at)"
            f" SELECT r.account, r.order_id, r.agent_id, '{OPEN}', '{AUTO}', %(now)s, %(now)s"
            " FROM unnest(%(a)s::text[], %(o)s::bigint[], %(g)s::text[]) r(account, order_id, agent_id)"
            " ON CONFLICT (account, order_id) DO NOTHING RETURNING account, order_id, agent_id)"
            f" INSERT INTO {LOG_SQL} (at, account, order_id, agent_id, action, changed_by)"
            f" SELECT %(now)s, account, order_id, agent_id, '{ASSIGNED}', '{AUTO}' FROM ins"
            " RETURNING account, order_id, agent_id",
            {**params, "a": [p[0] for p in fresh], "o": [p[1] for p in fresh], "g": [p[2] for p in fresh]}).fetchall()
        written += [(a, o, g, None, None) for a, o, g in rows]
    if moved:
        rows = conn.execute(
            f"WITH upd AS (UPDATE {ASSIGNMENTS_SQL} x SET agent_id = r.agent_id, state = '{OPEN}',"
            f" changed_by = '{AUTO}', assigned_at = %(now)s, updated_at = %(now)s, reason = NULL"
            " FROM unnest(%(a)s::text[], %(o)s::bigint[], %(g)s::text[], %(p)s::text[], %(r)s::text[])"
            " r(account, order_id, agent_id, previous, reason)"
            f" WHERE x.account = r.account AND x.order_id = r.order_id AND x.state = '{UNASSIGNED}'"
            " AND x.agent_id = r.previous RETURNING x.account, x.order_id, x.agent_id, r.previous, r.reason)"
            f" INSERT INTO {LOG_SQL} (at, account, order_id, agent_id, previous_agent_id, action, changed_by, reason)"
            f" SELECT %(now)s, account, order_id, agent_id, previous, '{REASSIGNED}', '{AUTO}', reason FROM upd"
            " RETURNING account, order_id, agent_id, previous_agent_id, reason",
            {**params, "a": [p[0] for p in moved], "o": [p[1] for p in moved], "g": [p[2] for p in moved],
             "p": [p[3] for p in moved], "r": [p[4] for p in moved]}).fetchall()
        written += [tuple(row) for row in rows]
    return written


def _close_finished(conn: psycopg.Connection, params: dict) -> int:
    """Close open or unassigned assignments whose order is finished; how many."""
    return conn.execute(
        "WITH finished AS ("
        " SELECT a.account, a.order_id, CASE WHEN o.account IS NULL THEN 'order no longer stored'"
        " WHEN o.deleted_at IS NOT NULL THEN 'order deleted'"
        " ELSE concat_ws(', ', 'confirmation: ' || o.confirmation_state, 'order: ' || o.order_state,"
        " CASE WHEN o.confirmed_at IS NOT NULL THEN 'confirmed' END) END AS reason"
        f" FROM {ASSIGNMENTS_SQL} a LEFT JOIN {ORDERS_SQL} o ON o.account = a.account AND o.order_id = a.order_id"
        f" WHERE a.state IN ('{OPEN}', '{UNASSIGNED}') AND {is_finished('o')}{_filter('a.account', params['accounts'])}"
        f"), closed AS (UPDATE {ASSIGNMENTS_SQL} x SET state = '{CLOSED}', changed_by = '{AUTO}', reason = f.reason,"
        " updated_at = %(now)s FROM finished f WHERE x.account = f.account AND x.order_id = f.order_id"
        f" AND x.state IN ('{OPEN}', '{UNASSIGNED}') RETURNING x.account, x.order_id, x.agent_id, x.reason)"
        f" INSERT INTO {LOG_SQL} (at, account, order_id, agent_id, action, changed_by, reason)"
        f" SELECT %(now)s, account, order_id, agent_id, '{CLOSED}', '{AUTO}', reason FROM closed", params).rowcount


def _release_from_agents_gone(conn: psycopg.Connection, params: dict) -> int:
    """Unassign the open orders of agents deactivated, unavailable, or no longer serving the store."""
    return conn.execute(
        f"WITH released AS (UPDATE {ASSIGNMENTS_SQL} x SET state = '{UNASSIGNED}', changed_by = '{AUTO}',"
        " updated_at = %(now)s, reason = CASE WHEN NOT g.active THEN 'agent deactivated'"
        " WHEN NOT g.available THEN 'agent unavailable' ELSE 'agent no longer serves the store' END"
        f" FROM {AGENTS_SQL} g WHERE g.agent_id = x.agent_id AND x.state = '{OPEN}'"
        " AND (NOT g.active OR NOT g.available OR (g.stores IS NOT NULL AND NOT x.account = ANY(g.stores)))"
        f"{_filter('x.account', params['accounts'])} RETURNING x.account, x.order_id, x.agent_id, x.reason)"
        f" INSERT INTO {LOG_SQL} (at, account, order_id, agent_id, action, changed_by, reason)"
        f" SELECT %(now)s, account, order_id, agent_id, '{UNASSIGNED}', '{AUTO}', reason FROM released",
        params).rowcount


def unassign(conn: psycopg.Connection, account: str, order_id: int, reason: str, *,
             now: datetime | None = None) -> str | None:
    """Take an order from its agent by hand: back to the queue, never automatically to them again.
    The agent it was taken from, or None when it had no open assignment."""
    ensure_assignment_schema(conn)
    with conn.transaction():
        row = conn.execute(
            f"WITH taken AS (UPDATE {ASSIGNMENTS_SQL} SET state = '{UNASSIGNED}', changed_by = '{MANUAL}',"
            " reason = %(reason)s, updated_at = %(now)s, excluded_agents = CASE WHEN agent_id = ANY(excluded_agents)"
            " THEN excluded_agents ELSE array_append(excluded_agents, agent_id) END"
            f" WHERE account = %(account)s AND order_id = %(order_id)s AND state = '{OPEN}'"
            " RETURNING account, order_id, agent_id)"
            f" INSERT INTO {LOG_SQL} (at, account, order_id, agent_id, action, changed_by, reason)"
            f" SELECT %(now)s, account, order_id, agent_id, '{UNASSIGNED}', '{MANUAL}', %(reason)s FROM taken"
            " RETURNING agent_id",
            {"account": account, "order_id": order_id, "reason": reason, "now": now or datetime.now(UTC)}).fetchone()
    return row[0] if row else None


def pending_work(conn: psycopg.Connection, accounts: Sequence[str] | None = None, *,
                 now: datetime | None = None) -> bool:
    """Whether `assign_pending` would change anything: an order waits and an agent on duty who
    serves its store has room, or an assignment must be closed or freed. Cheap (for a sensor):
    it reads the open assignments and the queue, never the stores' history."""
    ensure_assignment_schema(conn)
    params = {"now": now or datetime.now(UTC), "accounts": list(accounts) if accounts is not None else None}
    accounts_sql = params["accounts"]
    return conn.execute(
        "SELECT EXISTS ("
        f" SELECT 1 FROM {QUEUE_SQL} q JOIN {AGENTS_SQL} g ON {agent_on_duty('g', '%(now)s')}"
        " AND (g.stores IS NULL OR q.account = ANY(g.stores)) AND NOT g.agent_id = ANY(q.excluded_agents)"
        f" WHERE g.capacity > (SELECT count(*) FROM {ASSIGNMENTS_SQL} x WHERE x.agent_id = g.agent_id"
        f" AND x.state = '{OPEN}'){_filter('q.account', accounts_sql)}"
        ") OR EXISTS ("
        f" SELECT 1 FROM {ASSIGNMENTS_SQL} x JOIN {AGENTS_SQL} g ON g.agent_id = x.agent_id WHERE x.state = '{OPEN}'"
        " AND (NOT g.active OR NOT g.available OR (g.stores IS NOT NULL AND NOT x.account = ANY(g.stores)))"
        f"{_filter('x.account', accounts_sql)}"
        ") OR EXISTS ("
        f" SELECT 1 FROM {ASSIGNMENTS_SQL} a LEFT JOIN {ORDERS_SQL} o ON o.account = a.account"
        f" AND o.order_id = a.order_id WHERE a.state IN ('{OPEN}', '{UNASSIGNED}') AND {is_finished('o')}"
        f"{_filter('a.account', accounts_sql)})", params).fetchone()[0]
