"""Operations: the production dagster.yaml on PostgreSQL, the status report, run retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from sync_pipelines.core.dg.retention import delete_old_runs
from sync_pipelines.core.dg.runs import account_of, provider_of
from sync_pipelines.core.dg.status import render_table, status_report


@dg.op(config_schema={"fail": bool})
def work(context):
    if context.op_config["fail"]:
        raise ValueError("bad credentials for store")
    context.log_event(dg.AssetMaterialization("orders", metadata={"records_inserted": 7, "records_updated": 2}))
    context.log_event(dg.AssetMaterialization("replica", metadata={"records_inserted": 3, "records_updated": 0}))


@dg.job
def sync_like():
    work()


def launch(instance, account, fail, provider="shipstation"):
    return sync_like.execute_in_process(
        run_config={"ops": {"work": {"config": {"fail": fail}}}}, instance=instance, raise_on_error=False,
        tags={"sync/provider": provider, "sync/account": account})


def test_project_dagster_yaml_runs_on_postgres(dagster_env, monkeypatch):
    for key, value in dagster_env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        result = launch(instance, "yaml-check", fail=False)
        assert result.success
    # A fresh instance from the same file reads the run back from PostgreSQL.
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["sync/account"] == "yaml-check"


def test_status_report_from_run_storage(unique):
    with dg.instance_for_test() as instance:
        ok, broken = f"ok-{unique}", f"broken-{unique}"
        launch(instance, ok, fail=False)
        launch(instance, ok, fail=False)
        launch(instance, broken, fail=False)
        launch(instance, broken, fail=True)
        rows = {r.account: r for r in status_report(instance, days=1)}
        assert rows[ok].runs == 2 and rows[ok].success_rate == 1.0 and rows[ok].records_written == 24
        assert rows[broken].failures == 1 and rows[broken].success_rate == 0.5
        assert rows[broken].last_failure == "ValueError: bad credentials for store"
        assert rows[broken].last_failure_at >= rows[broken].last_success_at
        report = rows[ok].as_dict(datetime.now(UTC))
        assert report["duration_p50_s"] > 0 and 0 <= report["freshness_s"] < 600


def test_retention_deletes_old_runs_and_their_events():
    with dg.instance_for_test() as instance:
        first = launch(instance, "old", fail=False).run_id
        launch(instance, "old", fail=True)
        assert delete_old_runs(instance, timedelta(days=1)) == 0  # nothing that old yet
        assert delete_old_runs(instance, timedelta(seconds=0)) == 2
        assert instance.get_runs() == [] and instance.all_logs(first) == []


def test_status_report_over_its_run_limit_keeps_the_newest_runs(unique):
    with dg.instance_for_test() as instance:
        account = f"busy-{unique}"
        launch(instance, account, fail=False)
        newest_success = launch(instance, account, fail=False)
        newest_failure = launch(instance, account, fail=True)

        (row,) = status_report(instance, days=1, limit=2)
        assert row.runs == 2 and row.truncated
        ended = {r.dagster_run.run_id: datetime.fromtimestamp(r.end_time, UTC)
                 for r in instance.get_run_records()}
        assert row.last_success_at == ended[newest_success.run_id]
        assert row.last_failure_at == ended[newest_failure.run_id]
        assert row.last_failure == "ValueError: bad credentials for store"
        assert "Run limit reached" in render_table([row], datetime.now(UTC))

        (everything,) = status_report(instance, days=1, limit=3)
        assert everything.runs == 3 and not everything.truncated
        assert "Run limit reached" not in render_table([everything], datetime.now(UTC))


def test_runs_without_provider_tags_count_for_the_provider_of_their_assets(unique):
    """'Materialize all' from the UI runs the implicit asset job, which carries no job tags."""

    @dg.asset(key=["shipstation", f"ui_{unique}"], partitions_def=dg.StaticPartitionsDefinition([f"store-{unique}"]))
    def thing():
        return 1

    with dg.instance_for_test() as instance:
        job = dg.Definitions(assets=[thing]).get_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, partition_key=f"store-{unique}",
                                        asset_selection=[thing.key])
        run = instance.get_run_by_id(result.run_id)
        assert "sync/provider" not in run.tags
        assert (provider_of(run), account_of(run)) == ("shipstation", f"store-{unique}")
        (status,) = status_report(instance)
        assert (status.provider, status.account, status.runs) == ("shipstation", f"store-{unique}", 1)


def test_the_status_asset_lists_accounts_needing_reauthorisation(database_url, unique):
    """The UI's hourly status report names the accounts that need a person, not only failed runs."""
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.core.registry import mark_needs_reauth, upsert_account
    from sync_pipelines.defs.operations.definitions import sync_status

    with AppDatabase().connect() as conn:
        upsert_account(conn, "google_ads", f"99{unique}", credentials_env="")
        mark_needs_reauth(conn, "google_ads", f"99{unique}", "invalid_grant")
    with dg.instance_for_test() as instance:
        result = dg.materialize([sync_status], instance=instance, resources={"app_db": AppDatabase()})
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert f"99{unique}" in metadata["report"].value and metadata["accounts_needing_reauthorisation"].value >= 1
