"""Which tables to replicate: a YAML file, so adding a table is configuration, not code.

`replication.yaml` beside this module by default; `REPLICATION_CONFIG` (a path) overrides it. The
file is validated as a whole and every problem is reported at once, naming the table, because a
bad file stops the code location from loading and the operator should fix it in one go.
Dagster-free, so tests and the benchmark can use it without Dagster.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("replication.yaml")
DEFAULT_DESTINATION_SCHEMA = "replica"
DEFAULT_OVERLAP_MINUTES = 10
MAX_OVERLAP_MINUTES = 7 * 24 * 60  # a week; NaN and infinity fail this test too
MODES = ("incremental", "full")
TOP_LEVEL_KEYS = {"destination_schema", "tables"}
TABLE_KEYS = {
    "source", "destination", "name", "mode", "cursor_column", "overlap_minutes", "propagate_deletes",
    "description",
}
# Plain identifiers only: they become asset names, cursor stream names and quoted SQL identifiers.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ReplicationConfigError(ValueError):
    """The replication config file is invalid; the message lists every problem found."""


@dataclass(frozen=True)
class TableSpec:
    """One replicated table, as configured."""

    name: str
    source_schema: str
    source_table: str
    destination_schema: str
    destination_table: str
    mode: str = "incremental"
    cursor_column: str | None = None
    overlap: timedelta = timedelta(minutes=DEFAULT_OVERLAP_MINUTES)
    propagate_deletes: bool = False
    description: str | None = None

    @property
    def source(self) -> str:
        return f"{self.source_schema}.{self.source_table}"

    @property
    def destination(self) -> str:
        return f"{self.destination_schema}.{self.destination_table}"

    @property
    def stream(self) -> str:
        """The cursor's stream name in `sync.cursors` (its account is the destination table)."""
        return f"replication/{self.name}"


def config_path(path: str | os.PathLike | None = None) -> Path:
    """`path`, else `REPLICATION_CONFIG`, else the packaged `replication.yaml`."""
    chosen = path or os.environ.get("REPLICATION_CONFIG")
    return Path(chosen).expanduser() if chosen else DEFAULT_CONFIG


