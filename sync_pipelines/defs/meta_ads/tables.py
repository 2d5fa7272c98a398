"""The Meta ads destination table: Insights rows (level=campaign, time_increment=1) as they arrive,
plus the normalised columns every ad platform shares (`core.reports.daily_metrics_table`).

Numbers arrive as strings ("12.34", "1234") and become exact `numeric`/`bigint`, never floats
(https://developers.facebook.com/docs/marketing-api/reference/ads-insights/). Conversions and their
value come from the ``actions`` / ``action_values`` lists of ``{action_type, value}``: Meta reports
the same purchases under several action types at once (``omni_purchase`` counts pixel, app and
offline purchases together; ``purchase`` and ``offsite_conversion.fb_pixel_purchase`` overlap it),
so they are never summed — the first type of `META_ADS_PURCHASE_ACTION_TYPES` (comma-separated,
read at run time; default `DEFAULT_PURCHASE_ACTION_TYPES`) that a row reports is its conversions.
A row with no such action converts nothing: 0 (the client fills in the empty ``actions`` /
``action_values`` lists Meta leaves out when nothing happened, so the value is 0, not NULL).
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sync_pipelines.core.reports import Field, daily_metrics_table, exact_decimal, iso_date

metadata = sa.MetaData()

SCHEMA = "meta_ads"
PURCHASE_ACTION_TYPES_ENV = "META_ADS_PURCHASE_ACTION_TYPES"
DEFAULT_PURCHASE_ACTION_TYPES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")


def purchase_action_types() -> tuple[str, ...]:
    """The action types counted as conversions, most inclusive first (the environment's, else the default)."""
    configured = os.environ.get(PURCHASE_ACTION_TYPES_ENV, "")
    return tuple(t.strip() for t in configured.split(",") if t.strip()) or DEFAULT_PURCHASE_ACTION_TYPES


def first_purchase_type(stats: Any) -> Decimal:
    """The value of the first configured purchase type in an ``actions``/``action_values`` list,
    exactly; 0 when the row reports none of them."""
    if not isinstance(stats, list):
        return Decimal(0)
    by_type = {s.get("action_type"): s.get("value") for s in stats if isinstance(s, dict)}
    for kind in purchase_action_types():
        if by_type.get(kind) is not None:
            return exact_decimal(by_type[kind])
    return Decimal(0)


campaign_insights_daily = daily_metrics_table(
    metadata, SCHEMA, "campaign_insights_daily",
    campaign_id="campaign_id", campaign_name="campaign_name", date=Field("date_start", iso_date),
    impressions=Field("impressions", int), clicks=Field("clicks", int), spend=Field("spend", exact_decimal),
    conversions=Field("actions", first_purchase_type), conversion_value=Field("action_values", first_purchase_type),
    currency="account_currency",
    comment="Meta Insights, level=campaign, time_increment=1: one row per campaign and ad-account day")
