"""Google Ads daily metrics per account: one asset partitioned by account, the batch job, the check.

Everything is built by core's report factories (`core/dg/reports.py`) from `SPEC`; this file
only declares what is Google Ads's: its table, its client and its largest useful date window.
"""

import dagster as dg

from sync_pipelines.core.dg.reports import ReportProvider, recent_days_check, report_asset, report_job
from sync_pipelines.core.reports import ReportStream
from sync_pipelines.defs.google_ads import tables
from sync_pipelines.defs.google_ads.client import GoogleAdsClient
from sync_pipelines.defs.google_ads.provider import NAME

accounts = dg.DynamicPartitionsDefinition(name="google_ads_accounts")

SPEC = ReportProvider(
    stream=ReportStream(NAME, tables.CAMPAIGN_METRICS_DAILY, max_window_days=GoogleAdsClient.model_fields["max_window_days"].default),
    client_key=NAME,
    partitions=accounts,
    description="Daily metrics per campaign and day of each Google Ads customer (searchStream, GAQL), each re-read window replacing its rows.",
)

metrics_daily = report_asset(SPEC, owners=["team:data-eng"])
recent_days_synced = recent_days_check(SPEC)
sync_job = report_job(SPEC)
