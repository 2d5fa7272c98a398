"""Entity tables: the typed columns users query, plus the raw provider record.

Every entity table has the same bookkeeping columns: `account` (first part of the key, so two
stores with the same provider id never collide), `raw` (the provider's JSON as `jsonb`),
`source_updated_at` (the provider's own updated-at) and `synced_at`. A typed column names where
its value lives in the record with `info={"path": "a.b"}` (default: the column name). A column
named `deleted_at` marks soft deletes, which the writer undoes only for a version updated after the delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.rowcodec import dumps_json, raw_json

BOOKKEEPING = ("raw", "source_updated_at", "synced_at")


@dataclass(frozen=True)
class ColumnInfo:
    """A destination column as reports and the UI show it."""

    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    description: str | None = None


def entity_table(
    metadata: sa.MetaData,
    schema: str,
    name: str,
    *columns: sa.Column,
    key: Sequence[str],
    updated_at_path: str | None = None,
    soft_delete: bool = False,
    naive_timestamps_in: str | None = None,
    comment: str | None = None,
) -> sa.Table:
    """Declare an entity table keyed by (account, *key).

    `soft_delete` adds `deleted_at`, which delete propagation sets for a record a complete
    listing no longer returns (the row stays, marked), and a listing that returns it clears.
    `naive_timestamps_in`: the IANA zone a timestamp without a UTC offset is in (a provider whose
    API prints its own wall-clock time, e.g. `2025-04-26 14:30:00`); unset, such a value is refused.
    """
    if soft_delete:
        columns = (*columns, sa.Column("deleted_at", sa.DateTime(timezone=True),
                                       comment="when the record was found gone upstream"))
    table = sa.Table(
        name,
        metadata,
        sa.Column("account", sa.Text, nullable=False, comment="connected account (store/tenant)"),
        *columns,
        sa.Column("raw", JSONB, nullable=False, comment="the provider's record, unmodified"),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), comment="provider's updated-at"),
        sa.Column(
            "synced_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
            comment="when this row last changed here",
        ),
        sa.PrimaryKeyConstraint("account", *key),
        schema=schema,
        comment=comment,
    )
    table.info["updated_at_path"] = updated_at_path
    table.info["naive_zone"] = ZoneInfo(naive_timestamps_in) if naive_timestamps_in else None
    return table


def key_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def data_columns(table: sa.Table) -> list[str]:
    """Columns a sync writes (everything but `synced_at`, which the database stamps)."""
    return [c.name for c in table.columns if c.name != "synced_at"]


def record_keys(table: sa.Table) -> set[str]:
    """The top-level keys of a provider record that the table's rows are built from (what a
    projected page decode must keep): each column's path head, and the updated-at's."""
    keys = set()
    for column in table.columns:
        if column.name in ("account", "raw", "synced_at", "source_updated_at") or (
                column.name == "deleted_at" and "path" not in column.info):
            continue
        keys.add(column.info.get("path", column.name).split(".", 1)[0])
    if table.info.get("updated_at_path"):
        keys.add(table.info["updated_at_path"].split(".", 1)[0])
    return keys


def describe_columns(table: sa.Table) -> list[ColumnInfo]:
    """The table's columns for reports and the UI."""
    keys = set(key_columns(table))
    return [ColumnInfo(name=c.name, type=str(c.type.compile(dialect=postgresql.dialect())), nullable=c.nullable,
                       primary_key=c.name in keys, description=c.comment) for c in table.columns]


def dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def parse_instant(value: Any, naive_zone: ZoneInfo | None = None) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime; instants are compared, never strings. One
    without a UTC offset is read in `naive_zone`, and refused when there is none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        if naive_zone is None:
            raise ValueError(f"timestamp without a UTC offset: {value!r}")
        parsed = parsed.replace(tzinfo=naive_zone)
    return parsed


def row_builder(table: sa.Table) -> Callable[[str, Mapping[str, Any]], tuple]:
    """A function turning (account, provider record) into a row in `data_columns` order."""
    getters: list[Callable[[str, Mapping[str, Any]], Any]] = []
    updated_at_path = table.info.get("updated_at_path")
    zone = table.info.get("naive_zone")
    for column in table.columns:
        name = column.name
        if name == "synced_at":
            continue
        if name == "account":
            getters.append(lambda account, record: account)
        elif name == "raw":
            getters.append(lambda account, record: raw_json(record))
        elif name == "deleted_at" and "path" not in column.info:
            getters.append(lambda account, record: None)  # set by delete propagation, not the record
        elif name == "source_updated_at":
            if updated_at_path:
                updated_at = digger(updated_at_path)
                getters.append(lambda account, record: parse_instant(updated_at(record), zone))
            else:
                getters.append(lambda account, record: None)
        else:
            getters.append(_getter(column, zone))

    def build(account: str, record: Mapping[str, Any]) -> tuple:
        return tuple([get(account, record) for get in getters])

    return build


def key_builder(table: sa.Table) -> Callable[[Mapping[str, Any]], tuple]:
    """A function turning a provider record into its key (the key columns but `account`)."""
    getters = [_getter(table.columns[name], table.info.get("naive_zone")) for name in key_columns(table)
               if name != "account"]

    def key(record: Mapping[str, Any]) -> tuple:
        return tuple(get("", record) for get in getters)

    return key
def digger(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """`lambda record: dig(record, path)`, faster (the path split once, dicts — records from a
    page are a dict subclass — read with `dict.get` without an `isinstance(…, Mapping)` check)."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        key = parts[0]

        def get_one(record: Mapping[str, Any]) -> Any:
            if isinstance(record, dict):
                return record.get(key)
            return record.get(key) if isinstance(record, Mapping) else None

        return get_one

    def get_path(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for part in parts:
            if not isinstance(value, dict) and not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get_path


def _getter(column: sa.Column, naive_zone: ZoneInfo | None = None) -> Callable[[str, Mapping[str, Any]], Any]:
    get = digger(column.info.get("path", column.name))
    convert = column.info.get("convert")
    if convert is not None:  # e.g. micros → exact Decimal; None stays None
        return lambda account, record: (None if (value := get(record)) is None else convert(value))
    if isinstance(column.type, JSONB):
        def get_json(account: str, record: Mapping[str, Any]) -> Any:
            value = get(record)
            return None if value is None else dumps_json(value)

        return get_json
    if isinstance(column.type, sa.DateTime):
        return lambda account, record: parse_instant(get(record), naive_zone)
    return lambda account, record: get(record)