def load_config(path: str | os.PathLike | None = None) -> list[TableSpec]:
    """Read and validate the config file; raises `ReplicationConfigError` naming each problem."""
    where = config_path(path)
    try:
        text = where.read_text()
    except OSError as error:
        raise ReplicationConfigError(f"replication config {where}: cannot read it ({error.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ReplicationConfigError(f"replication config {where}: not valid YAML ({error})") from None
    return parse_config(document, origin=str(where))


def parse_config(document: Any, *, origin: str = "replication config") -> list[TableSpec]:
    """Validate an already-parsed document (a mapping with `tables`)."""
    problems: list[str] = []
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ReplicationConfigError(f"{origin}: expected a mapping with a `tables` list")
    for key in sorted(set(document) - TOP_LEVEL_KEYS, key=str):
        problems.append(f"unknown top-level key {key!r} (allowed: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    default_schema = document.get("destination_schema", DEFAULT_DESTINATION_SCHEMA)
    if not _is_identifier(default_schema):
        problems.append(f"destination_schema must be a plain identifier, got {default_schema!r}")
        default_schema = DEFAULT_DESTINATION_SCHEMA
    tables = document.get("tables", [])
    if not isinstance(tables, list):
        problems.append("`tables` must be a list")
        tables = []
    specs: list[TableSpec] = []
    for position, entry in enumerate(tables, start=1):
        spec = _parse_table(entry, position, default_schema, problems)
        if spec is not None:
            specs.append(spec)
    _check_unique(specs, problems)
    if problems:
        raise ReplicationConfigError(f"{origin}: " + "; ".join(problems))
    return specs


def _parse_table(entry: Any, position: int, default_schema: str, problems: list[str]) -> TableSpec | None:
    if not isinstance(entry, dict):
        problems.append(f"table #{position}: expected a mapping with at least `source`, got {entry!r}")
        return None
    label = f"table #{position}"
    source = _qualified(entry.get("source"), None)
    if source is None:
        problems.append(f"{label}: `source` must be 'schema.table' (plain identifiers), got {entry.get('source')!r}")
    else:
        label = f"table {source[0]}.{source[1]}"
    found = len(problems)
    for key in sorted(set(entry) - TABLE_KEYS, key=str):
        problems.append(f"{label}: unknown key {key!r} (allowed: {', '.join(sorted(TABLE_KEYS))})")

    destination = (default_schema, source[1]) if source else None
    if "destination" in entry:
        destination = _qualified(entry["destination"], default_schema)
        if destination is None:
            problems.append(f"{label}: `destination` must be 'schema.table' or 'table', got {entry['destination']!r}")
    name = entry.get("name", destination[1] if destination else None)
    if "name" in entry and not _is_identifier(name):
        problems.append(f"{label}: `name` must be a plain identifier, got {name!r}")

    mode = entry.get("mode", "incremental")
    if mode not in MODES:
        problems.append(f"{label}: `mode` must be 'incremental' or 'full', got {mode!r}")
    cursor_column = entry.get("cursor_column")
    if cursor_column is not None and not _is_identifier(cursor_column):
        problems.append(f"{label}: `cursor_column` must be a plain column name, got {cursor_column!r}")
    if mode == "incremental" and cursor_column is None:
        problems.append(f"{label}: incremental mode needs `cursor_column` (an updated_at-style column)")
    if mode == "full" and cursor_column is not None:
        problems.append(f"{label}: `cursor_column` only applies to incremental mode (full compares every row)")
    overlap = entry.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES)
    if isinstance(overlap, bool) or not isinstance(overlap, int | float) or not 0 <= overlap <= MAX_OVERLAP_MINUTES:
        problems.append(f"{label}: `overlap_minutes` must be a number from 0 to {MAX_OVERLAP_MINUTES}, got {overlap!r}")
        overlap = DEFAULT_OVERLAP_MINUTES
    if "overlap_minutes" in entry and mode == "full":
        problems.append(f"{label}: `overlap_minutes` only applies to incremental mode")
    propagate = entry.get("propagate_deletes", False)
    if not isinstance(propagate, bool):
        problems.append(f"{label}: `propagate_deletes` must be true or false, got {propagate!r}")
    elif propagate and mode != "full":
        problems.append(f"{label}: `propagate_deletes` needs mode 'full' (an incremental read cannot see deletes)")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"{label}: `description` must be text")

    if len(problems) > found or source is None or destination is None:
        return None
    return TableSpec(
        name=name,
        source_schema=source[0],
        source_table=source[1],
        destination_schema=destination[0],
        destination_table=destination[1],
        mode=mode,
        cursor_column=cursor_column,
        overlap=timedelta(minutes=overlap),
        propagate_deletes=propagate,
        description=description,
    )


def _check_unique(specs: list[TableSpec], problems: list[str]) -> None:
    for attribute, what in (("name", "asset name"), ("destination", "destination")):
        seen: dict[str, str] = {}
        for spec in specs:
            value = getattr(spec, attribute)
            if value in seen:
                problems.append(
                    f"table {spec.source}: {what} {value!r} is also used by table {seen[value]}"
                    + (" (set `name` or `destination`)" if attribute == "name" else "")
                )
            seen.setdefault(value, spec.source)


def _qualified(value: Any, default_schema: str | None) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return None
    parts = value.split(".")
    if len(parts) == 1 and default_schema is not None:
        parts = [default_schema, parts[0]]
    if len(parts) != 2 or not all(_is_identifier(p) for p in parts):
        return None
    return parts[0], parts[1]


def _is_identifier(value: Any) -> bool:
    return isinstance(value, str) and bool(_IDENTIFIER.fullmatch(value))  # `$` would allow a "\n"
