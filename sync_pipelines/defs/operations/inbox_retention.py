"""Inbox retention: processed webhook deliveries and external triggers, and recorded rejections,
of every provider are deleted once they are old; nothing unprocessed is ever deleted. Accepted
trigger tokens are forgotten once expired.

The inbox belongs to no provider, so neither does its upkeep: it is this job, on its own schedule
(daily 02:00 UTC), with its own settings (run config, editable in the Launchpad).
"""

from datetime import timedelta

import dagster as dg

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase


class InboxRetentionConfig(dg.Config):
    processed_older_than_days: int = 7
    """Inbox rows (webhook deliveries of every provider, external triggers) processed more than
    this many days ago are deleted; rows not processed yet are kept, however old."""
    rejections_older_than_days: int = 7
    """Recorded rejections (bad signatures, unknown accounts, set-aside deliveries) older than this
    are deleted."""


@dg.op(required_resource_keys={"app_db"})
def purge_inbox(context: dg.OpExecutionContext, config: InboxRetentionConfig) -> None:
    app_db: AppDatabase = context.resources.app_db
    with app_db.connect() as conn:
        ensure_tables(conn, inbox.TABLES)
        deliveries = inbox.purge_processed(conn, timedelta(days=config.processed_older_than_days))
        rejections = inbox.purge_rejections(conn, timedelta(days=config.rejections_older_than_days))
        tokens = inbox.purge_expired_tokens(conn)  # an expired token no longer verifies: nothing to replay
    context.log.info(f"purged {deliveries} processed inbox rows older than {config.processed_older_than_days}"
                     f" days, {rejections} rejections older than {config.rejections_older_than_days} days"
                     f" and {tokens} expired trigger tokens")


@dg.job(name="inbox_retention", executor_def=dg.in_process_executor,
        description="Deletes old processed inbox rows (webhooks of every provider, triggers) and old rejections.")
def inbox_retention_job():
    purge_inbox()


inbox_retention_schedule = dg.ScheduleDefinition(
    name="inbox_retention_daily", job=inbox_retention_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
