"""Replication edge cases a production source produces sooner or later: long transactions, NULL
cursors, database-level formatting settings, values `=` calls equal, schema drift, TRUNCATE."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest

from sync_pipelines.core import cursors
from sync_pipelines.defs.replication.config import ReplicationConfigError, load_config

from .conftest import count, rows


def wait_until(condition, failure: str, timeout: float = 10.0) -> None:
    """Poll `condition` (a state another session reaches) until it holds; `failure` if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


@pytest.fixture
def table(src, table_spec):
    """`public.t`: id, a nullable stamp `u`, a value `v`."""
    src.execute("CREATE TABLE public.t (id int PRIMARY KEY, u timestamptz, v text)")
    src.execute("INSERT INTO public.t SELECT i, now() - (21 - i) * interval '1 minute', 'v' || i"
                " FROM generate_series(1, 20) i")
    return table_spec("public.t", mode="incremental", cursor_column="u", overlap=timedelta(seconds=1))


def test_rows_of_a_transaction_still_open_at_the_source_are_not_skipped(src, source_url, dest, table, run):
    run(table)
    with psycopg.connect(source_url) as slow:  # a long transaction: stamps rows at its start
        slow.execute("UPDATE public.t SET v = 'from the slow transaction', u = now() WHERE id = 1")
        started = slow.execute("SELECT now()").fetchone()[0]
        time.sleep(0.05)
        src.execute("UPDATE public.t SET v = 'quick', u = now() WHERE id = 2")  # committed, newer

        held = run(table)
        assert held.held_back_to == started and held.cursor_after == started
        slow.commit()

    caught_up = run(table)

    assert caught_up.updated == 1
    assert rows(dest, table.destination, "id") == rows(src, "public.t", "id")
    assert cursors.load(dest, table.stream, table.destination) > started


def test_rows_whose_cursor_column_is_null_are_read_every_time(src, dest, table, run):
    run(table)
    src.execute("INSERT INTO public.t VALUES (100, NULL, 'no stamp')")
    src.execute("UPDATE public.t SET u = NULL, v = 'stamp removed' WHERE id = 3")

    report = run(table)

    assert (report.inserted, report.updated) == (1, 1)
    assert rows(dest, table.destination, "id") == rows(src, "public.t", "id")
    assert run(table).fetched == 3  # the newest row (overlap) and the NULL-stamped ones, unchanged


def test_text_copy_ignores_the_databases_date_and_float_settings(src, source_url, dest, table_spec, run, unique):
    database = source_url.rsplit("/", 1)[1]
    src.execute(f"CREATE TYPE public.mood_{unique} AS ENUM ('ok')")  # a user type: the table goes as text
    dest.execute(f"CREATE TYPE public.mood_{unique} AS ENUM ('ok')")
    src.execute(f"CREATE TABLE public.d (id int PRIMARY KEY, m public.mood_{unique}, day date, f float8, span interval)")
    src.execute("INSERT INTO public.d VALUES (1, 'ok', '2025-04-03', 0.1::float8 + 0.2::float8, '1 day 02:00')")
    src.execute(f"ALTER DATABASE {database} SET DateStyle = 'SQL, DMY'")
    src.execute(f"ALTER DATABASE {database} SET extra_float_digits = 0")
    src.execute(f"ALTER DATABASE {database} SET IntervalStyle = 'sql_standard'")
    spec = table_spec("public.d", mode="full")

    report = run(spec)

    assert report.copy_format == "text"
    day, f, span = dest.execute(f"SELECT day::text, f, span::text FROM {spec.destination}").fetchone()
    assert (day, f, span) == ("2025-04-03", 0.1 + 0.2, "1 day 02:00:00")


@pytest.mark.parametrize("column, before, after", [
    ("n numeric", "1.0", "1.00"),  # no declared scale: 1.0 = 1.00
    ("span interval", "'1 mon'", "'30 days'"),  # interval equality: a month = 30 days
])
def test_changes_that_equality_calls_equal_are_still_copied(src, dest, table_spec, run, column, before, after):
    name = column.split()[0]
    src.execute(f"CREATE TABLE public.e (id int PRIMARY KEY, {column}, fixed numeric(6,2))")
    src.execute(f"INSERT INTO public.e VALUES (1, {before}, 1.5)")
    spec = table_spec("public.e", mode="full")
    run(spec)
    src.execute(f"UPDATE public.e SET {name} = {after}")

    report = run(spec)

    assert report.updated == 1
    assert rows(dest, spec.destination, "id") == rows(src, "public.e", "id")
    assert run(spec).updated == 0  # and identical values are still left alone


