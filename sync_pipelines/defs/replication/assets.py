"""One asset per configured table, and the job that runs them all.

The assets are generated from the config file, so adding a table is a config change. Problems a
retry cannot fix (missing table, no primary key, changed column type, no source URL, constraint or
bad-data errors) fail the step at once; anything else (a dropped connection, a deadlock) is retried
by the RetryPolicy, and since each attempt is one destination transaction, a retry starts from a
consistent table.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg
import psycopg

from sync_pipelines.core.dg.assets import STEP_RETRY_POLICY, SyncConfig, freshness_for
from sync_pipelines.core.dg.metadata import report_metadata
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.replication.config import TableSpec
from sync_pipelines.defs.replication.replicate import replicate
from sync_pipelines.defs.replication.resources import SourceDatabase
from sync_pipelines.defs.replication.schema import ReplicationError

PROVIDER = "replication"
JOB_NAME = "replication_sync"
MAX_RUNTIME_SECONDS = 3600
# PostgreSQL errors that will fail the same way on every attempt (constraint violations, bad data,
# missing privileges or objects); connection losses, deadlocks and timeouts are left to retries.
NOT_TRANSIENT = (
    psycopg.errors.IntegrityError,
    psycopg.errors.DataError,
    psycopg.errors.SyntaxErrorOrAccessRuleViolation,
)


def replication_asset(spec: TableSpec) -> dg.AssetsDefinition:
    """The asset `replication/<spec.name>`, copying `spec.source` into `spec.destination`."""
    what = f"{spec.mode} on {spec.cursor_column}" if spec.mode == "incremental" else "full compare"
    if spec.propagate_deletes:
        what += ", deletes propagated"

    @dg.asset(
        name=spec.name,
        key_prefix=[PROVIDER],
        group_name=PROVIDER,
        description=spec.description or f"{spec.source} replicated into {spec.destination} ({what}).",
        kinds={"python", "postgres"},
        owners=["team:data-eng"],
        tags={"sync/provider": PROVIDER},
        retry_policy=STEP_RETRY_POLICY,
        pool=PROVIDER,
        freshness_policy=freshness_for(timedelta(hours=6)),
        metadata={
            "source": spec.source,
            "destination": spec.destination,
            "mode": spec.mode,
            "dagster/table_name": spec.destination,
        },
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig, app_db: AppDatabase,
               source_db: SourceDatabase) -> dg.MaterializeResult:
        try:
            source_url = source_db.resolved_url()
            with app_db.connect() as conn:
                report = replicate(spec, source_url, conn, full_refresh=config.full_refresh, log=context.log.info,
                                   known_rows=_last_row_count(context, spec))
        except (ReplicationError, *NOT_TRANSIENT) as error:
            # Retrying cannot fix a configuration, schema or data problem: fail now, naming the table.
            raise dg.Failure(description=f"replication/{spec.name}: {error}", allow_retries=False) from None
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            # A terminated run stays terminated; the uncommitted transaction is rolled back.
            raise dg.Failure(description=f"replication/{spec.name}: interrupted", allow_retries=False) from None
        return dg.MaterializeResult(metadata=report_metadata(report))

    return _asset


def _last_row_count(context: dg.AssetExecutionContext, spec: TableSpec) -> int | None:
    """The row count the previous materialization of this table reported, if it wrote the same
    destination (see `replicate(known_rows=…)`)."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    destination, rows = metadata.get("destination"), metadata.get("dagster/row_count")
    if destination is None or rows is None or destination.value != spec.destination:
        return None
    return int(rows.value)


def replication_job(assets: Sequence[dg.AssetsDefinition]) -> "dg.UnresolvedAssetJobDefinition":
    """Every replication asset in one run; a table failing does not stop the others (no deps)."""
    return dg.define_asset_job(
        name=JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        executor_def=dg.in_process_executor,
        tags={"sync/provider": PROVIDER, "dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
        description="Replicates every configured source table into the app database.",
    )
