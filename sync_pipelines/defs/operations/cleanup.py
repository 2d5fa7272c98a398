"""The daily cleanup (02:00): history rows past their retention, then `ANALYZE` of what changed.

Which history tables are trimmed is declared by the providers (a `RetentionDeclaration` in their
folder's `retention.py`, e.g. EcoManager's assignment activity log, 30 days); this job names none.
Rows are deleted in chunks so a big first purge never holds long locks. Then every table written
since it was last analysed (`pg_stat_user_tables.n_mod_since_analyze > 0`: the day's syncs,
webhook applies and purges) is `ANALYZE`d, so the planner sees today's row counts tomorrow
morning. Processed inbox rows have their own operations job (`inbox_retention`, same hour).
"""


import dagster as dg
import psycopg
from psycopg import sql

import sync_pipelines.defs
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.providers import RetentionDeclaration, discover_retention

CHUNK = 10_000
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class CleanupConfig(dg.Config):
    retention_days: dict[str, int] = {}
    """Days to keep per declared history table (by name, e.g. `ecomanager_activity_log`); unset: its declared default."""


def purge(conn: psycopg.Connection, declaration: RetentionDeclaration, days: int) -> int:
    """Delete the declaration's rows older than `days`, a chunk per transaction; how many."""
    table = declaration.table
    ensure_tables(conn, [table])
    target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    column = sql.Identifier(declaration.timestamp_column)
    statement = sql.SQL("DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {c} < now() - %s"
                        " * interval '1 day' LIMIT %s))").format(t=target, c=column)
    deleted = 0
    while True:
        with conn.transaction():
            count = conn.execute(statement, (days, CHUNK)).rowcount
        deleted += count
        if count < CHUNK:
            return deleted


def analyze_changed(conn: psycopg.Connection) -> list[str]:
    """`ANALYZE` every user table modified since its last analysis; their names."""
    rows = conn.execute(
        "SELECT schemaname, relname FROM pg_stat_user_tables WHERE n_mod_since_analyze > 0"
        " AND schemaname <> ALL(%s) AND schemaname NOT LIKE 'pg_temp%%' ORDER BY 1, 2",
        (list(_SYSTEM_SCHEMAS),)).fetchall()
    analysed = []
    for schema, name in rows:
        try:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
        except psycopg.errors.UndefinedTable:  # dropped since (a test's or a sync's temporary table)
            continue
        analysed.append(f"{schema}.{name}")
    return analysed


@dg.op(required_resource_keys={"app_db"}, out=dg.Out(dg.Nothing))
def purge_history(context: dg.OpExecutionContext, config: CleanupConfig) -> None:
    declared = discover_retention(sync_pipelines.defs)
    unknown = sorted(set(config.retention_days) - set(declared))
    if unknown:
        raise dg.Failure(description=f"unknown history tables {unknown}; declared: {sorted(declared)}",
                         allow_retries=False)
    with context.resources.app_db.connect() as conn:
        for name, declaration in sorted(declared.items()):
            days = config.retention_days.get(name, declaration.days)
            deleted = purge(conn, declaration, days)
            context.log.info(f"{name}: deleted {deleted} rows older than {days} days")
            context.add_output_metadata({f"{name}_deleted": deleted, f"{name}_days": days})


@dg.op(required_resource_keys={"app_db"}, ins={"after": dg.In(dg.Nothing)})
def analyze_tables(context: dg.OpExecutionContext) -> None:
    with context.resources.app_db.connect() as conn:
        analysed = analyze_changed(conn)
    context.log.info(f"analysed {len(analysed)} tables changed since their last analysis")
    context.add_output_metadata({"tables_analysed": len(analysed), "tables": dg.MetadataValue.json(analysed)})


@dg.job(name="daily_cleanup", executor_def=dg.in_process_executor,
        description="Trims declared history tables (e.g. activity logs older than 30 days) and ANALYZEs what changed.")
def cleanup_job():
    analyze_tables(after=purge_history())


cleanup_schedule = dg.ScheduleDefinition(
    name="daily_cleanup", job=cleanup_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
