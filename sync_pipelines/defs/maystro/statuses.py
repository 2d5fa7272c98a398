"""Maystro statuses into `maystro.shipments`, set-based: per batch one COPY and one statement.

Per batch (100 records, as the seed's sync wrote them): COPY into a temporary table, then one
statement maps each code through `maystro.status_map`, inserts the shipments seen for the first
time, updates only those whose status changed (or that now match one of our orders), and writes a
`maystro.status_history` row for every change, all in the batch's transaction. A code the map
lacks is kept as sent (`status_raw`, `status_code`) with `status_known = false` and counted: never
dropped, never guessed; adding its row to the map (SQL or `sync-pipelines maystro statuses set`)
maps it from the next change on.

Newer wins: a status is applied only when it was observed no earlier than the one stored (a poll
at the time its listing was read, a webhook when it was received), so a late webhook or a
re-delivery never takes a shipment back. The same delivery applied twice changes nothing the
second time, so it writes one history row.

Matching our orders: `OrderMatching` names a table and its reference column (default
`ecomanager.orders.reference`), compared with Maystro's `external_order_id`, then optionally a
column holding Maystro's display id and one holding the tracking number; each batch looks its
values up with `= ANY(%s)` through an index on the column (created when the table has none
starting with it). A table that does not exist (yet) means no matches, not an error. Polls and
webhooks read it from `MAYSTRO_MATCH_*` (`OrderMatching.from_env`), so no code changes for another
orders table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.dialects import postgresql

from sync_pipelines.core.database import ddl_transaction, ensure_tables
from sync_pipelines.core.entities import data_columns, row_builder
from sync_pipelines.defs.maystro.tables import ALL_TABLES, DEFAULT_STATUSES, SHIPMENTS

SOURCES = ("poll", "webhook")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIALECT = postgresql.dialect()


@dataclass
class StatusCounts:
    """What one application did: records read; shipments new, changed (status), unchanged;
    records whose code the map lacks; records matched / not matched to our orders; batches."""

    read: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    unknown: int = 0
    matched: int = 0
    unmatched: int = 0
    invalid: int = 0
    batches: int = 0

    def add(self, other: StatusCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_metadata(self) -> dict[str, int]:
        return {f"statuses_{name}": value for name, value in asdict(self).items()}


MATCH_ENV = {"table": "MAYSTRO_MATCH_TABLE", "reference_column": "MAYSTRO_MATCH_REFERENCE_COLUMN",
             "display_id_column": "MAYSTRO_MATCH_DISPLAY_ID_COLUMN", "tracking_column": "MAYSTRO_MATCH_TRACKING_COLUMN",
             "account_column": "MAYSTRO_MATCH_ACCOUNT_COLUMN"}
"""OrderMatching field → the environment variable that sets it (unset: the field's default)."""


@dataclass(frozen=True)
class OrderMatching:
    """Where our orders are: `table` ("schema.table"), the column holding the reference Maystro
    knows as `external_order_id`, and optionally columns holding Maystro's display id and the
    tracking number (tried in that order for a shipment the reference did not match).
    `account_column`: only orders whose column equals the Maystro account match (when our stores
    share names across providers and references repeat between stores)."""

    table: str = "ecomanager.orders"
    reference_column: str = "reference"
    display_id_column: str | None = None
    tracking_column: str | None = None
    account_column: str | None = None

    def __post_init__(self) -> None:
        parts = self.table.split(".")
        names = [*parts, self.reference_column, self.display_id_column, self.tracking_column, self.account_column]
        if len(parts) != 2 or not all(_IDENTIFIER.match(n) for n in names if n is not None):
            raise ValueError(f"OrderMatching: expected schema.table and plain column names, got "
                             f"{self.table!r}, {self.reference_column!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrderMatching:
        """The matching the deployment configured (`MAYSTRO_MATCH_TABLE`, `…_REFERENCE_COLUMN`,
        `…_DISPLAY_ID_COLUMN`, `…_TRACKING_COLUMN`, `…_ACCOUNT_COLUMN`), read when a poll or a
        webhook applies statuses, so polls and webhooks always match the same way."""
        env = os.environ if environ is None else environ
        chosen = {field: env.get(variable) or None for field, variable in MATCH_ENV.items()}
        try:
            return cls(**{field: value for field, value in chosen.items() if value is not None})
        except ValueError as error:
            named = ", ".join(f"{v}={env[v]!r}" for v in MATCH_ENV.values() if env.get(v))
            raise ValueError(f"Maystro order matching from the environment ({named}): {error}") from None

    def by(self) -> list[tuple[str, str]]:
        """(record field, column) in the order they are tried."""
        pairs = [("external_order_id", self.reference_column), ("display_id", self.display_id_column),
                 ("tracking_number", self.tracking_column)]
        return [(field, column) for field, column in pairs if column]


def ensure_status_tables(conn: psycopg.Connection) -> None:
    """Create the tables and seed the map with Maystro's codes; rows users changed stay theirs."""
    ensure_tables(conn, ALL_TABLES)
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO maystro.status_map (code, label, status) VALUES (%s, %s, %s)"
                            " ON CONFLICT (code) DO NOTHING",
                            [(code, label, status) for code, (label, status) in DEFAULT_STATUSES.items()])


def set_status(conn: psycopg.Connection, code: int, label: str, status: str) -> None:
    """Add or change one code of the map (the CLI's `statuses set`)."""
    ensure_status_tables(conn)
    with conn.transaction():
        conn.execute("INSERT INTO maystro.status_map (code, label, status) VALUES (%s, %s, %s)"
                     " ON CONFLICT (code) DO UPDATE SET label = EXCLUDED.label, status = EXCLUDED.status,"
                     " updated_at = now()", (code, label, status))


def list_statuses(conn: psycopg.Connection) -> list[tuple[int, str, str]]:
    ensure_status_tables(conn)
    return [tuple(r) for r in conn.execute("SELECT code, label, status FROM maystro.status_map ORDER BY code")]


def apply_statuses(conn: psycopg.Connection, account: str, records: Iterable[Mapping[str, Any]], *,
                   source: str, batch_size: int = 100, matching: OrderMatching | None = None,
                   observed_at: datetime | None = None) -> StatusCounts:
    """Apply listed Maystro orders (`list.results[]` records) for `account`, `batch_size` per
    transaction. `observed_at`: when the listing was read (default: each batch's transaction
    time); a status stored with a later time is newer and stays."""
    return _apply(conn, account, records, source=source, batch_size=batch_size, matching=matching,
                  changed_at=observed_at, full=True)


def apply_webhook_status(conn: psycopg.Connection, account: str, payload: Mapping[str, Any],
                         received_at: datetime, *, matching: OrderMatching | None = None) -> StatusCounts:
    """Apply one `OrderStatusChanged` payload `{status, id, display_id_order, external_order_id}`.
    Only the status and the identifiers are written (the listing's other fields stay)."""
    if payload.get("id") in (None, ""):
        raise ValueError("Maystro webhook payload without an order id")
    record = {"id": payload["id"], "display_id": payload.get("display_id_order"),
              "external_order_id": payload.get("external_order_id"), "status": payload.get("status")}
    return _apply(conn, account, [record], source="webhook", batch_size=1, matching=matching,
                  changed_at=received_at, full=False)


# ------------------------------------------------------------------------------ internals
_ALL = data_columns(SHIPMENTS)
_RECORD = [c for c in _ALL if c != "account" and not SHIPMENTS.c[c].info.get("computed")]
_STAGE = [*_RECORD, "status_raw", "status_code", "matched_reference"]
_IDS = ("instance_uuid", "display_id", "external_order_id", "tracking_number")  # kept when a webhook lacks them
_build_row = row_builder(SHIPMENTS)
_PICK = [_ALL.index(c) for c in _RECORD]


def _status_parts(value: Any) -> tuple[str | None, int | None]:
    """(status as sent, as text; its integer code or None when it is not one)."""
    if value is None:
        return None, None
    text = str(value).strip()
    try:
        return text, int(text)
    except ValueError:
        return text, None


def _stage_row(account: str, record: Mapping[str, Any]) -> tuple:
    row = _build_row(account, record)
    raw, code = _status_parts(record.get("status"))
    picked = [row[i] for i in _PICK]
    picked[_RECORD.index("maystro_id")] = str(record["id"])
    return (*picked, raw, code, None)


def _apply(conn: psycopg.Connection, account: str, records: Iterable[Mapping[str, Any]], *, source: str,
           batch_size: int, matching: OrderMatching | None, changed_at: datetime | None,
           full: bool) -> StatusCounts:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    ensure_status_tables(conn)
    matcher = _Matcher(conn, matching or OrderMatching.from_env())
    counts, batch = StatusCounts(), []
    for record in records:
        counts.read += 1
        if not isinstance(record, Mapping) or record.get("id") in (None, ""):
            counts.invalid += 1
            continue
        batch.append(record)
        if len(batch) >= batch_size:
            counts.add(_apply_batch(conn, account, batch, source, matcher, changed_at, full))
            batch = []
    if batch:
        counts.add(_apply_batch(conn, account, batch, source, matcher, changed_at, full))
    return counts


def _apply_batch(conn: psycopg.Connection, account: str, records: list[Mapping[str, Any]], source: str,
                 matcher: _Matcher, changed_at: datetime | None, full: bool) -> StatusCounts:
    by_id = {str(r["id"]): r for r in records}  # a listing that shifted while paged repeats records
    rows = [list(_stage_row(account, r)) for r in by_id.values()]
    matches = matcher.match(conn, account, [dict(zip(_STAGE, row)) for row in rows])
    for row, reference in zip(rows, matches):
        row[-1] = reference
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(_STAGE_DDL)
            with cur.copy(sql.SQL("COPY maystro_stage ({}) FROM STDIN").format(
                    sql.SQL(", ").join(map(sql.Identifier, _STAGE)))) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(_STATEMENT, {"account": account, "source": source, "changed_at": changed_at,
                                     "full": full})
            new, changed, unknown = cur.fetchone()
    matched = sum(m is not None for m in matches)
    return StatusCounts(read=0, new=new, changed=changed, unchanged=len(rows) - new - changed, unknown=unknown,
                        matched=matched, unmatched=len(rows) - matched, batches=1)


def _stage_ddl() -> str:
    columns = ", ".join(f'"{c}" {SHIPMENTS.c[c].type.compile(dialect=_DIALECT)}' for c in _STAGE)
    return f"CREATE TEMP TABLE maystro_stage ({columns}) ON COMMIT DROP"


_STAGE_DDL = _stage_ddl()


def _statement() -> sql.Composed:
    """The one statement a batch runs (see the module docstring)."""
    ident = sql.Identifier
    other = [c for c in _RECORD if c not in ("maystro_id", *_IDS)]
    insert_cols = ["account", *_RECORD, "status_raw", "status_code", "status_label", "status", "status_known",
                   "status_changed_at", "matched_reference"]
    insert_vals = [sql.SQL("%(account)s"), *[sql.SQL("c.{}").format(ident(x)) for x in _RECORD],
                   sql.SQL("c.status_raw"), sql.SQL("c.status_code"), sql.SQL("c.label"), sql.SQL("c.mapped"),
                   sql.SQL("c.mapped IS NOT NULL"), sql.SQL("c.at"), sql.SQL("c.matched_reference")]
    sets = [sql.SQL("{0} = COALESCE(c.{0}, sh.{0})").format(ident(x)) for x in (*_IDS, "matched_reference")]
    sets += [sql.SQL("{0} = CASE WHEN %(full)s AND c.status_changed THEN c.{0} ELSE sh.{0} END").format(ident(x))
             for x in other]
    status_sets = {"status_raw": "c.status_raw", "status_code": "c.status_code", "status_label": "c.label",
                   "status": "c.mapped", "status_known": "c.mapped IS NOT NULL", "status_changed_at": "c.at"}
    sets += [sql.SQL("{} = CASE WHEN c.status_changed THEN " + expr + " ELSE sh.{} END").format(ident(x), ident(x))
             for x, expr in status_sets.items()]
    sets.append(sql.SQL("synced_at = now()"))
    return sql.SQL("""
WITH incoming AS (
    SELECT s.*, m.label, m.status AS mapped, COALESCE(%(changed_at)s::timestamptz, now()) AS at
    FROM maystro_stage s LEFT JOIN maystro.status_map m ON m.code = s.status_code
), c AS (
    SELECT i.*, sh.maystro_id IS NULL AS is_new, sh.status_code AS old_code,
           sh.maystro_id IS NOT NULL AND sh.status_raw IS DISTINCT FROM i.status_raw
             AND (sh.status_changed_at IS NULL OR sh.status_changed_at <= i.at) AS status_changed,
           (i.matched_reference IS NOT NULL AND sh.matched_reference IS DISTINCT FROM i.matched_reference)
             OR (i.tracking_number IS NOT NULL AND sh.tracking_number IS DISTINCT FROM i.tracking_number)
             OR (i.display_id IS NOT NULL AND sh.display_id IS DISTINCT FROM i.display_id) AS relinked
    FROM incoming i
    LEFT JOIN maystro.shipments sh ON sh.account = %(account)s AND sh.maystro_id = i.maystro_id
), inserted AS (
    INSERT INTO maystro.shipments ({insert_cols})
    SELECT {insert_vals} FROM c WHERE c.is_new
    ON CONFLICT (account, maystro_id) DO NOTHING
    RETURNING maystro_id, external_order_id, status_code, status_raw, status, status_changed_at
), updated AS (
    UPDATE maystro.shipments sh SET {sets}
    FROM c
    WHERE sh.account = %(account)s AND sh.maystro_id = c.maystro_id AND (c.status_changed OR c.relinked)
    RETURNING sh.maystro_id, sh.external_order_id, c.old_code, sh.status_code, sh.status_raw, sh.status,
              sh.status_changed_at, c.status_changed
), history AS (
    INSERT INTO maystro.status_history (account, maystro_id, external_order_id, old_code, new_code,
                                        new_status_raw, status, source, changed_at)
    SELECT %(account)s, maystro_id, external_order_id, NULL, status_code, status_raw, status, %(source)s,
           status_changed_at FROM inserted
    UNION ALL
    SELECT %(account)s, maystro_id, external_order_id, old_code, status_code, status_raw, status, %(source)s,
           status_changed_at FROM updated WHERE status_changed
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated WHERE status_changed),
       (SELECT count(*) FROM incoming WHERE mapped IS NULL)
""").format(insert_cols=sql.SQL(", ").join(map(ident, insert_cols)),
            insert_vals=sql.SQL(", ").join(insert_vals), sets=sql.SQL(", ").join(sets))


_STATEMENT = _statement()


class _Matcher:
    """Finds our order for each shipment through the configured table, by index."""

    def __init__(self, conn: psycopg.Connection, matching: OrderMatching) -> None:
        self.matching = matching
        schema, table = matching.table.split(".")
        self.table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
        self.enabled = exists is not None
        if not self.enabled:
            return
        types = dict(conn.execute(
            "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = %s", (schema, table)).fetchall())
        self.integer_columns = set()
        if matching.account_column and matching.account_column not in types:
            raise ValueError(f"OrderMatching: {matching.table} has no column {matching.account_column!r}")
        for _, column in matching.by():
            if column not in types:
                raise ValueError(f"OrderMatching: {matching.table} has no column {column!r}")
            if types[column] in ("int2", "int4", "int8"):
                self.integer_columns.add(column)
            _ensure_index(conn, schema, table, column)

    def match(self, conn: psycopg.Connection, account: str, rows: list[dict[str, Any]]) -> list[str | None]:
        """Our order's reference for each row (None: no match)."""
        found: list[str | None] = [None] * len(rows)
        if not self.enabled:
            return found
        for field, column in self.matching.by():
            wanted = {str(r[field]) for r, f in zip(rows, found) if f is None and r.get(field) not in (None, "")}
            if not wanted:
                continue
            values: list[Any] = sorted(wanted)
            if column in self.integer_columns:  # compared in the column's own type, so its index serves
                values = [int(v) for v in values if re.fullmatch(r"-?\d{1,18}", v)]
            query = sql.SQL("SELECT {col}::text, {ref}::text FROM {table} WHERE {col} = ANY(%s)").format(
                col=sql.Identifier(column), ref=sql.Identifier(self.matching.reference_column), table=self.table)
            params: tuple = (values,)
            if self.matching.account_column:
                query += sql.SQL(" AND {} = %s").format(sql.Identifier(self.matching.account_column))
                params = (values, account)
            hits = dict(conn.execute(query, params).fetchall())
            found = [f if f is not None else hits.get(str(r.get(field))) for r, f in zip(rows, found)]
        return found


def _ensure_index(conn: psycopg.Connection, schema: str, table: str, column: str) -> None:
    """An index whose first column is `column`, unless the table already has one; under the DDL
    lock, so two stores' first polls do not both create it."""
    with ddl_transaction(conn):
        _create_index_if_missing(conn, schema, table, column)


def _create_index_if_missing(conn: psycopg.Connection, schema: str, table: str, column: str) -> None:
    has = conn.execute(
        "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = to_regclass(%s) AND a.attname = %s",
        (f'"{schema}"."{table}"', column)).fetchone()
    if has is None:
        name = f"{table}_{column}_maystro_match"[:63]
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} ({})").format(
            sql.Identifier(name), sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)))
