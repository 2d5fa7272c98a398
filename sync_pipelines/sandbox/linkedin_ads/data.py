"""An ad account's data: campaigns and their seeded campaign × day metrics, on UTC days.

Nothing is stored per day: a campaign-day's numbers are a pure function of ``(seed, account,
campaign, day)``, so a big account (hundreds of campaigns × months, past the 15,000-element
response cap) costs nothing until asked for. Restatement (``mutations``) is kept as overrides
on top: a changed cell, or ``None`` for a row that vanished.

Rendering follows the adAnalytics contract
(https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting):
``pivotValues`` holds the campaign URN, ``dateRange`` the day as ``{year, month, day}`` (start =
end with ``timeGranularity=DAILY``; days are UTC days), ``impressions``/``clicks``/
``externalWebsiteConversions`` are integers, ``costInLocalCurrency`` and
``conversionValueInLocalCurrency`` are decimal strings in the account's currency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync_pipelines.sandbox.ad_days import SeededCampaign, delivered, funnel

DEFAULT_HISTORY_START = date(2024, 1, 1)
CAMPAIGN_URN = "urn:li:sponsoredCampaign:"
ACCOUNT_URN = "urn:li:sponsoredAccount:"
STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "COMPLETED", "CANCELED", "DRAFT", "PENDING_DELETION", "REMOVED")
METRIC_FIELDS = ("impressions", "clicks", "costInLocalCurrency", "costInUsd", "externalWebsiteConversions",
                 "conversionValueInLocalCurrency", "landingPageClicks", "likes", "shares", "follows")
FIELDS = frozenset({"dateRange", "pivotValues", *METRIC_FIELDS})
DEFAULT_FIELDS = ("dateRange", "pivotValues", "impressions", "clicks")
_WORDS = ("Q1", "Q2", "Q3", "Q4", "Brand", "Demand Gen", "ABM", "Retargeting", "Webinar", "Whitepaper", "Hiring")
_GOALS = ("Lead Gen", "Website Visits", "Awareness", "Conversions", "Video Views", "Engagement")


@dataclass(frozen=True)
class Campaign(SeededCampaign):
    id: int
    status: str
    cpm_micros: int  # cost per 1,000 impressions, in millionths of the currency
    value_cents: int
    listed: bool = True  # False: missing from the adCampaigns finder (a campaign created mid-sync)

    @property
    def urn(self) -> str:
        return f"{CAMPAIGN_URN}{self.id}"

    def info(self, account_id: str) -> dict[str, Any]:
        """The campaign as the adCampaigns finder answers it (the fields a sync reads)."""
        return {"id": self.id, "name": self.name, "status": self.status, "account": f"{ACCOUNT_URN}{account_id}",
                "type": "SPONSORED_UPDATES", "costType": "CPM"}


@dataclass
class AccountData:
    """One ad account: what ``GET /rest/adAccounts/{id}`` serves, its campaigns and overrides."""

    seed: int
    account_id: str
    name: str
    currency: str
    campaigns: list[Campaign]
    overrides: dict[tuple[int, date], dict[str, int] | None] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    @staticmethod
    def today(now: float) -> date:
        """LinkedIn's reporting day: the UTC calendar day."""
        return datetime.fromtimestamp(now, UTC).date()

    def cell(self, campaign: Campaign, day: date) -> dict[str, int] | None:
        key = (campaign.id, day)
        if key in self.overrides:
            return self.overrides[key]
        return base_cell(self.seed, self.account_id, campaign, day)

    def info(self) -> dict[str, Any]:
        return {"id": int(self.account_id), "name": self.name, "currency": self.currency, "status": "ACTIVE",
                "type": "BUSINESS", "test": False, "reference": f"urn:li:organization:{int(self.account_id) % 99991}"}

    def elements(self, first: date, last: date, fields: tuple[str, ...],
                 campaigns: set[int] | None = None) -> list[dict[str, Any]]:
        """Every campaign-day element of first..last (date order, then campaign), all of them."""
        out = []
        day = first
        while day <= last:
            for campaign in self.campaigns:
                if campaigns is not None and campaign.id not in campaigns:
                    continue
                cell = self.cell(campaign, day)
                if cell is not None:
                    out.append(render(campaign, day, cell, fields))
            day += timedelta(days=1)
        return out


