"""Table definitions read from the PostgreSQL catalog, and the destination's additive upkeep.

The source's catalog is the truth for columns, types and the primary key: the destination table is
created from it when missing and gains new source columns; nothing is ever dropped or retyped
(a type change is reported, since silently casting could lose data). Type texts come from the
server's own `format_type`, which quotes what needs quoting; identifiers are always quoted.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

# OIDs below this are built into every PostgreSQL server, so their binary COPY format is identical
# on both sides; user types (enums, domains, extensions) get their own OID per database.
FIRST_USER_OID = 16384
# Built-in types without a usable `=`, or whose `=` calls different values equal ('1 mon' =
# '30 days' for interval): compared as text. So is a numeric without a declared scale, where
# 1.0 = 1.00 although the replica would show a different value.
_NO_EQUALITY = {
    "json", "xml", "point", "lseg", "path", "box", "polygon", "line", "circle", "jsonpath",
    "pg_snapshot", "txid_snapshot", "interval",
}


class ReplicationError(RuntimeError):
    """A problem a retry cannot fix (missing table, no primary key, type change): fix, then rerun."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    builtin: bool
    comparable: bool

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.name)


@dataclass(frozen=True)
class TableDef:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    oid: int | None = None

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


_COLUMNS = """
SELECT c.oid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atttypid < %(first_user)s AND (t.typelem = 0 OR t.typelem < %(first_user)s),
       coalesce(e.typname, t.typname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
"""

_PRIMARY_KEY = """
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary AND k.position <= i.indnkeyatts  -- not INCLUDE columns
ORDER BY k.position
"""

# Unique, valid, non-partial, plain-column indexes: any of them can arbitrate ON CONFLICT
# (key columns only: INCLUDE columns are not part of the uniqueness).
_UNIQUE_KEYS = """
SELECT array_agg(a.attname::text ORDER BY a.attname)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL AND k.position <= i.indnkeyatts
GROUP BY i.indexrelid
"""


def read_table(conn: psycopg.Connection, schema: str, table: str) -> TableDef | None:
    """The table's columns (in order) and primary key, or None if there is no such relation."""
    rows = conn.execute(
        _COLUMNS, {"schema": schema, "table": table, "first_user": FIRST_USER_OID}
    ).fetchall()
    if not rows:
        return None
    oid = rows[0][0]
    columns = tuple(
        Column(name=name, type=type_text, not_null=not_null, builtin=builtin,
               comparable=builtin and base not in _NO_EQUALITY and type_text not in ("numeric", "numeric[]"))
        for _, name, type_text, not_null, builtin, base in rows
    )
    key = tuple(r[0] for r in conn.execute(_PRIMARY_KEY, (oid,)))
    return TableDef(schema=schema, name=table, columns=columns, primary_key=key, oid=oid)


def unique_keys(conn: psycopg.Connection, table: TableDef) -> set[frozenset[str]]:
    """Column sets of the table's unique indexes (what `ON CONFLICT (…)` can use)."""
    return {frozenset(r[0]) for r in conn.execute(_UNIQUE_KEYS, (table.oid,))}


def is_empty(conn: psycopg.Connection, table: TableDef) -> bool:
    return conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(table.ident)).fetchone()[0]


def create_table(conn: psycopg.Connection, schema: str, name: str, source: TableDef, *,
                 with_primary_key: bool) -> TableDef:
    """Create the destination from the source definition (the key may be added after a bulk load)."""
    parts = [_column_ddl(c, not_null=c.not_null) for c in source.columns]
    if with_primary_key:
        parts.append(_primary_key_ddl(source.primary_key))
    target = TableDef(schema=schema, name=name, columns=source.columns, primary_key=source.primary_key)
    try:
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target.ident, sql.SQL(", ").join(parts)))
    except psycopg.errors.UndefinedObject as error:
        # A user-defined type (enum, domain, extension type) the destination does not have.
        raise ReplicationError(
            f"cannot create {schema}.{name}: {error.diag.message_primary}; create that type in the"
            " destination database first"
        ) from None
    return target


def add_primary_key(conn: psycopg.Connection, table: TableDef) -> None:
    conn.execute(sql.SQL("ALTER TABLE {} ADD {}").format(table.ident, _primary_key_ddl(table.primary_key)))


def add_columns(conn: psycopg.Connection, table: TableDef, columns: list[Column]) -> None:
    """New source columns join as nullable: existing rows have no value for them yet."""
    for column in columns:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(
                table.ident, _column_ddl(column, not_null=False)
            )
        )


def relax_not_null(conn: psycopg.Connection, source: TableDef, destination: TableDef) -> list[str]:
    """Drop NOT NULL where the source can no longer fill the column: the source dropped the
    constraint, or dropped the column (kept here, but new rows would have no value and no default).
    Without this every later run fails on the first such row."""
    known = {c.name: c for c in source.columns}
    no_default = {
        name for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"
            " AND attnotnull AND NOT atthasdef AND attidentity = '' AND attgenerated = ''",
            (destination.oid,),
        )
    }
    relaxed = [
        c.name for c in destination.columns
        if c.not_null and c.name not in source.primary_key
        and ((c.name in known and not known[c.name].not_null) or (c.name not in known and c.name in no_default))
    ]
    for name in relaxed:
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
            destination.ident, sql.Identifier(name)))
    return relaxed


def check_compatible(source: TableDef, destination: TableDef, unique: set[frozenset[str]]) -> list[Column]:
    """The source columns the destination lacks; raises if a shared column's type differs or the
    destination has no unique key on the source's primary key."""
    missing = []
    for column in source.columns:
        there = destination.column(column.name)
        if there is None:
            missing.append(column)
        elif there.type != column.type:
            raise ReplicationError(
                f"{destination.schema}.{destination.name}.{column.name} is {there.type} but the source"
                f" {source.schema}.{source.name}.{column.name} is {column.type}; types are never changed"
                " automatically: alter the destination column (or recreate the table) and rerun"
            )
    if frozenset(source.primary_key) not in unique:
        raise ReplicationError(
            f"{destination.schema}.{destination.name} has no primary key or unique index on"
            f" ({', '.join(source.primary_key)}), the source's primary key; add one and rerun"
        )
    return missing


def secondary_indexes(conn: psycopg.Connection, table: TableDef) -> list[tuple[str, str]]:
    """(name, definition) of plain indexes that `pg_get_indexdef` recreates exactly: not backing a
    constraint, not the replica identity or the CLUSTER index, no comment, default tablespace.
    Others stay in place during a bulk load (and are maintained row by row)."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s AND x.indisvalid AND NOT x.indisreplident AND NOT x.indisclustered"
        " AND i.reltablespace = 0 AND obj_description(x.indexrelid, 'pg_class') IS NULL"
        " AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = x.indexrelid)"
        " ORDER BY i.relname",
        (table.oid,),
    ).fetchall()


def _column_ddl(column: Column, *, not_null: bool) -> sql.Composed:
    # The type text is the source server's format_type output (quoted where needed), not input.
    ddl = sql.SQL("{} {}").format(column.ident, sql.SQL(column.type))
    return ddl + sql.SQL(" NOT NULL") if not_null else ddl


def _primary_key_ddl(key: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))

