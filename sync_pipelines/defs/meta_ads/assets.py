"""Meta daily metrics per account: one asset partitioned by account, the batch job, the check.

Everything is built by core's report factories (`core/dg/reports.py`) from `SPEC`; this file
only declares what is Meta's: its table, its client and its largest useful date window.
"""

import dagster as dg

from sync_pipelines.core.dg.reports import ReportProvider, recent_days_check, report_asset, report_job
from sync_pipelines.core.reports import ReportStream
from sync_pipelines.defs.meta_ads import tables
from sync_pipelines.defs.meta_ads.client import MetaAdsClient
from sync_pipelines.defs.meta_ads.provider import NAME

accounts = dg.DynamicPartitionsDefinition(name="meta_ads_accounts")

SPEC = ReportProvider(
    stream=ReportStream(NAME, tables.campaign_insights_daily, max_window_days=MetaAdsClient.model_fields["max_window_days"].default),
    client_key=NAME,
    partitions=accounts,
    description="Daily insights per campaign and day of each Meta ad account (level=campaign, time_increment=1), each re-read window replacing its rows.",
)

metrics_daily = report_asset(SPEC, owners=["team:data-eng"])
recent_days_synced = recent_days_check(SPEC)
sync_job = report_job(SPEC)
