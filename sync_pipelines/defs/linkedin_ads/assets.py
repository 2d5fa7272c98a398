"""LinkedIn Ads daily metrics per account: one asset partitioned by account, the batch job, the check.

Everything is built by core's report factories (`core/dg/reports.py`) from `SPEC`; this file
only declares what is LinkedIn Ads's: its table, its client and its largest useful date window.
"""

import dagster as dg

from sync_pipelines.core.dg.reports import ReportProvider, recent_days_check, report_asset, report_job
from sync_pipelines.core.reports import ReportStream
from sync_pipelines.defs.linkedin_ads import tables
from sync_pipelines.defs.linkedin_ads.client import LinkedInAdsClient
from sync_pipelines.defs.linkedin_ads.provider import NAME

accounts = dg.DynamicPartitionsDefinition(name="linkedin_ads_accounts")

SPEC = ReportProvider(
    stream=ReportStream(NAME, tables.CAMPAIGN_ANALYTICS_DAILY, max_window_days=LinkedInAdsClient.model_fields["max_window_days"].default),
    client_key=NAME,
    partitions=accounts,
    description="Daily metrics per campaign and UTC day of each LinkedIn ad account (adAnalytics, pivot CAMPAIGN), each re-read window replacing its rows.",
)

metrics_daily = report_asset(SPEC, owners=["team:data-eng"])
recent_days_synced = recent_days_check(SPEC)
sync_job = report_job(SPEC)
