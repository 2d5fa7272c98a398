"""The replication code location: assets from config, job, schedule, and runs end to end."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.replication.definitions import build_definitions
from sync_pipelines.defs.replication.demo import drift_demo_source, seed_demo_source
from sync_pipelines.defs.replication.resources import SourceDatabase

from sync_pipelines_tests.helpers import metadata_by_asset


def with_app_db(defs: dg.Definitions, url: str | None = None) -> dg.Definitions:
    return dg.Definitions.merge(defs, dg.Definitions(resources={"app_db": AppDatabase(url=url)}))


@pytest.fixture
def config_file(tmp_path, schema):
    """The packaged tables, written into this test's destination schema."""
    path = tmp_path / "replication.yaml"
    path.write_text(
        f"destination_schema: {schema}\n"
        "tables:\n"
        "  - {source: public.orders, mode: incremental, cursor_column: updated_at}\n"
        "  - {source: public.order_items, mode: full, propagate_deletes: true}\n"
    )
    return path


def test_packaged_definitions_load_with_job_schedule_and_retries():
    from sync_pipelines.defs.replication.definitions import defs

    merged = with_app_db(defs)
    dg.Definitions.validate_loadable(merged)
    repo = merged.get_repository_def()
    job = repo.get_job("replication_sync")
    assert job.executor_def.name == "in_process"
    assert job.tags["sync/provider"] == "replication" and job.tags["dagster/max_runtime"] == "3600"
    schedule = repo.get_schedule_def("replication_every_6_hours")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 */6 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING and schedule.job_name == "replication_sync"
    graph = merged.resolve_asset_graph()
    keys = {dg.AssetKey(["replication", "orders"]), dg.AssetKey(["replication", "order_items"])}
    assert set(graph.get_all_asset_keys()) == keys
    for key in keys:
        node = graph.get(key)
        assert node.group_name == "replication"
        assert node.parent_keys == set()  # tables are independent: one failing never stops another
    assets_def = merged.get_assets_def(dg.AssetKey(["replication", "orders"]))
    policy = assets_def.node_def.retry_policy
    assert (policy.max_retries, policy.backoff, policy.jitter) == (2, dg.Backoff.EXPONENTIAL, dg.Jitter.PLUS_MINUS)
    assert isinstance(defs.resources["source_db"], SourceDatabase)


def test_materialize_end_to_end_with_demo_data(postgres_server, source_url, database_url, config_file, schema):
    seed_demo_source(source_url, rows=400)
    seed_demo_source(source_url, rows=400)  # idempotent
    defs = build_definitions(config_file)
    assets = list(defs.assets)
    # Trust auth ignores the password: it is here to prove it never reaches metadata or logs.
    with_password = source_url.replace("postgres@", "postgres:s3cret-pw@")
    resources = {"app_db": AppDatabase(url=database_url), "source_db": SourceDatabase(url=with_password)}

    with dg.instance_for_test() as instance:
        first = dg.materialize(assets, instance=instance, resources=resources)
        drift_demo_source(source_url, updates=5, inserts=2, deletes=1)
        second = dg.materialize(assets, instance=instance, resources=resources)

    assert first.success and second.success
    meta = metadata_by_asset(first)
    assert meta["orders"]["records_inserted"] == 400 and meta["orders"]["path"] == "bulk_load"
    assert meta["orders"]["dagster/row_count"] == 400
    assert meta["order_items"]["records_fetched"] == meta["order_items"]["dagster/row_count"]
    columns = {c.name: c for c in meta["orders"]["dagster/column_schema"].columns}
    assert columns["amount"].type == "numeric(12,2)" and columns["id"].constraints.other == ["primary key"]
    assert columns["note"].constraints.nullable and not columns["status"].constraints.nullable
    assert meta["orders"]["source"].startswith("postgresql://postgres@127.0.0.1:")
    for result in (first, second):
        assert not any("s3cret-pw" in str(event) for event in result.all_events)

    changed = metadata_by_asset(second)
    assert (changed["orders"]["records_inserted"], changed["orders"]["records_updated"]) == (2, 5)
    assert changed["orders"]["cursor_after"] > changed["orders"]["cursor_before"]
    assert (changed["order_items"]["records_inserted"], changed["order_items"]["records_deleted"]) == (2, 1)
    # The incremental run derives its row count (no full count(*)); it must still be exact.
    assert changed["orders"]["row_count_from"] == "previous count + rows inserted"
    assert changed["order_items"]["row_count_from"] == "count(*)"  # full mode with deletes counts
    with psycopg.connect(source_url) as src, psycopg.connect(database_url) as dest:
        for table in ("orders", "order_items"):
            actual = dest.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
            assert changed[table]["dagster/row_count"] == actual
        for table, key in (("orders", "id"), ("order_items", "order_id, line_no")):
            query = f"SELECT t::text FROM {{}}.{table} AS t ORDER BY {key}"
            assert dest.execute(query.format(schema)).fetchall() == src.execute(query.format("public")).fetchall()


