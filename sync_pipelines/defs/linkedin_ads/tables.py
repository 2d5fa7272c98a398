"""LinkedIn's table: campaign × day metrics (schema ``linkedin_ads``), part of ``ads.metrics_daily``.

A record is one adAnalytics element as LinkedIn sent it (``analytics``) with what the client
adds: the campaign id taken from ``pivotValues`` and its name from the adCampaigns finder
(``campaign``), the element's day (``date``) and the ad account's currency (``account``). Spend
is ``costInLocalCurrency`` and conversion value ``conversionValueInLocalCurrency``, decimal
strings in the account's currency turned into exact decimals; conversions are
``externalWebsiteConversions`` (website conversions counted by the Insight Tag / Conversions API,
post-click and view-through together), per
https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting.
Days are UTC days (see the client).
"""

import sqlalchemy as sa

from sync_pipelines.core.reports import Field, daily_metrics_table, exact_decimal

metadata = sa.MetaData()

CAMPAIGN_ANALYTICS_DAILY = daily_metrics_table(
    metadata, "linkedin_ads", "campaign_analytics_daily",
    campaign_id="campaign.id",
    campaign_name="campaign.name",
    date="date",
    impressions="analytics.impressions",
    clicks="analytics.clicks",
    spend=Field("analytics.costInLocalCurrency", exact_decimal),
    conversions=Field("analytics.externalWebsiteConversions", exact_decimal),
    conversion_value=Field("analytics.conversionValueInLocalCurrency", exact_decimal),
    currency="account.currency",
    comment="LinkedIn adAnalytics, q=analytics, pivot=CAMPAIGN, timeGranularity=DAILY: one row per campaign and UTC day",
)
