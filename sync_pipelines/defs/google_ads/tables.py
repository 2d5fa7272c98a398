"""Google Ads' table: campaign × day metrics (schema ``google_ads``), part of ``ads.metrics_daily``.

Each column reads the GoogleAdsRow as the REST API sends it (lowerCamelCase, int64 as strings):
spend is ``metrics.costMicros`` ÷ 10⁶ exactly (cost in micros of the account's currency,
https://developers.google.com/google-ads/api/fields/v26/metrics#metrics.cost_micros), conversions
and conversion value are doubles turned into exact decimals from the number the API sent, and the
day is ``segments.date``, the customer's own calendar day in its time zone.
"""

import sqlalchemy as sa

from sync_pipelines.core.reports import Field, daily_metrics_table, micros_to_decimal

metadata = sa.MetaData()

CAMPAIGN_METRICS_DAILY = daily_metrics_table(
    metadata, "google_ads", "campaign_metrics_daily",
    campaign_id="campaign.id",
    campaign_name="campaign.name",
    date="segments.date",
    impressions="metrics.impressions",
    clicks="metrics.clicks",
    spend=Field("metrics.costMicros", micros_to_decimal),
    conversions="metrics.conversions",
    conversion_value="metrics.conversionsValue",
    currency="customer.currencyCode",
    comment="Google Ads campaign metrics per customer day (searchStream FROM campaign, segments.date)",
)