def test_job_reads_source_url_from_the_environment_at_run_time(monkeypatch, source_url, database_url, config_file):
    seed_demo_source(source_url, rows=50)
    defs = with_app_db(build_definitions(config_file), database_url)  # SourceDatabase() with no url
    monkeypatch.setenv("SOURCE_DATABASE_URL", source_url)  # set after the definitions were built
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("replication_sync").execute_in_process(instance=instance)
    assert result.success
    assert metadata_by_asset(result)["orders"]["records_fetched"] == 50


def test_unfixable_problems_fail_once_without_retries(monkeypatch, tmp_path, source_url, database_url, schema):
    path = tmp_path / "bad.yaml"
    path.write_text(f"destination_schema: {schema}\ntables:\n  - {{source: public.nowhere, mode: full}}\n")
    defs = with_app_db(build_definitions(path), database_url)
    job = defs.resolve_job_def("replication_sync")
    with dg.instance_for_test() as instance:
        monkeypatch.delenv("SOURCE_DATABASE_URL", raising=False)
        no_url = job.execute_in_process(instance=instance, raise_on_error=False)
        monkeypatch.setenv("SOURCE_DATABASE_URL", source_url)
        missing = job.execute_in_process(instance=instance, raise_on_error=False)

    for result, expected in ((no_url, "set SOURCE_DATABASE_URL"), (missing, "public.nowhere does not exist")):
        assert not result.success
        events = [e.event_type_value for e in result.all_events]
        assert "STEP_UP_FOR_RETRY" not in events and "STEP_RESTARTED" not in events
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert expected in failure.step_failure_data.error.message


def test_transient_errors_are_retried_by_the_retry_policy(tmp_path, database_url, schema):
    from sync_pipelines.core.embedded import _free_port

    path = tmp_path / "one.yaml"
    path.write_text(f"destination_schema: {schema}\ntables:\n  - {{source: public.a, mode: full}}\n")
    down = f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"  # nothing listens there
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(build_definitions(path).assets), instance=instance, raise_on_error=False,
                                resources={"app_db": AppDatabase(url=database_url),
                                           "source_db": SourceDatabase(url=down)})
    events = [e.event_type_value for e in result.all_events]
    assert not result.success and events.count("STEP_UP_FOR_RETRY") == 2


def test_data_errors_fail_without_retries(tmp_path, src, dest, source_url, database_url, schema):
    src.execute("CREATE TABLE public.a (id int PRIMARY KEY, v text)")
    src.execute("INSERT INTO public.a VALUES (1, 'x')")
    dest.execute(f"CREATE SCHEMA {schema}")
    dest.execute(f"CREATE TABLE {schema}.a (id int PRIMARY KEY, v text CONSTRAINT not_x CHECK (v <> 'x'))")
    dest.execute(f"INSERT INTO {schema}.a VALUES (2, 'y')")  # not empty: the upsert path
    path = tmp_path / "one.yaml"
    path.write_text(f"destination_schema: {schema}\ntables:\n  - {{source: public.a, mode: full}}\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(build_definitions(path).assets), instance=instance, raise_on_error=False,
                                resources={"app_db": AppDatabase(url=database_url),
                                           "source_db": SourceDatabase(url=source_url)})
    events = [e.event_type_value for e in result.all_events]
    assert not result.success and "STEP_UP_FOR_RETRY" not in events
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "replication/a:" in failure.step_failure_data.error.message
    assert "not_x" in failure.step_failure_data.error.message