def test_a_primary_key_with_include_columns_keys_on_its_key_columns_only(src, dest, table_spec, run):
    src.execute("CREATE TABLE public.k (id int, s text, PRIMARY KEY (id) INCLUDE (s))")
    src.execute("INSERT INTO public.k VALUES (1, 'a')")
    spec = table_spec("public.k", mode="full")
    first = run(spec)
    src.execute("UPDATE public.k SET s = 'b'")

    second = run(spec)

    assert first.table_def.primary_key == ("id",)
    assert second.updated == 1 and count(dest, spec.destination) == 1


def test_a_source_dropping_not_null_or_a_column_does_not_stop_replication(src, dest, table_spec, run):
    src.execute("CREATE TABLE public.n (id int PRIMARY KEY, legacy text NOT NULL, x text NOT NULL)")
    src.execute("INSERT INTO public.n VALUES (1, 'l', 'x')")
    spec = table_spec("public.n", mode="full")
    run(spec)
    src.execute("ALTER TABLE public.n DROP COLUMN legacy")
    src.execute("ALTER TABLE public.n ALTER COLUMN x DROP NOT NULL")
    src.execute("INSERT INTO public.n VALUES (2, NULL)")

    report = run(spec)

    assert sorted(report.not_null_dropped) == ["legacy", "x"] and report.inserted == 1
    assert dest.execute(f"SELECT id, legacy, x FROM {spec.destination} ORDER BY id").fetchall() == [
        (1, "l", "x"), (2, None, None)]


def test_a_truncate_and_reload_in_flight_is_waited_for_not_read_as_empty(src, source_url, dest, table_spec, run):
    src.execute("CREATE TABLE public.r (id int PRIMARY KEY, v text)")
    src.execute("INSERT INTO public.r SELECT i, 'old' FROM generate_series(1, 50) i")
    spec = table_spec("public.r", mode="full", propagate_deletes=True)
    run(spec)
    outcome = {}
    with psycopg.connect(source_url) as reload:
        reload.execute("TRUNCATE public.r")
        reload.execute("INSERT INTO public.r SELECT i, 'new' FROM generate_series(1, 50) i")
        worker = threading.Thread(target=lambda: outcome.setdefault("report", run(spec)))
        worker.start()
        wait_until(lambda: src.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND application_name = 'sync-pipelines replication')").fetchone()[0],
            "the run never waited for the TRUNCATE's lock")
        reload.commit()
    worker.join(timeout=30)

    report = outcome["report"]
    assert (report.fetched, report.updated, report.deleted) == (50, 50, 0)
    assert rows(dest, spec.destination, "id") == rows(src, "public.r", "id")


def test_deletes_are_only_propagated_from_a_whole_table_read(src, dest, table, run):
    from dataclasses import replace

    spec = replace(table, propagate_deletes=True)  # refused by the config file; guarded here too
    run(spec)
    src.execute("UPDATE public.t SET u = now(), v = 'changed' WHERE id = 1")

    report = run(spec)

    assert report.updated == 1 and report.deleted == 0 and count(dest, spec.destination) == 20


def test_a_destination_with_an_identity_always_key_takes_the_source_values(src, dest, schema, table_spec, run):
    src.execute("CREATE TABLE public.g (id int PRIMARY KEY, v text)")
    src.execute("INSERT INTO public.g VALUES (7, 'a'), (9, 'b')")
    dest.execute(f"CREATE SCHEMA {schema}")
    dest.execute(f"CREATE TABLE {schema}.g (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)")
    spec = table_spec("public.g", mode="full")
    run(spec)  # bulk load into the empty table
    src.execute("UPDATE public.g SET v = 'changed' WHERE id = 7")
    src.execute("INSERT INTO public.g VALUES (11, 'c')")

    report = run(spec)

    assert (report.inserted, report.updated) == (1, 1)
    assert rows(dest, spec.destination, "id") == rows(src, "public.g", "id")


