"""An ad account's data: campaigns and their seeded campaign × day metrics.

Nothing is stored per day: a campaign-day's numbers are a pure function of ``(seed, account,
campaign, day)``, so 1,000 accounts × years of history cost nothing until asked for and the
same seed always serves the same numbers. What changes over time (restatement, see
``mutations``) is kept as overrides on top: a changed cell, or ``None`` for a row that vanished.

Metrics are integers in the currency's minor unit (spend, purchase value) and rendered the way
the Insights API sends them: every number a string, money with the currency's decimals
(https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ — ``impressions``,
``clicks``, ``spend`` are ``numeric string``; ``actions`` / ``action_values`` are lists of
``AdsActionStats`` ``{action_type, value}``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.ad_days import SeededCampaign, delivered, funnel

DEFAULT_HISTORY_START = date(2024, 1, 1)
# Currencies Meta counts without a minor unit (no decimals in amounts).
ZERO_DECIMAL_CURRENCIES = frozenset({"CLP", "ISK", "JPY", "KRW", "PYG", "VND"})
# The action types a purchase is reported under: the same purchases, counted once per type.
PURCHASE_ACTION_TYPES = ("offsite_conversion.fb_pixel_purchase", "omni_purchase", "purchase")
METRICS = ("impressions", "clicks", "spend", "purchases", "purchase_value", "add_to_cart", "landing_page_views")

_WORDS = ("Spring", "Summer", "Autumn", "Winter", "Evergreen", "Launch", "Retargeting", "Lookalike",
          "Prospecting", "Brand", "Promo", "Clearance", "Holiday", "Always-on")
_GOALS = ("Sales", "Traffic", "Leads", "Awareness", "Catalog", "App installs")
_OBJECTIVES = ("OUTCOME_SALES", "OUTCOME_TRAFFIC", "OUTCOME_LEADS", "OUTCOME_AWARENESS")


@dataclass(frozen=True)
class Campaign(SeededCampaign):
    id: str
    objective: str
    cpm_minor: int  # minor units per 1,000 impressions
    order_value_minor: int


@dataclass
class AccountData:
    """One ad account: what ``GET act_<id>`` serves, its campaigns and its restatement overrides."""

    seed: int
    account_id: str  # the number, without "act_"
    name: str
    currency: str
    timezone_name: str
    account_status: int
    campaigns: list[Campaign]
    overrides: dict[tuple[str, date], dict[str, int] | None] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)  # mutations; seeded by the generator

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    def today(self, now: float) -> date:
        """The account's calendar day at epoch ``now``: Insights days are the account's days."""
        return datetime.fromtimestamp(now, self.tz).date()

    def offset_hours(self, now: float) -> float:
        offset = datetime.fromtimestamp(now, self.tz).utcoffset() or timedelta(0)
        return offset.total_seconds() / 3600

    def campaign(self, campaign_id: str) -> Campaign:
        for campaign in self.campaigns:
            if campaign.id == campaign_id:
                return campaign
        raise KeyError(f"no campaign {campaign_id!r} in ad account {self.account_id!r}")

    def cell(self, campaign: Campaign, day: date) -> dict[str, int] | None:
        """The campaign's metrics on `day` now (restated or not); None when it has no row."""
        key = (campaign.id, day)
        if key in self.overrides:
            return self.overrides[key]
        return base_cell(self.seed, self.account_id, campaign, day)

    def info(self, now: float) -> dict[str, Any]:
        """Every ``AdAccount`` field the sandbox serves (``GET act_<id>?fields=``)."""
        return {
            "id": f"act_{self.account_id}",
            "account_id": self.account_id,
            "name": self.name,
            "currency": self.currency,
            "timezone_name": self.timezone_name,
            "timezone_offset_hours_utc": self.offset_hours(now),
            "account_status": self.account_status,
        }


def base_cell(seed: int, account_id: str, campaign: Campaign, day: date) -> dict[str, int] | None:
    """The generated (never restated) metrics of one campaign-day, or None (no delivery)."""
    rng = delivered(f"meta_ads:{seed}:{account_id}", campaign, day)
    if rng is None:
        return None
    weekday = (1.0, 0.95, 0.97, 1.0, 1.08, 1.2, 1.15)[day.weekday()]
    impressions, clicks, spend, purchases, value = funnel(
        rng, campaign, cpm=campaign.cpm_minor, order_value=campaign.order_value_minor, weekday=weekday)
    return {"impressions": impressions, "clicks": clicks, "spend": spend, "purchases": purchases,
            "purchase_value": value, "add_to_cart": purchases * 3 + rng.randint(0, 4),
            "landing_page_views": int(clicks * 0.8)}


def add_cells(cells: list[dict[str, int]]) -> dict[str, int]:
    return {metric: sum(cell[metric] for cell in cells) for metric in METRICS}


