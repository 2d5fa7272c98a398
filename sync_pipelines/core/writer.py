"""The one write engine: staged COPY → one set-based upsert, or COPY straight into an empty table.

Every stream kind writes through it: API entity streams (rows built in Python, `write_batch`),
webhook deliveries, and table replication (COPY blocks streamed from the source database into
`staging`, then `merge`). What differs between them is declared on the `WriteTarget`, not coded:

- the **unchanged-row prefilter**: staged rows reach `ON CONFLICT` only if a primary-key probe
  (`LATERAL … LIMIT 1`, one index probe per row whatever the statistics say) finds them new or
  different, because `ON CONFLICT` locks — and WAL-logs — every conflicting row even when its
  `WHERE` then skips it. `IS DISTINCT FROM` decides "different" (no dead tuple, no `synced_at`
  bump for an unchanged record); columns whose type has no usable `=` are compared as text;
- **newer wins** (`updated_at`): an older incoming version never overwrites a newer stored one;
- **soft deletes** (`deleted_at`): a row marked deleted is revived only by a version updated after
  the delete (webhook streams: a late retry must not undo it), or — when the listing that staged
  it is authoritative (`revive_when_seen`) — by being listed again;
- **delete propagation**: after a complete read, rows whose key was not read are deleted (hard,
  `delete_unstaged`) or marked deleted (soft, `soft_delete_missing`, with a mass-deletion guard).

Call it inside the caller's transaction, so a cursor that covers the rows commits with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.core.database import qualified
from sync_pipelines.core.entities import data_columns, key_columns


class MassDeleteRefused(RuntimeError):
    """A delete propagation would remove too large a share of the live rows; nothing was deleted."""


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True)
class WriteTarget:
    """What the writer must know of a destination table; built from an entity table
    (`of_table`) or from a catalog read (replication)."""

    table: sql.Composable  # the qualified table name
    label: str  # schema.table, for the staging table's name
    columns: tuple[str, ...]  # what is staged and written, in COPY order
    keys: tuple[str, ...]
    text_compared: frozenset[str] = frozenset()  # types without a usable `=`
    updated_at: str | None = None  # newer wins on this column
    deleted_at: str | None = None  # soft-delete marker
    revive_when_seen: bool = False  # a listed (live) version clears `deleted_at`
    stamp: str | None = None  # set to now() whenever the row is written
    overriding_system_value: bool = False  # keep given values in GENERATED ALWAYS columns
    account: str | None = None  # the column scoping delete propagation to one account
    non_keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "non_keys", tuple(c for c in self.columns if c not in self.keys))

    @classmethod
    def of_table(cls, table: sa.Table, *, revive_when_seen: bool = False) -> WriteTarget:
        columns = tuple(data_columns(table))
        return cls(
            table=qualified(table),
            label=table.fullname,
            columns=columns,
            keys=tuple(key_columns(table)),
            updated_at="source_updated_at" if "source_updated_at" in columns else None,
            deleted_at="deleted_at" if "deleted_at" in columns else None,
            revive_when_seen=revive_when_seen,
            stamp="synced_at" if "synced_at" in table.columns else None,
            account="account" if "account" in columns else None,
        )


class TableWriter:
    """Stages and merges rows into one table (see the module docstring for the rules)."""

    def __init__(self, target: WriteTarget):
        self.target = target
        self.columns = list(target.columns)
        self.keys = list(target.keys)
        self._key_positions = [self.columns.index(k) for k in self.keys]
        self._updated_position = self.columns.index(target.updated_at) if target.updated_at else None
        self.staging = sql.Identifier(("_stage_" + target.label.replace(".", "_"))[:63])
        self._cols = sql.SQL(", ").join(map(sql.Identifier, self.columns))
        # pg_temp: never a permanent table of that name. Dropped first: a staging table made
        # in an earlier savepoint of this transaction outlives the savepoint.
        self._create_staging = sql.SQL(
            "DROP TABLE IF EXISTS pg_temp.{stage}; CREATE TEMP TABLE {stage} ON COMMIT DROP"
            " AS SELECT {cols} FROM {target} WITH NO DATA"
        ).format(stage=self.staging, cols=self._cols, target=target.table)
        self._merge = self._merge_statement()
        self._merge_by: dict[str, sql.Composed] = {}

    # -- staging ---------------------------------------------------------------------------
    def create_staging(self, conn: psycopg.Connection) -> None:
        """An empty staging table shaped like the written columns; it lives until commit."""
        conn.execute(self._create_staging)

    def copy_statement(self, into: sql.Composable | None = None, *, binary: bool = False,
                       freeze: bool = False) -> sql.Composed:
        """`COPY … FROM STDIN` into staging, or (bulk load) straight into `into`."""
        options = ["FORMAT BINARY" if binary else "FORMAT TEXT"] + (["FREEZE"] if freeze else [])
        return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
            into if into is not None else self.staging, self._cols, sql.SQL(", ".join(options)))

    # -- writing ---------------------------------------------------------------------------
    def _stage(self, conn: psycopg.Connection, rows: Sequence[tuple]) -> list[tuple]:
        """A fresh staging table holding one row per key (`_last_per_key`); those rows."""
        unique = self._last_per_key(rows)
        self.create_staging(conn)
        with conn.cursor().copy(self.copy_statement()) as copy:
            for row in unique:
                copy.write_row(row)
        return unique

    def write_batch(self, conn: psycopg.Connection, rows: Sequence[tuple]) -> WriteCounts:
        """Upsert Python rows (in `columns` order); must run inside a transaction."""
        if not rows:
            return WriteCounts()
        unique = self._stage(conn, rows)
        counts = self.merge(conn, len(unique))
        counts.unchanged += len(rows) - len(unique)
        return counts

    def write_batch_by(self, conn: psycopg.Connection, rows: Sequence[tuple], column: str) -> dict[Any, WriteCounts]:
        """`write_batch` with the counts per value of `column` (e.g. per account, when one batch
        holds many accounts' rows): one COPY and one merge, whatever the number of values."""
        if not rows:
            return {}
        position = self.columns.index(column)
        unique = self._stage(conn, rows)
        statement = self._merge_by.get(column)
        if statement is None:
            statement = self._merge_by[column] = self._merge_statement(group_by=column)
        written = {value: (inserted, updated) for value, inserted, updated in conn.execute(statement).fetchall()}
        counts: dict[Any, WriteCounts] = {}
        for row in rows:
            counts.setdefault(row[position], WriteCounts()).unchanged += 1
        for value, total in counts.items():
            inserted, updated = written.get(value, (0, 0))
            total.inserted, total.updated, total.unchanged = inserted, updated, total.unchanged - inserted - updated
        return counts

    def merge(self, conn: psycopg.Connection, staged: int) -> WriteCounts:
        """Insert new keys and update changed rows from staging; the rest count as unchanged."""
        inserted, updated = conn.execute(self._merge).fetchone()
        return WriteCounts(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)

    def delete_unstaged(self, conn: psycopg.Connection) -> int:
        """Hard-delete rows whose key is not staged: staging must hold a whole-table read."""
        conn.execute(sql.SQL("ANALYZE {}").format(self.staging))  # temp tables get no autovacuum stats
        return conn.execute(
            sql.SQL("DELETE FROM {} AS t WHERE NOT EXISTS (SELECT FROM {} AS s WHERE {})").format(
                self.target.table, self.staging, self._key_match("s", "t"))
        ).rowcount

    def replace_window(self, conn: psycopg.Connection, rows: Sequence[tuple], *, account: str, column: str,
                       first: Any, last: Any) -> WriteCounts:
        """Make the account's rows with `column` in [first, last] exactly `rows`: upsert them (the
        unchanged ones are not rewritten) and hard-delete the window's rows that are not among
        them — a restated window, where a row that vanished upstream vanishes here. Runs in the
        caller's transaction, so readers see the old window or the new one, never a mix. Every
        row must belong to the account and the window (anything else is a caller's error)."""
        target = self.target
        if not target.account:
            raise ValueError(f"{target.label}: replacing a window needs an account column")
        unique = self._stage(conn, rows)
        (strays,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {s} WHERE {acc} IS DISTINCT FROM %s OR {col} IS NULL"
                    " OR {col} NOT BETWEEN %s AND %s").format(
                s=self.staging, acc=sql.Identifier(target.account), col=sql.Identifier(column)),
            (account, first, last)).fetchone()
        if strays:
            raise ValueError(f"{target.label} [{account}]: {strays} rows outside the window {first}..{last} (or of"
                             " another account) were handed to replace_window")
        counts = self.merge(conn, len(unique))
        counts.unchanged += len(rows) - len(unique)
        counts.deleted += conn.execute(
            sql.SQL("DELETE FROM {t} AS t WHERE t.{acc} = %s AND t.{col} BETWEEN %s AND %s"
                    " AND NOT EXISTS (SELECT FROM {s} AS s WHERE {match})").format(
                t=target.table, acc=sql.Identifier(target.account), col=sql.Identifier(column),
                s=self.staging, match=self._key_match("s", "t")),
            (account, first, last)).rowcount
        return counts

    def soft_delete_missing(
        self, conn: psycopg.Connection, account: str, seen: sql.Composable, *, listed_since: datetime,
        max_delete_fraction: float = 0.5, scope: sql.Composable | None = None, scope_params: dict | None = None,
    ) -> int:
        """Mark deleted the account's live rows that a complete listing did not return.

        `seen` is a table (or query) with the listed keys (the non-account key columns). Only
        rows the listing could have returned are candidates: live, not written since
        `listed_since` (a row written during the listing may be a record created after its page
        was read), and within `scope`. More than `max_delete_fraction` of them is refused with
        `MassDeleteRefused`, deleting nothing: an empty or cut-short listing is likelier than a
        mass delete. Runs in its own savepoint.
        """
        target = self.target
        if not (target.deleted_at and target.account and target.stamp):
            raise ValueError(f"{target.label}: soft deletes need account, deleted_at and synced_at columns")
        keys = [k for k in self.keys if k != target.account]
        where = sql.SQL("{acc} = %(account)s AND {deleted} IS NULL AND {stamp} < %(since)s").format(
            acc=sql.Identifier(target.account), deleted=sql.Identifier(target.deleted_at),
            stamp=sql.Identifier(target.stamp))
        if scope is not None:
            where += sql.SQL(" AND ") + scope
        params = {"account": account, "since": listed_since, **(scope_params or {})}
        with conn.transaction():
            deleted = conn.execute(
                sql.SQL("UPDATE {t} AS t SET {deleted} = now(), {stamp} = now() WHERE {where}"
                        " AND NOT EXISTS (SELECT FROM {seen} AS s WHERE {match})").format(
                    t=target.table, deleted=sql.Identifier(target.deleted_at), stamp=sql.Identifier(target.stamp),
                    where=where, seen=seen,
                    match=sql.SQL(" AND ").join(sql.SQL("s.{0} = t.{0}").format(sql.Identifier(k)) for k in keys)),
                params,
            ).rowcount
            if not deleted:  # the usual case: no second scan of the account's rows for the guard
                return 0
            # The rows just marked no longer match `where`: live before = still live + marked.
            live = deleted + conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(target.table, where),
                                          params).fetchone()[0]
            if deleted > max_delete_fraction * live:
                raise MassDeleteRefused(  # leaving the savepoint rolls the UPDATE back
                    f"{target.label}: the listing would soft-delete {deleted} of {live} live rows of account"
                    f" {account} (more than {max_delete_fraction:.0%}); nothing deleted — an incomplete listing is"
                    f" likelier than a mass delete (raise max_delete_fraction to confirm one)")
        return deleted

    # -- SQL -------------------------------------------------------------------------------
    def _merge_statement(self, group_by: str | None = None) -> sql.Composed:
        t = self.target
        staged = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in self.columns)
        # LATERAL … LIMIT 1: one primary-key probe per staged row (a hash join would scan the
        # whole table for every page of a sync).
        rows = sql.SQL(
            "SELECT {staged} FROM {stage} AS s"
            " LEFT JOIN LATERAL (SELECT * FROM {target} AS o WHERE {match} LIMIT 1) AS o ON true"
            " WHERE o.{first_key} IS NULL"
        ).format(staged=staged, stage=self.staging, target=t.table, match=self._key_match("o", "s"),
                 first_key=sql.Identifier(self.keys[0]))
        if t.non_keys:
            rows += sql.SQL(" OR ({})").format(self._guard("o", "s"))
            assignments = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in t.non_keys]
            if t.stamp:
                assignments.append(sql.SQL("{} = now()").format(sql.Identifier(t.stamp)))
            action = sql.SQL("DO UPDATE SET {} WHERE {}").format(sql.SQL(", ").join(assignments),
                                                                  self._guard("t", "EXCLUDED"))
        else:
            action = sql.SQL("DO NOTHING")
        return sql.SQL(
            "WITH written AS ("
            " INSERT INTO {target} AS t ({cols}){overriding} {rows}"
            " ON CONFLICT ({keys}) {action}"
            " RETURNING {returned}(xmax = 0) AS inserted)"
            " SELECT {grouped}count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
            "{group}"
        ).format(
            target=t.table, cols=self._cols,
            returned=sql.SQL("t.{} AS _group, ").format(sql.Identifier(group_by)) if group_by else sql.SQL(""),
            grouped=sql.SQL("_group, " if group_by else ""),
            group=sql.SQL(" GROUP BY _group" if group_by else ""),
            # A replica keeps the source's values, also in a GENERATED ALWAYS AS IDENTITY column.
            overriding=sql.SQL(" OVERRIDING SYSTEM VALUE" if t.overriding_system_value else ""),
            rows=rows, keys=sql.SQL(", ").join(map(sql.Identifier, self.keys)), action=action,
        )

    def _guard(self, old: str, new: str) -> sql.Composed:
        """Write the new version only if it differs and is not older, and clear `deleted_at` only
        as the target allows. Aliases are constants of this module."""
        t = self.target

        def ref(alias: str, column: str) -> sql.Composed:
            return sql.SQL(alias + ".") + sql.Identifier(column)

        def compared(alias: str, column: str) -> sql.Composable:
            return sql.SQL("{}::text").format(ref(alias, column)) if column in t.text_compared else ref(alias, column)

        guard = sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(compared(old, c) for c in t.non_keys),
            sql.SQL(", ").join(compared(new, c) for c in t.non_keys),
        )
        if t.updated_at:
            at_old, at_new = ref(old, t.updated_at), ref(new, t.updated_at)
            guard += sql.SQL(" AND ({} IS NULL OR {} IS NULL OR {} >= {})").format(at_old, at_new, at_new, at_old)
        if t.deleted_at and not t.revive_when_seen:
            # Revived only by a version made after the delete itself (a late retry of an edit
            # made before it must not undo it); without an updated-at nothing shows that.
            newer = (sql.SQL("COALESCE({} > {}, false)").format(ref(new, t.updated_at), ref(old, t.deleted_at))
                     if t.updated_at else sql.SQL("false"))
            guard += sql.SQL(" AND ({} IS NULL OR {} IS NOT NULL OR {})").format(
                ref(old, t.deleted_at), ref(new, t.deleted_at), newer)
        return guard

    def _key_match(self, left: str, right: str) -> sql.Composed:
        return sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(sql.Identifier(left), sql.Identifier(k), sql.Identifier(right),
                                            sql.Identifier(k))
            for k in self.keys)

    def _last_per_key(self, rows: Sequence[tuple]) -> list[tuple]:
        """One row per key — the newest by provider updated-at, else the last seen — since an
        upsert may not touch the same row twice (and deliveries may arrive out of order)."""
        positions, at = self._key_positions, self._updated_position
        latest: dict[tuple, tuple] = {}
        for row in rows:
            key = tuple(row[i] for i in positions)
            kept = latest.get(key)
            if kept is not None and at is not None and None not in (kept[at], row[at]) and row[at] < kept[at]:
                continue
            latest[key] = row
        return list(latest.values())


class UpsertWriter(TableWriter):
    """The writer of an entity table (`core.entities`), rows in `data_columns(table)` order."""

    def __init__(self, table: sa.Table, *, revive_when_seen: bool = False):
        super().__init__(WriteTarget.of_table(table, revive_when_seen=revive_when_seen))
        self.table = table
