"""An advertiser's data: campaigns and their seeded campaign × day metrics, rendered the way the
synchronous report answers them.

A campaign-day's numbers are a pure function of ``(seed, advertiser, campaign, day)``: nothing is
stored per day, so years of history cost nothing until asked for and one seed always serves the
same numbers. Restatement (``mutations``) keeps overrides on top: a changed cell, or ``None`` for a
row that vanished.

Rendering follows "Run a synchronous report" (GET /open_api/v1.3/report/integrated/get/,
https://business-api.tiktok.com/portal/docs?id=1740302848100353): each row is ``{"dimensions":
{"campaign_id", "stat_time_day": "YYYY-MM-DD 00:00:00"}, "metrics": {...}}`` and **every metric
value is a string** — counts ("1234"), money with two decimals in the advertiser's currency
("12.34"), attribute metrics (``campaign_name``, ``currency``) as text. Website purchase value is
``total_complete_payment_rate`` (its documented name, despite "rate"), in-app purchase value
``total_purchase_value``; ``conversion`` counts the campaign's optimisation event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.ad_days import SeededCampaign, delivered, funnel

DEFAULT_HISTORY_START = date(2024, 1, 1)
CELL = ("impressions", "clicks", "spend", "conversion", "complete_payment", "payment_value", "app_purchase_value")
_WORDS = ("Spark", "Spring", "Summer", "Launch", "Retargeting", "Evergreen", "Promo", "Creator", "Holiday")
_GOALS = ("Web Conversions", "App Installs", "Traffic", "Reach", "Video Views", "Product Sales")
_OBJECTIVES = ("WEB_CONVERSIONS", "APP_PROMOTION", "TRAFFIC", "REACH", "VIDEO_VIEWS", "PRODUCT_SALES")


@dataclass(frozen=True)
class Campaign(SeededCampaign):
    id: str
    objective: str
    cpm_cents: int
    order_value_cents: int
    app: bool  # an app campaign: its purchases are in-app, not website payments


@dataclass
class Advertiser:
    """One ad account (advertiser): what /advertiser/info/ serves, its campaigns, its restatements."""

    seed: int
    advertiser_id: str
    name: str
    currency: str
    timezone: str  # IANA name (``display_timezone``)
    campaigns: list[Campaign]
    overrides: dict[tuple[str, date], dict[str, int] | None] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def today(self, now: float) -> date:
        """The advertiser's calendar day at epoch `now`: report days are the advertiser's days."""
        return datetime.fromtimestamp(now, ZoneInfo(self.timezone)).date()

    def cell(self, campaign: Campaign, day: date) -> dict[str, int] | None:
        key = (campaign.id, day)
        if key in self.overrides:
            return self.overrides[key]
        return base_cell(self.seed, self.advertiser_id, campaign, day)

    def info(self) -> dict[str, Any]:
        """The advertiser/info/ fields the sandbox serves."""
        offset = datetime.now(ZoneInfo(self.timezone)).utcoffset() or timedelta(0)
        hours = int(offset.total_seconds() // 3600)
        return {"advertiser_id": self.advertiser_id, "name": self.name, "currency": self.currency,
                "display_timezone": self.timezone, "timezone": f"Etc/GMT{-hours:+d}" if hours else "Etc/GMT",
                "status": "STATUS_ENABLE", "role": "ROLE_ADVERTISER"}


def base_cell(seed: int, advertiser_id: str, campaign: Campaign, day: date) -> dict[str, int] | None:
    """The generated (never restated) metrics of one campaign-day (money in cents), or None."""
    rng = delivered(f"tiktok_ads:{seed}:{advertiser_id}", campaign, day)
    if rng is None:
        return None
    impressions, clicks, spend, purchases, value = funnel(
        rng, campaign, cpm=campaign.cpm_cents, order_value=campaign.order_value_cents)
    return {"impressions": impressions, "clicks": clicks, "spend": spend, "conversion": purchases,
            "complete_payment": 0 if campaign.app else purchases,
            "payment_value": 0 if campaign.app else value, "app_purchase_value": value if campaign.app else 0}


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units}.{rest:02d}"


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "0.00"


METRICS: dict[str, Any] = {
    "campaign_name": lambda a, c, x: c.name,
    "objective_type": lambda a, c, x: c.objective,
    "currency": lambda a, c, x: a.currency,
    "spend": lambda a, c, x: money(x["spend"]),
    "impressions": lambda a, c, x: str(x["impressions"]),
    "clicks": lambda a, c, x: str(x["clicks"]),
    "ctr": lambda a, c, x: _ratio(100 * x["clicks"], x["impressions"]),
    "cpc": lambda a, c, x: _ratio(x["spend"] / 100, x["clicks"]),
    "cpm": lambda a, c, x: _ratio(10 * x["spend"], x["impressions"]),
    "reach": lambda a, c, x: str(max(1, int(x["impressions"] * 0.7))),
    "conversion": lambda a, c, x: str(x["conversion"]),
    "cost_per_conversion": lambda a, c, x: _ratio(x["spend"] / 100, x["conversion"]),
    "complete_payment": lambda a, c, x: str(x["complete_payment"]),
    "total_complete_payment_rate": lambda a, c, x: money(x["payment_value"]),
    "total_purchase_value": lambda a, c, x: money(x["app_purchase_value"]),
}


def add_cells(cells: list[dict[str, int]]) -> dict[str, int]:
    return {k: sum(cell[k] for cell in cells) for k in CELL}


def render(advertiser: Advertiser, campaign: Campaign, day: date | None, cell: dict[str, int],
           metrics: list[str]) -> dict[str, Any]:
    """One report row: the dimensions asked for (a day, or none for a whole range) and `metrics`."""
    dimensions = {"campaign_id": campaign.id}
    if day is not None:
        dimensions["stat_time_day"] = f"{day.isoformat()} 00:00:00"
    return {"dimensions": dimensions, "metrics": {m: METRICS[m](advertiser, campaign, cell) for m in metrics}}


def generate_advertiser(seed: int, advertiser_id: str, *, name: str | None, currency: str, timezone: str,
                        campaigns: int | list[str], history_start: date) -> Advertiser:
    """An advertiser with seeded campaigns; `campaigns` is a count or a list of names."""
    ZoneInfo(timezone)  # an unknown zone fails here
    rng = random.Random(f"tiktok_ads:{seed}:{advertiser_id}")
    names = campaigns if isinstance(campaigns, list) else [
        f"{rng.choice(_WORDS)} {rng.choice(_GOALS)} {i + 1:02d}" for i in range(int(campaigns))]
    base_id = 1_780_000_000_000_000_000 + rng.randrange(10**12) * 1000
    made = []
    for i, campaign_name in enumerate(names):
        start = history_start + timedelta(days=rng.randrange(0, 60) if i else 0)
        app = rng.random() < 0.3
        made.append(Campaign(
            id=str(base_id + i + 1), name=campaign_name, objective="APP_PROMOTION" if app else rng.choice(_OBJECTIVES),
            start=start, end=start + timedelta(days=rng.randrange(90, 400)) if i and rng.random() < 0.15 else None,
            impressions_per_day=rng.randrange(1_000, 60_000), ctr=0.005 + rng.random() * 0.02,
            cpm_cents=int(300 + rng.random() * 1200), cvr=0.01 + rng.random() * 0.05,
            order_value_cents=int(2000 + rng.random() * 10_000), app=app))
    return Advertiser(seed=seed, advertiser_id=advertiser_id, name=name or f"Sandbox advertiser {advertiser_id}",
                      currency=currency, timezone=timezone, campaigns=made,
                      rng=random.Random(f"tiktok_ads-mutations:{seed}:{advertiser_id}"))