def test_a_bulk_load_keeps_indexes_it_could_not_recreate_exactly(src, dest, schema, table_spec, run):
    src.execute("CREATE TABLE public.i (id int PRIMARY KEY, code text NOT NULL, note text)")
    src.execute("INSERT INTO public.i SELECT i, 'c' || i, 'n' FROM generate_series(1, 10) i")
    dest.execute(f"CREATE SCHEMA {schema}")
    dest.execute(f"CREATE TABLE {schema}.i (id int PRIMARY KEY, code text NOT NULL, note text)")
    dest.execute(f"CREATE UNIQUE INDEX i_code ON {schema}.i (code)")
    dest.execute(f"ALTER TABLE {schema}.i REPLICA IDENTITY USING INDEX i_code")
    dest.execute(f"CREATE INDEX i_note ON {schema}.i (note)")
    dest.execute(f"COMMENT ON INDEX {schema}.i_note IS 'kept for the reports'")
    dest.execute(f"CREATE INDEX i_plain ON {schema}.i (note, id)")
    spec = table_spec("public.i", mode="full")

    report = run(spec)

    assert report.indexes_rebuilt == 1  # only i_plain was dropped and rebuilt
    identity = dest.execute("SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                            " WHERE x.indrelid = %s::regclass AND x.indisreplident", (spec.destination,)).fetchone()
    assert identity == ("i_code",)
    assert dest.execute("SELECT obj_description(%s::regclass, 'pg_class')", (f"{schema}.i_note",)).fetchone() == (
        "kept for the reports",)
    assert count(dest, spec.destination) == 10


def test_types_without_equality_are_compared_as_text(src, dest, table_spec, run):
    src.execute("CREATE TABLE public.j (id int PRIMARY KEY, p jsonpath, s pg_snapshot)")
    src.execute("INSERT INTO public.j VALUES (1, '$.a', pg_current_snapshot())")
    spec = table_spec("public.j", mode="full")
    run(spec)
    src.execute("UPDATE public.j SET p = '$.b'")

    report = run(spec)

    assert (report.updated, report.unchanged) == (1, 0)
    assert rows(dest, spec.destination, "id") == rows(src, "public.j", "id")


@pytest.mark.parametrize("entry, problem", [
    ("{source: \"public.orders\\n\"}", "`source` must be 'schema.table'"),
    ("{source: public.orders, cursor_column: updated_at, overlap_minutes: .nan}", "`overlap_minutes` must be"),
    ("{source: public.orders, cursor_column: updated_at, overlap_minutes: .inf}", "`overlap_minutes` must be"),
])
def test_config_refuses_trailing_newlines_and_non_finite_overlaps(tmp_path, entry, problem):
    path = tmp_path / "r.yaml"
    path.write_text(f"tables:\n  - {entry}\n")
    with pytest.raises(ReplicationConfigError, match=problem):
        load_config(path)


def test_a_run_that_waited_for_another_counts_its_rows_again(src, dest, database_url, table, run):
    """The row count carried over from the last materialization is stale once another run has
    written in between: a run that had to wait for the table's lock counts instead."""
    from concurrent.futures import ThreadPoolExecutor

    from sync_pipelines.defs.replication.replicate import LOCK_NAMESPACE

    run(table)
    src.execute("INSERT INTO public.t SELECT i, now(), 'new' FROM generate_series(21, 25) i")
    with psycopg.connect(database_url) as holder:  # both runs queue behind this lock
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, table.destination))
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(run, table, known_rows=20) for _ in range(2)]
            wait_until(lambda: dest.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = hashtext(%s)::oid", (table.destination,)).fetchone()[0] >= 2,
                "the runs never queued")
            holder.commit()
            reports = [f.result() for f in futures]

    assert sorted(r.inserted for r in reports) == [0, 5]
    assert [r.table_rows for r in reports] == [25, 25]
    assert {r.table_rows_from for r in reports} == {"count(*)"}
