"""TikTok daily metrics per advertiser: one asset partitioned by account, the batch job, the check.

Everything is built by core's report factories (`core/dg/reports.py`) from `SPEC`; this file only
declares what is TikTok's: its table, its client and its largest date window (30 days by day).
"""

import dagster as dg

from sync_pipelines.core.dg.reports import ReportProvider, recent_days_check, report_asset, report_job
from sync_pipelines.core.reports import ReportStream
from sync_pipelines.defs.tiktok_ads import tables
from sync_pipelines.defs.tiktok_ads.client import TikTokAdsClient
from sync_pipelines.defs.tiktok_ads.provider import NAME

accounts = dg.DynamicPartitionsDefinition(name="tiktok_ads_accounts")

SPEC = ReportProvider(
    stream=ReportStream(NAME, tables.CAMPAIGN_METRICS_DAILY,
                        max_window_days=TikTokAdsClient.model_fields["max_window_days"].default),
    client_key=NAME,
    partitions=accounts,
    description="Daily metrics per campaign and day of each TikTok advertiser (synchronous BASIC report,"
                " AUCTION_CAMPAIGN), each re-read window replacing its rows.",
)

metrics_daily = report_asset(SPEC, owners=["team:data-eng"])
recent_days_synced = recent_days_check(SPEC)
sync_job = report_job(SPEC)
