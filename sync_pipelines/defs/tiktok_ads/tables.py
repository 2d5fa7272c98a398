"""TikTok's table: campaign × day metrics (schema ``tiktok_ads``), part of ``ads.metrics_daily``.

Each column reads a synchronous report row as the API sends it (``{"dimensions": {"campaign_id",
"stat_time_day"}, "metrics": {...}}``, https://business-api.tiktok.com/portal/docs?id=1740302848100353).
Every metric is a **string** ("12.34", "1234") and becomes an exact ``numeric``/``bigint``, never a
float; ``stat_time_day`` is ``YYYY-MM-DD 00:00:00``, the advertiser's own calendar day. ``spend``
is in the advertiser's currency (the ``currency`` attribute metric). ``conversions`` is
``conversion`` (the campaign's optimisation event); ``conversion_value`` is the purchase value:
website payments (``total_complete_payment_rate`` — "Total complete payment value", its
documented name) plus in-app purchases (``total_purchase_value``), two disjoint event sources, so
adding them never counts a purchase twice. TikTok writes "-" for a metric it has no value for:
that is 0.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sync_pipelines.core.reports import Field, daily_metrics_table, exact_decimal

metadata = sa.MetaData()

SCHEMA = "tiktok_ads"
PURCHASE_VALUE_METRICS = ("total_complete_payment_rate", "total_purchase_value")
_NO_VALUE = (None, "", "-")


def stat_day(value: Any) -> date:
    """``stat_time_day`` ("2025-07-09 00:00:00") as the day; anything but midnight is refused."""
    text = str(value).strip()
    day, _, time = text.partition(" ")
    if time not in ("", "00:00:00"):
        raise ValueError(f"stat_time_day is not a day: {value!r}")
    return date.fromisoformat(day)


def metric_decimal(value: Any) -> Decimal:
    """A metric string as an exact Decimal; TikTok's "-" (no value) is 0."""
    return Decimal(0) if value in _NO_VALUE else exact_decimal(value)


def metric_int(value: Any) -> int:
    """A count string ("1234") as an int; "-" is 0; "12.0" or "1e3" are refused, never rounded."""
    if value in _NO_VALUE:
        return 0
    number = exact_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"not a count: {value!r}")
    return int(number)


def purchase_value(metrics: Any) -> Decimal:
    """Website plus in-app purchase value of a row's metrics, exactly."""
    if not isinstance(metrics, dict):
        return Decimal(0)
    return sum((metric_decimal(metrics.get(name)) for name in PURCHASE_VALUE_METRICS), Decimal(0))


CAMPAIGN_METRICS_DAILY = daily_metrics_table(
    metadata, SCHEMA, "campaign_metrics_daily",
    campaign_id="dimensions.campaign_id",
    campaign_name="metrics.campaign_name",
    date=Field("dimensions.stat_time_day", stat_day),
    impressions=Field("metrics.impressions", metric_int),
    clicks=Field("metrics.clicks", metric_int),
    spend=Field("metrics.spend", metric_decimal),
    conversions=Field("metrics.conversion", metric_decimal),
    conversion_value=Field("metrics", purchase_value),
    currency="metrics.currency",
    comment="TikTok synchronous BASIC report, AUCTION_CAMPAIGN, dimensions campaign_id × stat_time_day",
)