def money(minor: int, currency: str) -> str:
    """An amount as the API writes it: "12.34", or "1234" in a zero-decimal currency."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return str(minor)
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d}"


def actions(cell: dict[str, int]) -> list[dict[str, str]]:
    """``actions``: counts per action type, only the types that happened."""
    counts = [("add_to_cart", cell["add_to_cart"]), ("landing_page_view", cell["landing_page_views"]),
              ("link_click", cell["clicks"]),
              *((kind, cell["purchases"]) for kind in PURCHASE_ACTION_TYPES)]
    return [{"action_type": kind, "value": str(n)} for kind, n in counts if n > 0]


def action_values(cell: dict[str, int], currency: str) -> list[dict[str, str]]:
    """``action_values``: the purchases' value per action type, in the account's currency."""
    if cell["purchases"] <= 0 or cell["purchase_value"] <= 0:
        return []
    return [{"action_type": kind, "value": money(cell["purchase_value"], currency)} for kind in PURCHASE_ACTION_TYPES]


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.6f}" if denominator else "0"


def render(account: AccountData, campaign: Campaign | None, first: date, last: date, cell: dict[str, int],
           fields: list[str]) -> dict[str, Any]:
    """One Insights row with the requested `fields` (``date_start``/``date_stop`` always)."""
    currency = account.currency
    spend_units = cell["spend"] / (1 if currency in ZERO_DECIMAL_CURRENCIES else 100)
    values: dict[str, Any] = {
        "account_id": lambda: account.account_id,
        "account_name": lambda: account.name,
        "account_currency": lambda: currency,
        "impressions": lambda: str(cell["impressions"]),
        "clicks": lambda: str(cell["clicks"]),
        "reach": lambda: str(int(cell["impressions"] * 0.72) or 1),
        "spend": lambda: money(cell["spend"], currency),
        "ctr": lambda: _ratio(cell["clicks"] * 100, cell["impressions"]),
        "cpc": lambda: _ratio(spend_units, cell["clicks"]),
        "cpm": lambda: _ratio(spend_units * 1000, cell["impressions"]),
        "actions": lambda: actions(cell),
        "action_values": lambda: action_values(cell, currency),
    }
    if campaign is not None:
        values |= {"campaign_id": lambda: campaign.id, "campaign_name": lambda: campaign.name,
                   "objective": lambda: campaign.objective}
    row: dict[str, Any] = {}
    for name in fields:
        make = values.get(name)
        if make is None:
            continue
        value = make()
        if value == []:  # the API leaves out an action list with nothing in it
            continue
        row[name] = value
    row["date_start"], row["date_stop"] = first.isoformat(), last.isoformat()
    return row


INSIGHTS_FIELDS = frozenset({"account_id", "account_name", "account_currency", "campaign_id", "campaign_name",
                             "objective", "impressions", "clicks", "reach", "spend", "ctr", "cpc", "cpm",
                             "actions", "action_values", "date_start", "date_stop"})


def generate_account(seed: int, account_id: str, *, name: str | None, currency: str, timezone_name: str,
                     campaigns: int | list[str], history_start: date, account_status: int = 1) -> AccountData:
    """An ad account with seeded campaigns; `campaigns` is a count or a list of names."""
    ZoneInfo(timezone_name)  # an unknown zone fails here (ZoneInfoNotFoundError, a KeyError)
    rng = random.Random(f"meta_ads:{seed}:{account_id}")
    names = campaigns if isinstance(campaigns, list) else [
        f"{rng.choice(_WORDS)} {rng.choice(_GOALS)} {i + 1:02d}" for i in range(int(campaigns))]
    zero_decimal = currency in ZERO_DECIMAL_CURRENCIES
    scale = 1 if zero_decimal else 100
    base_id = 120_200_000_000_000_000 + rng.randrange(10**12) * 1000
    made = []
    for i, campaign_name in enumerate(names):
        start = history_start + timedelta(days=rng.randrange(0, 60) if i else 0)
        ended = rng.random() < 0.15 and i > 0
        made.append(Campaign(
            id=str(base_id + i + 1), name=campaign_name, objective=rng.choice(_OBJECTIVES), start=start,
            end=start + timedelta(days=rng.randrange(90, 400)) if ended else None,
            impressions_per_day=rng.randrange(800, 40_000), ctr=0.004 + rng.random() * 0.02,
            cpm_minor=int((4 + rng.random() * 14) * scale * (100 if zero_decimal else 1)),
            cvr=0.01 + rng.random() * 0.05, order_value_minor=int((25 + rng.random() * 120) * scale
                                                                  * (100 if zero_decimal else 1))))
    return AccountData(seed=seed, account_id=account_id, name=name or f"Sandbox ad account {account_id}",
                       currency=currency, timezone_name=timezone_name, account_status=account_status,
                       campaigns=made, rng=random.Random(f"meta_ads-mutations:{seed}:{account_id}"))