def base_cell(seed: int, account_id: str, campaign: Campaign, day: date) -> dict[str, int] | None:
    """The generated (never restated) metrics of one campaign-day, or None (no delivery)."""
    rng = delivered(f"linkedin_ads:{seed}:{account_id}", campaign, day)
    if rng is None:
        return None
    impressions, clicks, cost, conversions, value = funnel(
        rng, campaign, cpm=campaign.cpm_micros, order_value=campaign.value_cents)
    return {"impressions": impressions, "clicks": clicks, "cost_micros": cost, "conversions": conversions,
            "value_cents": value, "landing_page_clicks": int(clicks * 0.9)}


def micros_text(micros: int) -> str:
    """An amount in millionths as LinkedIn writes money: a decimal string ("12.345678")."""
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(micros), 1_000_000)
    return f"{sign}{units}.{rest:06d}".rstrip("0").rstrip(".") if rest else f"{sign}{units}"


def ymd(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def render(campaign: Campaign, day: date, cell: dict[str, int], fields: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dateRange": lambda: {"start": ymd(day), "end": ymd(day)},
        "pivotValues": lambda: [campaign.urn],
        "impressions": lambda: cell["impressions"],
        "clicks": lambda: cell["clicks"],
        "costInLocalCurrency": lambda: micros_text(cell["cost_micros"]),
        "costInUsd": lambda: micros_text(cell["cost_micros"] * 11 // 10),
        "externalWebsiteConversions": lambda: cell["conversions"],
        "conversionValueInLocalCurrency": lambda: micros_text(cell["value_cents"] * 10_000),
        "landingPageClicks": lambda: cell["landing_page_clicks"],
        "likes": lambda: cell["clicks"] // 20, "shares": lambda: cell["clicks"] // 90,
        "follows": lambda: cell["clicks"] // 60,
    }
    return {name: values[name]() for name in fields}


def generate_account(seed: int, account_id: str, *, name: str | None, currency: str, campaigns: int,
                     history_start: date = DEFAULT_HISTORY_START) -> AccountData:
    """An ad account with `campaigns` seeded campaigns (ids unique within the sandbox's seed)."""
    rng = random.Random(f"linkedin_ads:{seed}:{account_id}")
    base_id = 100_000_000 + rng.randrange(800_000) * 1000
    made = [new_campaign(rng, base_id + i + 1, history_start, i) for i in range(int(campaigns))]
    return AccountData(seed=seed, account_id=account_id, name=name or f"Sandbox ad account {account_id}",
                       currency=currency, campaigns=made, rng=random.Random(f"linkedin_ads-mutations:{seed}:{account_id}"))


def new_campaign(rng: random.Random, campaign_id: int, history_start: date, index: int, *,
                 listed: bool = True) -> Campaign:
    start = history_start + timedelta(days=rng.randrange(0, 30) if index else 0)
    ended = index > 0 and rng.random() < 0.1
    return Campaign(
        id=campaign_id, name=f"{rng.choice(_WORDS)} {rng.choice(_GOALS)} {index + 1:03d}",
        status="COMPLETED" if ended else rng.choice(("ACTIVE", "ACTIVE", "PAUSED", "ARCHIVED")), start=start,
        end=start + timedelta(days=rng.randrange(120, 500)) if ended else None,
        impressions_per_day=rng.randrange(300, 20_000), ctr=0.003 + rng.random() * 0.01,
        cpm_micros=int((20 + rng.random() * 60) * 1_000_000), cvr=0.01 + rng.random() * 0.08,
        value_cents=int((50 + rng.random() * 900) * 100), listed=listed)
