"""Which EcoManager orders wait for an agent: the rules, as SQL, and the `ecomanager.assignment_queue` view.

An order **waits** (is in the queue) when either
- it has never been assigned, and it is *new*: not deleted, not confirmed (`confirmed_at` empty),
  its confirmation state one of `NEW_CONFIRMATION_STATES` (empty/NULL, "En attente", …: what a
  fresh order carries), and created at or after its store's `assign_from`; or
- it was unassigned (its agent left or went off duty, or someone took it away by hand) and it is
  not finished yet.

An assignment is **finished** — closed, freeing the agent's capacity — when its order is deleted
(or gone), confirmed (`confirmed_at` set), or its confirmation or order state is one of the
`CLOSED_…` states (confirmed, cancelled, delivered, returned). Any other state ("Injoignable",
"Reporté", …) keeps an open assignment open: the agent calls again later.

States are compared as EcoManager sends them in French, case- and accent-insensitively
("Confirmé", "CONFIRME" and "confirmée" are one), since the v2 resource names them in free text
(`confirmation_state_name`, `order_state_name`).

The store's `assign_from` is what keeps history out: when a store is first seen by the assigner it
is the moment the store was connected (its registry row's `created_at`), else that first moment;
`sync-pipelines agents assign-from STORE TIME` moves it (e.g. back a day, to include the orders
that arrived just before the connection).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from sync_pipelines.core.database import ddl_transaction, ensure_tables
from sync_pipelines.core.registry import INTEGRATIONS
from sync_pipelines.defs.ecomanager.agents import ASSIGNMENT_STORES, ASSIGNMENTS, TABLES, UNASSIGNED
from sync_pipelines.defs.ecomanager.tables import ORDERS, SCHEMA

NEW_CONFIRMATION_STATES = ("", "En attente", "Nouvelle", "Nouveau", "Nouvelle commande")
"""A never-assigned order is handed out only in one of these (the empty string stands for NULL)."""
CLOSED_CONFIRMATION_STATES = ("Confirmé", "Confirmée", "Annulé", "Annulée")
CLOSED_ORDER_STATES = ("Annulé", "Annulée", "Livré", "Livrée", "Retourné", "Retournée")

QUEUE_VIEW = "assignment_queue"
_ready: set[str] = set()
_ready_lock = threading.Lock()


def fold(state: str | None) -> str:
    """A state as compared: lowercase, without accents, trimmed ("Confirmé " → "confirme")."""
    decomposed = unicodedata.normalize("NFKD", (state or "").strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_ACCENTED, _PLAIN = "éèêëÉÈÊËàâäÀÂÄîïÎÏôöÔÖûùüÛÙÜçÇ", "eeeeeeeeaaaaaaiiiioooouuuuuucc"


def _folded_sql(column: str) -> str:
    """SQL folding a state the way `fold` does, for French accents (immutable: usable in an index)."""
    return f"translate(lower(btrim(coalesce({column}, ''))), '{_ACCENTED}', '{_PLAIN}')"


def _in(column: str, states: Iterable[str]) -> str:
    folded = sorted({fold(s) for s in states})
    return f"{_folded_sql(column)} IN ({', '.join(sql.Literal(s).as_string(None) for s in folded)})"


def is_new(o: str | None = "o") -> str:
    """SQL: the order aliased `o` (None: unqualified columns) may be assigned for the first time."""
    p = f"{o}." if o else ""
    return (f"{p}deleted_at IS NULL AND {p}confirmed_at IS NULL"
            f" AND {_in(f'{p}confirmation_state', NEW_CONFIRMATION_STATES)}")


def is_finished(o: str = "o") -> str:
    """SQL: an assignment of the order aliased `o` (LEFT JOINed: absent counts) is over."""
    return (f"({o}.account IS NULL OR {o}.deleted_at IS NOT NULL OR {o}.confirmed_at IS NOT NULL"
            f" OR {_in(f'{o}.confirmation_state', CLOSED_CONFIRMATION_STATES)}"
            f" OR {_in(f'{o}.order_state', CLOSED_ORDER_STATES)})")


def agent_on_duty(g: str, now: str) -> str:
    """SQL: agent `g` takes new orders at instant `now` (active, available, within working hours;
    hours with the end before the start run overnight)."""
    local = f"(({now}) AT TIME ZONE {g}.timezone)::time"
    return (f"({g}.active AND {g}.available AND ({g}.work_start IS NULL OR CASE WHEN {g}.work_start <= {g}.work_end"
            f" THEN {local} >= {g}.work_start AND {local} < {g}.work_end"
            f" ELSE {local} >= {g}.work_start OR {local} < {g}.work_end END))")


def _name(table) -> str:
    return sql.Identifier(table.schema, table.name).as_string(None)


ORDERS_SQL, ASSIGNMENTS_SQL, STORES_SQL = _name(ORDERS), _name(ASSIGNMENTS), _name(ASSIGNMENT_STORES)
QUEUE_SQL = sql.Identifier(SCHEMA, QUEUE_VIEW).as_string(None)

_QUEUE_DEFINITION = f"""
SELECT o.account, o.order_id, o.created_at AS waiting_since, NULL::text AS previous_agent_id,
       '{{}}'::text[] AS excluded_agents, NULL::text AS reason
  FROM {STORES_SQL} s
  JOIN {ORDERS_SQL} o ON o.account = s.account AND o.created_at >= s.assign_from
 WHERE {is_new('o')}
   AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENTS_SQL} a WHERE a.account = o.account AND a.order_id = o.order_id)
