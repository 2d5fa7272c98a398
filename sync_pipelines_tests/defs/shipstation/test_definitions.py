"""The code location loads, validates, and its sensor and schedules do what they say."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
import sys
from pathlib import Path

import dagster as dg

from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import CADENCES, set_active, upsert_account
from sync_pipelines.defs.shipstation.assets import stores
from sync_pipelines.defs.shipstation.schedules import schedules
from sync_pipelines.defs.shipstation.sensors import sensors
from sync_pipelines_tests.helpers import kill_leftovers

ROOT = Path(__file__).resolve().parents[3]


def test_dagster_definitions_validate(dagster_env):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "sync_pipelines.definitions"],
        cwd=ROOT, capture_output=True, text=True, env=dagster_env, timeout=180,
    )
    kill_leftovers(dagster_env["DAGSTER_HOME"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_definitions_wire_jobs_schedules_and_sensors():
    from sync_pipelines.definitions import defs

    repo = defs.get_repository_def()
    job = repo.get_job("shipstation_sync")
    assert job.executor_def.name == "in_process"
    # "Materialize all" from the UI runs the implicit asset job: in process too.
    assert repo.get_implicit_global_asset_job_def().executor_def.name == "in_process"
    # Every cadence the registry (and `accounts add --cadence`) accepts has its schedule.
    assert {s.name for s in repo.schedule_defs} >= {f"shipstation_{c}_schedule" for c in CADENCES}
    assert {s.cron_schedule for s in repo.schedule_defs} >= {
        "*/15 * * * *", "*/30 * * * *", "0 * * * *", "0 */6 * * *", "0 2 * * *"}
    graph = defs.resolve_asset_graph()
    products = dg.AssetKey(["shipstation", "products"])
    inventory = dg.AssetKey(["shipstation", "inventory"])
    locations = dg.AssetKey(["shipstation", "inventory_locations"])
    assert graph.get(products).parent_keys == {locations}
    assert graph.get(inventory).parent_keys == {locations}
    assert graph.get(locations).parent_keys == {dg.AssetKey(["shipstation", "inventory_warehouses"])}


def test_partitions_sensor_adds_and_removes_stores(database_url, unique):
    sensor = sensors[0]
    names = [f"s1-{unique}", f"s2-{unique}"]
    with dg.instance_for_test() as instance, AppDatabase().connect() as conn:
        for name in names:
            upsert_account(conn, "shipstation", name, credentials_env="UNUSED")
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            result = sensor(context)
        added = {k for r in result.dynamic_partitions_requests for k in r.partition_keys}
        assert set(names) <= added
        instance.add_dynamic_partitions(stores.name, sorted(added))

        set_active(conn, "shipstation", names[0], False)
        with dg.build_sensor_context(instance=instance, resources={"app_db": AppDatabase()}) as context:
            result = sensor(context)
        deletes = [r for r in result.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest)]
        assert [k for r in deletes for k in r.partition_keys] == [names[0]]


def test_cadence_schedules_pick_accounts_by_preference(database_url, unique):
    by_name = {s.name: s for s in schedules}
    fast, daily = f"fast-{unique}", f"daily-{unique}"
    off = f"off-{unique}"
    with dg.instance_for_test() as instance, AppDatabase().connect() as conn:
        upsert_account(conn, "shipstation", fast, credentials_env="X", cadence="30min")
        upsert_account(conn, "shipstation", daily, credentials_env="X", cadence="daily")
        upsert_account(conn, "shipstation", off, credentials_env="X", cadence="30min", sync_enabled=False)
        instance.add_dynamic_partitions(stores.name, [fast, daily, off])

        def keys(schedule_name):
            from sync_pipelines.definitions import defs

            with dg.build_schedule_context(
                instance=instance, resources={"app_db": AppDatabase()},
                repository_def=defs.get_repository_def(),
                scheduled_execution_time=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
            ) as context:
                data = by_name[schedule_name].evaluate_tick(context)
            return {r.partition_key for r in (data.run_requests or [])}

        assert fast in keys("shipstation_30min_schedule")
        assert daily not in keys("shipstation_30min_schedule")
        assert off not in keys("shipstation_30min_schedule")
        assert daily in keys("shipstation_daily_schedule")
