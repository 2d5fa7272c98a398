"""The table list is configuration: the packaged file loads, and a bad file is refused with every
problem named by table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_pipelines.defs.replication.config import (
    DEFAULT_CONFIG, ReplicationConfigError, config_path, load_config, parse_config,
)


def test_packaged_config_replicates_the_demo_tables():
    specs = {s.name: s for s in load_config(DEFAULT_CONFIG)}
    orders, items = specs["orders"], specs["order_items"]
    assert (orders.source, orders.destination, orders.mode, orders.cursor_column, orders.overlap) == (
        "public.orders", "replica.orders", "incremental", "updated_at", timedelta(minutes=10))
    assert (items.source, items.destination, items.mode, items.propagate_deletes) == (
        "public.order_items", "replica.order_items", "full", True)
    assert orders.stream == "replication/orders"


def test_defaults_and_destination_forms():
    specs = parse_config({
        "destination_schema": "mirror",
        "tables": [
            {"source": "app.users", "cursor_column": "updated_at"},
            {"source": "app.teams", "mode": "full", "destination": "teams_copy"},
            {"source": "billing.users", "mode": "full", "destination": "billing.users", "name": "billing_users"},
        ],
    })
    assert [(s.name, s.destination, s.mode) for s in specs] == [
        ("users", "mirror.users", "incremental"),
        ("teams_copy", "mirror.teams_copy", "full"),
        ("billing_users", "billing.users", "full"),
    ]
    assert specs[0].overlap == timedelta(minutes=10) and not specs[1].propagate_deletes


def test_every_problem_is_reported_at_once_naming_the_table():
    with pytest.raises(ReplicationConfigError) as raised:
        parse_config({
            "tables": [
                {"source": "public.orders", "mode": "incremental"},
                {"source": "public.items", "mode": "mirror"},
                {"source": "public.carts", "mode": "full", "cursor_colum": "updated_at"},
                {"source": "public.events", "cursor_column": "at", "propagate_deletes": True},
                {"source": "orders"},
                {"source": "public.x", "mode": "full", "overlap_minutes": -1},
            ],
            "schedule": "hourly",
        }, origin="test.yaml")
    message = str(raised.value)
    assert message.startswith("test.yaml: ")
    for expected in (
        "unknown top-level key 'schedule'",
        "table public.orders: incremental mode needs `cursor_column`",
        "table public.items: `mode` must be 'incremental' or 'full', got 'mirror'",
        "table public.carts: unknown key 'cursor_colum'",
        "table public.events: `propagate_deletes` needs mode 'full'",
        "table #5: `source` must be 'schema.table'",
        "table public.x: `overlap_minutes` must be a number from 0 to 10080",
    ):
        assert expected in message


def test_duplicate_asset_names_and_unsafe_identifiers_are_refused():
    with pytest.raises(ReplicationConfigError, match="asset name 'users' is also used by table a.users"):
        parse_config({"tables": [{"source": "a.users", "mode": "full"},
                                 {"source": "b.users", "mode": "full", "destination": "other.users"}]})
    with pytest.raises(ReplicationConfigError, match="`source` must be 'schema.table'"):
        parse_config({"tables": [{"source": 'public."weird; drop"', "mode": "full"}]})


def test_replication_config_env_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "tables.yaml"
    path.write_text("tables:\n  - {source: public.a, mode: full}\n")
    monkeypatch.setenv("REPLICATION_CONFIG", str(path))
    assert config_path() == path
    assert [s.source for s in load_config()] == ["public.a"]
    monkeypatch.setenv("REPLICATION_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ReplicationConfigError, match="missing.yaml: cannot read it"):
        load_config()
    path.write_text("tables: [\n")
    monkeypatch.setenv("REPLICATION_CONFIG", str(path))
    with pytest.raises(ReplicationConfigError, match="not valid YAML"):
        load_config()