UNION ALL
SELECT a.account, a.order_id, a.updated_at, a.agent_id, a.excluded_agents, a.reason
  FROM {ASSIGNMENTS_SQL} a
  LEFT JOIN {ORDERS_SQL} o ON o.account = a.account AND o.order_id = a.order_id
 WHERE a.state = '{UNASSIGNED}' AND NOT {is_finished('o')}
"""


def ensure_assignment_schema(conn: psycopg.Connection) -> None:
    """The agent tables, the queue view, and an index on the orders still new (so finding the
    queue costs the open orders, not the store's history); once per process and database."""
    ensure_tables(conn, [ORDERS, INTEGRATIONS, *TABLES])
    key = conn.info.dsn
    if key in _ready:
        return
    with ddl_transaction(conn):
        conn.execute(f"CREATE INDEX IF NOT EXISTS orders_new_for_assignment ON {ORDERS_SQL} (account, created_at)"
                     f" WHERE {is_new(None)}")
        conn.execute(f"CREATE OR REPLACE VIEW {QUEUE_SQL} AS {_QUEUE_DEFINITION}")
        conn.execute(f"COMMENT ON VIEW {QUEUE_SQL} IS 'Orders waiting for an agent, oldest first by waiting_since'")
    with _ready_lock:
        _ready.add(key)


@dataclass(frozen=True)
class WaitingOrder:
    account: str
    order_id: int
    waiting_since: datetime
    previous_agent_id: str | None
    reason: str | None


def waiting_orders(conn: psycopg.Connection, accounts: Sequence[str] | None = None,
                   *, limit: int | None = None) -> list[WaitingOrder]:
    """The orders waiting for an agent (the `assignment_queue` view), the longest-waiting first."""
    ensure_assignment_schema(conn)
    where = "WHERE account = ANY(%(accounts)s)" if accounts is not None else ""
    rows = conn.execute(f"SELECT account, order_id, waiting_since, previous_agent_id, reason FROM {QUEUE_SQL} {where}"
                        " ORDER BY waiting_since, account, order_id LIMIT %(limit)s",
                        {"accounts": list(accounts or []), "limit": limit}).fetchall()
    return [WaitingOrder(*row) for row in rows]


def register_stores(conn: psycopg.Connection, provider: str, accounts: Sequence[str] | None,
                    now: datetime) -> None:
    """Give each store seen for the first time its `assign_from`: when it was connected (registry),
    else `now` — to the second, as EcoManager stamps its orders (an order created in the second the
    store was connected is new, not history). `accounts=None`: every store of the registry."""
    integrations = _name(INTEGRATIONS)
    if accounts is None:
        source = (f"SELECT i.account, date_trunc('second', i.created_at) FROM {integrations} i"
                  " WHERE i.provider = %(provider)s"
                  " ORDER BY i.account")
    else:
        source = (f"SELECT s.account, date_trunc('second', coalesce(i.created_at, %(now)s))"
                  " FROM unnest(%(accounts)s::text[]) s(account)"
                  f" LEFT JOIN {integrations} i ON i.provider = %(provider)s AND i.account = s.account"
                  " ORDER BY s.account")  # one order for every caller: concurrent inserts cannot deadlock
    conn.execute(f"INSERT INTO {STORES_SQL} (account, assign_from) {source} ON CONFLICT (account) DO NOTHING",
                 {"provider": provider, "accounts": sorted(set(accounts or [])), "now": now})


def set_assign_from(conn: psycopg.Connection, account: str, assign_from: datetime) -> None:
    """Assign the store's orders created at or after `assign_from` (earlier ones are history)."""
    if assign_from.tzinfo is None:
        raise ValueError("assign_from needs a UTC offset or time zone")
    ensure_assignment_schema(conn)
    conn.execute(f"INSERT INTO {STORES_SQL} (account, assign_from) VALUES (%s, %s) ON CONFLICT (account)"
                 " DO UPDATE SET assign_from = excluded.assign_from, updated_at = now()", (account, assign_from))

